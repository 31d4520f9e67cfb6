//! The model's shapes, presets, devices, configuration files, initialisation
//! and loss.
#![cfg(feature = "torch")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // not library code: a failure here should stop loudly

mod model_support;

use bistro_core::Error;
use bistro_core::data::Batch;
use bistro_core::model::{Config, Device, Model, PRESETS};
use model_support::*;

#[test]
fn presets_have_the_documented_sizes() {
    let expected = [
        ("tiny", 3_308_928u64),
        ("150m", 151_868_928),
        ("1b", 1_076_072_448),
    ];
    assert_eq!(PRESETS.len(), expected.len());
    for (name, count) in expected {
        let config = Config::preset(name).unwrap();
        assert_eq!(config.parameter_count(), count, "{name}");
        assert_eq!(config.vocab_size, 50257);
        assert!(config.tie_word_embeddings);
    }
    assert!(matches!(
        Config::preset("7b"),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn tiny_parameters_follow_the_hf_llama_layout() {
    let model = tiny_model(0);
    let params = model.parameters();
    let names: Vec<&str> = params.iter().map(|p| p.name.as_str()).collect();
    let mut expected = vec!["model.embed_tokens.weight".to_string()];
    for i in 0..2 {
        for suffix in [
            "input_layernorm.weight",
            "self_attn.q_proj.weight",
            "self_attn.k_proj.weight",
            "self_attn.v_proj.weight",
            "self_attn.o_proj.weight",
            "post_attention_layernorm.weight",
            "mlp.gate_proj.weight",
            "mlp.up_proj.weight",
            "mlp.down_proj.weight",
        ] {
            expected.push(format!("model.layers.{i}.{suffix}"));
        }
    }
    expected.push("model.norm.weight".into());
    assert_eq!(names, expected);
    let shape = |name: &str| {
        params
            .iter()
            .find(|p| p.name == name)
            .unwrap()
            .shape
            .clone()
    };
    assert_eq!(shape("model.embed_tokens.weight"), vec![50257, 64]);
    assert_eq!(
        shape("model.layers.1.self_attn.q_proj.weight"),
        vec![64, 64]
    );
    // 2 key/value heads of width 16.
    assert_eq!(
        shape("model.layers.1.self_attn.k_proj.weight"),
        vec![32, 64]
    );
    assert_eq!(
        shape("model.layers.0.self_attn.o_proj.weight"),
        vec![64, 64]
    );
    assert_eq!(shape("model.layers.0.mlp.gate_proj.weight"), vec![176, 64]);
    assert_eq!(shape("model.layers.0.mlp.down_proj.weight"), vec![64, 176]);
    assert_eq!(shape("model.norm.weight"), vec![64]);
    let total: u64 = params.iter().map(|p| p.numel()).sum();
    assert_eq!(total, model.config().parameter_count());

    let mut untied = tiny();
    untied.tie_word_embeddings = false;
    let model = Model::new(untied.clone(), 0, Device::Cpu).unwrap();
    let last = model.parameters().pop().unwrap();
    assert_eq!(last.name, "lm_head.weight");
    assert_eq!(last.shape, vec![50257, 64]);
    assert_eq!(
        untied.parameter_count(),
        tiny().parameter_count() + 50257 * 64
    );
}

#[test]
fn the_150m_preset_builds() {
    let model = Model::new(Config::preset("150m").unwrap(), 1, Device::Cpu).unwrap();
    let total: u64 = model.parameters().iter().map(|p| p.numel()).sum();
    assert_eq!(total, 151_868_928);
    assert_eq!(model.parameters().len(), 1 + 16 * 9 + 1);
}

#[test]
fn initialisation_is_deterministic_and_seeded() {
    let a = tiny_model(7);
    let b = tiny_model(7);
    let c = tiny_model(8);
    assert_eq!(a.revision().unwrap(), b.revision().unwrap());
    assert_eq!(all_bits(&a), all_bits(&b));
    assert_ne!(a.revision().unwrap(), c.revision().unwrap());

    let std = |name: &str| {
        let v = a.parameter_values(name).unwrap();
        let n = v.len() as f64;
        let mean = v.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
        (v.iter()
            .map(|&x| (f64::from(x) - mean).powi(2))
            .sum::<f64>()
            / n)
            .sqrt()
    };
    assert!((std("model.embed_tokens.weight") / 0.02 - 1.0).abs() < 0.01);
    // Residual-stream outputs are scaled by 1/sqrt(2 * layers) = 1/2.
    assert!((std("model.layers.0.mlp.down_proj.weight") / 0.01 - 1.0).abs() < 0.05);
    let norm = a
        .parameter_values("model.layers.1.input_layernorm.weight")
        .unwrap();
    assert!(norm.iter().all(|&g| g == 1.0));
}

#[test]
fn devices_parse_and_unavailable_ones_say_why() {
    assert_eq!(Device::parse("cpu").unwrap(), Device::Cpu);
    assert_eq!(Device::parse("cuda").unwrap(), Device::Cuda(0));
    assert_eq!(Device::parse("cuda:3").unwrap(), Device::Cuda(3));
    assert_eq!(Device::parse("mps").unwrap(), Device::Mps);
    assert_eq!("cuda:1".parse::<Device>().unwrap().to_string(), "cuda:1");
    for bad in ["gpu", "cuda:", "cuda:x", "cuda:-1", "cuda:+1", "CPU", ""] {
        assert!(
            matches!(Device::parse(bad), Err(Error::InvalidArgument(_))),
            "{bad:?}"
        );
    }
    assert!(Device::Cpu.is_available());
    let far = Device::Cuda(1000);
    assert!(!far.is_available());
    match Model::new(tiny(), 0, far) {
        Err(Error::Unavailable(why)) => assert!(why.contains("cuda:1000"), "{why}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[test]
fn config_json_round_trips_and_reads_hf_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.json");
    let config = tiny();
    config.write_hf_json(&path).unwrap();
    assert_eq!(Config::from_hf_json(&path).unwrap(), config);
    let text = std::fs::read_to_string(&path).unwrap();
    for key in [
        "\"model_type\": \"llama\"",
        "\"LlamaForCausalLM\"",
        "\"num_key_value_heads\": 2",
        "\"tie_word_embeddings\": true",
        "\"rope_theta\": 10000.0",
    ] {
        assert!(text.contains(key), "{key} not in {text}");
    }

    // A config.json as recent transformers writes it (rope_parameters, extra fields).
    let hf = br#"{
        "architectures": ["LlamaForCausalLM"], "attention_bias": false,
        "attention_dropout": 0.0, "bos_token_id": 1, "dtype": "bfloat16",
        "eos_token_id": 2, "head_dim": 16, "hidden_act": "silu", "hidden_size": 64,
        "initializer_range": 0.02, "intermediate_size": 128, "max_position_embeddings": 512,
        "mlp_bias": false, "model_type": "llama", "num_attention_heads": 4,
        "num_hidden_layers": 2, "num_key_value_heads": 4, "pretraining_tp": 1,
        "rms_norm_eps": 1e-06, "rope_parameters": {"rope_theta": 500000.0, "rope_type": "default"},
        "tie_word_embeddings": false, "transformers_version": "5.0.0", "use_cache": true,
        "vocab_size": 1000
    }"#;
    let parsed = Config::from_hf_json_bytes(hf).unwrap();
    assert_eq!(parsed.rope_base(), 500_000.0);
    assert_eq!(parsed.kv_heads(), 4);
    assert_eq!(
        parsed.parameter_count(),
        2 * 1000 * 64 + 2 * (2 * 64 + 4 * 64 * 64 + 3 * 128 * 64) + 64
    );

    let mutate = |f: &Edit| {
        let mut v: serde_json::Value = serde_json::from_slice(hf).unwrap();
        f(&mut v);
        Config::from_hf_json_bytes(&serde_json::to_vec(&v).unwrap())
    };
    let rejected: [(&str, &Edit); 7] = [
        ("rope_scaling", &|v| {
            v["rope_scaling"] = serde_json::json!({"rope_type": "llama3", "factor": 8.0})
        }),
        ("hidden_act", &|v| v["hidden_act"] = "gelu".into()),
        ("attention_bias", &|v| v["attention_bias"] = true.into()),
        ("multiple", &|v| v["num_key_value_heads"] = 3.into()),
        ("vocab_size", &|v| v["vocab_size"] = (1u64 << 40).into()),
        ("hidden_size must be positive", &|v| {
            v["hidden_size"] = 0.into()
        }),
        ("rope_type", &|v| {
            v["rope_parameters"]["rope_type"] = "yarn".into()
        }),
    ];
    for (needle, f) in rejected {
        let err = mutate(f).unwrap_err().to_string();
        assert!(err.contains(needle), "{needle}: {err}");
    }
    assert!(matches!(
        Config::from_hf_json_bytes(b"[1, 2]"),
        Err(Error::Corrupt { .. })
    ));
    let big = dir.path().join("big.json");
    std::fs::write(&big, vec![b' '; 2 << 20]).unwrap();
    assert!(matches!(
        Config::from_hf_json(&big),
        Err(Error::LimitExceeded { .. })
    ));
}

/// An edit of a JSON document.
type Edit = dyn Fn(&mut serde_json::Value);

/// The mean cross entropy computed by hand from the model's logits, in f64.
fn naive_loss(model: &Model, batch: &Batch) -> f64 {
    let ids: Vec<i64> = batch.tokens.iter().map(|&t| i64::from(t)).collect();
    let tokens = tch::Tensor::from_slice(&ids).view([batch.rows as i64, batch.seq_len as i64]);
    let logits = tch::no_grad(|| model.logits(&tokens).unwrap());
    let vocab = model.config().vocab_size;
    let flat: Vec<f32> = Vec::try_from(logits.flatten(0, -1)).unwrap();
    let (mut sum, mut n) = (0.0f64, 0usize);
    for r in 0..batch.rows {
        for t in 0..batch.seq_len - 1 {
            let i = r * batch.seq_len + t;
            if batch.mask[i] == 0 || batch.mask[i + 1] == 0 {
                continue;
            }
            let row = &flat[i * vocab..(i + 1) * vocab];
            let max = row.iter().fold(f64::MIN, |m, &x| m.max(f64::from(x)));
            let lse = max
                + row
                    .iter()
                    .map(|&x| (f64::from(x) - max).exp())
                    .sum::<f64>()
                    .ln();
            sum += lse - f64::from(row[batch.tokens[i + 1] as usize]);
            n += 1;
        }
    }
    sum / n as f64
}

#[test]
fn loss_is_masked_next_token_cross_entropy() {
    let model = tiny_model(3);
    let text = text_tokens();
    let seqs = [&text[..40], &text[40..57], &text[60..100]];
    let batch = Batch::pack(seqs, 32, 50256).unwrap();
    assert!(batch.mask.contains(&0));
    let loss = model.loss(&batch).unwrap();
    // An untrained model is close to uniform over 50 257 ids.
    assert!((loss - (50257f64).ln()).abs() < 0.5, "{loss}");
    let naive = naive_loss(&model, &batch);
    assert!((loss - naive).abs() < 1e-4, "{loss} vs {naive}");

    // What padding holds does not matter.
    let mut other = batch.clone();
    for (t, m) in other.tokens.iter_mut().zip(&other.mask) {
        if *m == 0 {
            *t = 17;
        }
    }
    assert_eq!(model.loss(&other).unwrap(), loss);
    // But a real token does.
    other.tokens[5] = 99;
    assert_ne!(model.loss(&other).unwrap(), loss);
}

#[test]
fn attention_is_causal() {
    let model = tiny_model(4);
    let ids: Vec<i64> = text_tokens()[..24].iter().map(|&t| i64::from(t)).collect();
    let a = tch::Tensor::from_slice(&ids).view([1, 24]);
    let mut changed = ids.clone();
    changed[20] = 5;
    let b = tch::Tensor::from_slice(&changed).view([1, 24]);
    let (la, lb) = tch::no_grad(|| (model.logits(&a).unwrap(), model.logits(&b).unwrap()));
    let early = |l: &tch::Tensor| Vec::<f32>::try_from(l.narrow(1, 0, 20).flatten(0, -1)).unwrap();
    assert_eq!(early(&la), early(&lb));
    let late = |l: &tch::Tensor| Vec::<f32>::try_from(l.narrow(1, 20, 4).flatten(0, -1)).unwrap();
    assert_ne!(late(&la), late(&lb));
}

#[test]
fn bad_batches_are_rejected_before_any_work() {
    let model = tiny_model(0);
    let good = text_batch(2, 16);
    assert!(model.loss(&good).is_ok());
    let cases: Vec<(Batch, &str)> = vec![
        (
            Batch {
                tokens: vec![1; 31],
                ..good.clone()
            },
            "holds 31 tokens",
        ),
        (
            {
                let mut b = good.clone();
                b.tokens[3] = 50257;
                b
            },
            "outside the vocabulary",
        ),
        (
            {
                let mut b = good.clone();
                b.mask[4] = 2;
                b
            },
            "neither 0 nor 1",
        ),
        (
            Batch {
                mask: vec![0; 32],
                ..good.clone()
            },
            "no position to predict",
        ),
        (text_batch(1, 300), "model context"),
        (
            Batch {
                rows: 0,
                seq_len: 16,
                tokens: vec![],
                mask: vec![],
            },
            "must have rows",
        ),
    ];
    for (batch, needle) in cases {
        let err = model.loss(&batch).unwrap_err().to_string();
        assert!(err.contains(needle), "{needle}: {err}");
    }
}

#[test]
fn loss_over_chunks_equals_loss_over_rows() {
    // A budget of 64 MiB fits one row of 256 tokens' logits (51 MB at 50 257
    // ids): the loss of 7 rows runs in 7 chunks, and equals the mean of the
    // per-row sums and the loss computed in one chunk.
    let mut model = tiny_model(5);
    let batch = text_batch(7, 256);
    let whole = model.loss(&batch).unwrap();
    model.set_logits_budget(64 << 20);
    let chunked = model.loss(&batch).unwrap();
    assert!((whole - chunked).abs() < 1e-5, "{whole} vs {chunked}");
    let mut sum = 0.0;
    for r in 0..7 {
        let row = batch.rows_range(r, r + 1);
        sum += model.loss(&row).unwrap() * row.target_count() as f64;
    }
    let per_row = sum / batch.target_count() as f64;
    assert!((whole - per_row).abs() < 1e-5, "{whole} vs {per_row}");
}
