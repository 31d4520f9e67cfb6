//! Delta codec throughput, each figure beside a baseline measured in the same
//! run on the same bytes:
//!
//! - decode-and-apply of a dense f32 delta vs a plain `memcpy` of its payload;
//! - digest (BLAKE3) and `DeltaReader::open` (validation + digest);
//! - top-k encode throughput;
//! - with feature `timelock`: sealing and unsealing the same file
//!   (`bistro_core::seal`), as ratios to `DeltaReader::open`;
//! - bytes per kept value of top-k vs templar's DeMo packing (~2.5).
//!
//! Each on one thread and on all threads.
//!
//! `cargo bench -p bistro-core --bench codec --features timelock` (set
//! `BISTRO_BENCH_MB` for the dense delta size, default 256).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // not library code: a failure here should stop loudly

use std::hint::black_box;
use std::time::Instant;

use bistro_core::codec::{DType, DeltaHeader, DeltaReader, DeltaWriter, Encoding, Limits};
use bistro_core::digest::Hasher;
use rayon::prelude::*;

/// Best of `reps` runs of `f`, in seconds.
fn best(reps: usize, mut f: impl FnMut()) -> f64 {
    (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn values(n: usize, seed: u32) -> Vec<f32> {
    (0..n)
        .into_par_iter()
        .map(|i| {
            let h = (i as u32 ^ seed).wrapping_mul(0x9e37_79b9).rotate_left(13);
            (h as f32 / u32::MAX as f32 - 0.5) * 1e-3
        })
        .collect()
}

fn gbs(bytes: usize, secs: f64) -> f64 {
    bytes as f64 / secs / 1e9
}

fn main() -> bistro_core::Result<()> {
    let mb: usize = std::env::var("BISTRO_BENCH_MB")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(256);
    let n = mb * (1 << 20) / 4;
    let threads = rayon::current_num_threads();
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .map_err(|e| bistro_core::Error::Unavailable(e.to_string()))?;
    println!(
        "delta codec benchmark: dense f32 delta of {n} elements ({mb} MiB), 1 and {threads} threads"
    );
    println!("(best of several runs; ratios are against baselines from this same run)\n");

    let data = values(n, 1);
    let limits = Limits::default();
    let mut w = DeltaWriter::new(
        Vec::with_capacity(n * 4 + 4096),
        &DeltaHeader::default(),
        &limits,
    )?;
    w.add_tensor("w", &[n as u64], &data, Encoding::Dense(DType::F32), None)?;
    let (file, _) = w.finish()?;
    let reader = DeltaReader::open(&file, &limits)?;
    let tensor = reader.tensor("w")?;
    let payload = tensor.payload();
    let bytes = payload.len();

    let mut copy = vec![0u8; bytes];
    let mut weights = values(n, 2);
    let reps = 5;
    println!(
        "{:<44} {:>9} {:>9} {:>9}",
        "operation", "1 thread", "all", "scaling"
    );
    let row = |name: &str, one_s: f64, all_s: f64, bytes: usize| {
        println!(
            "{name:<44} {:>7.2}GB/s {:>7.2}GB/s {:>8.2}x",
            gbs(bytes, one_s),
            gbs(bytes, all_s),
            one_s / all_s
        );
        (one_s, all_s)
    };
    let memcpy = row(
        "memcpy of the payload (baseline)",
        best(reps, || copy.copy_from_slice(black_box(payload))),
        best(reps, || {
            copy.par_chunks_mut(1 << 20)
                .zip(payload.par_chunks(1 << 20))
                .for_each(|(d, s)| d.copy_from_slice(s))
        }),
        bytes,
    );
    let apply = row(
        "decode-and-apply dense f32 (w += a*delta)",
        best(reps, || {
            one.install(|| tensor.apply(&mut weights, 0.5))
                .unwrap_or(())
        }),
        best(reps, || tensor.apply(&mut weights, 0.5).unwrap_or(())),
        bytes,
    );
    let digest = row(
        "digest (BLAKE3) of the file",
        best(reps, || {
            let mut h = blake3::Hasher::new();
            h.update(black_box(&file));
            black_box(h.finalize());
        }),
        best(reps, || {
            black_box(Hasher::new().update(&file).finalize());
        }),
        file.len(),
    );
    let open = row(
        "DeltaReader::open (validate + digest)",
        best(3, || {
            one.install(|| black_box(DeltaReader::open(&file, &limits).map(|_| ())))
                .unwrap_or(())
        }),
        best(3, || {
            black_box(DeltaReader::open(&file, &limits).map(|_| ())).unwrap_or(())
        }),
        file.len(),
    );
    let check = row(
        "check_finite dense f32",
        best(reps, || one.install(|| tensor.check_finite()).unwrap_or(())),
        best(reps, || tensor.check_finite().unwrap_or(())),
        bytes,
    );
    println!();
    println!(
        "decode-and-apply / memcpy: {:.2}x on 1 thread, {:.2}x on {threads} threads (target >= 0.5x)",
        memcpy.0 / apply.0,
        memcpy.1 / apply.1
    );
    println!(
        "digest / memcpy: {:.2}x on 1 thread, {:.2}x on {threads}; open / memcpy: {:.2}x, {:.2}x; \
         check_finite / memcpy: {:.2}x, {:.2}x",
        memcpy.0 / digest.0 * file.len() as f64 / bytes as f64,
        memcpy.1 / digest.1 * file.len() as f64 / bytes as f64,
        memcpy.0 / open.0 * file.len() as f64 / bytes as f64,
        memcpy.1 / open.1 * file.len() as f64 / bytes as f64,
        memcpy.0 / check.0,
        memcpy.1 / check.1,
    );

    // Sealed deltas (feature `timelock`): the envelope around the same file.
    #[cfg(feature = "timelock")]
    {
        use bistro_core::{seal, timelock};
        let beacon = timelock::LocalBeacon::from_seed([1; 32]);
        let key = beacon.key();
        let pulse = beacon.pulse(7);
        let sealed = seal::seal(&file, &key, 7)?;
        let max = file.len() as u64;
        println!();
        let sealing = row(
            "seal (timelock key + AES-256-GCM chunks)",
            best(3, || {
                one.install(|| black_box(seal::seal(&file, &key, 7).map(|v| v.len())))
                    .unwrap_or(0);
            }),
            best(3, || {
                black_box(seal::seal(&file, &key, 7).map(|v| v.len())).unwrap_or(0);
            }),
            file.len(),
        );
        let unsealing = row(
            "unseal (open key, authenticate, decrypt)",
            best(3, || {
                one.install(|| black_box(seal::unseal(&sealed, &pulse, max).map(|v| v.len())))
                    .unwrap_or(0);
            }),
            best(3, || {
                black_box(seal::unseal(&sealed, &pulse, max).map(|v| v.len())).unwrap_or(0);
            }),
            file.len(),
        );
        let dir = std::env::temp_dir().join(format!("bistro-bench-seal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| bistro_core::Error::io(&dir, e))?;
        let src = dir.join("delta.sealed");
        let dst = dir.join("delta");
        std::fs::write(&src, &sealed).map_err(|e| bistro_core::Error::io(&src, e))?;
        let to_file = row(
            "unseal_file (mmap in, atomic file out)",
            best(3, || {
                one.install(|| black_box(seal::unseal_file(&src, &dst, &pulse, max)))
                    .unwrap_or(0);
            }),
            best(3, || {
                black_box(seal::unseal_file(&src, &dst, &pulse, max)).unwrap_or(0);
            }),
            file.len(),
        );
        let _ = std::fs::remove_dir_all(&dir);
        println!();
        println!(
            "unseal / open: {:.2}x on 1 thread, {:.2}x on {threads} threads; unseal_file / open: \
             {:.2}x, {:.2}x; seal / open: {:.2}x, {:.2}x",
            open.0 / unsealing.0,
            open.1 / unsealing.1,
            open.0 / to_file.0,
            open.1 / to_file.1,
            open.0 / sealing.0,
            open.1 / sealing.1,
        );
        println!(
            "a validator's time per delta, open + apply -> unseal + open + apply: {:.2}x on 1 thread, \
             {:.2}x on {threads} threads",
            (unsealing.0 + open.0 + apply.0) / (open.0 + apply.0),
            (unsealing.1 + open.1 + apply.1) / (open.1 + apply.1),
        );
    }

    // Top-k encode: 1% of a 16 Mi-element tensor, int8 values.
    let m = (16 << 20).min(n);
    let src = &data[..m];
    let k = (m / 100) as u64;
    let mut residual_buffer = vec![0f32; m];
    let mut encode = |residual: bool| {
        let r = &mut residual_buffer;
        let mut w = DeltaWriter::new(Vec::new(), &DeltaHeader::default(), &limits)?;
        let enc = Encoding::TopK {
            k,
            values: DType::I8,
        };
        w.add_tensor("w", &[m as u64], src, enc, residual.then_some(&mut r[..]))?;
        w.finish().map(|_| ())
    };
    let topk_one = best(3, || one.install(|| encode(false)).unwrap_or(()));
    let topk_all = best(3, || encode(false).unwrap_or(()));
    let topk_fb = best(3, || encode(true).unwrap_or(()));
    let dense_all = best(3, || {
        let mut w = DeltaWriter::new(
            Vec::with_capacity(m * 4 + 4096),
            &DeltaHeader::default(),
            &limits,
        )
        .expect("in-memory writer");
        w.add_tensor("w", &[m as u64], src, Encoding::Dense(DType::F32), None)
            .expect("valid tensor");
        black_box(w.finish().map(|(bytes, _)| bytes.len()).unwrap_or(0));
    });
    println!();
    println!(
        "top-k encode (k = 1% of {m}, int8): {:.0} M elements/s on 1 thread, {:.0} M/s on {threads} \
         ({:.2} GB/s of f32 input); with error feedback {:.0} M/s; dense f32 encode {:.0} M/s",
        m as f64 / topk_one / 1e6,
        m as f64 / topk_all / 1e6,
        gbs(m * 4, topk_all),
        m as f64 / topk_fb / 1e6,
        m as f64 / dense_all / 1e6,
    );

    // Bytes per kept value.
    println!();
    println!("top-k payload bytes per kept value (indices + values; DeMo packs ~2.5):");
    println!(
        "{:<10} {:>8} {:>8} {:>8} {:>8}",
        "density", "f32", "f16", "bf16", "int8"
    );
    let m = 1 << 22;
    let src = &data[..m.min(n)];
    for density in [0.001f64, 0.01, 1.0 / 128.0, 0.03, 0.1] {
        let k = (src.len() as f64 * density) as u64;
        let mut line = format!("{:<10}", format!("{:.2}%", density * 100.0));
        for dtype in [DType::F32, DType::F16, DType::BF16, DType::I8] {
            let mut w = DeltaWriter::new(Vec::new(), &DeltaHeader::default(), &limits)?;
            w.add_tensor(
                "w",
                &[src.len() as u64],
                src,
                Encoding::TopK { k, values: dtype },
                None,
            )?;
            let (bytes, _) = w.finish()?;
            let r = DeltaReader::open(&bytes, &limits)?;
            let len = r.tensor("w")?.payload().len();
            line.push_str(&format!(" {:>8.3}", len as f64 / k as f64));
        }
        println!("{line}");
    }
    Ok(())
}
