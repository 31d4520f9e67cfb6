//! `bistro_delta_reader`: a delta validated once when opened (from a copy
//! of a caller's buffer, or memory-mapped from a file), then read: header,
//! digest, signature, tensor names/shapes/encodings, apply and decode.

use std::ffi::{CString, c_char};

use bistro_core::codec::{DeltaBuf, DeltaReader, Encoding, MappedDelta, TensorView, open_file};
use bistro_core::{Error, Result};

use crate::ffi;
use crate::panic;
use crate::status::{Failure, FfiResult, bistro_status};
use crate::types::{bistro_delta_header, bistro_encoding, bistro_limits, limits_or_default};
use crate::version::{BISTRO_DIGEST_LEN, BISTRO_SIGNATURE_LEN};

/// An open, validated delta. Immutable after opening: every function on a
/// reader may be called from several threads at once (each applying into
/// its own buffer). Free it once no thread uses it.
pub struct bistro_delta_reader {
    tensors: Vec<TensorMeta>,
    /// Indices into `tensors`, sorted by name (names are unique).
    by_name: Vec<usize>,
    source: Source,
}

/// What `bistro_delta_reader_tensor_info` reports, kept with NUL-terminated
/// names and shapes so that the info's pointers stay valid with the reader.
struct TensorMeta {
    name: Box<str>,
    c_name: CString,
    shape: Box<[u64]>,
    encoding: Encoding,
    elements: u64,
    payload_offset: u64,
    payload_length: u64,
}

enum Source {
    Owned(DeltaBuf),
    Mapped(MappedDelta),
}

impl bistro_delta_reader {
    fn new(source: Source) -> Result<Self> {
        let tensors = {
            let collect = |r: &DeltaReader<'_>| -> Result<Vec<TensorMeta>> {
                r.tensors().map(|t| meta(&t)).collect()
            };
            match &source {
                Source::Owned(o) => collect(&o.reader()),
                Source::Mapped(m) => collect(&m.reader()),
            }
        }?;
        let mut by_name: Vec<usize> = (0..tensors.len()).collect();
        by_name.sort_unstable_by(|&a, &b| tensors[a].name.cmp(&tensors[b].name));
        Ok(bistro_delta_reader {
            tensors,
            by_name,
            source,
        })
    }

    fn with_reader<R>(&self, f: impl FnOnce(&DeltaReader<'_>) -> R) -> R {
        match &self.source {
            Source::Owned(o) => f(&o.reader()),
            Source::Mapped(m) => f(&m.reader()),
        }
    }

    fn find(&self, name: &str) -> Option<usize> {
        let at = self
            .by_name
            .binary_search_by(|&i| self.tensors.get(i).map_or("", |t| &*t.name).cmp(name))
            .ok()?;
        self.by_name.get(at).copied()
    }

    fn tensor_meta(&self, index: usize) -> FfiResult<&TensorMeta> {
        self.tensors.get(index).ok_or_else(|| {
            Failure::invalid(format!(
                "tensor index {index} is out of range: the delta has {} tensors",
                self.tensors.len()
            ))
        })
    }

    /// Runs `f` on tensor `index` after checking `len` against its size.
    fn with_tensor(
        &self,
        index: usize,
        len: usize,
        f: impl FnOnce(&TensorView<'_>) -> Result<()>,
    ) -> FfiResult {
        let meta = self.tensor_meta(index)?;
        if len as u64 != meta.elements {
            return Err(Failure::invalid(format!(
                "tensor {:?} has {} elements, the buffer has {len}",
                meta.name, meta.elements
            )));
        }
        self.with_reader(|r| f(&r.tensor(&meta.name)?))
            .map_err(Failure::from)
    }
}

fn meta(t: &TensorView<'_>) -> Result<TensorMeta> {
    let c_name = CString::new(t.name()).map_err(|_| {
        // The reader rejects names with NUL bytes when it opens a delta.
        Error::corrupt("delta", format!("tensor {:?}", t.name()), "NUL in name")
    })?;
    Ok(TensorMeta {
        name: t.name().into(),
        c_name,
        shape: t.shape().into(),
        encoding: t.encoding(),
        elements: t.element_count(),
        payload_offset: t.payload_offset(),
        payload_length: t.payload().len() as u64,
    })
}

/// Opens a delta from `len` bytes at `data`, validating all of it against
/// `limits` (NULL: the defaults): structure, every table entry, top-k
/// indices, and the digest. The bytes are copied: the caller's buffer may
/// be freed or reused as soon as this returns. On success `*reader_out` is
/// a new reader to free with `bistro_delta_reader_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bistro_delta_reader_open(
    data: *const u8,
    len: usize,
    limits: *const bistro_limits,
    reader_out: *mut *mut bistro_delta_reader,
) -> bistro_status {
    panic::guard(|| {
        // SAFETY: pointers valid for the lengths given (contract).
        let (data, limits, out) = unsafe {
            (
                ffi::arg_slice(data, len, "data")?,
                limits_or_default(limits)?,
                ffi::out(reader_out, "reader_out")?,
            )
        };
        // Check the size before copying, so a huge buffer is not copied to
        // be rejected.
        if len as u64 > limits.max_file_size {
            return Err(Error::limit("delta size", limits.max_file_size, len as u64).into());
        }
        let owned = DeltaBuf::open(data.to_vec(), &limits)?;
        let reader = bistro_delta_reader::new(Source::Owned(owned))?;
        out.write(ffi::into_handle(reader));
        Ok(())
    })
}

/// Memory-maps the delta file at `path` (NUL-terminated) and validates it
/// as `bistro_delta_reader_open` does, without copying it. Map only files
/// this process owns: another process changing the file while it is mapped
/// changes what is read. On success `*reader_out` is a new reader.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bistro_delta_reader_open_file(
    path: *const c_char,
    limits: *const bistro_limits,
    reader_out: *mut *mut bistro_delta_reader,
) -> bistro_status {
    panic::guard(|| {
        // SAFETY: pointers valid (contract).
        let (path, limits, out) = unsafe {
            (
                ffi::arg_path(path, "path")?,
                limits_or_default(limits)?,
                ffi::out(reader_out, "reader_out")?,
            )
        };
        let mapped = open_file(path, &limits)?;
        let reader = bistro_delta_reader::new(Source::Mapped(mapped))?;
        out.write(ffi::into_handle(reader));
        Ok(())
    })
}

/// Frees a reader (and its copy or mapping of the delta). Pointers obtained
/// from it (tensor names and shapes) become invalid. NULL is accepted.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bistro_delta_reader_free(reader: *mut bistro_delta_reader) {
    // SAFETY: NULL or a reader from this library not yet freed (contract).
    panic::guard_value((), || unsafe { ffi::free_handle(reader) })
}

/// Runs a reader getter: checks `reader` and `out`, writes `f`'s value.
///
/// # Safety
/// `reader` is NULL or a live reader; `out` is NULL or valid for one `T`.
unsafe fn get<T>(
    reader: *const bistro_delta_reader,
    out: *mut T,
    f: impl FnOnce(&bistro_delta_reader) -> FfiResult<T>,
) -> bistro_status {
    panic::guard(|| {
        // SAFETY: forwarded contract.
        let (reader, out) = unsafe { (ffi::arg_ref(reader, "reader")?, ffi::out(out, "out")?) };
        out.write(f(reader)?);
        Ok(())
    })
}

/// The delta's header (base revision, block, uid, hotkey), into `*out`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bistro_delta_reader_header(
    reader: *const bistro_delta_reader,
    out: *mut bistro_delta_header,
) -> bistro_status {
    // SAFETY: forwarded contract.
    unsafe { get(reader, out, |r| Ok(r.with_reader(|d| d.header().into()))) }
}

/// The delta's 32-byte content digest (checked when it was opened), into
/// `out` (32 bytes).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bistro_delta_reader_digest(
    reader: *const bistro_delta_reader,
    out: *mut u8,
) -> bistro_status {
    let out = out.cast::<[u8; BISTRO_DIGEST_LEN]>();
    // SAFETY: forwarded contract.
    unsafe { get(reader, out, |r| Ok(r.with_reader(|d| d.digest().0))) }
}

/// The 64-byte signature in the delta's footer (all zero when unsigned;
/// not checked: see `bistro_delta_reader_verify_signature`), into `out`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bistro_delta_reader_signature(
    reader: *const bistro_delta_reader,
    out: *mut u8,
) -> bistro_status {
    let out = out.cast::<[u8; BISTRO_SIGNATURE_LEN]>();
    // SAFETY: forwarded contract.
    unsafe { get(reader, out, |r| Ok(r.with_reader(|d| d.signature().0))) }
}

/// Checks that the footer holds a valid sr25519 signature of the digest by
/// the header's hotkey: `BISTRO_OK`, or `BISTRO_ERR_BAD_SIGNATURE` (also
/// for an unsigned delta).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bistro_delta_reader_verify_signature(
    reader: *const bistro_delta_reader,
) -> bistro_status {
    panic::guard(|| {
        // SAFETY: `reader` is NULL or a live reader (contract).
        let reader = unsafe { ffi::arg_ref(reader, "reader") }?;
        reader.with_reader(|d| d.verify_signature())?;
        Ok(())
    })
}

/// The number of tensors, into `*out`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bistro_delta_reader_tensor_count(
    reader: *const bistro_delta_reader,
    out: *mut usize,
) -> bistro_status {
    // SAFETY: forwarded contract.
    unsafe { get(reader, out, |r| Ok(r.tensors.len())) }
}

/// The number of elements over all tensors, into `*out`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bistro_delta_reader_total_elements(
    reader: *const bistro_delta_reader,
    out: *mut u64,
) -> bistro_status {
    // SAFETY: forwarded contract.
    unsafe { get(reader, out, |r| Ok(r.with_reader(|d| d.total_elements()))) }
}

/// The index of the tensor named `name` (NUL-terminated), into `*out`, or
/// `BISTRO_ERR_NOT_FOUND`. Indices follow the file's order, `0..count`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bistro_delta_reader_find(
    reader: *const bistro_delta_reader,
    name: *const c_char,
    out: *mut usize,
) -> bistro_status {
    // SAFETY: `name` is NULL or NUL-terminated (contract).
    let name = unsafe { ffi::arg_str(name, "name") };
    // SAFETY: forwarded contract.
    unsafe {
        get(reader, out, |r| {
            let name = name?;
            r.find(name)
                .ok_or_else(|| Failure::from(Error::NotFound(format!("tensor {name:?}"))))
        })
    }
}

/// What `bistro_delta_reader_tensor_info` tells about one tensor. Its
/// pointers borrow from the reader: valid until the reader is freed.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct bistro_tensor_info {
    /// The tensor's name, NUL-terminated UTF-8.
    pub name: *const c_char,
    /// The name's length in bytes (without the NUL).
    pub name_len: usize,
    /// The shape: `rank` dimensions, outermost first (NULL-free; may point
    /// at nothing when `rank` is 0).
    pub shape: *const u64,
    /// The number of dimensions.
    pub rank: usize,
    /// The number of elements (the product of the shape): the length of a
    /// buffer for `bistro_delta_reader_apply`.
    pub element_count: u64,
    /// How the values are stored.
    pub encoding: bistro_encoding,
    /// Where the tensor's payload starts in the file.
    pub payload_offset: u64,
    /// The payload's length in bytes.
    pub payload_length: u64,
}

/// Describes tensor `index` (`0..count`) into `*out`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bistro_delta_reader_tensor_info(
    reader: *const bistro_delta_reader,
    index: usize,
    out: *mut bistro_tensor_info,
) -> bistro_status {
    // SAFETY: forwarded contract.
    unsafe {
        get(reader, out, |r| {
            let m = r.tensor_meta(index)?;
            Ok(bistro_tensor_info {
                name: m.c_name.as_ptr(),
                name_len: m.name.len(),
                shape: m.shape.as_ptr(),
                rank: m.shape.len(),
                element_count: m.elements,
                encoding: bistro_encoding::from_core(m.encoding),
                payload_offset: m.payload_offset,
                payload_length: m.payload_length,
            })
        })
    }
}

/// Checks every value of every tensor for NaN and infinity: `BISTRO_OK`,
/// or `BISTRO_ERR_NON_FINITE` naming the first bad tensor and element.
/// Call it before applying a delta from someone else.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bistro_delta_reader_check_finite(
    reader: *const bistro_delta_reader,
) -> bistro_status {
    panic::guard(|| {
        // SAFETY: `reader` is NULL or a live reader (contract).
        let reader = unsafe { ffi::arg_ref(reader, "reader") }?;
        reader.with_reader(|d| d.check_all_finite())?;
        Ok(())
    })
}

/// `dst[i] += alpha * value[i]` for every stored element of tensor `index`
/// (top-k: only the kept ones), exactly as validators apply it. `dst` holds
/// `len` floats, which must equal the tensor's `element_count`; it is not
/// changed when the call fails. Several threads may apply from one reader
/// at once into different buffers.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bistro_delta_reader_apply(
    reader: *const bistro_delta_reader,
    index: usize,
    dst: *mut f32,
    len: usize,
    alpha: f32,
) -> bistro_status {
    panic::guard(|| {
        // SAFETY: pointers valid for the lengths given (contract).
        let (reader, dst) = unsafe {
            (
                ffi::arg_ref(reader, "reader")?,
                ffi::arg_slice_mut(dst, len, "dst")?,
            )
        };
        if !alpha.is_finite() {
            return Err(Failure::invalid(format!(
                "alpha is {alpha}; it must be finite"
            )));
        }
        reader.with_tensor(index, len, |t| t.apply(dst, alpha))
    })
}

/// Writes the values of tensor `index` into `dst` (`len` floats, equal to
/// its `element_count`; zeros where top-k kept nothing). `dst` need not be
/// initialized; it is not written when the call fails.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bistro_delta_reader_decode(
    reader: *const bistro_delta_reader,
    index: usize,
    dst: *mut f32,
    len: usize,
) -> bistro_status {
    panic::guard(|| {
        // SAFETY: `reader` is NULL or a live reader (contract).
        let reader = unsafe { ffi::arg_ref(reader, "reader") }?;
        let meta = reader.tensor_meta(index)?;
        if len as u64 != meta.elements {
            return Err(Failure::invalid(format!(
                "tensor {:?} has {} elements, the buffer has {len}",
                meta.name, meta.elements
            )));
        }
        // SAFETY: `dst` is valid for `len` writes (contract); checks done.
        let dst = unsafe { ffi::out_slice_zeroed(dst, len, "dst") }?;
        reader.with_tensor(index, len, |t| t.decode_into(dst))
    })
}
