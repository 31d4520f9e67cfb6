#!/usr/bin/env bash
# Builds libbistro (bistro-ffi) and tests its C ABI from Rust, C, C++ and Python:
#
#   1. cargo test -p bistro-ffi           the boundary's Rust unit tests
#   2. scripts/check-header.sh            include/bistro.h matches the code
#   3. tests/c: cc -std=c11 -Wall -Wextra -Werror -pedantic (and the C example of docs/ffi.md)
#        a. against libbistro.so
#        b. the same binary under valgrind --leak-check=full --error-exitcode=1
#        c. with -fsanitize=address,undefined against libbistro.a (LeakSanitizer on)
#        d. self-check: builds that leak a handle / write out of bounds must
#           make valgrind and LeakSanitizer fail, or the checks above prove nothing
#   4. tests/cpp: a libtorch training step encoded through the C API
#        (libtorch from .deps/libtorch; scripts/setup-libtorch.sh if missing)
#   5. tests/python: the ctypes module, its tests and the example miner, with
#        NumPy (pinned, installed into .deps/venv if missing); the module's
#        prototypes and struct layouts checked against include/bistro.h
#
# Fails (non-zero) on the first error; skips nothing. Honors CARGO_TARGET_DIR.
# Needs cc, c++, valgrind and python3 (with venv and pip). Writes only under the
# cargo target dir and temp dirs.
set -euo pipefail

NUMPY_VERSION="2.4.6"

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
target="$(realpath -m "${CARGO_TARGET_DIR:-$repo/target}")"
lib_dir="$target/debug"
build="$target/ffi-tests"
mkdir -p "$build"

die() { echo "test-ffi: FAILED: $*" >&2; exit 1; }
step_start=
step() {
    [ -z "$step_start" ] || echo "(step took $((SECONDS - step_start)) s)"
    step_start=$SECONDS
    echo; echo "=== test-ffi: $* ==="
}
need() { command -v "$1" >/dev/null 2>&1 || die "$1 is required (${2:-apt-get install $1})"; }
need cc gcc
need c++ g++
need valgrind
need python3
start=$SECONDS

step "cargo test -p bistro-ffi"
cargo test -p bistro-ffi
cargo build -p bistro-ffi
[ -f "$lib_dir/libbistro.so" ] && [ -f "$lib_dir/libbistro.a" ] || die "no libbistro.so/.a in $lib_dir"

step "header drift"
scripts/check-header.sh

step "C test"
python3 tests/c/gen_page_vectors.py tests/vectors/pages.json "$build/page_vectors.h"
cflags=(-std=c11 -Wall -Wextra -Werror -pedantic -g -Iinclude -I"$build")
static_libs=(-pthread -ldl -lm -lrt -lgcc_s)
shared=(-L"$lib_dir" -lbistro -Wl,-rpath,"$lib_dir" -pthread -lm)
sanitize=(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all)
cc "${cflags[@]}" tests/c/test_bistro.c -o "$build/test_c" "${shared[@]}"
"$build/test_c"

# The minimal program of docs/ffi.md must keep compiling and running.
python3 - docs/ffi.md "$build/doc_example.c" <<'PY'
import re, sys
text = open(sys.argv[1], encoding="utf-8").read()
m = re.search(r"## A minimal C program\n\n```c\n(.*?)```", text, re.S)
if not m:
    sys.exit("docs/ffi.md has no 'A minimal C program' code block")
open(sys.argv[2], "w", encoding="utf-8").write(m.group(1))
PY
cc "${cflags[@]}" "$build/doc_example.c" -o "$build/doc_example" "${shared[@]}"

step "C test under valgrind"
vg=(valgrind --quiet --leak-check=full --error-exitcode=1
    --suppressions=tests/c/valgrind.supp)
"${vg[@]}" "$build/test_c"
"${vg[@]}" "$build/doc_example"
echo "docs/ffi.md example: ran clean under valgrind"

step "C test with AddressSanitizer + UBSan, static library"
cc "${cflags[@]}" "${sanitize[@]}" tests/c/test_bistro.c -o "$build/test_c_asan" \
    "$lib_dir/libbistro.a" "${static_libs[@]}"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
    "$build/test_c_asan"

step "self-check: the checkers fail on a leak and on an out-of-bounds write"
# expect_failure <name> <command...>: the command must fail with a report.
expect_failure() {
    local name="$1" log="$build/$1.log"
    shift
    if "$@" >"$log" 2>&1; then
        cat "$log" >&2
        die "$name passed, but it must fail: the checker would miss real bugs"
    fi
    echo "ok: $name failed as it must ($(grep -m1 -oE 'definitely lost|Invalid write|LeakSanitizer' "$log" || echo 'exit code'))"
}
faulty=(-Wno-unused-function)
cc "${cflags[@]}" "${faulty[@]}" -DBISTRO_TEST_DELIBERATE_LEAK tests/c/test_bistro.c \
    -o "$build/test_c_leak" "${shared[@]}"
cc "${cflags[@]}" "${faulty[@]}" -DBISTRO_TEST_DELIBERATE_OVERFLOW tests/c/test_bistro.c \
    -o "$build/test_c_overflow" "${shared[@]}"
cc "${cflags[@]}" "${faulty[@]}" "${sanitize[@]}" -DBISTRO_TEST_DELIBERATE_LEAK \
    tests/c/test_bistro.c -o "$build/test_c_leak_asan" "$lib_dir/libbistro.a" "${static_libs[@]}"
expect_failure valgrind-leak "${vg[@]}" "$build/test_c_leak"
grep -q "definitely lost" "$build/valgrind-leak.log" || die "valgrind did not report the leak"
expect_failure valgrind-overflow "${vg[@]}" "$build/test_c_overflow"
grep -q "Invalid write" "$build/valgrind-overflow.log" || die "valgrind did not report the write"
expect_failure lsan-leak env ASAN_OPTIONS=detect_leaks=1 "$build/test_c_leak_asan"
grep -q "LeakSanitizer" "$build/lsan-leak.log" || die "LeakSanitizer did not report the leak"

step "C++ test with libtorch"
libtorch="${LIBTORCH:-$repo/.deps/libtorch}"
if [ ! -f "$libtorch/include/torch/csrc/api/include/torch/torch.h" ]; then
    echo "libtorch is not at $libtorch: provisioning it (scripts/setup-libtorch.sh)"
    scripts/setup-libtorch.sh
    libtorch="$repo/.deps/libtorch"
fi
libtorch="$(realpath "$libtorch")"
[ -f "$libtorch/include/torch/csrc/api/include/torch/torch.h" ] || die "no libtorch headers in $libtorch"
[ -e "$libtorch/lib/libtorch_cpu.so" ] && [ -e "$libtorch/lib/libc10.so" ] || die "no libtorch_cpu/libc10 in $libtorch/lib"
cxxflags=(-std=c++17 -Wall -Wextra -Werror -O1 -Iinclude -isystem "$libtorch/include"
          -isystem "$libtorch/include/torch/csrc/api/include")
# libtorch_cpu.so loads libcudart/libcupti at run time; the layout links them
# into $libtorch/lib, so one rpath finds everything.
cxxlibs=(-L"$libtorch/lib" -ltorch_cpu -lc10 -Wl,-rpath,"$libtorch/lib" "${shared[@]}")
# Compiling against torch.h takes about a minute: reuse the binary while its
# inputs are unchanged.
stamp="$(cat tests/cpp/test_bistro_torch.cpp include/bistro.h | sha256sum | cut -c1-16)-$(echo "$libtorch ${cxxflags[*]} ${cxxlibs[*]}" | sha256sum | cut -c1-16)"
if [ ! -x "$build/test_cpp" ] || [ "$(cat "$build/test_cpp.stamp" 2>/dev/null)" != "$stamp" ]; then
    echo "compiling tests/cpp/test_bistro_torch.cpp (about a minute)"
    rm -f "$build/test_cpp.stamp"
    c++ "${cxxflags[@]}" tests/cpp/test_bistro_torch.cpp -o "$build/test_cpp" "${cxxlibs[@]}"
    echo "$stamp" >"$build/test_cpp.stamp"
fi
"$build/test_cpp"

step "Python ctypes tests"
venv="$repo/.deps/venv"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
if [ "$("$venv/bin/python" -c 'import numpy; print(numpy.__version__)' 2>/dev/null || true)" != "$NUMPY_VERSION" ]; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "numpy==$NUMPY_VERSION"
fi
BISTRO_LIB="$lib_dir/libbistro.so" BISTRO_REQUIRE_NUMPY=1 \
    "$venv/bin/python" -m unittest -v tests/python/test_bistro_ctypes.py
# Every ctypes prototype and struct layout against include/bistro.h.
"$venv/bin/python" -m unittest -v tests/python/test_ctypes_header.py

echo "(step took $((SECONDS - step_start)) s)"
echo
echo "test-ffi: all passed in $((SECONDS - start)) s (Rust, header, C, valgrind, ASan/UBSan, C++/libtorch, Python)"
