//! Trains the `tiny` preset on the sample corpus (Jane Austen, GPT-2 tokens)
//! for a few dozen steps of 16 × 128 tokens on the CPU (about a second each)
//! and prints the training and held-out loss as it goes; then builds deltas
//! against the initial master (dense bf16 and top-5%), applies each to the
//! master, and undoes it.
//!
//! ```text
//! scripts/setup-libtorch.sh
//! cargo run -p bistro-core --features torch --example train_tiny [steps] [device]
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // not library code: a failure here should stop loudly

use std::time::Instant;

use bistro_core::codec::{DType, DeltaHeader, DeltaReader, DeltaWriter, Encoding, Limits};
use bistro_core::data::{PageSource, sample};
use bistro_core::model::{Config, Device, Model, ParamInfo, TrainConfig, Trainer, delta};
use clap::Parser;

/// Trains the tiny preset on the sample corpus, then builds, applies and
/// undoes deltas against the initial master.
#[derive(Parser, Debug)]
struct Cli {
    /// Training steps
    #[arg(value_name = "STEPS", default_value_t = 30)]
    steps: u64,
    /// cpu, cuda, cuda:N or mps
    #[arg(value_name = "DEVICE", default_value = "cpu", value_parser = device)]
    device: Device,
}

fn device(name: &str) -> Result<Device, String> {
    Device::parse(name).map_err(|e| match e {
        bistro_core::Error::InvalidArgument(message) => message,
        other => other.to_string(),
    })
}

/// How each parameter of a delta is encoded.
type EncodingChoice = fn(&ParamInfo) -> Encoding;

fn main() -> bistro_core::Result<()> {
    let Cli { steps, device } = Cli::parse();

    let train = sample::train()?;
    let heldout = sample::heldout()?;
    let seq_len = 128;
    let eval = heldout.batch(&[0, 1], seq_len)?;
    let config = Config::preset("tiny")?;
    let master = Model::new(config.clone(), 0, device)?;
    println!(
        "tiny: {} parameters on {device}, master revision {}",
        config.parameter_count(),
        master.revision()?.short()
    );
    let start_loss = master.loss(&eval)?;
    println!("held-out loss before training: {start_loss:.3}");

    let settings = TrainConfig {
        learning_rate: 3e-3,
        min_learning_rate: 3e-4,
        warmup_steps: 5,
        total_steps: steps,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(Model::new(config.clone(), 0, device)?, settings)?;
    let started = Instant::now();
    let pages = train.num_pages();
    for step in 0..steps {
        let ids: Vec<u64> = (0..4).map(|i| (step * 4 + i) % pages).collect();
        let batch = train.batch(&ids, seq_len)?.rows_range(0, 16);
        let report = trainer.train_step(&batch)?;
        if step % 10 == 0 || step + 1 == steps {
            println!(
                "step {step:>4}  train loss {:.3}  lr {:.2e}  grad norm {:.2}  ({:.1} s)",
                report.loss,
                report.learning_rate,
                report.grad_norm,
                started.elapsed().as_secs_f64()
            );
        }
    }
    let trained = trainer.into_model();
    println!(
        "held-out loss after {steps} steps: {:.3} (was {start_loss:.3})",
        trained.loss(&eval)?
    );

    // The miner's delta against the master, and the validator's apply/undo.
    let limits = Limits::for_model(config.parameter_count());
    let header = DeltaHeader {
        base_revision: master.revision()?,
        ..DeltaHeader::default()
    };
    let mut validator_master = master;
    let revision = validator_master.revision()?;
    let encodings: [(&str, EncodingChoice); 2] = [
        ("dense bf16", |_| Encoding::Dense(DType::BF16)),
        ("top-5% bf16", |p| Encoding::TopK {
            k: (p.numel() / 20).max(1),
            values: DType::BF16,
        }),
    ];
    for (label, encoding) in encodings {
        let mut writer = DeltaWriter::new(Vec::new(), &header, &limits)?;
        delta::build(&mut writer, &trained, &validator_master, encoding, None)?;
        let (bytes, digest) = writer.finish()?;
        let reader = DeltaReader::open(&bytes, &limits)?;
        let applied = delta::apply(&mut validator_master, &reader, 1.0)?;
        println!(
            "{label} delta {} ({} KiB): held-out loss with it applied {:.3}; undo keeps {} KiB",
            digest.short(),
            bytes.len() / 1024,
            validator_master.loss(&eval)?,
            applied.backup_bytes() / 1024
        );
        applied.undo(&mut validator_master)?;
        if validator_master.revision()? != revision {
            return Err(bistro_core::Error::Model(
                "undo did not restore the master".into(),
            ));
        }
    }
    println!("undone: master revision {} again", revision.short());
    Ok(())
}
