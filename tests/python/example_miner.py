"""One round of a Python miner, with libbistro through ctypes.

A PyTorch miner does exactly this with its model's parameters; here NumPy
arrays stand in for them so the example runs without PyTorch (where the
comments say `param`, use `param.detach().cpu().contiguous().numpy()`):

  1. which pages to train on: this epoch's window of the miner's uid;
  2. train (simulated: a small step on every parameter);
  3. encode the change as a delta -- top-k with error feedback -- sign it
     with the hotkey's seed, and write it atomically to a file;
  4. check it as a validator would: open, verify, apply to the master.

    BISTRO_LIB=target/release/libbistro.so python3 tests/python/example_miner.py OUT_DIR
"""
import os
import sys

import numpy as np

import bistro_ctypes as bistro


def main(out_dir):
    # The miner's identity: a hotkey file's `secretSeed` (hex, 32 bytes).
    seed = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    hotkey = bistro.public_key_from_seed(seed)
    uid, block = 12, 4_000_123

    # 1. The pages this uid trains on in this epoch (a RefinedWeb-sized set;
    #    epochs as long as a round, 25 blocks, as on Bittensor).
    params = bistro.dataset_params(bytes(range(32)), num_pages=9_680_000, window_pages=100,
                                   epoch_blocks=25, reveal_delay_blocks=2)
    epoch = bistro.epoch_of(params, block)
    pages = bistro.window_pages(params, uid, epoch, count=100)
    print(f"epoch {epoch}: training on pages {pages[:4]}... ({len(pages)} pages)")

    # 2. "Train": the master's weights and the trained ones (in PyTorch:
    #    snapshot each `param` before training, then train).
    rng = np.random.default_rng(0)
    master = {
        "model.embed_tokens.weight": rng.standard_normal((256, 64), dtype=np.float32),
        "model.layers.0.mlp.up_proj.weight": rng.standard_normal((128, 64), dtype=np.float32),
        "model.norm.weight": np.ones(64, dtype=np.float32),
    }
    trained = {k: v + 0.01 * rng.standard_normal(v.shape, dtype=np.float32)
               for k, v in master.items()}
    # Error feedback: one residual per tensor, kept across rounds (zeros at first).
    residuals = {k: np.zeros_like(v) for k, v in master.items()}

    # 3. Encode, sign, write atomically.
    path = os.path.join(out_dir, f"delta-{uid}-{block}.bin")
    master_digest = bytes(32)  # the master revision's digest, from the validator
    with bistro.DeltaWriter(base_revision=master_digest, block=block, uid=uid, hotkey=hotkey,
                            path=path) as writer:
        for name, before in master.items():
            delta = trained[name] - before  # float32, C-contiguous
            if delta.ndim == 2:
                encoding = bistro.top_k(delta.size // 20, "f16")  # keep 5%
            else:
                encoding = bistro.dense("bf16")
            writer.add_tensor(name, delta, encoding, residual=residuals[name])
        digest = writer.finish(seed=seed)
    print(f"wrote {path}: {os.path.getsize(path)} bytes, digest {digest.hex()[:16]}...")

    # 4. The validator's side.
    with bistro.DeltaReader.open_file(path) as reader:
        reader.verify_signature()
        reader.check_finite()
        assert reader.header()["hotkey"] == hotkey and reader.digest() == digest
        merged = {k: v.copy() for k, v in master.items()}
        for t in reader.tensors():
            reader.apply(t.name, merged[t.name], alpha=1.0)
            kept = np.count_nonzero(merged[t.name] != master[t.name])
            print(f"  {t.name}: {t.encoding} {t.dtype} {t.shape}, {kept} values changed")
    return master, trained, merged, residuals


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")
