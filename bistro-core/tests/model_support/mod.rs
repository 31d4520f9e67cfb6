//! Helpers shared by the model tests.
#![allow(dead_code)]

use bistro_core::data::Batch;
use bistro_core::model::{Config, Device, Model};

/// English text, used byte-wise as token ids (all below GPT-2's vocabulary).
pub const TEXT: &str = "A shared master model is trained by miners, each on its own window of \
dataset pages; a miner uploads the change it made to its bucket; validators apply each delta \
to the master, measure the loss on the miner's pages and on random pages, and merge what helps.";

/// `TEXT` as token ids.
pub fn text_tokens() -> Vec<u32> {
    TEXT.bytes().map(u32::from).collect()
}

/// `rows` rows of `seq_len` tokens cut from `TEXT` repeated, starting at
/// different offsets so rows differ.
pub fn text_batch(rows: usize, seq_len: usize) -> Batch {
    let text = text_tokens();
    let mut tokens = Vec::with_capacity(rows * seq_len);
    for r in 0..rows {
        for t in 0..seq_len {
            tokens.push(text[(r * 7 + t) % text.len()]);
        }
    }
    Batch {
        rows,
        seq_len,
        tokens,
        mask: vec![1; rows * seq_len],
    }
}

/// The `tiny` preset.
pub fn tiny() -> Config {
    Config::preset("tiny").unwrap()
}

/// One libtorch thread per test: `cargo test` already runs tests on every
/// core, and libtorch's OpenMP workers spin when they oversubscribe a loaded
/// machine (a training step ran 2.3 times slower with 2 threads than with 1
/// on the 2-core CI machine under load). OpenMP's setting belongs to the
/// calling thread, so each test sets it.
pub fn one_thread() {
    bistro_core::model::set_threads(1);
}

/// A tiny model on the CPU.
pub fn tiny_model(seed: u64) -> Model {
    one_thread();
    Model::new(tiny(), seed, Device::Cpu).unwrap()
}

/// The bits of every parameter, in order.
pub fn all_bits(model: &Model) -> Vec<Vec<u32>> {
    model
        .parameters()
        .iter()
        .map(|p| {
            model
                .parameter_values(&p.name)
                .unwrap()
                .iter()
                .map(|v| v.to_bits())
                .collect()
        })
        .collect()
}
