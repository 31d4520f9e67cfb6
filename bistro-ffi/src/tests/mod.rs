//! Tests of the boundary, calling the exports as C would: NULL and
//! misaligned pointers, wrong lengths, outputs untouched on failure, error
//! messages, caught panics, handle states, and agreement with bistro-core.
//!
//! One file per family of exports; this one holds only the helpers they
//! share (a header, encodings, a writer, a sample delta, the last error).

// Each unsafe block here is a call of an export as C would make it; the
// arguments are live locals of the stated lengths, or deliberately NULL or
// misaligned, which the export must refuse. That is the safety argument of
// every block, so they carry no comment each.
#![allow(clippy::undocumented_unsafe_blocks)]

use std::ffi::{CStr, CString, c_char};
use std::ptr::{null, null_mut};

use crate::status::bistro_status::*;
use crate::*;

mod boundary;
mod pages_weights;
mod reader;
mod writer;

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
