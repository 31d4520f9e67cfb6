//! Training steps: the loss goes down on repeated text; micro-batching does
//! not change the result; the schedule and the settings are honoured.
#![cfg(feature = "torch")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // not library code: a failure here should stop loudly

mod model_support;

use bistro_core::Error;
use bistro_core::model::{TrainConfig, Trainer};
use model_support::*;

fn quick() -> TrainConfig {
    TrainConfig {
        learning_rate: 3e-3,
        min_learning_rate: 3e-4,
        warmup_steps: 2,
        total_steps: 20,
        ..TrainConfig::default()
    }
}

#[test]
fn a_few_steps_on_repeated_text_lower_the_loss() {
    let batch = text_batch(2, 48);
    let mut trainer = Trainer::new(tiny_model(1), quick()).unwrap();
    let before = trainer.model().loss(&batch).unwrap();
    let master = trainer.model().revision().unwrap();
    let mut reports = Vec::new();
    for _ in 0..8 {
        reports.push(trainer.train_step(&batch).unwrap());
    }
    let after = trainer.model().loss(&batch).unwrap();
    eprintln!("loss on the training batch: {before:.3} -> {after:.3} after 8 steps");
    assert!(
        after < before - 1.5,
        "loss went from {before} to {after} only"
    );
    // The first report's loss is the loss before any update.
    assert!((reports[0].loss - before).abs() < 1e-4);
    assert!(
        reports
            .windows(2)
            .all(|w| w[1].loss.is_finite() && w[1].grad_norm > 0.0)
    );
    let schedule = quick().schedule();
    for (step, report) in reports.iter().enumerate() {
        assert_eq!(report.learning_rate, schedule.at(step as u64));
    }
    assert_eq!(trainer.steps(), 8);
    assert_ne!(trainer.model().revision().unwrap(), master);
    // Held-out text from the same source improves too (it is the same text
    // at other offsets), and the optimizer keeps two moments per parameter.
    let other = text_batch(3, 40);
    assert!(trainer.model().loss(&other).unwrap() < before - 1.0);
    assert_eq!(
        trainer.optimizer_bytes(),
        2 * 4 * trainer.model().config().parameter_count()
    );
}

#[test]
fn micro_batches_accumulate_to_the_same_step() {
    let batch = text_batch(4, 32);
    let mut whole = Trainer::new(tiny_model(2), quick()).unwrap();
    let mut split = Trainer::new(
        tiny_model(2),
        TrainConfig {
            micro_batch_rows: Some(1),
            ..quick()
        },
    )
    .unwrap();
    for _ in 0..2 {
        let a = whole.train_step(&batch).unwrap();
        let b = split.train_step(&batch).unwrap();
        assert!((a.loss - b.loss).abs() < 1e-5, "{} vs {}", a.loss, b.loss);
        assert!((a.grad_norm - b.grad_norm).abs() < 1e-4 * a.grad_norm);
    }
    let name = "model.layers.1.mlp.up_proj.weight";
    let (x, y) = (
        whole.model().parameter_values(name).unwrap(),
        split.model().parameter_values(name).unwrap(),
    );
    let max_diff = x
        .iter()
        .zip(&y)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(max_diff < 1e-5, "{max_diff}");
}

#[test]
fn clipping_bounds_the_first_update() {
    // AdamW's first update is lr * g / (|g| + eps) per element, so clipping
    // only shows where |g| is comparable to eps: with a tiny clip the whole
    // gradient is scaled below eps and the update shrinks accordingly.
    let batch = text_batch(2, 32);
    let name = "model.layers.0.self_attn.q_proj.weight";
    let start = tiny_model(3).parameter_values(name).unwrap();
    let mut updates = Vec::new();
    for clip in [0.0, 1e-9] {
        let config = TrainConfig {
            grad_clip: clip,
            weight_decay: 0.0,
            ..quick()
        };
        let mut trainer = Trainer::new(tiny_model(3), config).unwrap();
        let report = trainer.train_step(&batch).unwrap();
        assert!(report.grad_norm > 1e-9);
        let end = trainer.model().parameter_values(name).unwrap();
        let moved: f64 = start
            .iter()
            .zip(&end)
            .map(|(a, b)| f64::from((a - b).abs()))
            .sum();
        updates.push(moved);
    }
    assert!(updates[1] < updates[0] * 0.5, "{updates:?}");
}

#[test]
fn bad_settings_and_batches_are_refused() {
    for config in [
        TrainConfig {
            learning_rate: f64::NAN,
            ..TrainConfig::default()
        },
        TrainConfig {
            beta2: 1.0,
            ..TrainConfig::default()
        },
        TrainConfig {
            eps: 0.0,
            ..TrainConfig::default()
        },
        TrainConfig {
            micro_batch_rows: Some(0),
            ..TrainConfig::default()
        },
    ] {
        assert!(matches!(
            Trainer::new(tiny_model(0), config),
            Err(Error::InvalidArgument(_))
        ));
    }
    let mut trainer = Trainer::new(tiny_model(0), quick()).unwrap();
    let revision = trainer.model().revision().unwrap();
    let mut batch = text_batch(2, 16);
    batch.tokens[0] = 1 << 20;
    assert!(trainer.train_step(&batch).is_err());
    assert_eq!(trainer.model().revision().unwrap(), revision);
    assert_eq!(trainer.steps(), 0);
}
