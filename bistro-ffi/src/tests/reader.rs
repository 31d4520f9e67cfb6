//! `bistro_delta_reader`: agreement with bistro-core, hostile and mismatched
//! input, one reader shared by threads, and signing deltas in place.

// Each unsafe block here is a call of an export as C would make it; the
// arguments are live locals of the stated lengths, or deliberately NULL or
// misaligned, which the export must refuse. That is the safety argument of
// every block, so they carry no comment each.
#![allow(clippy::undocumented_unsafe_blocks)]

use std::ffi::{CStr, CString};
use std::ptr::null;

use bistro_core::codec::{DeltaReader, Limits};
use bistro_core::{Digest, Keypair};

use super::{SEED, add, finish, header, int8, last_error, new_writer, open, ramp, sample_delta};
use crate::status::bistro_status::*;
use crate::*;

#[test]
fn round_trip_matches_bistro_core() {
    let (bytes, digest) = sample_delta(Some(&SEED));
    let core = DeltaReader::open(&bytes, &Limits::default()).unwrap();
    assert_eq!(core.digest(), Digest(digest));

    let r = open(&bytes);
    let mut count = 0usize;
    assert_eq!(
        unsafe { bistro_delta_reader_tensor_count(r, &mut count) },
        BISTRO_OK
    );
    assert_eq!(count, 4);
    let mut total = 0u64;
    assert_eq!(
        unsafe { bistro_delta_reader_total_elements(r, &mut total) },
        BISTRO_OK
    );
    assert_eq!(total, 32 + 100 + 27 + 1);
    let mut h = bistro_delta_header::default();
    assert_eq!(unsafe { bistro_delta_reader_header(r, &mut h) }, BISTRO_OK);
    assert_eq!(h, header());
    let mut d = [0u8; 32];
    assert_eq!(
        unsafe { bistro_delta_reader_digest(r, d.as_mut_ptr()) },
        BISTRO_OK
    );
    assert_eq!(d, digest);
    let mut sig = [0u8; 64];
    assert_eq!(
        unsafe { bistro_delta_reader_signature(r, sig.as_mut_ptr()) },
        BISTRO_OK
    );
    assert_eq!(sig, core.signature().0);
    assert_eq!(
        unsafe { bistro_delta_reader_verify_signature(r) },
        BISTRO_OK
    );
    assert_eq!(unsafe { bistro_delta_reader_check_finite(r) }, BISTRO_OK);

    for (index, view) in core.tensors().enumerate() {
        let mut info = std::mem::MaybeUninit::<bistro_tensor_info>::uninit();
        assert_eq!(
            unsafe { bistro_delta_reader_tensor_info(r, index, info.as_mut_ptr()) },
            BISTRO_OK
        );
        let info = unsafe { info.assume_init() };
        let name = unsafe { CStr::from_ptr(info.name) }.to_str().unwrap();
        assert_eq!(name, view.name());
        assert_eq!(info.name_len, name.len());
        let shape = unsafe { std::slice::from_raw_parts(info.shape, info.rank) };
        assert_eq!(shape, view.shape());
        assert_eq!(info.element_count, view.element_count());
        assert_eq!(info.encoding.to_core().unwrap(), view.encoding());
        assert_eq!(info.payload_offset, view.payload_offset());

        let c_name = CString::new(name).unwrap();
        let mut found = usize::MAX;
        assert_eq!(
            unsafe { bistro_delta_reader_find(r, c_name.as_ptr(), &mut found) },
            BISTRO_OK
        );
        assert_eq!(found, index);

        let n = view.element_count() as usize;
        let mut ours = vec![1.0f32; n];
        let mut theirs = ours.clone();
        assert_eq!(
            unsafe { bistro_delta_reader_apply(r, index, ours.as_mut_ptr(), n, -0.5) },
            BISTRO_OK
        );
        view.apply(&mut theirs, -0.5).unwrap();
        assert_eq!(ours, theirs);
        let mut decoded = vec![f32::NAN; n];
        assert_eq!(
            unsafe { bistro_delta_reader_decode(r, index, decoded.as_mut_ptr(), n) },
            BISTRO_OK
        );
        assert_eq!(decoded, view.decode().unwrap());
    }
    unsafe { bistro_delta_reader_free(r) };
}

#[test]
fn hostile_and_mismatched_input_is_rejected() {
    let (bytes, _) = sample_delta(None);
    let mut r = 0x55 as *mut bistro_delta_reader;
    let status = |b: &[u8], r: &mut *mut bistro_delta_reader| unsafe {
        bistro_delta_reader_open(b.as_ptr(), b.len(), null(), r)
    };
    assert_eq!(
        status(&bytes[..bytes.len() - 1], &mut r),
        BISTRO_ERR_CORRUPT
    );
    assert_eq!(status(&bytes[..100], &mut r), BISTRO_ERR_TRUNCATED);
    assert_eq!(status(&[], &mut r), BISTRO_ERR_TRUNCATED);
    assert_eq!(status(b"not a delta at all", &mut r), BISTRO_ERR_BAD_MAGIC);
    let mut flipped = bytes.clone();
    flipped[200] ^= 1;
    let s = status(&flipped, &mut r);
    assert!(
        matches!(s, BISTRO_ERR_DIGEST_MISMATCH | BISTRO_ERR_CORRUPT),
        "{s:?}"
    );
    let small = bistro_limits {
        max_file_size: 100,
        ..(&Limits::default()).into()
    };
    let s = unsafe { bistro_delta_reader_open(bytes.as_ptr(), bytes.len(), &small, &mut r) };
    assert_eq!(s, BISTRO_ERR_LIMIT_EXCEEDED);
    assert_eq!(r as usize, 0x55, "no reader on failure");

    let reader = open(&bytes);
    let mut dst = [2.0f32; 33];
    assert_eq!(
        unsafe { bistro_delta_reader_apply(reader, 0, dst.as_mut_ptr(), 33, 1.0) },
        BISTRO_ERR_INVALID_ARGUMENT
    );
    assert!(last_error().contains("32 elements"), "{}", last_error());
    assert_eq!(
        unsafe { bistro_delta_reader_decode(reader, 0, dst.as_mut_ptr(), 31) },
        BISTRO_ERR_INVALID_ARGUMENT
    );
    assert_eq!(
        unsafe { bistro_delta_reader_apply(reader, 4, dst.as_mut_ptr(), 32, 1.0) },
        BISTRO_ERR_INVALID_ARGUMENT
    );
    assert!(last_error().contains("out of range"));
    assert_eq!(
        unsafe { bistro_delta_reader_apply(reader, 0, dst.as_mut_ptr(), 32, f32::NAN) },
        BISTRO_ERR_INVALID_ARGUMENT
    );
    assert!(dst.iter().all(|&x| x == 2.0), "dst untouched on failure");
    let mut info = bistro_tensor_info {
        name: null(),
        name_len: 7,
        shape: null(),
        rank: 7,
        element_count: 7,
        encoding: bistro_encoding::default(),
        payload_offset: 7,
        payload_length: 7,
    };
    assert_eq!(
        unsafe { bistro_delta_reader_tensor_info(reader, usize::MAX, &mut info) },
        BISTRO_ERR_INVALID_ARGUMENT
    );
    assert_eq!(info.rank, 7);
    let mut index = 9usize;
    assert_eq!(
        unsafe { bistro_delta_reader_find(reader, c"nope".as_ptr(), &mut index) },
        BISTRO_ERR_NOT_FOUND
    );
    assert_eq!(index, 9);
    assert_eq!(
        unsafe { bistro_delta_reader_verify_signature(reader) },
        BISTRO_ERR_BAD_SIGNATURE
    );
    unsafe { bistro_delta_reader_free(reader) };
}

#[test]
fn signing_in_place_and_external_signatures() {
    let (mut bytes, digest) = sample_delta(None);
    let original = bytes.clone();
    let wrong = [9u8; 32];
    assert_eq!(
        unsafe { bistro_delta_sign(bytes.as_mut_ptr(), bytes.len(), wrong.as_ptr(), null()) },
        BISTRO_ERR_INVALID_ARGUMENT
    );
    assert_eq!(bytes, original, "unchanged on failure");
    assert_eq!(
        unsafe { bistro_delta_sign(bytes.as_mut_ptr(), bytes.len() - 1, SEED.as_ptr(), null()) },
        BISTRO_ERR_CORRUPT
    );
    assert_eq!(
        unsafe { bistro_delta_sign(bytes.as_mut_ptr(), bytes.len(), SEED.as_ptr(), null()) },
        BISTRO_OK
    );
    let r = open(&bytes);
    assert_eq!(
        unsafe { bistro_delta_reader_verify_signature(r) },
        BISTRO_OK
    );
    let mut d = [0u8; 32];
    assert_eq!(
        unsafe { bistro_delta_reader_digest(r, d.as_mut_ptr()) },
        BISTRO_OK
    );
    assert_eq!(d, digest, "signing does not change the digest");
    unsafe { bistro_delta_reader_free(r) };

    // A signature made elsewhere: Keypair directly, then garbage.
    let mut external = original.clone();
    let sig = Keypair::from_seed(SEED).unwrap().sign(&digest);
    assert_eq!(
        unsafe {
            bistro_delta_set_signature(external.as_mut_ptr(), external.len(), sig.0.as_ptr())
        },
        BISTRO_OK
    );
    let r = open(&external);
    assert_eq!(
        unsafe { bistro_delta_reader_verify_signature(r) },
        BISTRO_OK
    );
    unsafe { bistro_delta_reader_free(r) };
    let garbage = [1u8; 64];
    assert_eq!(
        unsafe {
            bistro_delta_set_signature(external.as_mut_ptr(), external.len(), garbage.as_ptr())
        },
        BISTRO_OK
    );
    let r = open(&external);
    assert_eq!(
        unsafe { bistro_delta_reader_verify_signature(r) },
        BISTRO_ERR_BAD_SIGNATURE
    );
    unsafe { bistro_delta_reader_free(r) };
    let mut short = vec![0u8; 10];
    assert_eq!(
        unsafe { bistro_delta_set_signature(short.as_mut_ptr(), short.len(), garbage.as_ptr()) },
        BISTRO_ERR_TRUNCATED
    );
    assert_eq!(short, [0u8; 10]);
}

#[test]
fn one_reader_serves_many_threads() {
    let w = new_writer();
    let data = ramp(10_000, 0.001);
    assert_eq!(
        add(w, "big", &[100, 100], &data, &int8(64), None),
        BISTRO_OK
    );
    let (bytes, _) = finish(w, None);
    unsafe { bistro_delta_writer_free(w) };
    let reader = open(&bytes);
    struct Shared(*const bistro_delta_reader);
    // SAFETY: the reader is immutable after open (the header's promise this tests).
    unsafe impl Sync for Shared {}
    let shared = Shared(reader);
    let results: Vec<Vec<f32>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let shared = &shared;
                s.spawn(move || {
                    let mut dst = vec![0.0f32; 10_000];
                    let status = unsafe {
                        bistro_delta_reader_apply(shared.0, 0, dst.as_mut_ptr(), dst.len(), 1.0)
                    };
                    assert_eq!(status, BISTRO_OK);
                    dst
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for r in &results[1..] {
        assert_eq!(r, &results[0]);
    }
    unsafe { bistro_delta_reader_free(reader) };
}
