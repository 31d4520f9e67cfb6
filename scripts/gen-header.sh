#!/usr/bin/env bash
# Regenerates include/bistro.h from bistro-ffi/src with the pinned cbindgen
# (built once by scripts/setup-cbindgen.sh) and bistro-ffi/cbindgen.toml.
#   scripts/gen-header.sh            rewrite include/bistro.h
#   scripts/gen-header.sh OUT.h      write OUT.h instead (check-header.sh)
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$repo/include/bistro.h}"
cbindgen="$("$repo/scripts/setup-cbindgen.sh" | tail -n 1)"
tmp="$(mktemp "${out}.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
"$cbindgen" --quiet --config "$repo/bistro-ffi/cbindgen.toml" --crate bistro-ffi \
    --output "$tmp" "$repo/bistro-ffi"
mv "$tmp" "$out"
trap - EXIT
