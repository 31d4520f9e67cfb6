//! Writes the committed seed corpus of the codec's fuzz targets:
//! `fuzz/seeds/decode/` (small valid deltas of every encoding) and
//! `fuzz/seeds/roundtrip/` (byte strings that `arbitrary` turns into tensors).
//!
//! `cargo run -p bistro-core --example make_fuzz_seeds [fuzz-dir]`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // not library code: a failure here should stop loudly

use std::path::PathBuf;

use bistro_core::codec::{DType, DeltaHeader, DeltaWriter, Encoding, Limits};
use bistro_core::{Digest, PublicKey};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let fuzz: PathBuf = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz"));
    let decode = fuzz.join("seeds/decode");
    let roundtrip = fuzz.join("seeds/roundtrip");
    std::fs::create_dir_all(&decode)?;
    std::fs::create_dir_all(&roundtrip)?;

    let header = DeltaHeader {
        base_revision: Digest::of(b"seed master"),
        block: 1234,
        uid: 5,
        hotkey: PublicKey([3; 32]),
    };
    let values: Vec<f32> = (0..96)
        .map(|i| ((i * 37 % 19) as f32 - 9.0) / 8.0)
        .collect();
    let encodings = [
        ("dense_f32", Encoding::Dense(DType::F32)),
        ("dense_f16", Encoding::Dense(DType::F16)),
        ("dense_bf16", Encoding::Dense(DType::BF16)),
        ("int8_block", Encoding::Int8Block { block_size: 16 }),
        (
            "topk_f32",
            Encoding::TopK {
                k: 9,
                values: DType::F32,
            },
        ),
        (
            "topk_f16",
            Encoding::TopK {
                k: 30,
                values: DType::F16,
            },
        ),
        (
            "topk_bf16",
            Encoding::TopK {
                k: 1,
                values: DType::BF16,
            },
        ),
        (
            "topk_i8",
            Encoding::TopK {
                k: 96,
                values: DType::I8,
            },
        ),
    ];
    for (name, enc) in encodings {
        let mut w = DeltaWriter::new(Vec::new(), &header, &Limits::default())?;
        w.add_tensor(
            "model.layers.0.mlp.up_proj.weight",
            &[8, 12],
            &values,
            enc,
            None,
        )?;
        let (bytes, _) = w.finish()?;
        std::fs::write(decode.join(format!("{name}.delta")), bytes)?;
    }
    // All encodings in one file, plus a scalar and an empty tensor.
    let mut w = DeltaWriter::new(Vec::new(), &header, &Limits::default())?;
    for (i, (_, enc)) in encodings.iter().enumerate() {
        w.add_tensor(&format!("t{i}"), &[96], &values, *enc, None)?;
    }
    w.add_tensor("scalar", &[], &[0.5], Encoding::Dense(DType::F32), None)?;
    w.add_tensor(
        "empty",
        &[0, 4],
        &[],
        Encoding::TopK {
            k: 0,
            values: DType::F16,
        },
        None,
    )?;
    std::fs::write(decode.join("mixed.delta"), w.finish()?.0)?;
    let empty = DeltaWriter::new(Vec::new(), &header, &Limits::default())?
        .finish()?
        .0;
    std::fs::write(decode.join("empty.delta"), empty)?;

    // Roundtrip seeds: deterministic byte strings of a few lengths.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for (i, len) in [16usize, 64, 200, 700, 2000].into_iter().enumerate() {
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8
            })
            .collect();
        std::fs::write(roundtrip.join(format!("seed{i}.bin")), bytes)?;
    }
    println!("seeds written under {}", fuzz.join("seeds").display());
    Ok(())
}
