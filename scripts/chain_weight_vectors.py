"""Regenerates bistro-core/tests/data/chain/weights_python.json.

Runs Bittensor's own Python SDK (pip install bittensor numpy) on a fixed set of
float32 weight vectors and records what it would put on chain, so the Rust
conversion (`bistro_core::chain::weights::to_u16`) can be checked against it:

    python3 scripts/chain_weight_vectors.py > bistro-core/tests/data/chain/weights_python.json
"""

import json
import struct

import numpy as np
from bittensor.intents.weights import normalize


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


CASES = [
    ([0, 1], [1.0, 0.5]),  # 32767.5: a tie, rounds to even
    ([0, 1, 2], [2.0, 1.0, 0.0]),  # a zero is dropped
    ([5, 3, 9], [0.1, 0.2, 0.3]),
    ([0, 1, 2, 3], [0, 0, 0, 0]),  # all zero: nothing to set
    ([7], [3.5]),
    ([0, 1], [1.0, 1e-6]),  # rounds to zero: dropped
    ([0, 1], [1.0, 7.62939453125e-06]),
    ([0, 1, 2], [65535.0, 1.5, 0.5]),  # 1.5 and 0.5: ties
    ([10, 11, 12, 13], [0.25, 0.5, 0.75, 1.0]),
    ([0, 1, 2], [1e30, 1e25, 1.0]),
    ([0, 1, 2], [1e-30, 5e-31, 1e-45]),
    ([], []),
]


def main():
    rng = np.random.default_rng(7)
    cases = list(CASES)
    for n in (5, 17, 64):
        w = [f32(float(x)) for x in rng.random(n)]
        w[rng.integers(n)] = 0.0
        cases.append((list(range(n)), w))
    out = []
    for uids, weights in cases:
        weights = [f32(x) for x in weights]
        got_uids, got_values = normalize(uids, weights)
        # Exact float32 bit patterns too: JSON readers need not parse
        # decimals to the nearest float.
        bits = [struct.unpack("<I", struct.pack("<f", w))[0] for w in weights]
        out.append(
            {
                "uids": uids,
                "weights": weights,
                "weights_f32_bits": bits,
                "out_uids": got_uids,
                "out_values": got_values,
            }
        )
    print(json.dumps(out, separators=(",", ":")).replace("},{", "},\n{"))


if __name__ == "__main__":
    main()
