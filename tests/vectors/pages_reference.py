#!/usr/bin/env python3
"""Reference implementation of bistro page selection, version 1 (docs/pages.md).

Standard library only: it carries its own BLAKE3 (enough of it for messages of
up to 1024 bytes, which is all page selection hashes), so that it runs
anywhere Python 3.8+ does. If the `blake3` package from PyPI is installed,
`selftest` also checks the built-in BLAKE3 against it.

Usage:
  pages_reference.py selftest             BLAKE3 known answers (and vs. PyPI blake3 if present)
  pages_reference.py generate             print the test vectors (tests/vectors/pages.json)
  pages_reference.py check FILE           recompute every case in FILE and compare
  pages_reference.py compute              read {"cases": [inputs...]} on stdin, print outputs
  pages_reference.py xof                  read {"messages": [hex...], "bytes": n} on stdin,
                                          print each message's first n XOF bytes as hex
"""

import json
import sys

MASK32 = 0xFFFFFFFF
MASK64 = 0xFFFFFFFFFFFFFFFF

# --------------------------------------------------------------------------
# BLAKE3, single chunk (input <= 1024 bytes), default hash mode, with XOF.
# --------------------------------------------------------------------------

IV = [
    0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A,
    0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19,
]
MSG_PERMUTATION = [2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8]
CHUNK_START, CHUNK_END, ROOT = 1, 2, 8
BLOCK_LEN, CHUNK_LEN = 64, 1024


def _rotr(x, n):
    return ((x >> n) | (x << (32 - n))) & MASK32


def _g(s, a, b, c, d, mx, my):
    s[a] = (s[a] + s[b] + mx) & MASK32
    s[d] = _rotr(s[d] ^ s[a], 16)
    s[c] = (s[c] + s[d]) & MASK32
    s[b] = _rotr(s[b] ^ s[c], 12)
    s[a] = (s[a] + s[b] + my) & MASK32
    s[d] = _rotr(s[d] ^ s[a], 8)
    s[c] = (s[c] + s[d]) & MASK32
    s[b] = _rotr(s[b] ^ s[c], 7)


def _compress(cv, block_words, counter, block_len, flags):
    s = list(cv) + IV[:4] + [counter & MASK32, (counter >> 32) & MASK32, block_len, flags]
    m = list(block_words)
    for r in range(7):
        _g(s, 0, 4, 8, 12, m[0], m[1])
        _g(s, 1, 5, 9, 13, m[2], m[3])
        _g(s, 2, 6, 10, 14, m[4], m[5])
        _g(s, 3, 7, 11, 15, m[6], m[7])
        _g(s, 0, 5, 10, 15, m[8], m[9])
        _g(s, 1, 6, 11, 12, m[10], m[11])
        _g(s, 2, 7, 8, 13, m[12], m[13])
        _g(s, 3, 4, 9, 14, m[14], m[15])
        if r < 6:
            m = [m[i] for i in MSG_PERMUTATION]
    for i in range(8):
        s[i] ^= s[i + 8]
        s[i + 8] ^= cv[i]
    return s


def _words(block):
    block = block + bytes(BLOCK_LEN - len(block))
    return [int.from_bytes(block[4 * i:4 * i + 4], "little") for i in range(16)]


def blake3_xof(message, length):
    """The first `length` bytes of BLAKE3's output for `message` (<= 1024 bytes)."""
    if len(message) > CHUNK_LEN:
        raise ValueError("this reference BLAKE3 handles messages of one chunk only")
    blocks = [message[i:i + BLOCK_LEN] for i in range(0, len(message), BLOCK_LEN)] or [b""]
    cv = list(IV)
    for i, block in enumerate(blocks[:-1]):
        flags = CHUNK_START if i == 0 else 0
        cv = _compress(cv, _words(block), 0, BLOCK_LEN, flags)[:8]
    last = blocks[-1]
    flags = CHUNK_END | ROOT | (CHUNK_START if len(blocks) == 1 else 0)
    out = bytearray()
    counter = 0
    while len(out) < length:
        words = _compress(cv, _words(last), counter, len(last), flags)
        out += b"".join(w.to_bytes(4, "little") for w in words)
        counter += 1
    return bytes(out[:length])


# --------------------------------------------------------------------------
# Page selection (docs/pages.md).
# --------------------------------------------------------------------------

class Stream:
    """Words of BLAKE3-XOF(message), little-endian u64, in order."""

    def __init__(self, message):
        self.message = message
        self.buffer = b""
        self.offset = 0  # bytes of the XOF consumed

    def next_u64(self):
        if self.offset + 8 > len(self.buffer):
            self.buffer = blake3_xof(self.message, max(2 * len(self.buffer), 512))
        word = int.from_bytes(self.buffer[self.offset:self.offset + 8], "little")
        self.offset += 8
        return word

    def below(self, s):
        """Uniform integer in [0, s): Lemire's method with rejection."""
        assert 1 <= s <= MASK64
        m = self.next_u64() * s
        lo = m & MASK64
        if lo < s:
            t = ((1 << 64) - s) % s
            while lo < t:
                m = self.next_u64() * s
                lo = m & MASK64
        return m >> 64


def u64le(x):
    return (x & MASK64).to_bytes(8, "little")


def message(tag, *fields):
    return tag.encode("ascii") + b"\x00" + b"".join(fields)


def distinct(stream, n, count):
    """Partial Fisher-Yates over the virtual array [0, n)."""
    assert 0 <= count <= n
    swaps = {}
    out = []
    for i in range(count):
        j = i + stream.below(n - i)
        out.append(swaps.get(j, j))
        swaps[j] = swaps.get(i, i)
    return out


def fmix64(x):
    x ^= x >> 33
    x = (x * 0xFF51AFD7ED558CCD) & MASK64
    x ^= x >> 33
    x = (x * 0xC4CEB9FE1A85EC53) & MASK64
    x ^= x >> 33
    return x


class Permutation:
    ROUNDS = 6

    def __init__(self, n, stream):
        self.n = n
        bits = max(2, (n - 1).bit_length())
        bits += bits & 1
        self.half = bits // 2
        self.mask = (1 << self.half) - 1
        self.keys = [stream.next_u64() for _ in range(self.ROUNDS)]

    def _pass(self, x):
        left, right = x >> self.half, x & self.mask
        for k in self.keys:
            left, right = right, left ^ (fmix64(right ^ k) & self.mask)
        return (left << self.half) | right

    def apply(self, x):
        y = self._pass(x)
        while y >= self.n:
            y = self._pass(y)
        return y


def check_params(p):
    n, w, e, d = p["num_pages"], p["window_pages"], p["epoch_blocks"], p["reveal_delay_blocks"]
    if not (n >= 1 and 1 <= w <= n and e >= 1 and d >= 1):
        raise ValueError("invalid parameters")


def epoch_permutation(p, epoch):
    dataset = bytes.fromhex(p["dataset_id"])
    stream = Stream(message("bistro.pages.v1.window", dataset, u64le(p["num_pages"]), u64le(epoch)))
    return Permutation(p["num_pages"], stream)


def window_page(p, perm, uid, j):
    n, w = p["num_pages"], p["window_pages"]
    return perm.apply((uid * w + j) % n)


def window(p, uid, epoch, limit=None):
    check_params(p)
    perm = epoch_permutation(p, epoch)
    length = p["window_pages"] if limit is None else min(limit, p["window_pages"])
    return [window_page(p, perm, uid, j) for j in range(length)]


def local_stream(p, uid, block, block_hash):
    return Stream(message(
        "bistro.pages.v1.local",
        bytes.fromhex(p["dataset_id"]),
        u64le(p["num_pages"]), u64le(p["window_pages"]), u64le(p["epoch_blocks"]),
        u64le(uid), u64le(block), bytes.fromhex(block_hash),
    ))


def local_pages(p, uid, block, block_hash, count):
    check_params(p)
    perm = epoch_permutation(p, block // p["epoch_blocks"])
    idx = distinct(local_stream(p, uid, block, block_hash), p["window_pages"], count)
    return [window_page(p, perm, uid, j) for j in idx]


def global_pages(p, block, block_hash, count):
    check_params(p)
    stream = Stream(message(
        "bistro.pages.v1.global",
        bytes.fromhex(p["dataset_id"]),
        u64le(p["num_pages"]), u64le(block), bytes.fromhex(block_hash),
    ))
    return distinct(stream, p["num_pages"], count)


WINDOW_LIMIT = 64
INPUT_KEYS = ["name", "dataset_id", "num_pages", "window_pages", "epoch_blocks",
              "reveal_delay_blocks", "uid", "block", "block_hash", "local_count", "global_count"]


def compute(case):
    """All outputs of one case (inputs as in the vector file)."""
    p = case
    epoch = case["block"] // case["epoch_blocks"]
    stream = local_stream(p, case["uid"], case["block"], case["block_hash"])
    out = {k: case[k] for k in INPUT_KEYS if k in case}
    out["epoch"] = epoch
    out["window"] = window(p, case["uid"], epoch, WINDOW_LIMIT)
    out["local"] = local_pages(p, case["uid"], case["block"], case["block_hash"], case["local_count"])
    out["global"] = global_pages(p, case["block"], case["block_hash"], case["global_count"])
    out["local_stream_words"] = [stream.next_u64() for _ in range(4)]
    out["window_keys"] = epoch_permutation(p, epoch).keys
    return out


def _hex_of(name):
    return blake3_xof(name.encode(), 32).hex()


def vector_inputs():
    """The cases of tests/vectors/pages.json."""
    base = dict(dataset_id=_hex_of("bistro vectors"), epoch_blocks=100, reveal_delay_blocks=2)
    rows = [
        # name, N, W, uid, block, hash seed, local count, global count, E
        ("small", 1000, 10, 3, 12345, "a", 4, 5, 100),
        ("one page", 1, 1, 0, 0, "b", 1, 1, 100),
        ("two pages", 2, 2, 1, 7, "c", 2, 2, 100),
        ("five pages (cycle walking)", 5, 3, 2, 999, "d", 3, 5, 10),
        ("full window, full shuffle", 37, 37, 5, 500, "e", 37, 37, 100),
        ("refinedweb", 9_680_000, 100, 255, 4_123_456, "f", 2, 2, 360),
        ("refinedweb last uid", 9_680_000, 100, 65535, 4_123_457, "g", 8, 12, 360),
        ("uids share windows", 1000, 300, 7, 3_000_000, "h", 10, 10, 7200),
        ("2^32 + 1 pages", (1 << 32) + 1, 1 << 20, 1000, 123_456_789, "i", 16, 16, 100),
        ("u64 max", MASK64, MASK64, 65535, MASK64, "j", 8, 8, 1),
        ("epoch boundary before", 50_000, 64, 17, 199, "k", 6, 6, 100),
        ("epoch boundary after", 50_000, 64, 17, 200, "k", 6, 6, 100),
        ("zero hash", 4096, 16, 42, 1, None, 4, 4, 100),
        ("empty draws", 100, 10, 9, 50, "l", 0, 0, 100),
    ]
    cases = []
    for name, n, w, uid, block, hseed, lc, gc, e in rows:
        case = dict(base)
        case.update(name=name, num_pages=n, window_pages=w, epoch_blocks=e, uid=uid, block=block,
                    block_hash=("00" * 32) if hseed is None else _hex_of("block " + hseed),
                    local_count=lc, global_count=gc)
        cases.append(case)
    return cases


def generate():
    doc = {
        "version": 1,
        "spec": "docs/pages.md",
        "generator": "tests/vectors/pages_reference.py generate",
        "window_note": "window lists the first %d pages of the window" % WINDOW_LIMIT,
        "cases": [compute(c) for c in vector_inputs()],
    }
    return doc


def check(path):
    with open(path) as f:
        doc = json.load(f)
    passed = failed = 0
    for case in doc["cases"]:
        got = compute(case)
        bad = [k for k in got if got[k] != case.get(k)]
        if bad:
            failed += 1
            print("FAIL %s: %s" % (case["name"], ", ".join(bad)))
        else:
            passed += 1
    print("%d passed, %d failed" % (passed, failed))
    return failed == 0 and passed > 0


KNOWN_ANSWERS = [
    (b"", "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"),
    (b"abc", "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85"),
]


def selftest():
    ok = True
    for msg, expected in KNOWN_ANSWERS:
        got = blake3_xof(msg, 32).hex()
        if got != expected:
            print("FAIL blake3(%r) = %s, expected %s" % (msg, got, expected))
            ok = False
    try:
        import blake3  # optional: the PyPI package
    except ImportError:
        print("note: PyPI blake3 not installed; checked the built-in BLAKE3 on known answers only")
        return ok
    for length in [0, 1, 63, 64, 65, 127, 128, 129, 500, 1023, 1024]:
        msg = bytes((i * 7 + length) & 0xFF for i in range(length))
        if blake3.blake3(msg).digest(length=300) != blake3_xof(msg, 300):
            print("FAIL built-in BLAKE3 differs from PyPI blake3 at length %d" % length)
            ok = False
    return ok


def main(argv):
    cmd = argv[1] if len(argv) > 1 else ""
    if cmd == "selftest":
        ok = selftest()
        print("selftest", "ok" if ok else "FAILED")
        return 0 if ok else 1
    if cmd == "generate":
        json.dump(generate(), sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    if cmd == "check" and len(argv) == 3:
        return 0 if (selftest() and check(argv[2])) else 1
    if cmd == "compute":
        doc = json.load(sys.stdin)
        json.dump({"cases": [compute(c) for c in doc["cases"]]}, sys.stdout)
        return 0
    if cmd == "xof":
        doc = json.load(sys.stdin)
        out = [blake3_xof(bytes.fromhex(m), doc["bytes"]).hex() for m in doc["messages"]]
        json.dump({"outputs": out}, sys.stdout)
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
