#!/usr/bin/env bash
# Fails when the committed include/bistro.h is not what cbindgen generates
# from bistro-ffi/src now (regenerate with scripts/gen-header.sh).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$repo/scripts/gen-header.sh" "$tmp/bistro.h"
if ! diff -u "$repo/include/bistro.h" "$tmp/bistro.h"; then
    echo "check-header: include/bistro.h is out of date; run scripts/gen-header.sh and commit it" >&2
    exit 1
fi
echo "check-header: include/bistro.h is up to date"
