//! Arbitrary bytes into `DeltaReader::open`; for every file it accepts, each
//! tensor is checked, decoded and applied, and compared with `codec::naive`.
//! Each input is tried twice: as given, and with its footer digest fixed up
//! so that the fuzzer reaches the checks the digest would otherwise hide.
#![no_main]

use bistro_core::Digest;
use bistro_core::codec::{DeltaReader, Limits, UNDIGESTED_LEN, naive};
use libfuzzer_sys::fuzz_target;

fn same(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()))
}

fn exercise(bytes: &[u8]) {
    let limits = Limits {
        max_total_elements: 1 << 22,
        max_file_size: 1 << 24,
        ..Limits::default()
    };
    let Ok(reader) = DeltaReader::open(bytes, &limits) else {
        return;
    };
    let _ = reader.check_all_finite();
    let oracle = naive::decode(bytes, limits.max_total_elements)
        .expect("the naive decoder reads every file the reader accepts");
    assert_eq!(oracle.len(), reader.len());
    for (view, slow) in reader.tensors().zip(&oracle) {
        assert_eq!(view.name(), slow.name);
        let _ = view.check_finite();
        let decoded = view.decode().expect("decode of a validated tensor");
        assert!(
            same(&decoded, &slow.values),
            "decode differs for {}",
            slow.name
        );
        let touched: Vec<u64> = view.touched_indices().collect();
        assert_eq!(touched, slow.touched);
        let mut fast = vec![1.0f32; decoded.len()];
        view.apply(&mut fast, 0.5)
            .expect("apply of a validated tensor");
        let mut reference = vec![1.0f32; decoded.len()];
        naive::apply(slow, &mut reference, 0.5);
        assert!(same(&fast, &reference), "apply differs for {}", slow.name);
    }
}

fuzz_target!(|data: &[u8]| {
    exercise(data);
    if data.len() >= 256 {
        let mut fixed = data.to_vec();
        let end = fixed.len() - UNDIGESTED_LEN;
        let digest = Digest::of(&fixed[..end]);
        fixed[end..end + 32].copy_from_slice(&digest.0);
        exercise(&fixed);
    }
});
