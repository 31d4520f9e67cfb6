//! Compatibility with HF `transformers` and the documented formulas, checked
//! against Python: a NumPy re-implementation of the initialisation and the
//! revision (docs/model.md), and `LlamaForCausalLM` loading bistro's
//! checkpoints and writing ones bistro loads.
//!
//! Needs the Python environment `scripts/setup-libtorch.sh --python` builds
//! (`$BISTRO_CACHE/hf-venv`, or the interpreter named by `BISTRO_HF_PYTHON`);
//! each test prints a message and returns when it is absent.
#![cfg(feature = "torch")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // not library code: a failure here should stop loudly

mod model_support;

use std::path::{Path, PathBuf};
use std::process::Command;

use bistro_core::data::Batch;
use bistro_core::model::{Device, Model};
use model_support::*;

fn python() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("BISTRO_HF_PYTHON") {
        return Some(PathBuf::from(p));
    }
    let cache = std::env::var_os("BISTRO_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/bistro")))?;
    let p = cache.join("hf-venv/bin/python");
    p.exists().then_some(p)
}

/// Runs `script` with `args`; returns its stdout. `None` (with a message)
/// when there is no Python environment.
fn run_python(test: &str, script: &str, args: &[&Path]) -> Option<String> {
    let Some(python) = python() else {
        // The test command provisions the environment and sets this, so
        // there the tests run or fail; they never skip.
        if std::env::var_os("BISTRO_REQUIRE_HF").is_some() {
            panic!(
                "{test}: BISTRO_REQUIRE_HF is set but there is no Python with torch/transformers"
            );
        }
        eprintln!(
            "skipping {test}: no Python with torch/transformers (run scripts/setup-libtorch.sh \
             --python, or set BISTRO_HF_PYTHON)"
        );
        return None;
    };
    let out = Command::new(&python)
        .arg("-c")
        .arg(script)
        .args(args)
        .env("CUDA_VISIBLE_DEVICES", "")
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "python failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8(out.stdout).unwrap())
}

/// The documented revision stream, in Python (docs/model.md).
const REVISION_PY: &str = r#"
import blake3, struct
def revision(t):
    h = blake3.blake3(b"bistro.model.revision.v1" + struct.pack("<Q", len(t)))
    for name in sorted(t, key=lambda n: n.encode()):
        a = t[name].astype("<f4")
        h.update(struct.pack("<Q", len(name.encode())) + name.encode())
        h.update(struct.pack("<Q", 3) + b"F32" + struct.pack("<Q", a.ndim))
        h.update(b"".join(struct.pack("<Q", d) for d in a.shape))
        h.update(struct.pack("<Q", a.nbytes) + a.tobytes())
    return h.hexdigest()
"#;

const INIT_PY: &str = r#"
import json, math, struct, sys
import numpy as np, blake3
cfg = json.load(open(sys.argv[1]))
seed = int(sys.argv[2])
G = np.uint64(0x9E3779B97F4A7C15)
M32 = np.uint64(0xFFFFFFFF)

def mix(z):
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))

def draw(name, shape, std):
    digest = blake3.blake3(b"bistro.model.init.v1" + struct.pack("<Q", seed) + name.encode()).digest()
    key = np.uint64(int.from_bytes(digest[:8], "little"))
    i = np.arange(int(np.prod(shape)), dtype=np.uint64)
    with np.errstate(over="ignore"):
        a = mix(key + (np.uint64(2) * i + np.uint64(1)) * G)
        b = mix(key + (np.uint64(2) * i + np.uint64(2)) * G)
    s = (a & M32) + (a >> np.uint64(32)) + (b & M32) + (b >> np.uint64(32))
    centered = s.astype(np.int64) - (1 << 33)
    scale = std * 1.7320508075688772 * (1.0 / 4294967296.0)
    return (centered.astype(np.float64) * scale).astype(np.float32).reshape(shape)

H, V, L = cfg["hidden_size"], cfg["vocab_size"], cfg["num_hidden_layers"]
heads, kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
d = cfg.get("head_dim") or H // heads
I, r = cfg["intermediate_size"], cfg["initializer_range"]
out_std = r / math.sqrt(2.0 * L)
t = {"model.embed_tokens.weight": draw("model.embed_tokens.weight", (V, H), r),
     "model.norm.weight": np.ones(H, np.float32)}
for l in range(L):
    p = f"model.layers.{l}."
    for n in ["input_layernorm", "post_attention_layernorm"]:
        t[p + n + ".weight"] = np.ones(H, np.float32)
    for n, shape, std in [("self_attn.q_proj", (heads * d, H), r), ("self_attn.k_proj", (kv * d, H), r),
                          ("self_attn.v_proj", (kv * d, H), r), ("self_attn.o_proj", (H, heads * d), out_std),
                          ("mlp.gate_proj", (I, H), r), ("mlp.up_proj", (I, H), r), ("mlp.down_proj", (H, I), out_std)]:
        t[p + n + ".weight"] = draw(p + n + ".weight", shape, std)
if not cfg["tie_word_embeddings"]:
    t["lm_head.weight"] = draw("lm_head.weight", (V, H), r)
print(revision(t))
"#;

#[test]
fn a_python_reimplementation_of_the_documented_init_gives_the_same_revision() {
    let dir = tempfile::tempdir().unwrap();
    let mut untied = tiny();
    untied.tie_word_embeddings = false;
    for (label, config, seed) in [("tied", tiny(), 42u64), ("untied", untied, 3)] {
        let path = dir.path().join(format!("{label}.json"));
        config.write_hf_json(&path).unwrap();
        let seed_arg = PathBuf::from(seed.to_string());
        let script = format!("{REVISION_PY}\n{INIT_PY}");
        let Some(out) = run_python("init oracle", &script, &[&path, &seed_arg]) else {
            return;
        };
        let rust = Model::new(config, seed, Device::Cpu).unwrap();
        assert_eq!(out.trim(), rust.revision().unwrap().to_hex(), "{label}");
    }
}

/// A padded batch of text, and its labels in HF form (-100 at padding).
fn padded_batch() -> Batch {
    let text = text_tokens();
    Batch::pack([&text[..40], &text[50..75], &text[80..112]], 32, 50256).unwrap()
}

/// Writes `batch` as `dir/batch.json`, the form the Python scripts read.
fn write_batch(batch: &Batch, dir: &Path) -> PathBuf {
    let path = dir.join("batch.json");
    let json = serde_json::json!({"rows": batch.rows, "seq_len": batch.seq_len,
                                  "tokens": batch.tokens, "mask": batch.mask});
    std::fs::write(&path, json.to_string()).unwrap();
    path
}

const HF_READS_BISTRO_PY: &str = r#"
import json, sys, numpy as np, torch
from transformers import LlamaForCausalLM
model = LlamaForCausalLM.from_pretrained(sys.argv[1], dtype=torch.float32).eval()
batch = json.load(open(sys.argv[2]))
ids = torch.tensor(batch["tokens"]).view(batch["rows"], batch["seq_len"])
mask = torch.tensor(batch["mask"]).view(batch["rows"], batch["seq_len"])
labels = ids.masked_fill(mask == 0, -100)
with torch.no_grad():
    out = model(input_ids=ids, labels=labels)
out.logits.float().numpy().astype("<f4").tofile(sys.argv[3])
print(json.dumps({"loss": out.loss.item(), "tied": model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()}))
"#;

#[test]
fn transformers_loads_a_bistro_checkpoint_and_computes_the_same_logits() {
    let dir = tempfile::tempdir().unwrap();
    let mut untied = tiny();
    untied.tie_word_embeddings = false;
    for (label, config) in [("tied", tiny()), ("untied", untied)] {
        let model = Model::new(config.clone(), 12, Device::Cpu).unwrap();
        let model_dir = dir.path().join(label);
        model.save_pretrained(&model_dir).unwrap();
        let batch = padded_batch();
        let batch_path = write_batch(&batch, dir.path());
        let logits_path = dir.path().join("logits.f32");
        let Some(out) = run_python(
            "transformers reads bistro",
            HF_READS_BISTRO_PY,
            &[&model_dir, &batch_path, &logits_path],
        ) else {
            return;
        };
        let reply: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(reply["tied"], config.tie_word_embeddings, "{label}");
        let hf_loss = reply["loss"].as_f64().unwrap();
        let loss = model.loss(&batch).unwrap();
        assert!(
            (hf_loss - loss).abs() < 1e-5,
            "{label}: HF {hf_loss} vs {loss}"
        );

        let bytes = std::fs::read(&logits_path).unwrap();
        let hf: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        let ids: Vec<i64> = batch.tokens.iter().map(|&t| i64::from(t)).collect();
        let tokens = tch::Tensor::from_slice(&ids).view([batch.rows as i64, 32]);
        let ours: Vec<f32> =
            Vec::try_from(tch::no_grad(|| model.logits(&tokens).unwrap()).flatten(0, -1)).unwrap();
        assert_eq!(hf.len(), ours.len());
        let max_diff = hf
            .iter()
            .zip(&ours)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(max_diff < 1e-4, "{label}: logits differ by {max_diff}");
    }
}

const HF_READS_FOLDER_PY: &str = r#"
import json, sys, torch
from transformers import AutoModelForCausalLM, GenerationConfig
model = AutoModelForCausalLM.from_pretrained(sys.argv[1], dtype=torch.float32).eval()
batch = json.load(open(sys.argv[2]))
ids = torch.tensor(batch["tokens"]).view(batch["rows"], batch["seq_len"])
mask = torch.tensor(batch["mask"]).view(batch["rows"], batch["seq_len"])
with torch.no_grad():
    loss = model(input_ids=ids, labels=ids.masked_fill(mask == 0, -100)).loss.item()
generation = GenerationConfig.from_pretrained(sys.argv[1])
print(json.dumps({"loss": loss, "class": type(model).__name__, "eos": generation.eos_token_id}))
"#;

/// A master as a validator publishes it — its folder in the bucket, not a
/// copy made for the test — loads with `AutoModelForCausalLM.from_pretrained`.
#[test]
fn transformers_loads_a_published_master_folder_as_it_is() {
    use bistro_core::node::master::publish_model;
    use bistro_core::storage::LocalBucket;
    let dir = tempfile::tempdir().unwrap();
    let bucket = LocalBucket::create(dir.path().join("bucket")).unwrap();
    let model = Model::new(tiny(), 5, Device::Cpu).unwrap();
    let master = publish_model(&model, &bucket, &dir.path().join("cache"), 7).unwrap();
    let folder = dir
        .path()
        .join("bucket/master")
        .join(master.revision().to_hex());
    let batch = padded_batch();
    let batch_path = write_batch(&batch, dir.path());
    let Some(out) = run_python(
        "transformers loads a published master",
        HF_READS_FOLDER_PY,
        &[&folder, &batch_path],
    ) else {
        return;
    };
    let reply: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(reply["class"], "LlamaForCausalLM");
    assert_eq!(reply["eos"], 50256);
    let hf_loss = reply["loss"].as_f64().unwrap();
    let loss = model.loss(&batch).unwrap();
    assert!((hf_loss - loss).abs() < 1e-5, "HF {hf_loss} vs {loss}");
}

const BISTRO_READS_HF_PY: &str = r#"
import json, sys, numpy as np, torch
from transformers import LlamaConfig, LlamaForCausalLM
from safetensors.numpy import load_file
torch.manual_seed(0)
config = LlamaConfig(vocab_size=300, hidden_size=48, intermediate_size=96, num_hidden_layers=3,
                     num_attention_heads=6, num_key_value_heads=2, max_position_embeddings=64,
                     rms_norm_eps=1e-6, rope_theta=500000.0, tie_word_embeddings=False)
model = LlamaForCausalLM(config).eval()
with torch.no_grad():
    for p in model.parameters():
        p.add_(torch.randn_like(p) * 0.05)  # norms away from 1, so their use is tested
model.save_pretrained(sys.argv[1])
batch = json.load(open(sys.argv[2]))
ids = torch.tensor(batch["tokens"]).view(batch["rows"], batch["seq_len"])
mask = torch.tensor(batch["mask"]).view(batch["rows"], batch["seq_len"])
with torch.no_grad():
    loss = model(input_ids=ids, labels=ids.masked_fill(mask == 0, -100)).loss.item()
print(json.dumps({"loss": loss, "revision": revision(load_file(sys.argv[1] + "/model.safetensors"))}))
"#;

#[test]
fn bistro_loads_a_transformers_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let model_dir = dir.path().join("hf");
    let text = text_tokens();
    let batch = Batch::pack([&text[..30], &text[40..60]], 24, 0).unwrap();
    let batch_path = write_batch(&batch, dir.path());
    let script = format!("{REVISION_PY}\n{BISTRO_READS_HF_PY}");
    let Some(out) = run_python(
        "bistro reads transformers",
        &script,
        &[&model_dir, &batch_path],
    ) else {
        return;
    };
    let reply: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let model = Model::from_pretrained(&model_dir, Device::Cpu).unwrap();
    let config = model.config();
    assert_eq!(config.kv_heads(), 2);
    assert_eq!(config.rope_base(), 500_000.0);
    assert!(!config.tie_word_embeddings);
    assert_eq!(
        model.revision().unwrap().to_hex(),
        reply["revision"].as_str().unwrap()
    );
    let hf_loss = reply["loss"].as_f64().unwrap();
    let loss = model.loss(&batch).unwrap();
    assert!((hf_loss - loss).abs() < 1e-5, "HF {hf_loss} vs {loss}");
}
