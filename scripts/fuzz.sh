#!/usr/bin/env bash
# Runs every fuzz target (the delta codec's `decode` and `roundtrip`, and
# those other modules add) for a bounded time, starting from the committed
# seed corpus in fuzz/seeds/<target>/; exits non-zero if any target finds a crash.
#
#   scripts/fuzz.sh [seconds-per-target [target...]]   (default: 60 s, all targets)
#
# The small string parsers (commitment, master_pointer, lead_status, lineage,
# run_params, eval_log, s3_date, content_range, ss58, safetensors_header)
# saturate their coverage in seconds: they run a quarter of that time (at
# least 5 s), or $BISTRO_FUZZ_LIGHT_SECONDS. With the default 60 s, all
# fourteen targets take about 6.5 minutes of fuzzing (4 x 60 s + 10 x 15 s)
# after the build.
#
# Installs cargo-fuzz if it is missing (once, about 2 minutes on 2 cores).
# Uses the nightly toolchain when rustup has one, or else stable with
# RUSTC_BOOTSTRAP=1 (cargo-fuzz needs nightly-only sanitizer flags).
# New inputs go to fuzz/corpus/<target>/ (git-ignored); crashes to
# fuzz/artifacts/<target>/, with the command to reproduce them printed.
set -euo pipefail

seconds="${1:-60}"
case "$seconds" in
  '' | *[!0-9]*) echo "usage: $0 [seconds-per-target [target...]]" >&2; exit 2 ;;
esac
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root/fuzz"

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz.sh: installing cargo-fuzz" >&2
  cargo install cargo-fuzz --locked
fi

toolchain=()
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  toolchain=(+nightly)
else
  echo "fuzz.sh: no nightly toolchain; using stable with RUSTC_BOOTSTRAP=1" >&2
  export RUSTC_BOOTSTRAP=1
fi

# Every target in fuzz/Cargo.toml (the codec's decode and roundtrip, the
# data module's shard, the sealed envelope's sealed, ...), or the ones named
# on the command line.
if (($# > 1)); then
  targets=("${@:2}")
else
  mapfile -t targets < <(cargo "${toolchain[@]}" fuzz list)
fi
light_targets=" commitment master_pointer lead_status lineage run_params eval_log s3_date content_range ss58 safetensors_header "
light_seconds="${BISTRO_FUZZ_LIGHT_SECONDS:-$(( seconds / 4 > 5 ? seconds / 4 : 5 ))}"
case "$light_seconds" in
  '' | *[!0-9]*) echo "fuzz.sh: BISTRO_FUZZ_LIGHT_SECONDS must be a whole number" >&2; exit 2 ;;
esac
((light_seconds <= seconds)) || light_seconds="$seconds"

failed=()
for target in "${targets[@]}"; do
  target_seconds="$seconds"
  [[ "$light_targets" == *" $target "* ]] && target_seconds="$light_seconds"
  mkdir -p "corpus/$target"
  cp -n "seeds/$target/"* "corpus/$target/" 2>/dev/null || true
  echo "fuzz.sh: $target for ${target_seconds}s" >&2
  if ! cargo "${toolchain[@]}" fuzz run "$target" "corpus/$target" -- \
      -max_total_time="$target_seconds" -timeout=10 -rss_limit_mb=2048 -max_len=16384 \
      -print_final_stats=1; then
    failed+=("$target")
  fi
done

if ((${#failed[@]})); then
  echo "fuzz.sh: crashes in: ${failed[*]} (inputs under fuzz/artifacts/)" >&2
  exit 1
fi
echo "fuzz.sh: ${#targets[@]} targets ran without a crash (${seconds}s each, light parsers ${light_seconds}s)" >&2
