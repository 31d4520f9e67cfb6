#!/usr/bin/env bash
# Installs the tools bistro's tests run against, idempotently:
#   - a Python venv at <repo>/.deps/venv (git-ignored) holding `moto[server]`,
#     the S3-compatible server the storage tests start on 127.0.0.1;
#   - in the same venv, `bittensor-drand` (the official Bittensor SDK's
#     timelock package, a compiled wheel for CPython 3.11): the timelock
#     interop tests encrypt and decrypt with it (tests/timelock_drand.rs);
#   - `libfaketime` (a wheel bundling the libfaketime library), so that the
#     commit-reveal tests can freeze the package's clock, and
#     `bittensor-drand` 1.3.0 (the last with the v1 reveal round,
#     `get_encrypted_commit`) in <repo>/.deps/drand-1.3.0, outside the venv
#     (tests/chain_commit_reveal.rs puts it first on PYTHONPATH).
# Afterwards the S3 tests find `<repo>/.deps/venv/bin/moto_server` by themselves
# (or the binary named by $BISTRO_MOTO_SERVER):
#   cargo test -p bistro-core --features s3 --test s3_bucket
set -euo pipefail

MOTO_VERSION="5.2.5"
DRAND_VERSION="2.0.0"
DRAND_V1_VERSION="1.3.0"
FAKETIME_VERSION="3.0.1"

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo/.deps/venv"

if [ ! -x "$venv/bin/python" ]; then
    mkdir -p "$repo/.deps"
    python3 -m venv "$venv"
fi

installed="$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("moto"))' 2>/dev/null || true)"
if [ "$installed" != "$MOTO_VERSION" ] || [ ! -x "$venv/bin/moto_server" ]; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
fi

installed="$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("bittensor-drand"))' 2>/dev/null || true)"
if [ "$installed" != "$DRAND_VERSION" ]; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "bittensor-drand==$DRAND_VERSION"
fi

installed="$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("libfaketime"))' 2>/dev/null || true)"
if [ "$installed" != "$FAKETIME_VERSION" ]; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --only-binary :all: "libfaketime==$FAKETIME_VERSION"
fi

drand_v1="$repo/.deps/drand-$DRAND_V1_VERSION"
if [ ! -f "$drand_v1/bittensor_drand-$DRAND_V1_VERSION.dist-info/METADATA" ]; then
    rm -rf "$drand_v1"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --only-binary :all: \
        --no-deps --target "$drand_v1" "bittensor-drand==$DRAND_V1_VERSION"
fi

"$venv/bin/moto_server" --help >/dev/null
echo "moto_server $MOTO_VERSION ready at $venv/bin/moto_server"
"$venv/bin/python" -c 'import bittensor_drand'
echo "bittensor-drand $DRAND_VERSION ready in $venv"
PYTHONPATH="$drand_v1" "$venv/bin/python" -c 'import bittensor_drand; bittensor_drand.get_encrypted_commit'
"$venv/bin/python" -c 'import libfaketime'
echo "bittensor-drand $DRAND_V1_VERSION ready in $drand_v1, libfaketime $FAKETIME_VERSION in $venv"
