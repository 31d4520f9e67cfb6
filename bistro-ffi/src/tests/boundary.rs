//! The conventions every export shares: version and status names, NULL
//! arguments refused with outputs untouched (every `_free` accepting NULL),
//! the per-thread last error copied like `snprintf`, and caught panics.

// Each unsafe block here is a call of an export as C would make it; the
// arguments are live locals of the stated lengths, or deliberately NULL or
// misaligned, which the export must refuse. That is the safety argument of
// every block, so they carry no comment each.
#![allow(clippy::undocumented_unsafe_blocks)]

use std::ffi::{CStr, CString, c_char};
use std::ptr::{null, null_mut};

use super::{dense, header, last_error, new_writer, open, sample_delta};
use crate::status::bistro_status::*;
use crate::*;

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
