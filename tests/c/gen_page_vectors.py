#!/usr/bin/env python3
"""Turns tests/vectors/pages.json into a C header for tests/c/test_bistro.c.

Generated at test time (scripts/test-ffi.sh), never committed, so the C test
always checks the vectors that the Rust and Python tests check.

    python3 tests/c/gen_page_vectors.py tests/vectors/pages.json OUT.h
"""
import json
import sys


def c_bytes(hex_string):
    raw = bytes.fromhex(hex_string)
    assert len(raw) == 32, hex_string
    return "{" + ", ".join(f"0x{b:02x}" for b in raw) + "}"


def c_array(name, values):
    if not values:
        return f"#define {name} NULL\n"
    body = ", ".join(f"UINT64_C({v})" for v in values)
    return f"static const uint64_t {name}[] = {{{body}}};\n"


def main(src, dst):
    with open(src, encoding="utf-8") as f:
        doc = json.load(f)
    if doc.get("version") != 1:
        sys.exit(f"{src}: unknown vectors version {doc.get('version')!r}")
    cases = doc["cases"]
    if not cases:
        sys.exit(f"{src}: no cases")
    out = [
        "/* Generated from tests/vectors/pages.json by tests/c/gen_page_vectors.py. */\n",
        "#include <stddef.h>\n#include <stdint.h>\n\n",
        "typedef struct page_vector {\n"
        "    const char *name;\n"
        "    uint8_t dataset_id[32];\n"
        "    uint64_t num_pages, window_pages, epoch_blocks, reveal_delay_blocks;\n"
        "    uint16_t uid;\n"
        "    uint64_t block, epoch;\n"
        "    uint8_t block_hash[32];\n"
        "    const uint64_t *window; size_t window_len;\n"
        "    const uint64_t *local; size_t local_len;\n"
        "    const uint64_t *global; size_t global_len;\n"
        "} page_vector;\n\n",
    ]
    rows = []
    for i, c in enumerate(cases):
        assert len(c["local"]) == c["local_count"], c["name"]
        assert len(c["global"]) == c["global_count"], c["name"]
        for part in ("window", "local", "global"):
            out.append(c_array(f"case{i}_{part}", c[part]))
        name = json.dumps(c["name"])  # a valid C string literal for these names
        rows.append(
            f"    {{{name}, {c_bytes(c['dataset_id'])},\n"
            f"     UINT64_C({c['num_pages']}), UINT64_C({c['window_pages']}),"
            f" UINT64_C({c['epoch_blocks']}), UINT64_C({c['reveal_delay_blocks']}),\n"
            f"     {c['uid']}, UINT64_C({c['block']}), UINT64_C({c['epoch']}),"
            f" {c_bytes(c['block_hash'])},\n"
            f"     case{i}_window, {len(c['window'])}, case{i}_local, {len(c['local'])},"
            f" case{i}_global, {len(c['global'])}}},\n"
        )
    out.append("\nstatic const page_vector PAGE_VECTORS[] = {\n")
    out.extend(rows)
    out.append("};\n")
    out.append(f"#define PAGE_VECTOR_COUNT {len(cases)}\n")
    with open(dst, "w", encoding="utf-8") as f:
        f.write("".join(out))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
