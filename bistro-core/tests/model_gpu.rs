//! The model on a CUDA GPU. Each test prints a message and returns when
//! libtorch sees no GPU (a CPU-only libtorch, or no GPU on the machine).
#![cfg(feature = "torch")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // not library code: a failure here should stop loudly

mod model_support;

use bistro_core::codec::{DType, DeltaHeader, DeltaReader, DeltaWriter, Encoding, Limits};
use bistro_core::model::{Device, Model, Precision, TrainConfig, Trainer, delta};
use model_support::*;

const GPU: Device = Device::Cuda(0);

fn gpu_present(test: &str) -> bool {
    if GPU.is_available() {
        return true;
    }
    eprintln!("skipping {test}: no CUDA GPU visible to libtorch (CPU-only layout or no GPU)");
    false
}

#[test]
fn the_same_seed_gives_the_same_weights_on_the_gpu() {
    if !gpu_present("the_same_seed_gives_the_same_weights_on_the_gpu") {
        return;
    }
    let gpu = Model::new(tiny(), 5, GPU).unwrap();
    assert_eq!(gpu.device(), GPU);
    assert_eq!(gpu.revision().unwrap(), tiny_model(5).revision().unwrap());
}

#[test]
fn gpu_loss_matches_the_cpu_in_f32_and_bf16() {
    if !gpu_present("gpu_loss_matches_the_cpu_in_f32_and_bf16") {
        return;
    }
    let batch = text_batch(4, 64);
    let cpu = tiny_model(6).loss(&batch).unwrap();
    let mut gpu = Model::new(tiny(), 6, GPU).unwrap();
    gpu.set_precision(Precision::F32);
    let f32_loss = gpu.loss(&batch).unwrap();
    assert!((f32_loss - cpu).abs() < 1e-3, "{f32_loss} vs {cpu}");
    gpu.set_precision(Precision::Bf16);
    let bf16_loss = gpu.loss(&batch).unwrap();
    assert!((bf16_loss - cpu).abs() < 5e-2, "{bf16_loss} vs {cpu}");
}

#[test]
fn training_on_the_gpu_lowers_the_loss() {
    if !gpu_present("training_on_the_gpu_lowers_the_loss") {
        return;
    }
    let batch = text_batch(4, 64);
    let model = Model::new(tiny(), 7, GPU).unwrap();
    let before = model.loss(&batch).unwrap();
    let config = TrainConfig {
        learning_rate: 3e-3,
        warmup_steps: 2,
        total_steps: 20,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(model, config).unwrap();
    for _ in 0..8 {
        trainer.train_step(&batch).unwrap();
    }
    let after = trainer.model().loss(&batch).unwrap();
    assert!(after < before - 1.5, "{before} -> {after}");
}

#[test]
fn deltas_apply_and_undo_exactly_on_the_gpu() {
    if !gpu_present("deltas_apply_and_undo_exactly_on_the_gpu") {
        return;
    }
    let mut model = Model::new(tiny(), 8, GPU).unwrap();
    let revision = model.revision().unwrap();
    let trained = tiny_model(9);
    let limits = Limits::for_model(tiny().parameter_count());
    let mut writer = DeltaWriter::new(Vec::new(), &DeltaHeader::default(), &limits).unwrap();
    delta::build(
        &mut writer,
        &trained,
        &model,
        |p| Encoding::TopK {
            k: p.numel() / 10 + 1,
            values: DType::BF16,
        },
        None,
    )
    .unwrap();
    let bytes = writer.finish().unwrap().0;
    let reader = DeltaReader::open(&bytes, &limits).unwrap();
    let applied = delta::apply(&mut model, &reader, 1.0).unwrap();
    assert_ne!(model.revision().unwrap(), revision);
    applied.undo(&mut model).unwrap();
    assert_eq!(model.revision().unwrap(), revision);

    // A checkpoint saved from the GPU loads on the CPU unchanged.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gpu.safetensors");
    model.save(&path).unwrap();
    let cpu = Model::load(&path, tiny(), Device::Cpu).unwrap();
    assert_eq!(cpu.revision().unwrap(), revision);
}
