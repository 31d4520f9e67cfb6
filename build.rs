//! The examples and integration tests of the root package link libtorch
//! through bistro-core's `torch` feature (part of `full`): give them an rpath
//! to it; see `bistro-core/build_libtorch.rs`.

include!("bistro-core/build_libtorch.rs");

fn main() {
    println!("cargo:rerun-if-changed=bistro-core/build_libtorch.rs");
    if std::env::var_os("CARGO_FEATURE_FULL").is_some() {
        link_libtorch_rpath();
    }
}
