//! Page selection and the chain's `u16` weights, compared with bistro-core
//! and with the vectors of Bittensor's Python SDK.

// Each unsafe block here is a call of an export as C would make it; the
// arguments are live locals of the stated lengths, or deliberately NULL or
// misaligned, which the export must refuse. That is the safety argument of
// every block, so they carry no comment each.
#![allow(clippy::undocumented_unsafe_blocks)]

use std::ptr::{null, null_mut};

use bistro_core::Digest;
use bistro_core::pages::{self, DatasetParams};

use super::last_error;
use crate::status::bistro_status::*;
use crate::*;

fn sample_params() -> bistro_dataset_params {
    bistro_dataset_params {
        dataset_id: [5; 32],
        num_pages: 10_000,
        window_pages: 100,
        epoch_blocks: 50,
        reveal_delay_blocks: 2,
    }
}

#[test]
fn pages_match_bistro_core() {
    let p = sample_params();
    let core = DatasetParams {
        dataset_id: Digest(p.dataset_id),
        num_pages: p.num_pages,
        window_pages: p.window_pages,
        epoch_blocks: p.epoch_blocks,
        reveal_delay_blocks: p.reveal_delay_blocks,
    };
    let hash = [0xab; 32];
    let mut epoch = 0;
    assert_eq!(
        unsafe { bistro_pages_epoch_of(&p, 1234, &mut epoch) },
        BISTRO_OK
    );
    assert_eq!(epoch, 24);
    let window = pages::window(&core, 3, epoch).unwrap().to_vec();
    let mut ours = vec![0u64; 100];
    assert_eq!(
        unsafe { bistro_pages_window(&p, 3, epoch, 0, ours.as_mut_ptr(), 100) },
        BISTRO_OK
    );
    assert_eq!(ours, window);
    let mut tail = vec![0u64; 10];
    assert_eq!(
        unsafe { bistro_pages_window(&p, 3, epoch, 90, tail.as_mut_ptr(), 10) },
        BISTRO_OK
    );
    assert_eq!(tail, window[90..]);
    let (mut contains, mut position) = (false, 0u64);
    assert_eq!(
        unsafe {
            bistro_pages_window_position(&p, 3, epoch, window[42], &mut contains, &mut position)
        },
        BISTRO_OK
    );
    assert!(contains && position == 42);

    let mut local = vec![0u64; 5];
    assert_eq!(
        unsafe { bistro_pages_local(&p, 3, 1234, hash.as_ptr(), local.as_mut_ptr(), 5) },
        BISTRO_OK
    );
    assert_eq!(local, pages::local_pages(&core, 3, 1234, &hash, 5).unwrap());
    let mut global = vec![0u64; 7];
    assert_eq!(
        unsafe { bistro_pages_global(&p, 1234, hash.as_ptr(), global.as_mut_ptr(), 7) },
        BISTRO_OK
    );
    assert_eq!(global, pages::global_pages(&core, 1234, &hash, 7).unwrap());
    assert_eq!(
        unsafe { bistro_pages_global(&p, 1234, hash.as_ptr(), null_mut(), 0) },
        BISTRO_OK
    );

    // Errors leave the output alone.
    let mut out = vec![7u64; 11];
    assert_eq!(
        unsafe { bistro_pages_window(&p, 3, epoch, 90, out.as_mut_ptr(), 11) },
        BISTRO_ERR_INVALID_ARGUMENT
    );
    assert_eq!(
        unsafe { bistro_pages_window(&p, 3, epoch, u64::MAX, out.as_mut_ptr(), 2) },
        BISTRO_ERR_INVALID_ARGUMENT
    );
    assert_eq!(
        unsafe { bistro_pages_local(&p, 3, 1234, hash.as_ptr(), out.as_mut_ptr(), 101) },
        BISTRO_ERR_INVALID_ARGUMENT
    );
    let bad = bistro_dataset_params {
        window_pages: 0,
        ..p
    };
    assert_eq!(
        unsafe { bistro_pages_global(&bad, 1234, hash.as_ptr(), out.as_mut_ptr(), 3) },
        BISTRO_ERR_INVALID_ARGUMENT
    );
    assert!(last_error().contains("window_pages"));
    assert_eq!(
        unsafe { bistro_pages_global(&p, 1234, null(), out.as_mut_ptr(), 3) },
        BISTRO_ERR_NULL_ARGUMENT
    );
    assert_eq!(
        unsafe { bistro_pages_global(&p, 1234, hash.as_ptr(), null_mut(), 3) },
        BISTRO_ERR_NULL_ARGUMENT
    );
    assert!(out.iter().all(|&x| x == 7));
}

#[test]
fn weights_match_bistro_core() {
    let uids = [0u16, 3, 5, 9];
    let weights = [0.5f32, 0.0, 2.0, 1e-6];
    let (mut u, mut v, mut n) = ([0u16; 4], [0u16; 4], 99usize);
    let s = unsafe {
        bistro_weights_to_u16(
            uids.as_ptr(),
            weights.as_ptr(),
            4,
            u.as_mut_ptr(),
            v.as_mut_ptr(),
            &mut n,
        )
    };
    assert_eq!(s, BISTRO_OK);
    let (cu, cv) = bistro_core::chain::weights::to_u16(&uids, &weights).unwrap();
    assert_eq!((&u[..n], &v[..n]), (&cu[..], &cv[..]));
    assert_eq!(&u[..n], &[0, 5]);

    let w64 = [1.0f64, 0.5];
    let s = unsafe {
        bistro_weights_to_u16_f64(
            uids.as_ptr(),
            w64.as_ptr(),
            2,
            u.as_mut_ptr(),
            v.as_mut_ptr(),
            &mut n,
        )
    };
    assert_eq!(s, BISTRO_OK);
    assert_eq!((&v[..n]), &[65535, 32768]);

    let (mut u, mut v, mut n) = ([1u16; 2], [1u16; 2], 99usize);
    let bad = [1.0f32, f32::NAN];
    let s = unsafe {
        bistro_weights_to_u16(
            uids.as_ptr(),
            bad.as_ptr(),
            2,
            u.as_mut_ptr(),
            v.as_mut_ptr(),
            &mut n,
        )
    };
    assert_eq!(s, BISTRO_ERR_NON_FINITE);
    assert_eq!((u, v, n), ([1; 2], [1; 2], 99));
    let s = unsafe { bistro_weights_to_u16(null(), null(), 0, null_mut(), null_mut(), &mut n) };
    assert_eq!((s, n), (BISTRO_OK, 0));
}

/// The vectors the chain helper produced with Bittensor's Python SDK.
#[test]
fn weights_match_the_python_sdk_vectors() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../bistro-core/tests/data/chain/weights_python.json"
    );
    let cases: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert!(cases.len() > 5);
    let list = |c: &serde_json::Value, k: &str| -> Vec<f64> {
        c[k].as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    };
    for case in &cases {
        let uids: Vec<u16> = list(case, "uids").iter().map(|&u| u as u16).collect();
        // The SDK's inputs are float32 values widened to double: exact as f32.
        let weights: Vec<f32> = list(case, "weights").iter().map(|&w| w as f32).collect();
        let n = uids.len();
        let (mut u, mut v, mut count) = (vec![0u16; n], vec![0u16; n], usize::MAX);
        let status = unsafe {
            bistro_weights_to_u16(
                uids.as_ptr(),
                weights.as_ptr(),
                n,
                u.as_mut_ptr(),
                v.as_mut_ptr(),
                &mut count,
            )
        };
        assert_eq!(status, BISTRO_OK, "{case}");
        let want_u: Vec<u16> = list(case, "out_uids").iter().map(|&x| x as u16).collect();
        let want_v: Vec<u16> = list(case, "out_values").iter().map(|&x| x as u16).collect();
        assert_eq!(
            (&u[..count], &v[..count]),
            (&want_u[..], &want_v[..]),
            "{case}"
        );
    }
}
