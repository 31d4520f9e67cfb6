#!/usr/bin/env bash
# The test command (README; `.ci/run` calls exactly this): installs what the
# tests need, once (libtorch, a venv with the moto S3 server, cargo-fuzz,
# cbindgen), then runs every test of the repository:
#
#   1. formatting, clippy and rustdoc (warnings are errors)
#   2. bistro-core with no features: the codec, pages, scoring, local storage
#      and local chain build and pass without any heavy dependency
#   3. the whole workspace with every feature: unit, integration and doc
#      tests, S3 against moto_server, the model on libtorch, the subtensor
#      client against a mock node; the local network's acceptance test runs
#      beside steps 3 to 5 and is reported last
#   4. the C ABI from C, C++ (libtorch) and Python, under valgrind and ASan
#   5. every fuzz target for a bounded time ($BISTRO_FUZZ_SECONDS, default 30;
#      `scripts/fuzz.sh 600` is the long run)
#
# Stops at the first failure. Servers the tests start listen on 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

started=$SECONDS
step() { echo; echo "==> [$(( (SECONDS - started) / 60 ))m$(( (SECONDS - started) % 60 ))s] $*"; }

step "provisioning libtorch 2.13.0, and PyTorch + transformers for the HF round-trip tests"
scripts/setup-libtorch.sh --python
# One build cache for every checkout on this machine (a CI clone, a second
# work tree): compiled dependencies are reused, only the workspace's own
# crates rebuild. LIBTORCH is the cached layout's real path, the same from
# every checkout, so torch-sys's build script (which reruns when LIBTORCH
# changes) is not redone either. Both can be overridden from outside.
# Cargo decides freshness by file times, so two checkouts must not build into
# this cache at the same time (each could take the other's just-built crates
# for its own); one after another is safe.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${BISTRO_CACHE:-$HOME/.cache/bistro}/target}"
export LIBTORCH="${LIBTORCH:-$(readlink -f .deps/libtorch)}"
echo "build cache: $CARGO_TARGET_DIR; libtorch: $LIBTORCH"
export BISTRO_REQUIRE_HF=1
step "provisioning test tools (moto S3 server)"
scripts/setup-test-tools.sh
export PATH="$PWD/.deps/venv/bin:$PATH"
# The commit-reveal interop tests fail (not skip) without bittensor-drand.
export BISTRO_REQUIRE_DRAND=1

step "cargo fmt --check"
cargo fmt --all -- --check

step "clippy, every feature"
cargo clippy --workspace --all-targets -- -D warnings

step "rustdoc, warnings are errors (broken links, missing docs)"
# Two runs: bistro-ffi's library is also named `bistro` (libbistro.so), so
# rustdoc cannot document it beside the root package in one run.
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps -p bistro-core -p bistro
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps -p bistro-ffi

step "bistro-core with no features"
cargo test -p bistro-core --no-default-features

step "the workspace with every feature"
cargo test --workspace --no-run
# The local network's acceptance tests (the whole zoo, and three validators
# with a forging lead: a quarter of an hour, mostly forward passes) run
# beside the steps below, which leave cores idle (single-threaded
# fuzzing, valgrind, servers starting); its output is shown when it ends.
localnet_log="$(mktemp)"
cargo test --test localnet -- --nocapture >"$localnet_log" 2>&1 &
localnet_pid=$!
trap 'kill "$localnet_pid" 2>/dev/null || true' EXIT
cargo test --workspace --no-fail-fast -- \
    --skip honest_miners_earn_the_weight_and_the_master_improves \
    --skip three_validators_agree_share_one_lineage_and_replace_a_forger

step "the C ABI from C, C++ and Python (valgrind, ASan/UBSan)"
scripts/test-ffi.sh

step "fuzzing every target for ${BISTRO_FUZZ_SECONDS:-30} s (light parsers a quarter of it)"
scripts/fuzz.sh "${BISTRO_FUZZ_SECONDS:-30}"

step "the local network's acceptance test (started with the workspace tests)"
if ! wait "$localnet_pid"; then
    cat "$localnet_log"
    echo "the local network's acceptance test FAILED" >&2
    exit 1
fi
trap - EXIT
tail -n 60 "$localnet_log"

step "all tests passed"
