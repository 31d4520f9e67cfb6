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

/// Emits the link arguments that make the package's binaries load libtorch
/// from its lib directory: an rpath to it and, on Linux,
/// `--no-as-needed -ltorch`. The linker otherwise drops `libtorch.so` (no
/// symbol is used from it directly), and with it `libtorch_cuda.so`, which
/// must be loaded for libtorch to see a GPU (tch-rs does the same in its own
/// build script). In the CPU layout `libtorch.so` is `libtorch_cpu.so`. When
/// the directory is not there, `required` says whether to warn how to
/// provision it.
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
    // Re-run when the link (.deps/libtorch) moves to another layout: cargo
    // compares the modification time of what the path points to.
    println!("cargo:rerun-if-changed={}", lib.display());
    match std::fs::canonicalize(&lib) {
        Ok(dir) => {
            println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
            if required && std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
                println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
                println!("cargo:rustc-link-arg=-ltorch");
                println!("cargo:rustc-link-arg=-Wl,--as-needed");
            }
        }
        Err(_) if required => println!(
            "cargo:warning=libtorch lib directory {} not found: run scripts/setup-libtorch.sh",
            lib.display()
        ),
        Err(_) => {}
    }
}
