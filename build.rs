//! The examples and integration tests of the root package link libtorch
//! when bistro-core's `torch` feature is on (through `full`, or enabled
//! directly, which this script cannot see): give them an rpath to it
//! whenever it is provisioned (an unused rpath costs nothing); see
//! `bistro-core/build_libtorch.rs`.

include!("bistro-core/build_libtorch.rs");

fn main() {
    println!("cargo:rerun-if-changed=bistro-core/build_libtorch.rs");
    link_libtorch_rpath(std::env::var_os("CARGO_FEATURE_FULL").is_some());
}
