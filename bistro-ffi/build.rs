//! libbistro itself never needs libtorch, but in a workspace build
//! (`cargo test --workspace`) Cargo unifies features, so bistro-core is built
//! with `torch` and this package's test binaries link libtorch too. Give them
//! an rpath to it whenever it is provisioned (an unused rpath costs nothing);
//! see `bistro-core/build_libtorch.rs`.

include!("../bistro-core/build_libtorch.rs");

fn main() {
    println!("cargo:rerun-if-changed=../bistro-core/build_libtorch.rs");
    link_libtorch_rpath(false);
}
