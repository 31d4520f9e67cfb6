#!/usr/bin/env bash
# Runs the delta codec's unit tests and the C library's Rust tests under
# Miri, the interpreter that checks unsafe code for undefined behaviour
# (out-of-bounds or misaligned access, use after free, invalid values, data
# races, leaks).
#
#   scripts/miri.sh [extra test-name filters for bistro-ffi...]
#
# Needs the nightly toolchain with the miri and rust-src components:
#   rustup toolchain install nightly && rustup component add --toolchain nightly miri rust-src
# (fetched from static.rust-lang.org; the first run also builds Miri's
# sysroot, a few minutes on 2 cores). Miri is 100-1000x slower than native
# code, so proptest runs 4 cases per property and the FFI tests that
# memory-map files are skipped (Miri cannot map files). Builds under
# target/miri of $MIRI_TARGET_DIR (default: target-miri/ in the repo), apart
# from the normal builds, whose nightly artefacts nothing else shares.
#
# The last recorded result is in docs/miri.md.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export CARGO_TARGET_DIR="${MIRI_TARGET_DIR:-$root/target-miri}"
# File access for tempfile-based tests; Miri's own checks stay on. Tree
# Borrows, not the default Stacked Borrows: rayon's work-stealing deque
# (crossbeam-epoch) casts an intrusive list entry to its container, which
# the experimental Stacked Borrows rules reject inside crossbeam, before any
# of our code runs (recorded in docs/miri.md).
export MIRIFLAGS="${MIRIFLAGS:--Zmiri-disable-isolation -Zmiri-tree-borrows}"
export PROPTEST_CASES="${PROPTEST_CASES:-4}"
# The codec's heavy work runs on rayon's pool: keep it to the caller's thread.
export RAYON_NUM_THREADS="${RAYON_NUM_THREADS:-1}"

if ! cargo +nightly miri --version >/dev/null 2>&1; then
  echo "miri.sh: Miri is not installed: rustup component add --toolchain nightly miri rust-src" >&2
  exit 2
fi

echo "miri.sh: bistro-core codec and helpers (default features)" >&2
cargo +nightly miri test -p bistro-core --no-default-features --lib -- \
  codec:: util::hex util::jsonl data::shard

echo "miri.sh: bistro-ffi (the C ABI's Rust tests)" >&2
# Memory-mapped files are out of Miri's reach.
cargo +nightly miri test -p bistro-ffi --lib -- \
  --skip open_file --skip mapped --skip _file "$@"

echo "miri.sh: no undefined behaviour found" >&2
