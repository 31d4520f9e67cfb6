//! `bistro_delta_writer`: residuals, rejected tensors that change nothing,
//! the writer's states, atomic file writing, and writers under limits.

// Each unsafe block here is a call of an export as C would make it; the
// arguments are live locals of the stated lengths, or deliberately NULL or
// misaligned, which the export must refuse. That is the safety argument of
// every block, so they carry no comment each.
#![allow(clippy::undocumented_unsafe_blocks)]

use std::ffi::CString;
use std::ptr::{null, null_mut};

use bistro_core::codec::{DeltaReader, Limits};

use super::{SEED, add, dense, finish, header, int8, last_error, new_writer, open, ramp, top_k};
use crate::status::bistro_status::*;
use crate::*;

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
