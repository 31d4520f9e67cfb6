#!/bin/bash
# Rebuilds the sample shards in data/sample/ from Debian's r-cran-janeaustenr
# package (see README.md). Needs apt (with `apt-get update` done), python3 and cargo.
set -euo pipefail
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && apt-get download r-cran-janeaustenr=1.0.0-1)
echo "df6bddf211906d1ff404f8ff662c21b34e6660e7f54a311084e749050c019c95  $tmp/r-cran-janeaustenr_1.0.0-1_all.deb" | sha256sum -c -
python3 data/sample/extract_austen.py "$tmp/r-cran-janeaustenr_1.0.0-1_all.deb" > "$tmp/austen.jsonl"
rm -f data/sample/*.shard
cargo run --release --no-default-features --features tokenizer --example make_shards -- \
    --input "$tmp/austen.jsonl" --format jsonl --out data/sample \
    --page-tokens 1024 --heldout-every 10
