//! Tests of the boundary, calling the exports as C would: NULL and
//! misaligned pointers, wrong lengths, outputs untouched on failure, error
//! messages, caught panics, handle states, and agreement with bistro-core.

// Each unsafe block here is a call of an export as C would make it; the
// arguments are live locals of the stated lengths, or deliberately NULL or
// misaligned, which the export must refuse. That is the safety argument of
// every block, so they carry no comment each.
#![allow(clippy::undocumented_unsafe_blocks)]

use std::ffi::{CStr, CString, c_char};
use std::ptr::{null, null_mut};

use bistro_core::codec::{DeltaReader, Limits};
use bistro_core::pages::{self, DatasetParams};
use bistro_core::{Digest, Keypair};

use crate::status::bistro_status::*;
use crate::*;

const SEED: [u8; 32] = [7; 32];

fn last_error() -> String {
    let len = bistro_last_error_length();
    let mut buf = vec![0 as c_char; len + 1];
    let n = unsafe { bistro_last_error(buf.as_mut_ptr(), buf.len()) };
    assert_eq!(n, len);
    unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_str()
        .unwrap()
        .to_owned()
}

fn header() -> bistro_delta_header {
    let mut h = bistro_delta_header {
        base_revision: [3; 32],
        block: 4_000_123,
        uid: 17,
        hotkey: [0; 32],
    };
    assert_eq!(
        unsafe { bistro_public_key_from_seed(SEED.as_ptr(), h.hotkey.as_mut_ptr()) },
        BISTRO_OK
    );
    h
}

fn dense(dtype: bistro_dtype) -> bistro_encoding {
    bistro_encoding {
        kind: bistro_encoding_kind::BISTRO_ENCODING_DENSE as u32,
        dtype: dtype as u32,
        ..Default::default()
    }
}

fn top_k(k: u64, dtype: bistro_dtype) -> bistro_encoding {
    bistro_encoding {
        kind: bistro_encoding_kind::BISTRO_ENCODING_TOP_K as u32,
        dtype: dtype as u32,
        k,
        ..Default::default()
    }
}

fn int8(block_size: u32) -> bistro_encoding {
    bistro_encoding {
        kind: bistro_encoding_kind::BISTRO_ENCODING_INT8_BLOCK as u32,
        dtype: bistro_dtype::BISTRO_DTYPE_I8 as u32,
        block_size,
        ..Default::default()
    }
}

fn new_writer() -> *mut bistro_delta_writer {
    let mut w = null_mut();
    assert_eq!(
        unsafe { bistro_delta_writer_new(&header(), null(), &mut w) },
        BISTRO_OK
    );
    assert!(!w.is_null());
    w
}

fn add(
    w: *mut bistro_delta_writer,
    name: &str,
    shape: &[u64],
    data: &[f32],
    enc: &bistro_encoding,
    residual: Option<&mut [f32]>,
) -> bistro_status {
    let name = CString::new(name).unwrap();
    let residual = residual.map_or(null_mut(), |r| r.as_mut_ptr());
    unsafe {
        bistro_delta_writer_add_tensor(
            w,
            name.as_ptr(),
            shape.as_ptr(),
            shape.len(),
            data.as_ptr(),
            data.len(),
            enc,
            residual,
        )
    }
}

/// Finishes a memory writer, returning the bytes and the digest.
fn finish(w: *mut bistro_delta_writer, seed: Option<&[u8; 32]>) -> (Vec<u8>, [u8; 32]) {
    let mut buf = null_mut();
    let mut digest = [0u8; 32];
    let seed = seed.map_or(null(), |s| s.as_ptr());
    let status = unsafe { bistro_delta_writer_finish(w, seed, digest.as_mut_ptr(), &mut buf) };
    assert_eq!(status, BISTRO_OK, "{}", last_error());
    let bytes = unsafe { (*buf).bytes().to_vec() };
    let (data, len) = unsafe { (bistro_buffer_data(buf), bistro_buffer_len(buf)) };
    assert_eq!(unsafe { std::slice::from_raw_parts(data, len) }, &bytes[..]);
    unsafe { bistro_buffer_free(buf) };
    (bytes, digest)
}

fn open(bytes: &[u8]) -> *mut bistro_delta_reader {
    let mut r = null_mut();
    let status = unsafe { bistro_delta_reader_open(bytes.as_ptr(), bytes.len(), null(), &mut r) };
    assert_eq!(status, BISTRO_OK, "{}", last_error());
    r
}

fn ramp(n: usize, scale: f32) -> Vec<f32> {
    (0..n)
        .map(|i| ((i * 37 % 101) as f32 - 50.0) * scale)
        .collect()
}

/// A delta with one tensor of each kind of encoding.
fn sample_delta(seed: Option<&[u8; 32]>) -> (Vec<u8>, [u8; 32]) {
    let w = new_writer();
    assert_eq!(
        add(
            w,
            "a.weight",
            &[4, 8],
            &ramp(32, 0.01),
            &dense(bistro_dtype::BISTRO_DTYPE_F32),
            None
        ),
        BISTRO_OK
    );
    assert_eq!(
        add(
            w,
            "b.bias",
            &[100],
            &ramp(100, 0.5),
            &top_k(10, bistro_dtype::BISTRO_DTYPE_F16),
            None
        ),
        BISTRO_OK
    );
    assert_eq!(
        add(w, "c", &[3, 3, 3], &ramp(27, 1.0), &int8(4), None),
        BISTRO_OK
    );
    assert_eq!(
        add(
            w,
            "scalar",
            &[],
            &[0.25],
            &dense(bistro_dtype::BISTRO_DTYPE_BF16),
            None
        ),
        BISTRO_OK
    );
    let out = finish(w, seed);
    unsafe { bistro_delta_writer_free(w) };
    out
}

#[test]
fn version_and_status_names() {
    let v = unsafe { CStr::from_ptr(bistro_version()) };
    assert_eq!(v.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
    assert_eq!(bistro_abi_version(), BISTRO_ABI_VERSION);
    let mut names = std::collections::HashSet::new();
    for (code, status) in crate::status::ALL_STATUSES.iter().enumerate() {
        assert_eq!(*status as u32, code as u32, "codes are dense and in order");
        let name = unsafe { CStr::from_ptr(bistro_status_name(code as u32)) };
        assert!(format!("{status:?}") == name.to_str().unwrap());
        assert!(names.insert(name.to_owned()));
    }
    for unknown in [16, 999, u32::MAX] {
        let name = unsafe { CStr::from_ptr(bistro_status_name(unknown)) };
        assert_eq!(name.to_str().unwrap(), "BISTRO_UNKNOWN_STATUS");
    }
}

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
fn residual_keeps_what_top_k_dropped() {
    let data = ramp(64, 0.1);
    let mut residual = vec![0.0f32; 64];
    let w = new_writer();
    let enc = top_k(8, bistro_dtype::BISTRO_DTYPE_F32);
    assert_eq!(
        add(w, "t", &[64], &data, &enc, Some(&mut residual)),
        BISTRO_OK
    );
    let (bytes, _) = finish(w, None);
    unsafe { bistro_delta_writer_free(w) };
    let r = open(&bytes);
    let mut decoded = vec![0.0f32; 64];
    assert_eq!(
        unsafe { bistro_delta_reader_decode(r, 0, decoded.as_mut_ptr(), 64) },
        BISTRO_OK
    );
    unsafe { bistro_delta_reader_free(r) };
    assert_eq!(decoded.iter().filter(|&&x| x != 0.0).count(), 8);
    for i in 0..64 {
        // f32 top-k stores kept values exactly: data = decoded + residual.
        assert_eq!(decoded[i] + residual[i], data[i], "element {i}");
    }
}

#[test]
fn null_arguments_are_errors_and_outputs_stay_untouched() {
    let h = header();
    let mut w = 0x1234 as *mut bistro_delta_writer;
    let status = unsafe { bistro_delta_writer_new(null(), null(), &mut w) };
    assert_eq!(status, BISTRO_ERR_NULL_ARGUMENT);
    assert!(last_error().contains("header is NULL"), "{}", last_error());
    assert_eq!(w as usize, 0x1234);
    assert_eq!(
        unsafe { bistro_delta_writer_new(&h, null(), null_mut()) },
        BISTRO_ERR_NULL_ARGUMENT
    );

    let writer = new_writer();
    let enc = dense(bistro_dtype::BISTRO_DTYPE_F32);
    let data = [1.0f32; 4];
    let name = c"x";
    let shape = [4u64];
    let call = |w, n: *const c_char, s: *const u64, d: *const f32, e: *const bistro_encoding| unsafe {
        bistro_delta_writer_add_tensor(w, n, s, 1, d, 4, e, null_mut())
    };
    assert_eq!(
        call(
            null_mut(),
            name.as_ptr(),
            shape.as_ptr(),
            data.as_ptr(),
            &enc
        ),
        BISTRO_ERR_NULL_ARGUMENT
    );
    assert_eq!(
        call(writer, null(), shape.as_ptr(), data.as_ptr(), &enc),
        BISTRO_ERR_NULL_ARGUMENT
    );
    assert_eq!(
        call(writer, name.as_ptr(), null(), data.as_ptr(), &enc),
        BISTRO_ERR_NULL_ARGUMENT
    );
    assert_eq!(
        call(writer, name.as_ptr(), shape.as_ptr(), null(), &enc),
        BISTRO_ERR_NULL_ARGUMENT
    );
    assert_eq!(
        call(writer, name.as_ptr(), shape.as_ptr(), data.as_ptr(), null()),
        BISTRO_ERR_NULL_ARGUMENT
    );
    assert!(last_error().contains("encoding is NULL"));
    let mut buf = 0x77 as *mut bistro_buffer;
    assert_eq!(
        unsafe { bistro_delta_writer_finish(writer, null(), null_mut(), null_mut()) },
        BISTRO_ERR_NULL_ARGUMENT
    );
    // The writer is still open and usable after the rejected calls.
    assert_eq!(
        call(writer, name.as_ptr(), shape.as_ptr(), data.as_ptr(), &enc),
        BISTRO_OK
    );
    assert_eq!(
        unsafe { bistro_delta_writer_finish(null_mut(), null(), null_mut(), &mut buf) },
        BISTRO_ERR_NULL_ARGUMENT
    );
    assert_eq!(buf as usize, 0x77);
    unsafe { bistro_delta_writer_free(writer) };

    let (bytes, _) = sample_delta(None);
    let mut r = 0x99 as *mut bistro_delta_reader;
    assert_eq!(
        unsafe { bistro_delta_reader_open(null(), bytes.len(), null(), &mut r) },
        BISTRO_ERR_NULL_ARGUMENT
    );
    assert_eq!(r as usize, 0x99);
    let reader = open(&bytes);
    let mut count = 42usize;
    assert_eq!(
        unsafe { bistro_delta_reader_tensor_count(null(), &mut count) },
        BISTRO_ERR_NULL_ARGUMENT
    );
    assert_eq!(count, 42);
    assert_eq!(
        unsafe { bistro_delta_reader_tensor_count(reader, null_mut()) },
        BISTRO_ERR_NULL_ARGUMENT
    );
    assert_eq!(
        unsafe { bistro_delta_reader_digest(reader, null_mut()) },
        BISTRO_ERR_NULL_ARGUMENT
    );
    assert_eq!(
        unsafe { bistro_delta_reader_apply(reader, 0, null_mut(), 32, 1.0) },
        BISTRO_ERR_NULL_ARGUMENT
    );
    assert_eq!(
        unsafe { bistro_delta_reader_find(reader, null(), &mut count) },
        BISTRO_ERR_NULL_ARGUMENT
    );
    assert_eq!(count, 42);
    unsafe { bistro_delta_reader_free(reader) };

    // Every _free accepts NULL.
    unsafe {
        bistro_delta_writer_free(null_mut());
        bistro_delta_reader_free(null_mut());
        bistro_buffer_free(null_mut());
    }
    assert_eq!(unsafe { bistro_buffer_len(null()) }, 0);
    assert!(unsafe { bistro_buffer_data(null()) }.is_null());
}

#[test]
fn rejected_tensors_change_nothing() {
    let w = new_writer();
    let f32_dense = dense(bistro_dtype::BISTRO_DTYPE_F32);
    let mut data = ramp(16, 0.1);
    let mut residual = vec![0.5f32; 16];
    let before = residual.clone();
    let bytes_written = |w| {
        let mut n = 0u64;
        assert_eq!(
            unsafe { bistro_delta_writer_bytes_written(w, &mut n) },
            BISTRO_OK
        );
        n
    };
    let start = bytes_written(w);

    // Wrong element count for the shape.
    assert_eq!(
        add(w, "t", &[4, 5], &data, &f32_dense, Some(&mut residual)),
        BISTRO_ERR_INVALID_ARGUMENT
    );
    assert!(last_error().contains("20 elements"), "{}", last_error());
    // Unknown kind, unknown dtype, dense int8, unused field set, k > n.
    for bad in [
        bistro_encoding {
            kind: 9,
            ..f32_dense
        },
        bistro_encoding {
            dtype: 0,
            ..f32_dense
        },
        dense(bistro_dtype::BISTRO_DTYPE_I8),
        bistro_encoding { k: 3, ..f32_dense },
        bistro_encoding {
            block_size: 3,
            ..f32_dense
        },
        int8(0),
        bistro_encoding {
            dtype: bistro_dtype::BISTRO_DTYPE_F16 as u32,
            ..int8(4)
        },
        top_k(17, bistro_dtype::BISTRO_DTYPE_F32),
    ] {
        assert_eq!(
            add(w, "t", &[16], &data, &bad, Some(&mut residual)),
            BISTRO_ERR_INVALID_ARGUMENT,
            "{bad:?}"
        );
    }
    // A non-finite value, and one out of f16's range.
    data[5] = f32::NAN;
    assert_eq!(
        add(w, "t", &[16], &data, &f32_dense, Some(&mut residual)),
        BISTRO_ERR_NON_FINITE
    );
    data[5] = 1e6;
    let f16 = dense(bistro_dtype::BISTRO_DTYPE_F16);
    assert_eq!(
        add(w, "t", &[16], &data, &f16, Some(&mut residual)),
        BISTRO_ERR_INVALID_ARGUMENT
    );
    data[5] = 0.0;
    // An empty name, a name that is not UTF-8.
    assert_eq!(
        add(w, "", &[16], &data, &f32_dense, None),
        BISTRO_ERR_INVALID_ARGUMENT
    );
    let not_utf8 = [0xffu8, 0xfe, 0];
    let status = unsafe {
        bistro_delta_writer_add_tensor(
            w,
            not_utf8.as_ptr().cast(),
            [16u64].as_ptr(),
            1,
            data.as_ptr(),
            16,
            &f32_dense,
            null_mut(),
        )
    };
    assert_eq!(status, BISTRO_ERR_INVALID_ARGUMENT);
    assert!(last_error().contains("UTF-8"));
    // Residual overlapping the data.
    let mut both = ramp(17, 0.1);
    let p = both.as_mut_ptr();
    let status = unsafe {
        bistro_delta_writer_add_tensor(
            w,
            c"t".as_ptr(),
            [16u64].as_ptr(),
            1,
            p,
            16,
            &f32_dense,
            p.add(1),
        )
    };
    assert_eq!(status, BISTRO_ERR_INVALID_ARGUMENT);
    assert!(last_error().contains("overlap"), "{}", last_error());
    // Misaligned data.
    let raw = [0u32; 9];
    let misaligned = unsafe { raw.as_ptr().cast::<u8>().add(1).cast::<f32>() };
    let status = unsafe {
        bistro_delta_writer_add_tensor(
            w,
            c"t".as_ptr(),
            [8u64].as_ptr(),
            1,
            misaligned,
            8,
            &f32_dense,
            null_mut(),
        )
    };
    assert_eq!(status, BISTRO_ERR_INVALID_ARGUMENT);
    assert!(last_error().contains("aligned"), "{}", last_error());

    assert_eq!(residual, before, "rejected calls leave the residual alone");
    assert_eq!(bytes_written(w), start, "rejected calls write nothing");

    // A good tensor, then the same name again.
    assert_eq!(add(w, "t", &[16], &data, &f32_dense, None), BISTRO_OK);
    assert_eq!(bistro_last_error_length(), 0, "success clears the message");
    assert_eq!(
        add(w, "t", &[16], &data, &f32_dense, None),
        BISTRO_ERR_INVALID_ARGUMENT
    );
    assert!(last_error().contains("duplicate"));
    let (bytes, _) = finish(w, None);
    unsafe { bistro_delta_writer_free(w) };
    let core = DeltaReader::open(&bytes, &Limits::default()).unwrap();
    assert_eq!(core.len(), 1);
}

#[test]
fn writer_states() {
    // A seed that is not the hotkey's: rejected, writer still usable.
    let w = new_writer();
    let mut buf = null_mut();
    let other = [8u8; 32];
    assert_eq!(
        unsafe { bistro_delta_writer_finish(w, other.as_ptr(), null_mut(), &mut buf) },
        BISTRO_ERR_INVALID_ARGUMENT
    );
    assert!(buf.is_null());
    // The file finisher on a memory writer: rejected, writer still usable.
    assert_eq!(
        unsafe { bistro_delta_writer_finish_file(w, null(), null_mut()) },
        BISTRO_ERR_INVALID_STATE
    );
    assert!(last_error().contains("bistro_delta_writer_finish"));
    assert_eq!(
        add(
            w,
            "t",
            &[2],
            &[1.0, 2.0],
            &dense(bistro_dtype::BISTRO_DTYPE_F32),
            None
        ),
        BISTRO_OK
    );
    let (bytes, _) = finish(w, Some(&SEED));
    // Finished: every further call but free is refused.
    assert_eq!(
        unsafe { bistro_delta_writer_finish(w, null(), null_mut(), &mut buf) },
        BISTRO_ERR_INVALID_STATE
    );
    assert!(buf.is_null());
    assert_eq!(
        add(
            w,
            "u",
            &[1],
            &[1.0],
            &dense(bistro_dtype::BISTRO_DTYPE_F32),
            None
        ),
        BISTRO_ERR_INVALID_STATE
    );
    let mut n = 5u64;
    assert_eq!(
        unsafe { bistro_delta_writer_bytes_written(w, &mut n) },
        BISTRO_ERR_INVALID_STATE
    );
    assert_eq!(n, 5);
    unsafe { bistro_delta_writer_free(w) };
    let r = open(&bytes);
    assert_eq!(
        unsafe { bistro_delta_reader_verify_signature(r) },
        BISTRO_OK
    );
    unsafe { bistro_delta_reader_free(r) };
}

#[test]
fn file_writer_is_atomic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("delta.bin");
    let c_path = CString::new(path.to_str().unwrap()).unwrap();
    let h = header();

    // Freed unfinished: the temp file goes away and the path never appears.
    let mut w = null_mut();
    assert_eq!(
        unsafe { bistro_delta_writer_new_file(c_path.as_ptr(), &h, null(), &mut w) },
        BISTRO_OK
    );
    let temp = unsafe { (*w).temp_path().unwrap().to_path_buf() };
    assert!(temp.exists() && !path.exists());
    assert_eq!(
        add(
            w,
            "t",
            &[3],
            &[1.0, 2.0, 3.0],
            &dense(bistro_dtype::BISTRO_DTYPE_F32),
            None
        ),
        BISTRO_OK
    );
    unsafe { bistro_delta_writer_free(w) };
    assert!(!temp.exists() && !path.exists());

    // Finished: the temp file is renamed to the path.
    assert_eq!(
        unsafe { bistro_delta_writer_new_file(c_path.as_ptr(), &h, null(), &mut w) },
        BISTRO_OK
    );
    let temp = unsafe { (*w).temp_path().unwrap().to_path_buf() };
    assert_eq!(
        add(
            w,
            "t",
            &[3],
            &[1.0, 2.0, 3.0],
            &dense(bistro_dtype::BISTRO_DTYPE_F32),
            None
        ),
        BISTRO_OK
    );
    let mut buf = null_mut();
    assert_eq!(
        unsafe { bistro_delta_writer_finish(w, null(), null_mut(), &mut buf) },
        BISTRO_ERR_INVALID_STATE,
        "a file writer is finished with finish_file"
    );
    let mut digest = [0u8; 32];
    assert_eq!(
        unsafe { bistro_delta_writer_finish_file(w, SEED.as_ptr(), digest.as_mut_ptr()) },
        BISTRO_OK,
        "{}",
        last_error()
    );
    unsafe { bistro_delta_writer_free(w) };
    assert!(!temp.exists() && path.exists());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no temp files left"
    );

    let mut r = null_mut();
    assert_eq!(
        unsafe { bistro_delta_reader_open_file(c_path.as_ptr(), null(), &mut r) },
        BISTRO_OK
    );
    let mut d = [0u8; 32];
    assert_eq!(
        unsafe { bistro_delta_reader_digest(r, d.as_mut_ptr()) },
        BISTRO_OK
    );
    assert_eq!(d, digest);
    assert_eq!(
        unsafe { bistro_delta_reader_verify_signature(r) },
        BISTRO_OK
    );
    let mut x = [10.0f32; 3];
    assert_eq!(
        unsafe { bistro_delta_reader_apply(r, 0, x.as_mut_ptr(), 3, 1.0) },
        BISTRO_OK
    );
    assert_eq!(x, [11.0, 12.0, 13.0]);
    unsafe { bistro_delta_reader_free(r) };

    // A folder that does not exist, a missing file, an empty path.
    let missing = CString::new(dir.path().join("no/such/delta").to_str().unwrap()).unwrap();
    let mut w2 = null_mut();
    assert_eq!(
        unsafe { bistro_delta_writer_new_file(missing.as_ptr(), &h, null(), &mut w2) },
        BISTRO_ERR_IO
    );
    assert!(w2.is_null());
    assert_eq!(
        unsafe { bistro_delta_reader_open_file(missing.as_ptr(), null(), &mut r) },
        BISTRO_ERR_IO
    );
    assert_eq!(
        unsafe { bistro_delta_reader_open_file(c"".as_ptr(), null(), &mut r) },
        BISTRO_ERR_INVALID_ARGUMENT
    );
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

#[test]
fn limits() {
    let mut l = std::mem::MaybeUninit::<bistro_limits>::uninit();
    assert_eq!(unsafe { bistro_limits_default(l.as_mut_ptr()) }, BISTRO_OK);
    assert_eq!(Limits::from(&unsafe { l.assume_init() }), Limits::default());
    assert_eq!(
        unsafe { bistro_limits_for_model(1000, l.as_mut_ptr()) },
        BISTRO_OK
    );
    assert_eq!(
        Limits::from(&unsafe { l.assume_init() }),
        Limits::for_model(1000)
    );
    assert_eq!(
        unsafe { bistro_limits_default(null_mut()) },
        BISTRO_ERR_NULL_ARGUMENT
    );

    // A writer under small limits refuses what its reader would reject.
    let small = bistro_limits {
        max_total_elements: 10,
        ..(&Limits::default()).into()
    };
    let mut w = null_mut();
    assert_eq!(
        unsafe { bistro_delta_writer_new(&header(), &small, &mut w) },
        BISTRO_OK
    );
    assert_eq!(
        add(
            w,
            "t",
            &[11],
            &[0.0; 11],
            &dense(bistro_dtype::BISTRO_DTYPE_F32),
            None
        ),
        BISTRO_ERR_LIMIT_EXCEEDED
    );
    unsafe { bistro_delta_writer_free(w) };
}

#[test]
fn last_error_is_per_thread_and_copied_like_snprintf() {
    let reader = open(&sample_delta(None).0);
    let mut index = 0usize;
    // A message with multi-byte characters, to cut at a boundary.
    let name = CString::new("ééééé").unwrap();
    assert_eq!(
        unsafe { bistro_delta_reader_find(reader, name.as_ptr(), &mut index) },
        BISTRO_ERR_NOT_FOUND
    );
    let full = last_error();
    assert!(full.contains("ééééé"), "{full}");
    let len = bistro_last_error_length();
    assert_eq!(len, full.len());

    // NULL buffer / zero length: nothing written, length returned.
    assert_eq!(unsafe { bistro_last_error(null_mut(), 100) }, len);
    let mut buf = [b'#' as c_char; 64];
    assert_eq!(unsafe { bistro_last_error(buf.as_mut_ptr(), 0) }, len);
    assert!(buf.iter().all(|&c| c == b'#' as c_char));
    // Every cut is NUL-terminated valid UTF-8 and a prefix of the message.
    for cap in 1..=len + 1 {
        let mut buf = vec![b'#' as c_char; cap + 1];
        assert_eq!(unsafe { bistro_last_error(buf.as_mut_ptr(), cap) }, len);
        let s = unsafe { CStr::from_ptr(buf.as_ptr()) }.to_str().unwrap();
        assert!(full.starts_with(s) && s.len() < cap && s.len() + 4 > cap.min(len + 1) - 1);
        assert_eq!(buf[cap], b'#' as c_char, "nothing written past len");
    }

    // Another thread has its own message; this one's is unchanged.
    std::thread::spawn(|| {
        assert_eq!(bistro_last_error_length(), 0);
        assert_eq!(
            unsafe { bistro_limits_default(null_mut()) },
            BISTRO_ERR_NULL_ARGUMENT
        );
        assert!(last_error().contains("out is NULL"));
    })
    .join()
    .unwrap();
    assert_eq!(last_error(), full);
    unsafe { bistro_delta_reader_free(reader) };
}

#[test]
fn panics_become_a_status_and_a_message() {
    let status = crate::panic::guard(|| panic!("boom {}", 42));
    assert_eq!(status, BISTRO_ERR_PANIC);
    let message = last_error();
    assert!(
        message.contains("boom 42") && message.contains("bug"),
        "{message}"
    );
    let status = crate::panic::guard(|| std::panic::panic_any(17u32));
    assert_eq!(status, BISTRO_ERR_PANIC);
    assert!(last_error().contains("no message"));
    assert_eq!(crate::panic::guard_value(5, || panic!("x")), 5);
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
