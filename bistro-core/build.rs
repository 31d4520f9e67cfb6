//! With the `torch` feature, links this package's binaries (tests, benches,
//! examples) with an rpath to libtorch; see `build_libtorch.rs`.

include!("build_libtorch.rs");

fn main() {
    println!("cargo:rerun-if-changed=build_libtorch.rs");
    // docs.rs sets `--cfg docsrs` (see `[package.metadata.docs.rs]`).
    println!("cargo::rustc-check-cfg=cfg(docsrs)");
    if std::env::var_os("CARGO_FEATURE_TORCH").is_some() {
        link_libtorch_rpath(true);
    }
}
