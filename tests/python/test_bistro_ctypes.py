"""Tests of bistro_ctypes (and so of libbistro from Python).

    BISTRO_LIB=target/debug/libbistro.so python3 -m unittest tests/python/test_bistro_ctypes.py

NumPy is optional for the module but these tests use it when it is installed;
with BISTRO_REQUIRE_NUMPY=1 (scripts/test-ffi.sh sets it) a missing NumPy is
a failure, not a skip.
"""
import array
import json
import os
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import bistro_ctypes as bistro  # noqa: E402

try:
    import numpy as np
except ImportError:  # the module itself never needs numpy
    np = None

SEED = bytes([7] * 32)


def need_numpy(test):
    if np is None:
        if os.environ.get("BISTRO_REQUIRE_NUMPY") == "1":
            test.fail("numpy is not installed but BISTRO_REQUIRE_NUMPY=1")
        test.skipTest("numpy is not installed")


def ramp(n, scale):
    return [((i * 37) % 101 - 50) * scale for i in range(n)]


class RoundTrip(unittest.TestCase):
    def test_lists_and_arrays_without_numpy(self):
        hotkey = bistro.public_key_from_seed(SEED)
        a = ramp(6, 0.25)
        b = array.array("f", ramp(64, 0.01))
        residual = array.array("f", bytes(4 * 64))
        with bistro.DeltaWriter(base_revision=bytes([3] * 32), block=77, uid=5,
                                hotkey=hotkey) as w:
            w.add_tensor("a", a, bistro.dense("f32"), shape=(2, 3))
            w.add_tensor("b", b, bistro.top_k(8, "f32"), residual=residual)
            w.add_tensor("c", ramp(40, 0.003), bistro.int8_block(16))
            data, digest = w.finish(seed=SEED)

        with bistro.DeltaReader.from_bytes(data) as r:
            r.verify_signature()
            r.check_finite()
            self.assertEqual(r.digest(), digest)
            self.assertEqual(r.header(), {"base_revision": bytes([3] * 32), "block": 77,
                                          "uid": 5, "hotkey": hotkey})
            infos = r.tensors()
            self.assertEqual([t.name for t in infos], ["a", "b", "c"])
            self.assertEqual(infos[0].shape, (2, 3))
            self.assertEqual((infos[1].encoding, infos[1].dtype, infos[1].k), ("top_k", "f32", 8))
            self.assertEqual((infos[2].encoding, infos[2].block_size), ("int8_block", 16))

            weights = array.array("f", [1.0] * 6)
            r.apply("a", weights, alpha=2.0)
            self.assertEqual(list(weights), [1.0 + 2.0 * x for x in array.array("f", a)])
            decoded = r.decode("b")
            self.assertEqual(sum(1 for x in decoded if x != 0.0), 8)
            for i in range(64):
                # f32 top-k keeps values exactly: kept + residual == input.
                self.assertEqual(decoded[i] + residual[i], b[i])

    def test_numpy_buffers_are_shared_not_copied(self):
        need_numpy(self)
        rng = np.random.default_rng(1)
        delta = rng.standard_normal((32, 16), dtype=np.float32)
        residual = np.zeros_like(delta)
        with bistro.DeltaWriter() as w:
            w.add_tensor("w", delta, bistro.top_k(50, "bf16"), residual=residual)
            data, _ = w.finish()
        self.assertEqual(np.count_nonzero(residual == delta), 32 * 16 - 50)
        r = bistro.DeltaReader.from_bytes(data)
        self.assertEqual(r.tensors()[0].shape, (32, 16))
        weights = np.zeros((32, 16), dtype=np.float32)
        r.apply("w", weights)  # in place, through the numpy buffer
        self.assertEqual(np.count_nonzero(weights), 50)
        np.testing.assert_allclose(weights + residual, delta, rtol=0, atol=np.abs(delta).max() / 128)
        decoded = np.frombuffer(r.decode("w"), dtype=np.float32).reshape(32, 16)
        np.testing.assert_array_equal(decoded, weights)
        r.close()

    def test_example_miner(self):
        need_numpy(self)
        import example_miner

        with tempfile.TemporaryDirectory() as out:
            master, trained, merged, residuals = example_miner.main(out)
            self.assertEqual(len(os.listdir(out)), 1, "only the delta, no temp files")
        for name in master:
            change = trained[name] - master[name]
            got = merged[name] - master[name] + residuals[name]
            np.testing.assert_allclose(got, change, rtol=0, atol=np.abs(change).max() / 100)


class Errors(unittest.TestCase):
    def setUp(self):
        with bistro.DeltaWriter() as w:
            w.add_tensor("t", ramp(12, 0.1), bistro.dense("f32"))
            self.data, _ = w.finish()

    def assertStatus(self, name, fn, *args, **kwargs):
        with self.assertRaises(bistro.BistroError) as caught:
            fn(*args, **kwargs)
        self.assertEqual(caught.exception.name, name, str(caught.exception))
        self.assertTrue(caught.exception.message)
        return caught.exception

    def test_damaged_input(self):
        self.assertStatus("BISTRO_ERR_TRUNCATED", bistro.DeltaReader.from_bytes, self.data[:50])
        self.assertStatus("BISTRO_ERR_CORRUPT", bistro.DeltaReader.from_bytes, self.data[:-1])
        self.assertStatus("BISTRO_ERR_BAD_MAGIC", bistro.DeltaReader.from_bytes, b"x" * 300)
        self.assertStatus("BISTRO_ERR_LIMIT_EXCEEDED", bistro.DeltaReader.from_bytes, self.data,
                          max_total_elements=11)
        r = bistro.DeltaReader.from_bytes(self.data)
        self.assertStatus("BISTRO_ERR_BAD_SIGNATURE", r.verify_signature)

    def test_wrong_sizes_leave_buffers_alone(self):
        r = bistro.DeltaReader.from_bytes(self.data)
        dst = array.array("f", [9.0] * 13)
        e = self.assertStatus("BISTRO_ERR_INVALID_ARGUMENT", r.apply, "t", dst)
        self.assertIn("12 elements", e.message)
        self.assertEqual(list(dst), [9.0] * 13)
        self.assertStatus("BISTRO_ERR_INVALID_ARGUMENT", r.apply, 5, array.array("f", [0.0] * 12))
        with self.assertRaises(KeyError):
            r.apply("missing", dst)

    def test_bad_tensors(self):
        w = bistro.DeltaWriter(hotkey=bistro.public_key_from_seed(SEED))
        self.assertStatus("BISTRO_ERR_INVALID_ARGUMENT", w.add_tensor, "t", ramp(12, 1), shape=(5,))
        self.assertStatus("BISTRO_ERR_NON_FINITE", w.add_tensor, "t", [1.0, float("nan")])
        self.assertStatus("BISTRO_ERR_INVALID_ARGUMENT", w.add_tensor, "t", [1.0], bistro.top_k(2))
        with self.assertRaises(TypeError):
            w.add_tensor("t", [1.0], residual=[0.0])  # a list cannot be updated in place
        if np is not None:
            with self.assertRaises(TypeError):
                w.add_tensor("t", np.zeros(4))  # float64
            with self.assertRaises(ValueError):
                w.add_tensor("t", np.zeros((4, 4), dtype=np.float32)[:, 1])  # not contiguous
        w.add_tensor("t", [1.0])
        self.assertStatus("BISTRO_ERR_INVALID_ARGUMENT", w.add_tensor, "t", [1.0])  # duplicate
        self.assertStatus("BISTRO_ERR_INVALID_ARGUMENT", w.finish, seed=bytes([8] * 32))
        data, _ = w.finish(seed=SEED)  # the writer survived the wrong seed
        self.assertStatus("BISTRO_ERR_INVALID_STATE", w.finish)
        w.close()
        bistro.DeltaReader.from_bytes(data).verify_signature()

    def test_abandoned_file_writer_leaves_nothing(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "delta.bin")
            with bistro.DeltaWriter(path=path) as w:
                w.add_tensor("t", [1.0, 2.0])
                self.assertEqual(len(os.listdir(d)), 1)  # the temp file
            self.assertEqual(os.listdir(d), [])
            with bistro.DeltaWriter(path=path) as w:
                w.add_tensor("t", [1.0, 2.0])
                digest = w.finish()
            self.assertEqual(os.listdir(d), ["delta.bin"])
            self.assertEqual(bistro.DeltaReader.open_file(path).digest(), digest)
            self.assertStatus("BISTRO_ERR_IO", bistro.DeltaReader.open_file,
                              os.path.join(d, "missing"))


class Pages(unittest.TestCase):
    def test_vectors(self):
        with open(os.path.join(REPO, "tests", "vectors", "pages.json"), encoding="utf-8") as f:
            cases = json.load(f)["cases"]
        self.assertGreater(len(cases), 0)
        for c in cases:
            with self.subTest(c["name"]):
                p = bistro.dataset_params(bytes.fromhex(c["dataset_id"]), c["num_pages"],
                                          c["window_pages"], c["epoch_blocks"],
                                          c["reveal_delay_blocks"])
                h = bytes.fromhex(c["block_hash"])
                self.assertEqual(bistro.epoch_of(p, c["block"]), c["epoch"])
                self.assertEqual(bistro.window_pages(p, c["uid"], c["epoch"], len(c["window"])),
                                 c["window"])
                self.assertEqual(bistro.local_pages(p, c["uid"], c["block"], h, c["local_count"]),
                                 c["local"])
                self.assertEqual(bistro.global_pages(p, c["block"], h, c["global_count"]),
                                 c["global"])

    def test_bad_params(self):
        p = bistro.dataset_params(bytes(32), 10, 11, 1, 1)
        with self.assertRaises(bistro.BistroError) as caught:
            bistro.global_pages(p, 0, bytes(32), 1)
        self.assertIn("window_pages", caught.exception.message)


class Weights(unittest.TestCase):
    def test_like_the_python_sdk(self):
        # max-upscaled to 65535, rounded half to even, zeros dropped
        self.assertEqual(bistro.weights_to_u16([0, 1, 2], [1.0, 0.5, 0.0]),
                         ([0, 1], [65535, 32768]))
        self.assertEqual(bistro.weights_to_u16([0, 1, 2], [65535.0, 1.5, 0.5]),
                         ([0, 1], [65535, 2]))
        self.assertEqual(bistro.weights_to_u16([4, 5], [0.0, 0.0]), ([], []))
        self.assertEqual(bistro.weights_to_u16([], []), ([], []))
        path = os.path.join(REPO, "bistro-core", "tests", "data", "chain", "weights_python.json")
        with open(path, encoding="utf-8") as f:
            cases = json.load(f)  # produced by Bittensor's Python SDK
        self.assertGreater(len(cases), 5)
        for c in cases:
            self.assertEqual(bistro.weights_to_u16(c["uids"], c["weights"]),
                             (c["out_uids"], c["out_values"]), c)
        with self.assertRaises(bistro.BistroError) as caught:
            bistro.weights_to_u16([1, 2], [1.0, -1.0])
        self.assertEqual(caught.exception.name, "BISTRO_ERR_INVALID_ARGUMENT")


def py_judge(rule, lm, ld, gm, gd):
    """The scoring rule written again from docs/incentive.md, as another
    runtime's validator would: reason and score."""
    def gains(master, with_delta):
        return [(m - d) / m for m, d in zip(master, with_delta)]

    def mean_se(xs):
        n = len(xs)
        mean = sum(xs) / n
        var = sum((x - mean) ** 2 for x in xs) / (n - 1)
        return mean, (var / n) ** 0.5

    local, local_se = mean_se(gains(lm, ld))
    glob, glob_se = mean_se(gains(gm, gd))
    specific = local - glob
    z = rule["confidence_z"]
    # Own work: confidently better on its window than on random pages
    # (capped at the local gain: harm to random pages never helps).
    bound = min(specific, local) - z * (local_se ** 2 + glob_se ** 2) ** 0.5
    if local <= rule["min_local_gain"]:
        reason = "no_local_gain"
    elif glob < -rule["max_global_harm"]:
        reason = "hurts_global"
    elif bound <= rule["min_specificity"]:
        reason = "not_specific"
    elif glob + z * glob_se <= rule["min_merge_gain"]:
        reason = "not_mergeable"  # own work, confidently no help elsewhere
    else:
        reason = "scored"
    score = min(max(local, 0.0), 1.0) if reason == "scored" else 0.0
    if reason == "scored":
        mergeable = True
    else:
        mergeable = reason == "not_specific" and glob > rule["min_merge_gain"]
    return reason, score, mergeable


class Scoring(unittest.TestCase):
    def test_the_rule_agrees_with_a_reimplementation_of_the_docs(self):
        import random
        rng = random.Random(12)
        rule = bistro.score_rule_default()
        self.assertEqual(rule["confidence_z"], 3.09)
        reasons = set()
        for _ in range(400):
            n_local, n_global = rng.randint(2, 10), rng.randint(2, 10)
            lm = [rng.uniform(3.0, 6.0) for _ in range(n_local)]
            gm = [rng.uniform(3.0, 6.0) for _ in range(n_global)]
            lift = rng.uniform(-0.05, 0.15)
            ld = [m * (1 - lift - rng.gauss(0, 0.02)) for m in lm]
            gd = [m * (1 - rng.uniform(-0.05, 0.03) - rng.gauss(0, 0.01)) for m in gm]
            v = bistro.judge(lm, ld, gm, gd, rule)
            reason, score, mergeable = py_judge(rule, lm, ld, gm, gd)
            self.assertEqual((v.reason, v.mergeable), (reason, mergeable))
            self.assertAlmostEqual(v.score, score, places=12)
            reasons.add(reason)
        # The cases reach every gate but the non-finite one.
        self.assertEqual(reasons, {"scored", "no_local_gain", "hurts_global", "not_specific",
                                   "not_mergeable"})
        v = bistro.judge([4.0, 4.0], [float("nan"), 3.0], [4.0, 4.0], [4.0, 4.0])
        self.assertEqual((v.reason, v.score, v.mergeable), ("non_finite_loss", 0.0, False))
        with self.assertRaises(bistro.BistroError) as caught:
            bistro.judge([4.0], [3.0], [4.0], [4.0], dict(rule, max_global_harm=-1.0))
        self.assertEqual(caught.exception.name, "BISTRO_ERR_INVALID_ARGUMENT")

    def test_averages_and_consensus(self):
        self.assertEqual(bistro.next_average(0.2, 0.6, 0.5), 0.4)
        with self.assertRaises(bistro.BistroError):
            bistro.next_average(0.2, 1.2, 0.5)
        self.assertEqual(bistro.weights_from_averages([0.375, 0.0, 0.125]), [0.75, 0.0, 0.25])
        self.assertEqual(bistro.weights_from_averages([0.0, 0.0]), [0.0, 0.0])
        # 60 % of the stake agree on miner 0; the 10 % validator weighs miner 1.
        c = bistro.yuma_clip([60, 30, 10], [[1, 0], [2, 0], [0, 1]])
        self.assertEqual(c.consensus, [1.0, 0.0])
        self.assertEqual(c.vtrust, [1.0, 1.0, 0.0])
        self.assertEqual(c.clipped, [[1.0, 0.0], [1.0, 0.0], [0.0, 0.0]])
        # Two validators with half the stake each, on different miners: half
        # the stake is enough for a consensus (kappa 0.5 or just under).
        c = bistro.yuma_clip([50, 50], [[1, 0], [0, 1]], kappa=0.5)
        self.assertEqual(c.consensus, [1.0, 1.0])
        c = bistro.yuma_clip([50, 50], [[1, 0], [0, 1]])  # the chain's 32767/65535
        self.assertEqual(c.vtrust, [1.0, 1.0])
        with self.assertRaises(bistro.BistroError) as caught:
            bistro.yuma_clip([1, float("inf")], [[1], [1]])
        self.assertEqual(caught.exception.name, "BISTRO_ERR_NON_FINITE")


if __name__ == "__main__":
    unittest.main()
