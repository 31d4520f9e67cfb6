#!/usr/bin/env bash
# The main command (README): a whole bistro network on this machine with the
# embedded defaults — a local chain, local buckets, the sample corpus, the
# tiny model — no network, accounts or credentials. Provisions libtorch once,
# then runs `cargo run --release --example localnet`; extra arguments go to
# the example (`--rounds N`, `--dir DIR`, `--steps N`, `--cast NAMES`,
# `--validators STAKES`, `--tamper_after ROUND`, `--silence_lead ROUND:N`,
# `--audit_rounds N`,
# `--help`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup-libtorch.sh
exec cargo run --release --example localnet -- "$@"
