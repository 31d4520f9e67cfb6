//! Saving and loading safetensors checkpoints, and every way a checkpoint
//! can be wrong.
#![cfg(feature = "torch")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // not library code: a failure here should stop loudly

mod model_support;

use std::path::Path;

use bistro_core::Error;
use bistro_core::model::{Config, Device, Model};
use model_support::*;

/// The header length, JSON header and data section of a safetensors file.
fn split(bytes: &[u8]) -> (serde_json::Value, Vec<u8>) {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    (header, bytes[8 + n..].to_vec())
}

/// A safetensors file from a JSON header and a data section.
fn join(header: &serde_json::Value, data: &[u8]) -> Vec<u8> {
    let json = serde_json::to_vec(header).unwrap();
    let mut out = (json.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&json);
    out.extend_from_slice(data);
    out
}

fn load(path: &Path, config: Config) -> Result<Model, Error> {
    Model::load(path, config, Device::Cpu)
}

#[test]
fn save_then_load_keeps_the_revision_and_the_loss() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("master.safetensors");
    let model = tiny_model(11);
    model.save(&path).unwrap();
    let loaded = load(&path, tiny()).unwrap();
    assert_eq!(loaded.revision().unwrap(), model.revision().unwrap());
    assert_eq!(all_bits(&loaded), all_bits(&model));
    let batch = text_batch(2, 32);
    assert_eq!(loaded.loss(&batch).unwrap(), model.loss(&batch).unwrap());

    // Saving again over the file writes the same bytes and leaves no temporary file.
    let first = std::fs::read(&path).unwrap();
    loaded.save(&path).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), first);
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(names.len(), 1);

    // The header: HF metadata, f32, no lm_head when tied, 8-byte aligned data.
    let n = u64::from_le_bytes(first[..8].try_into().unwrap());
    assert_eq!(n % 8, 0);
    let (header, _) = split(&first);
    assert_eq!(header["__metadata__"]["format"], "pt");
    assert_eq!(header["model.norm.weight"]["dtype"], "F32");
    assert!(header.get("lm_head.weight").is_none());
}

#[test]
fn pretrained_directories_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = tiny();
    config.tie_word_embeddings = false;
    let model = Model::new(config.clone(), 2, Device::Cpu).unwrap();
    model.save_pretrained(dir.path().join("m")).unwrap();
    let loaded = Model::from_pretrained(dir.path().join("m"), Device::Cpu).unwrap();
    assert_eq!(loaded.config(), &config);
    assert_eq!(loaded.revision().unwrap(), model.revision().unwrap());
}

#[test]
fn truncated_checkpoints_are_reported_as_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    tiny_model(1).save(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let header_end = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let cut_path = dir.path().join("cut.safetensors");
    for cut in [
        0,
        5,
        8,
        header_end / 2,
        header_end,
        header_end + 100,
        bytes.len() - 1,
    ] {
        std::fs::write(&cut_path, &bytes[..cut]).unwrap();
        match load(&cut_path, tiny()) {
            Err(Error::Truncated { input, .. }) => assert_eq!(input, "checkpoint"),
            other => panic!("cut at {cut}: expected Truncated, got {other:?}"),
        }
    }
}

#[test]
fn checkpoints_for_another_config_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    tiny_model(1).save(&path).unwrap();

    let expect = |config: Config, location: &str, reason: &str| match load(&path, config) {
        Err(Error::Corrupt {
            location: l,
            reason: r,
            ..
        }) => {
            assert_eq!(l, location);
            assert!(r.contains(reason), "{r}");
        }
        other => panic!("expected Corrupt at {location}, got {other:?}"),
    };
    let mut wider = tiny();
    wider.intermediate_size = 192;
    expect(
        wider,
        "model.layers.0.mlp.gate_proj.weight",
        "shape [176, 64]",
    );
    let mut deeper = tiny();
    deeper.num_hidden_layers = 3;
    expect(deeper, "model.layers.2.input_layernorm.weight", "missing");
    let mut shallower = tiny();
    shallower.num_hidden_layers = 1;
    expect(
        shallower,
        "model.layers.1.input_layernorm.weight",
        "not a parameter",
    );
    let mut untied = tiny();
    untied.tie_word_embeddings = false;
    expect(untied, "lm_head.weight", "missing");

    // The other way round: an untied checkpoint for a tied config.
    let mut untied = tiny();
    untied.tie_word_embeddings = false;
    let untied_path = dir.path().join("untied.safetensors");
    Model::new(untied, 1, Device::Cpu)
        .unwrap()
        .save(&untied_path)
        .unwrap();
    match load(&untied_path, tiny()) {
        Err(Error::Corrupt {
            location, reason, ..
        }) => {
            assert_eq!(location, "lm_head.weight");
            assert!(reason.contains("ties embeddings"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn malformed_headers_and_values_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    tiny_model(1).save(&path).unwrap();
    let (header, data) = split(&std::fs::read(&path).unwrap());
    let bad = dir.path().join("bad.safetensors");
    let try_with = |header: &serde_json::Value, data: &[u8]| {
        std::fs::write(&bad, join(header, data)).unwrap();
        load(&bad, tiny())
    };

    // A NaN in the data.
    let mut nan = data.clone();
    let offset = header["model.norm.weight"]["data_offsets"][0]
        .as_u64()
        .unwrap() as usize;
    nan[offset + 8..offset + 12].copy_from_slice(&f32::NAN.to_le_bytes());
    match try_with(&header, &nan) {
        Err(Error::NonFinite { what, index }) => {
            assert!(what.contains("model.norm.weight"), "{what}");
            assert_eq!(index, 2);
        }
        other => panic!("expected NonFinite, got {other:?}"),
    }

    // Trailing bytes after the last tensor.
    let mut longer = data.clone();
    longer.extend_from_slice(&[0; 8]);
    assert!(matches!(
        try_with(&header, &longer),
        Err(Error::Corrupt { .. })
    ));

    // Overlapping tensors.
    let mut overlap = header.clone();
    let end = overlap["model.norm.weight"]["data_offsets"][1]
        .as_u64()
        .unwrap();
    overlap["model.norm.weight"]["data_offsets"] = serde_json::json!([offset - 4, end - 4]);
    assert!(matches!(
        try_with(&overlap, &data),
        Err(Error::Corrupt { .. })
    ));

    // An unsupported dtype.
    let mut int = header.clone();
    int["model.norm.weight"]["dtype"] = "I32".into();
    match try_with(&int, &data) {
        Err(Error::Corrupt { reason, .. }) => assert!(reason.contains("I32"), "{reason}"),
        other => panic!("expected Corrupt, got {other:?}"),
    }

    // A header length beyond the cap.
    let mut huge = join(&header, &data);
    huge[..8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    std::fs::write(&bad, &huge).unwrap();
    assert!(matches!(
        load(&bad, tiny()),
        Err(Error::LimitExceeded { .. })
    ));

    // Not JSON at all.
    let mut garbage = join(&header, &data);
    garbage[8] = b'#';
    std::fs::write(&bad, &garbage).unwrap();
    assert!(matches!(load(&bad, tiny()), Err(Error::Corrupt { .. })));

    // A missing file.
    assert!(matches!(
        load(&dir.path().join("absent.safetensors"), tiny()),
        Err(Error::Io { .. })
    ));
}

#[test]
fn bf16_and_f16_checkpoints_load_as_f32() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    let model = tiny_model(9);
    model.save(&path).unwrap();
    let (header, data) = split(&std::fs::read(&path).unwrap());
    for dtype in ["BF16", "F16"] {
        // Re-encode every tensor, keeping the order of the data section.
        let mut entries: Vec<(String, serde_json::Value)> = header
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| *k != "__metadata__")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        entries.sort_by_key(|(_, v)| v["data_offsets"][0].as_u64().unwrap());
        let mut out_header = serde_json::Map::new();
        let mut out_data = Vec::new();
        for (name, v) in entries {
            let (b, e) = (
                v["data_offsets"][0].as_u64().unwrap() as usize,
                v["data_offsets"][1].as_u64().unwrap() as usize,
            );
            let begin = out_data.len();
            for c in data[b..e].chunks_exact(4) {
                let x = f32::from_le_bytes(c.try_into().unwrap());
                let bits = if dtype == "BF16" {
                    half::bf16::from_f32(x).to_bits()
                } else {
                    half::f16::from_f32(x).to_bits()
                };
                out_data.extend_from_slice(&bits.to_le_bytes());
            }
            out_header.insert(
                name,
                serde_json::json!({"dtype": dtype, "shape": v["shape"],
                                   "data_offsets": [begin, out_data.len()]}),
            );
        }
        let file = dir.path().join(format!("{dtype}.safetensors"));
        std::fs::write(
            &file,
            join(&serde_json::Value::Object(out_header), &out_data),
        )
        .unwrap();
        let loaded = load(&file, tiny()).unwrap();
        let original = model
            .parameter_values("model.layers.0.self_attn.q_proj.weight")
            .unwrap();
        let converted = loaded
            .parameter_values("model.layers.0.self_attn.q_proj.weight")
            .unwrap();
        for (a, b) in original.iter().zip(&converted) {
            let expected = if dtype == "BF16" {
                half::bf16::from_f32(*a).to_f32()
            } else {
                half::f16::from_f32(*a).to_f32()
            };
            assert_eq!(*b, expected);
        }
        assert_ne!(loaded.revision().unwrap(), model.revision().unwrap());
    }
}

#[test]
fn saving_into_a_missing_directory_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = tiny_model(0)
        .save(dir.path().join("no/such/dir/m.safetensors"))
        .unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
}
