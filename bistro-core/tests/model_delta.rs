//! The model–codec bridge: build a delta from a trained model and its master,
//! apply it in place, undo it bit for bit, refuse deltas that do not fit.
#![cfg(feature = "torch")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // not library code: a failure here should stop loudly

mod model_support;

use bistro_core::Error;
use bistro_core::codec::{DType, DeltaHeader, DeltaReader, DeltaWriter, Encoding, Limits};
use bistro_core::model::delta::{self, Backup, Residuals};
use bistro_core::model::{Checkpoint, Model, ParamInfo, TrainConfig, Trainer};
use model_support::*;

/// A master (seed 1) and the same model after three training steps.
fn master_and_trained() -> (Model, Model) {
    let mut trainer = Trainer::new(
        tiny_model(1),
        TrainConfig {
            learning_rate: 3e-3,
            warmup_steps: 1,
            ..TrainConfig::default()
        },
    )
    .unwrap();
    let batch = text_batch(2, 32);
    for _ in 0..3 {
        trainer.train_step(&batch).unwrap();
    }
    (tiny_model(1), trainer.into_model())
}

fn limits() -> Limits {
    Limits::for_model(tiny().parameter_count())
}

/// The delta bytes of `trained − base` with one encoding for every tensor.
fn delta_bytes(
    trained: &Model,
    base: &(impl delta::ParameterSource + ?Sized),
    encoding: impl FnMut(&ParamInfo) -> Encoding,
    residuals: Option<&mut Residuals>,
) -> Vec<u8> {
    let header = DeltaHeader {
        base_revision: tiny_model(1).revision().unwrap(),
        ..DeltaHeader::default()
    };
    let mut writer = DeltaWriter::new(Vec::new(), &header, &limits()).unwrap();
    let report = delta::build(&mut writer, trained, base, encoding, residuals).unwrap();
    assert_eq!(report.tensors, trained.parameters().len());
    assert_eq!(report.elements, tiny().parameter_count());
    assert!(report.max_abs_change > 0.0);
    writer.finish().unwrap().0
}

/// A per-tensor encoding choice.
type Choice = fn(&ParamInfo) -> Encoding;

fn top_k(info: &ParamInfo) -> Encoding {
    Encoding::TopK {
        k: (info.numel() / 50).max(1),
        values: DType::F32,
    }
}

#[test]
fn a_dense_f32_delta_reproduces_the_trained_weights() {
    let (mut master, trained) = master_and_trained();
    let bytes = delta_bytes(&trained, &master, |_| Encoding::Dense(DType::F32), None);
    let reader = DeltaReader::open(&bytes, &limits()).unwrap();
    let applied = delta::apply(&mut master, &reader, 1.0).unwrap();
    assert_eq!(applied.tensors(), trained.parameters().len());
    assert_eq!(applied.backup_bytes(), 4 * tiny().parameter_count());
    // master + (trained − master) is trained up to the roundings of the
    // subtraction and the addition: within an ulp of the larger operand.
    let original = tiny_model(1);
    let (mut exact, mut total) = (0usize, 0usize);
    for p in trained.parameters() {
        let want = trained.parameter_values(&p.name).unwrap();
        let got = master.parameter_values(&p.name).unwrap();
        let base = original.parameter_values(&p.name).unwrap();
        for ((a, b), m) in want.iter().zip(&got).zip(&base) {
            let ulp = f32::EPSILON * a.abs().max(m.abs()).max(f32::MIN_POSITIVE);
            assert!((a - b).abs() <= ulp, "{}: {a} vs {b} (master {m})", p.name);
            exact += usize::from(a.to_bits() == b.to_bits());
            total += 1;
        }
    }
    eprintln!("{exact} of {total} elements bit-exact after master + (trained - master)");
    assert!(exact * 2 > total, "{exact} of {total} exact");
    let batch = text_batch(2, 32);
    let (a, b) = (master.loss(&batch).unwrap(), trained.loss(&batch).unwrap());
    assert!((a - b).abs() < 1e-4, "{a} vs {b}");
}

#[test]
fn building_against_the_master_file_gives_the_same_delta() {
    let (master, trained) = master_and_trained();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("master.safetensors");
    master.save(&path).unwrap();
    let checkpoint = Checkpoint::open(&path, &tiny()).unwrap();
    assert_eq!(checkpoint.revision().unwrap(), master.revision().unwrap());
    let from_model = delta_bytes(&trained, &master, top_k, None);
    let from_file = delta_bytes(&trained, &checkpoint, top_k, None);
    assert_eq!(from_model, from_file);

    // A base with other parameters is refused.
    let mut other = tiny();
    other.num_hidden_layers = 1;
    let small = Model::new(other, 1, bistro_core::model::Device::Cpu).unwrap();
    let mut writer = DeltaWriter::new(Vec::new(), &DeltaHeader::default(), &limits()).unwrap();
    let err = delta::build(&mut writer, &trained, &small, top_k, None).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
}

#[test]
fn apply_then_undo_restores_the_exact_bits_for_every_encoding() {
    let (_, trained) = master_and_trained();
    let encodings: [(&str, Choice); 4] = [
        ("dense f32", |_| Encoding::Dense(DType::F32)),
        ("dense bf16", |_| Encoding::Dense(DType::BF16)),
        ("top-k", top_k),
        ("int8 block", |_| Encoding::Int8Block { block_size: 64 }),
    ];
    for (label, encoding) in encodings {
        let mut master = tiny_model(1);
        let revision = master.revision().unwrap();
        let bits = all_bits(&master);
        let bytes = delta_bytes(&trained, &master, encoding, None);
        let reader = DeltaReader::open(&bytes, &limits()).unwrap();
        for alpha in [1.0f32, 0.37] {
            let applied = delta::apply(&mut master, &reader, alpha).unwrap();
            assert_ne!(master.revision().unwrap(), revision, "{label}");
            applied.undo(&mut master).unwrap();
            assert_eq!(
                master.revision().unwrap(),
                revision,
                "{label} alpha {alpha}"
            );
        }
        assert_eq!(all_bits(&master), bits, "{label}");
    }
}

#[test]
fn sparse_backups_hold_only_the_touched_values() {
    let (mut master, trained) = master_and_trained();
    let bytes = delta_bytes(&trained, &master, top_k, None);
    let reader = DeltaReader::open(&bytes, &limits()).unwrap();
    let kept: u64 = trained
        .parameters()
        .iter()
        .map(|p| (p.numel() / 50).max(1))
        .sum();
    let before = master
        .parameter_values("model.embed_tokens.weight")
        .unwrap();
    let applied = delta::apply(&mut master, &reader, 1.0).unwrap();
    assert_eq!(applied.backup_bytes(), 8 * kept);
    let after = master
        .parameter_values("model.embed_tokens.weight")
        .unwrap();
    let changed = before.iter().zip(&after).filter(|(a, b)| a != b).count() as u64;
    assert!(changed > 0 && changed <= 50257 * 64 / 50, "{changed}");
    applied.undo(&mut master).unwrap();
    assert_eq!(
        master
            .parameter_values("model.embed_tokens.weight")
            .unwrap(),
        before
    );
}

#[test]
fn undo_can_read_dense_tensors_back_from_the_master_file() {
    let (master, trained) = master_and_trained();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("master.safetensors");
    master.save(&path).unwrap();
    let checkpoint = Checkpoint::open(&path, &tiny()).unwrap();
    let mut model = Model::load(&path, tiny(), bistro_core::model::Device::Cpu).unwrap();
    let revision = model.revision().unwrap();

    let bytes = delta_bytes(&trained, &master, |_| Encoding::Dense(DType::F16), None);
    let reader = DeltaReader::open(&bytes, &limits()).unwrap();
    let applied =
        delta::apply_with_backup(&mut model, &reader, 1.0, Backup::Checkpoint(&checkpoint))
            .unwrap();
    assert_eq!(applied.backup_bytes(), 0);
    assert_ne!(model.revision().unwrap(), revision);
    applied.undo(&mut model).unwrap();
    assert_eq!(model.revision().unwrap(), revision);

    // A model that no longer equals the file cannot use it as its backup,
    // and is left as it was.
    let changed = delta::apply(&mut model, &reader, 1.0).unwrap();
    let moved = model.revision().unwrap();
    let err = delta::apply_with_backup(&mut model, &reader, 1.0, Backup::Checkpoint(&checkpoint))
        .unwrap_err();
    assert!(err.to_string().contains("differs from"), "{err}");
    assert_eq!(model.revision().unwrap(), moved);
    changed.undo(&mut model).unwrap();
    assert_eq!(model.revision().unwrap(), revision);
}

#[test]
fn a_delta_that_does_not_fit_changes_nothing() {
    let mut master = tiny_model(1);
    let revision = master.revision().unwrap();
    let n = 64usize;
    let ones = vec![1.0f32; 50257 * 64];
    let write = |tensors: &[(&str, Vec<u64>)]| {
        let mut writer = DeltaWriter::new(Vec::new(), &DeltaHeader::default(), &limits()).unwrap();
        for (name, shape) in tensors {
            let count = shape.iter().product::<u64>() as usize;
            writer
                .add_tensor(
                    name,
                    shape,
                    &ones[..count],
                    Encoding::Dense(DType::F32),
                    None,
                )
                .unwrap();
        }
        writer.finish().unwrap().0
    };
    // Valid tensors come first, so a lazy check would already have changed them.
    let cases = [
        (
            write(&[
                ("model.norm.weight", vec![n as u64]),
                ("model.embed_tokens.weight", vec![50257, 64]),
                ("model.layers.7.mlp.up_proj.weight", vec![176, 64]),
            ]),
            "model.layers.7.mlp.up_proj.weight",
            "not a parameter",
        ),
        (
            write(&[
                ("model.norm.weight", vec![n as u64]),
                ("model.layers.0.mlp.up_proj.weight", vec![64, 176]),
            ]),
            "model.layers.0.mlp.up_proj.weight",
            "shape [64, 176]",
        ),
        (
            write(&[
                ("model.norm.weight", vec![n as u64]),
                ("lm_head.weight", vec![50257, 64]),
            ]),
            "lm_head.weight",
            "not a parameter",
        ),
    ];
    for (bytes, name, reason) in cases {
        let reader = DeltaReader::open(&bytes, &limits()).unwrap();
        match delta::apply(&mut master, &reader, 1.0) {
            Err(Error::Corrupt {
                input,
                location,
                reason: r,
            }) => {
                assert_eq!(input, "delta");
                assert_eq!(location, name);
                assert!(r.contains(reason), "{r}");
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
        assert_eq!(master.revision().unwrap(), revision);
    }
    let ok = write(&[("model.norm.weight", vec![n as u64])]);
    let reader = DeltaReader::open(&ok, &limits()).unwrap();
    assert!(matches!(
        delta::apply(&mut master, &reader, f32::NAN),
        Err(Error::InvalidArgument(_))
    ));
    assert_eq!(master.revision().unwrap(), revision);
    let applied = delta::apply(&mut master, &reader, 1.0).unwrap();
    assert_eq!(applied.tensors(), 1);
    let norm = master.parameter_values("model.norm.weight").unwrap();
    assert!(norm.iter().all(|&g| g == 2.0));
    applied.undo(&mut master).unwrap();
    assert_eq!(master.revision().unwrap(), revision);
}

#[test]
fn residuals_carry_what_a_lossy_encoding_left_out() {
    let (master, trained) = master_and_trained();
    let mut residuals = Residuals::new();
    let bytes = delta_bytes(&trained, &master, top_k, Some(&mut residuals));
    assert_eq!(residuals.bytes(), 4 * tiny().parameter_count());
    let reader = DeltaReader::open(&bytes, &limits()).unwrap();
    let name = "model.layers.1.self_attn.v_proj.weight";
    let decoded = reader.tensor(name).unwrap().decode().unwrap();
    let residual = residuals.get(name).unwrap();
    let want: Vec<f32> = trained
        .parameter_values(name)
        .unwrap()
        .iter()
        .zip(master.parameter_values(name).unwrap())
        .map(|(t, m)| t - m)
        .collect();
    for ((d, r), w) in decoded.iter().zip(residual).zip(&want) {
        // Top-k keeps a value or leaves all of it in the residual.
        assert!(*d == 0.0 || *r == 0.0);
        assert!((d + r - w).abs() <= 1e-7, "{d} + {r} vs {w}");
    }
    // The next delta re-offers what was left out.
    let again = delta_bytes(&trained, &master, top_k, Some(&mut residuals));
    assert_ne!(again, bytes);
}
