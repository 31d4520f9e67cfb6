//! Model throughput: evaluation and training tokens per second for the `tiny`
//! and `150m` presets on this machine's CPU, on batches of the sample corpus;
//! and, when the Python environment of `scripts/setup-libtorch.sh --python`
//! is there, the same forward (and training step) in PyTorch with HF
//! `transformers`' `LlamaForCausalLM` loaded from the same weights, timed in
//! the same run, and the ratio ours / PyTorch.
//!
//! ```text
//! cargo bench -p bistro-core --features torch --bench model
//! ```
//!
//! Environment: `BISTRO_BENCH_PRESETS` (default `tiny,150m`),
//! `BISTRO_HF_PYTHON` (the Python interpreter; default
//! `$BISTRO_CACHE/hf-venv/bin/python`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // not library code: a failure here should stop loudly

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use bistro_core::data::{Batch, PageSource, sample};
use bistro_core::model::{Config, Device, Model, TrainConfig, Trainer};

/// Shapes and repetitions per preset: (eval rows, eval seq, eval reps,
/// train rows, train seq, train steps).
fn plan(preset: &str) -> (usize, usize, usize, usize, usize, usize) {
    match preset {
        "tiny" => (8, 256, 5, 8, 256, 5),
        _ => (4, 256, 2, 2, 256, 2),
    }
}

fn batch(rows: usize, seq_len: usize) -> Batch {
    let source = sample::train().expect("sample corpus (data/sample)");
    // Enough pages to fill every row with real text.
    let mut ids: Vec<u64> = Vec::new();
    let mut batch = source.batch(&[0], seq_len).unwrap();
    let mut next = 0;
    while batch.rows < rows {
        ids.push(next);
        next += 1;
        batch = source.batch(&ids, seq_len).unwrap();
    }
    let mut b = batch.rows_range(0, rows);
    // Every position real, so that both sides count the same tokens.
    b.mask.iter_mut().for_each(|m| *m = 1);
    b
}

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

/// The same measurements in PyTorch: loss under no_grad (HF computes logits
/// and the shifted cross entropy as we do), and AdamW steps with the same
/// hyper-parameters and clipping.
const PYTORCH: &str = r#"
import json, sys, time, torch
from transformers import LlamaForCausalLM
torch.set_num_threads(int(sys.argv[4]))
model = LlamaForCausalLM.from_pretrained(sys.argv[1], dtype=torch.float32, attn_implementation="sdpa")
ev, tr = json.load(open(sys.argv[2])), json.load(open(sys.argv[3]))
def ids(b):
    return torch.tensor(b["tokens"]).view(b["rows"], b["seq_len"])
x = ids(ev)
model.eval()
with torch.no_grad():
    model(input_ids=x, labels=x)
    t = time.perf_counter()
    for _ in range(ev["reps"]):
        model(input_ids=x, labels=x).loss.item()
    eval_s = (time.perf_counter() - t) / ev["reps"]
y = ids(tr)
model.train()
opt = torch.optim.AdamW(model.parameters(), lr=3e-4, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
def step():
    opt.zero_grad(set_to_none=False)
    loss = model(input_ids=y, labels=y).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    return loss.item()
step()
t = time.perf_counter()
for _ in range(tr["reps"]):
    step()
train_s = (time.perf_counter() - t) / tr["reps"]
print(json.dumps({"eval_s": eval_s, "train_s": train_s, "threads": torch.get_num_threads()}))
"#;

fn write_batch(path: &std::path::Path, b: &Batch, reps: usize) {
    let json =
        serde_json::json!({"rows": b.rows, "seq_len": b.seq_len, "tokens": b.tokens, "reps": reps});
    std::fs::write(path, json.to_string()).unwrap();
}

/// Rounds of (ours, PyTorch); each side's best round is reported.
const ROUNDS: usize = 2;

/// Seconds per evaluation and per training step, ours.
fn ours(config: &Config, eval: &Batch, ereps: usize, train: &Batch, tsteps: usize) -> (f64, f64) {
    let model = Model::new(config.clone(), 0, Device::Cpu).unwrap();
    model.loss(eval).unwrap();
    let t = Instant::now();
    for _ in 0..ereps {
        model.loss(eval).unwrap();
    }
    let eval_s = t.elapsed().as_secs_f64() / ereps as f64;
    let config = TrainConfig {
        warmup_steps: 0,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(model, config).unwrap();
    trainer.train_step(train).unwrap();
    let t = Instant::now();
    for _ in 0..tsteps {
        trainer.train_step(train).unwrap();
    }
    (eval_s, t.elapsed().as_secs_f64() / tsteps as f64)
}

/// Seconds per evaluation and per training step, PyTorch.
fn pytorch(
    python: &std::path::Path,
    model_dir: &std::path::Path,
    eval: &std::path::Path,
    train: &std::path::Path,
    threads: i32,
) -> (f64, f64) {
    let out = Command::new(python)
        .arg("-c")
        .arg(PYTORCH)
        .arg(model_dir)
        .arg(eval)
        .arg(train)
        .arg(threads.to_string())
        .env("CUDA_VISIBLE_DEVICES", "")
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    (
        v["eval_s"].as_f64().unwrap(),
        v["train_s"].as_f64().unwrap(),
    )
}

fn main() {
    let presets = std::env::var("BISTRO_BENCH_PRESETS").unwrap_or_else(|_| "tiny,150m".into());
    let threads = tch::get_num_threads();
    let python = python();
    println!(
        "model throughput on the CPU, libtorch {threads} threads{}",
        if python.is_some() {
            ", PyTorch baseline in the same run"
        } else {
            " (no PyTorch baseline: run scripts/setup-libtorch.sh --python)"
        }
    );
    println!(
        "| preset | parameters | what | batch | ours tokens/s | PyTorch tokens/s | ours/PyTorch |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for preset in presets.split(',') {
        let (er, es, ereps, tr_rows, ts, tsteps) = plan(preset);
        let config = Config::preset(preset).unwrap();
        let params = config.parameter_count();
        let eval_batch = batch(er, es);
        let train_batch = batch(tr_rows, ts);

        let dir = tempfile::tempdir().unwrap();
        Model::new(config.clone(), 0, Device::Cpu)
            .unwrap()
            .save_pretrained(dir.path().join("m"))
            .unwrap();
        let (ep, tp) = (dir.path().join("eval.json"), dir.path().join("train.json"));
        write_batch(&ep, &eval_batch, ereps);
        write_batch(&tp, &train_batch, tsteps);
        // The machine is shared: alternate ours and PyTorch and keep each
        // side's best round, so that both see similar load.
        let (mut eval_s, mut train_s) = (f64::MAX, f64::MAX);
        let mut torch: Option<(f64, f64)> = None;
        for _round in 0..ROUNDS {
            let (e, t) = ours(&config, &eval_batch, ereps, &train_batch, tsteps);
            eval_s = eval_s.min(e);
            train_s = train_s.min(t);
            if let Some(py) = &python {
                let (e, t) = pytorch(py, &dir.path().join("m"), &ep, &tp, threads);
                torch = Some(match torch {
                    Some((a, b)) => (a.min(e), b.min(t)),
                    None => (e, t),
                });
            }
        }

        let rows = [
            ("eval (loss, no grad)", er, es, eval_s, torch.map(|t| t.0)),
            (
                "train step (AdamW, clip)",
                tr_rows,
                ts,
                train_s,
                torch.map(|t| t.1),
            ),
        ];
        for (what, r, s, ours, theirs) in rows {
            let tokens = (r * s) as f64;
            let (theirs_tps, ratio) = match theirs {
                Some(t) => (format!("{:.0}", tokens / t), format!("{:.2}", t / ours)),
                None => ("–".into(), "–".into()),
            };
            println!(
                "| {preset} | {:.1} M | {what} | {r}×{s} | {:.0} | {theirs_tps} | {ratio} |",
                params as f64 / 1e6,
                tokens / ours,
            );
        }
    }
}
