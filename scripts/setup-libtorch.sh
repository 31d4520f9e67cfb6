#!/usr/bin/env bash
# Provisions libtorch 2.13.0 (what `tch` 0.26 needs) for the `torch` feature,
# idempotently, and points <repo>/.deps/libtorch at it. Afterwards a plain
#   cargo test -p bistro-core --features torch
# works: `.cargo/config.toml` sets LIBTORCH=.deps/libtorch and the build
# scripts give every binary an rpath to its lib/ directory.
#
# Where libtorch comes from: the PyPI wheel `torch==2.13.0` (about 530 MB)
# carries libtorch's shared libraries and headers. Two layouts are built from it:
#
#   cpu  (default without a GPU) the wheel's libtorch_cpu.so, libc10.so and
#        libgomp.so.1, a libtorch.so that is libtorch_cpu.so, and the only two
#        CUDA libraries libtorch_cpu.so loads: libcudart.so.13 and libcupti.so.13
#        (PyPI `cuda-toolkit[cudart,cupti]==13.0.3`, about 13 MB). torch-sys
#        then links no CUDA code; tch reports `Cuda::is_available() == false`.
#   cuda (default when `nvidia-smi -L` lists a GPU) the wheel's whole lib/
#        directory and all of its CUDA dependencies (cuBLAS, cuDNN, NCCL, ...;
#        several GB), so torch-sys links libtorch_cuda.so.
#
# Choose explicitly with `--cpu` / `--cuda` or BISTRO_TORCH_DEVICE=cpu|cuda.
# After switching layouts, rebuild the C++ wrapper: `cargo clean -p torch-sys`.
#
# `--python` also builds $BISTRO_CACHE/hf-venv: full PyTorch 2.13.0 (with all
# its CUDA packages, about 5 GB), HF transformers, safetensors, numpy and
# blake3, pinned. The HF round-trip tests (bistro-core/tests/model_hf.rs) and
# the PyTorch comparison in the model benchmark use it when it is there.
#
# Everything downloaded and unpacked lives in a cache that survives fresh
# checkouts: ${BISTRO_CACHE:-$HOME/.cache/bistro}
#   wheels/                      the wheels exactly as pip downloaded them
#   libtorch-2.13.0-<layout>/    torch/ and nvidia/ unpacked side by side (the
#                                libraries' own RPATH, $ORIGIN/../../nvidia/...,
#                                finds the CUDA libraries there), and libtorch/,
#                                the directory LIBTORCH points at
#   libtorch-2.13.0-<layout>/.complete   written last; lists the wheels' SHA-256
# A second run downloads and unpacks nothing: it verifies the layout and the
# link and exits. Delete the layout directory to force a rebuild of it.
set -euo pipefail

TORCH_VERSION="2.13.0"
CUDA_TOOLKIT_VERSION="13.0.3"

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${BISTRO_CACHE:-$HOME/.cache/bistro}"
wheels="$cache/wheels"

die() { echo "setup-libtorch: $*" >&2; exit 1; }
say() { echo "setup-libtorch: $*"; }

layout="${BISTRO_TORCH_DEVICE:-}"
with_python=0
for arg in "$@"; do
    case "$arg" in
        --cpu) layout=cpu ;;
        --cuda) layout=cuda ;;
        --python) with_python=1 ;;
        -h|--help) sed -n '2,38p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) die "unknown argument $arg (use --cpu, --cuda or --python)" ;;
    esac
done
if [ -z "$layout" ]; then
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q '^GPU'; then
        layout=cuda
    else
        layout=cpu
    fi
fi
case "$layout" in cpu|cuda) ;; *) die "BISTRO_TORCH_DEVICE must be cpu or cuda, not $layout" ;; esac
[ "$(uname -s)-$(uname -m)" = "Linux-x86_64" ] || die "only Linux x86_64 is provisioned by this script (see docs/model.md for macOS)"

prefix="$cache/libtorch-$TORCH_VERSION-$layout"
libtorch="$prefix/libtorch"
python="${PYTHON:-python3}"

# The libraries the layout must hold, relative to $libtorch/lib.
required_libs=(libtorch_cpu.so libtorch.so libc10.so libgomp.so.1)
[ "$layout" = cuda ] && required_libs+=(libtorch_cuda.so libc10_cuda.so)

verify_layout() {
    [ -f "$prefix/.complete" ] || return 1
    [ -f "$libtorch/include/torch/csrc/api/include/torch/torch.h" ] || return 1
    [ "$(cat "$libtorch/build-version" 2>/dev/null)" = "$TORCH_VERSION" ] || return 1
    local lib
    for lib in "${required_libs[@]}"; do
        [ -e "$libtorch/lib/$lib" ] || return 1
    done
    # Every library the layout's libraries need resolves (through their RPATH).
    if command -v ldd >/dev/null 2>&1; then
        if ldd "$libtorch/lib/libtorch_cpu.so" "$libtorch/lib/libtorch.so" | grep -q 'not found'; then
            ldd "$libtorch/lib/libtorch_cpu.so" "$libtorch/lib/libtorch.so" | grep 'not found' >&2
            return 1
        fi
    fi
    return 0
}

link_into_repo() {
    mkdir -p "$repo/.deps"
    local link="$repo/.deps/libtorch"
    if [ "$(readlink "$link" 2>/dev/null)" != "$libtorch" ]; then
        ln -sfn "$libtorch" "$link.tmp.$$"
        mv -Tf "$link.tmp.$$" "$link"
        say "linked $link -> $libtorch"
    fi
}

# --- optional: the Python environment the HF tests and the benchmark use ----
PYTHON_PINS=("torch==$TORCH_VERSION" "transformers==5.24.0" "safetensors==0.8.0" "numpy==2.4.6" "blake3==1.0.11")
provision_python() {
    local venv="$cache/hf-venv" pins_file="$cache/hf-venv/.pins"
    if [ -x "$venv/bin/python" ] && [ "$(cat "$pins_file" 2>/dev/null)" = "${PYTHON_PINS[*]}" ] \
        && "$venv/bin/python" -c 'import torch, transformers, safetensors, numpy, blake3' 2>/dev/null; then
        say "python environment ready at $venv (cached)"
        return 0
    fi
    say "installing ${PYTHON_PINS[*]} into $venv (about 5 GB)"
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${PYTHON_PINS[@]}"
    echo "${PYTHON_PINS[*]}" >"$pins_file"
    say "python environment ready at $venv"
}

if verify_layout; then
    link_into_repo
    say "libtorch $TORCH_VERSION ($layout) ready at $repo/.deps/libtorch (cached, nothing downloaded)"
    [ "$with_python" = 0 ] || provision_python
    exit 0
fi

"$python" -m pip --version >/dev/null 2>&1 || die "needs pip ($python -m pip) to download the torch wheel from PyPI"
mkdir -p "$wheels"

# --- download (skipped for wheels already in the cache) --------------------
find_wheel() { # find_wheel <glob>: the newest cached wheel matching the glob
    local found
    found="$(ls -1t "$wheels"/$1 2>/dev/null | head -n 1 || true)"
    echo "$found"
}
pip_download() {
    say "downloading $* into $wheels"
    "$python" -m pip download --quiet --disable-pip-version-check --only-binary :all: -d "$wheels" "$@"
}

torch_wheel="$(find_wheel "torch-$TORCH_VERSION-*manylinux*x86_64.whl")"
if [ -z "$torch_wheel" ]; then
    pip_download --no-deps "torch==$TORCH_VERSION"
    torch_wheel="$(find_wheel "torch-$TORCH_VERSION-*manylinux*x86_64.whl")"
    [ -n "$torch_wheel" ] || die "pip did not leave a torch-$TORCH_VERSION wheel in $wheels"
fi

if [ "$layout" = cpu ]; then
    cuda_globs=("nvidia_cuda_runtime-13.*.whl" "nvidia_cuda_cupti-13.*.whl")
    missing=0
    for g in "${cuda_globs[@]}"; do [ -n "$(find_wheel "$g")" ] || missing=1; done
    [ "$missing" = 0 ] || pip_download "cuda-toolkit[cudart,cupti]==$CUDA_TOOLKIT_VERSION"
    cuda_wheels=()
    for g in "${cuda_globs[@]}"; do cuda_wheels+=("$(find_wheel "$g")"); done
else
    # The full dependency set, as `pip install torch==2.13.0` would fetch it.
    # pip skips wheels already present in $wheels.
    pip_download "torch==$TORCH_VERSION"
    cuda_wheels=()
    for w in "$wheels"/nvidia_*.whl; do cuda_wheels+=("$w"); done
fi

# --- unpack into a fresh directory, then rename into place ------------------
staging="$prefix.tmp.$$"
rm -rf "$staging"
trap 'rm -rf "$staging"' EXIT
mkdir -p "$staging"
say "unpacking into $prefix"

# unpack <wheel> <prefix>...: extracts the wheel's members under the prefixes.
unpack() {
    "$python" - "$staging" "$@" <<'EOF'
import sys, zipfile, os
dest, wheel, prefixes = sys.argv[1], sys.argv[2], tuple(sys.argv[3:])
with zipfile.ZipFile(wheel) as z:
    for info in z.infolist():
        name = info.filename
        if not name.startswith(prefixes) or name.endswith("/"):
            continue
        parts = name.split("/")
        if name.startswith("/") or ".." in parts:
            sys.exit(f"refusing unsafe path {name!r} in {wheel}")
        z.extract(info, dest)
        mode = (info.external_attr >> 16) & 0o777
        if mode:
            os.chmod(os.path.join(dest, name), mode)
EOF
}

if [ "$layout" = cpu ]; then
    unpack "$torch_wheel" torch/include/ torch/version.py \
        torch/lib/libtorch_cpu.so torch/lib/libc10.so torch/lib/libgomp.so.1
else
    unpack "$torch_wheel" torch/include/ torch/share/ torch/lib/ torch/version.py
fi
for w in "${cuda_wheels[@]}"; do
    unpack "$w" nvidia/
done

# The directory LIBTORCH points at: include/ and lib/ as torch-sys expects.
# It sits beside torch/ so that the libraries' RPATH $ORIGIN/../../nvidia/...
# resolves the same from libtorch/lib as from torch/lib.
mkdir -p "$staging/libtorch/lib"
ln -s ../torch/include "$staging/libtorch/include"
echo "$TORCH_VERSION" >"$staging/libtorch/build-version"
for f in "$staging"/torch/lib/*.so*; do
    ln -s "../../torch/lib/$(basename "$f")" "$staging/libtorch/lib/$(basename "$f")"
done
ln -s libgomp.so.1 "$staging/libtorch/lib/libgomp.so"
if [ "$layout" = cpu ]; then
    # torch-sys always links -ltorch; the wheel's libtorch.so would pull in
    # libtorch_cuda.so, so on CPU it is libtorch_cpu.so under that name.
    ln -s ../../torch/lib/libtorch_cpu.so "$staging/libtorch/lib/libtorch.so"
fi
# The CUDA libraries as well, so the lib directory resolves everything by
# itself ($ORIGIN) even when reached through a symlinked path.
for f in "$staging"/nvidia/*/lib/*.so*; do
    [ -e "$f" ] || continue
    rel="${f#"$staging"/}"
    [ -e "$staging/libtorch/lib/$(basename "$f")" ] || ln -s "../../$rel" "$staging/libtorch/lib/$(basename "$f")"
done

{
    echo "torch $TORCH_VERSION layout $layout"
    (cd "$wheels" && sha256sum "$(basename "$torch_wheel")")
    for w in "${cuda_wheels[@]}"; do (cd "$wheels" && sha256sum "$(basename "$w")"); done
} >"$staging/.complete"

rm -rf "$prefix"
mv "$staging" "$prefix"
trap - EXIT

verify_layout || die "the layout in $prefix does not verify (see above)"
link_into_repo
say "libtorch $TORCH_VERSION ($layout) ready at $repo/.deps/libtorch"
[ "$with_python" = 0 ] || provision_python
