#!/usr/bin/env bash
# Installs cbindgen, the generator of include/bistro.h, at a pinned version,
# idempotently, and prints the path of its binary on the last line.
#
#   bin="$(scripts/setup-cbindgen.sh | tail -n 1)"
#
# It lives in a cache that survives fresh checkouts (like libtorch's):
#   ${BISTRO_CACHE:-$HOME/.cache/bistro}/cbindgen-<version>/bin/cbindgen
# A second run builds nothing. `--locked` builds it with the dependency
# versions cbindgen released with, so every machine runs the same generator.
set -euo pipefail

CBINDGEN_VERSION="0.29.4"

cache="${BISTRO_CACHE:-$HOME/.cache/bistro}"
root="$cache/cbindgen-$CBINDGEN_VERSION"
bin="$root/bin/cbindgen"

if [ ! -x "$bin" ] || [ "$("$bin" --version 2>/dev/null)" != "cbindgen $CBINDGEN_VERSION" ]; then
    echo "setup-cbindgen: building cbindgen $CBINDGEN_VERSION into $root (a minute or two)" >&2
    # Its own target dir, so that a workspace CARGO_TARGET_DIR is not disturbed.
    CARGO_TARGET_DIR="$cache/cbindgen-build" \
        cargo install cbindgen --version "$CBINDGEN_VERSION" --locked --root "$root" --quiet
    rm -rf "$cache/cbindgen-build"
fi
found="$("$bin" --version)"
[ "$found" = "cbindgen $CBINDGEN_VERSION" ] || { echo "setup-cbindgen: $bin says '$found'" >&2; exit 1; }
echo "$bin"
