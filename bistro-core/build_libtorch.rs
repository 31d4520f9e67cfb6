// Shared by bistro-core/build.rs and the root package's build.rs (through
// `include!`): gives the package's binaries (tests, benches, examples) an
// rpath to libtorch's lib directory, so that they run without LD_LIBRARY_PATH.
//
// The directory is the one torch-sys links against: $LIBTORCH_LIB/lib or
// $LIBTORCH/lib (`.cargo/config.toml` sets LIBTORCH to .deps/libtorch, which
// `scripts/setup-libtorch.sh` provisions). Symlinks are resolved, so a binary
// keeps working against the cached layout it was linked with. Link arguments
// from a build script reach only its own package's targets, which is why every
// package with binaries that link libtorch runs this.

/// Emits the rpath link argument for libtorch's lib directory. When it is
/// not there, `required` says whether to warn how to provision it.
fn link_libtorch_rpath(required: bool) {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-env-changed=LIBTORCH_LIB");
    // `-Wl,-rpath` is for ELF and Mach-O linkers; on Windows libtorch's DLLs
    // are found through PATH.
    if std::env::var("CARGO_CFG_TARGET_FAMILY").as_deref() != Ok("unix") {
        return;
    }
    let root = std::env::var_os("LIBTORCH_LIB").or_else(|| std::env::var_os("LIBTORCH"));
    let Some(root) = root else {
        if !required {
            return;
        }
        println!(
            "cargo:warning=LIBTORCH is not set: run scripts/setup-libtorch.sh \
             (binaries will need libtorch on LD_LIBRARY_PATH)"
        );
        return;
    };
    let lib = std::path::Path::new(&root).join("lib");
    match std::fs::canonicalize(&lib) {
        Ok(dir) => {
            println!("cargo:rerun-if-changed={}", dir.display());
            println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
        }
        Err(_) if required => println!(
            "cargo:warning=libtorch lib directory {} not found: run scripts/setup-libtorch.sh",
            lib.display()
        ),
        Err(_) => {}
    }
}
