//! `bistro_delta_writer`: encodes a delta one tensor at a time, into memory
//! (finished into a `bistro_buffer`) or into a file (finished by an atomic
//! rename).

use std::ffi::c_char;
use std::fs::File;
use std::io::BufWriter;

use bistro_core::codec::{DeltaHeader, DeltaWriter, Encoding, Limits};
use bistro_core::util::atomic::TempFile;
use bistro_core::{Digest, Error, Keypair};

use crate::buffer::bistro_buffer;
use crate::ffi::{self, Out};
use crate::panic;
use crate::status::{Failure, FfiResult, bistro_status};
use crate::types::{bistro_delta_header, bistro_encoding, bistro_limits, limits_or_default};
use crate::version::{BISTRO_DIGEST_LEN, BISTRO_SEED_LEN};

/// Bytes buffered between the encoder and a delta file.
const FILE_BUFFER: usize = 1 << 20;

/// A delta being written. Not thread-safe: use one writer from one thread
/// at a time (different writers may be used from different threads).
pub struct bistro_delta_writer {
    state: State,
}

enum State {
    /// Writing into memory; finished with `bistro_delta_writer_finish`.
    Memory(DeltaWriter<Vec<u8>>),
    /// Writing into a temp file; finished with `bistro_delta_writer_finish_file`.
    /// Dropping it closes and removes the temp file.
    File {
        writer: DeltaWriter<BufWriter<File>>,
        temp: TempFile,
    },
    /// Finished successfully.
    Finished,
    /// Failed (an I/O error, a failed finish, or a caught panic): the
    /// output is incomplete and was discarded.
    Failed,
}

impl bistro_delta_writer {
    /// Refuses writers that are finished or failed.
    fn check_open(&self) -> FfiResult {
        match self.state {
            State::Memory(_) | State::File { .. } => Ok(()),
            State::Finished => Err(Failure::state("the delta writer was already finished")),
            State::Failed => Err(Failure::state(
                "the delta writer failed earlier; its output was discarded",
            )),
        }
    }

    fn header(&self) -> Option<&DeltaHeader> {
        match &self.state {
            State::Memory(w) => Some(w.header()),
            State::File { writer, .. } => Some(writer.header()),
            _ => None,
        }
    }

    fn add_tensor(
        &mut self,
        name: &str,
        shape: &[u64],
        data: &[f32],
        encoding: Encoding,
        residual: Option<&mut [f32]>,
    ) -> FfiResult {
        self.check_open()?;
        // Failed while the core writer runs, so a panic leaves it refusing use.
        let mut state = std::mem::replace(&mut self.state, State::Failed);
        let result = match &mut state {
            State::Memory(w) => w.add_tensor(name, shape, data, encoding, residual),
            State::File { writer, .. } => writer.add_tensor(name, shape, data, encoding, residual),
            State::Finished | State::Failed => Ok(()), // excluded by check_open
        };
        // After an I/O error the output is incomplete: drop it (and the temp file).
        if !matches!(result, Err(Error::Io { .. })) {
            self.state = state;
        }
        result.map_err(Failure::from)
    }

    /// The key pair of `seed`, checked against the header's hotkey before
    /// anything is consumed.
    fn signer(&self, seed: Option<&[u8; BISTRO_SEED_LEN]>) -> FfiResult<Option<Keypair>> {
        let Some(seed) = seed else { return Ok(None) };
        let keypair = Keypair::from_seed(*seed)?;
        if let Some(header) = self.header()
            && keypair.public() != header.hotkey
        {
            return Err(Failure::invalid(format!(
                "the signing seed's public key {} is not the header's hotkey {}",
                keypair.public(),
                header.hotkey
            )));
        }
        Ok(Some(keypair))
    }

    fn finish_memory(&mut self, signer: Option<&Keypair>) -> FfiResult<(Vec<u8>, Digest)> {
        self.check_open()?;
        if matches!(self.state, State::File { .. }) {
            return Err(Failure::state(
                "this delta writer writes to a file: finish it with bistro_delta_writer_finish_file",
            ));
        }
        let State::Memory(writer) = std::mem::replace(&mut self.state, State::Failed) else {
            return Err(Failure::state("the delta writer is not open")); // excluded above
        };
        let out = match signer {
            Some(k) => writer.finish_signed(k)?,
            None => writer.finish()?,
        };
        self.state = State::Finished;
        Ok(out)
    }

    fn finish_file(&mut self, signer: Option<&Keypair>) -> FfiResult<Digest> {
        self.check_open()?;
        if matches!(self.state, State::Memory(_)) {
            return Err(Failure::state(
                "this delta writer writes to memory: finish it with bistro_delta_writer_finish",
            ));
        }
        let State::File { writer, temp } = std::mem::replace(&mut self.state, State::Failed) else {
            return Err(Failure::state("the delta writer is not open")); // excluded above
        };
        let (out, digest) = match signer {
            Some(k) => writer.finish_signed(k)?,
            None => writer.finish()?,
        };
        let file = out
            .into_inner()
            .map_err(|e| Error::io("<delta output>", e.into_error()))?;
        // The same open file as the temp file's own handle: closing this
        // one first, then `commit` syncs and renames.
        drop(file);
        temp.commit()?;
        self.state = State::Finished;
        Ok(digest)
    }
}

/// Starts a delta in memory with `header`; `limits` NULL means the
/// defaults. On success `*writer_out` is a new writer to free with
/// `bistro_delta_writer_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bistro_delta_writer_new(
    header: *const bistro_delta_header,
    limits: *const bistro_limits,
    writer_out: *mut *mut bistro_delta_writer,
) -> bistro_status {
    panic::guard(|| {
        // SAFETY: pointers valid as documented (contract).
        let (header, limits, out) = unsafe { new_args(header, limits, writer_out) }?;
        let writer = DeltaWriter::new(Vec::new(), &header, &limits)?;
        out.write(ffi::into_handle(bistro_delta_writer {
            state: State::Memory(writer),
        }));
        Ok(())
    })
}

/// Starts a delta that is streamed to a temp file beside `path` (a
/// NUL-terminated path whose folder must exist) and renamed to `path` by
/// `bistro_delta_writer_finish_file`: `path` never holds a partial delta.
/// Freeing the writer unfinished removes the temp file. `limits` NULL means
/// the defaults. On success `*writer_out` is a new writer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bistro_delta_writer_new_file(
    path: *const c_char,
    header: *const bistro_delta_header,
    limits: *const bistro_limits,
    writer_out: *mut *mut bistro_delta_writer,
) -> bistro_status {
    panic::guard(|| {
        // SAFETY: pointers valid as documented (contract).
        let (header, limits, out) = unsafe { new_args(header, limits, writer_out) }?;
        // SAFETY: `path` is a NUL-terminated string (contract).
        let path = unsafe { ffi::arg_path(path, "path") }?;
        let mut temp = TempFile::beside(path)?;
        let file = temp
            .file()?
            .try_clone()
            .map_err(|e| Error::io(temp.path(), e))?;
        let writer = DeltaWriter::new(
            BufWriter::with_capacity(FILE_BUFFER, file),
            &header,
            &limits,
        )?;
        out.write(ffi::into_handle(bistro_delta_writer {
            state: State::File { writer, temp },
        }));
        Ok(())
    })
}

/// The checked arguments both constructors take.
///
/// # Safety
/// As the constructors' contract.
unsafe fn new_args<'a>(
    header: *const bistro_delta_header,
    limits: *const bistro_limits,
    writer_out: *mut *mut bistro_delta_writer,
) -> FfiResult<(DeltaHeader, Limits, Out<'a, *mut bistro_delta_writer>)> {
    // SAFETY: forwarded contract.
    unsafe {
        let header = DeltaHeader::from(ffi::arg_ref(header, "header")?);
        let limits = limits_or_default(limits)?;
        let out = ffi::out(writer_out, "writer_out")?;
        Ok((header, limits, out))
    }
}

/// Encodes one tensor and appends it to the delta.
///
/// - `name`: NUL-terminated UTF-8, unique within the delta (the
///   checkpoint's tensor name).
/// - `shape`/`rank`: the dimensions, outermost first (`shape` may be NULL
///   when `rank` is 0: a scalar).
/// - `data`/`len`: `len` floats in row-major order; `len` must equal the
///   product of the shape. May be NULL when `len` is 0.
/// - `encoding`: how to store the values (see `bistro_encoding`).
/// - `residual`: NULL, or `len` floats of error feedback that must not
///   overlap `data`: the writer adds `data` into `residual`, encodes the
///   sum, and leaves in `residual` what the encoding dropped, to be passed
///   with the next delta. Start with zeros.
///
/// Rejected arguments (bad name, shape, encoding, a duplicate name, a
/// non-finite value, a value out of the dtype's range, a limit) return an
/// error and change nothing: neither the delta nor `residual`. An I/O error
/// fails the writer: later calls return `BISTRO_ERR_INVALID_STATE`.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn bistro_delta_writer_add_tensor(
    writer: *mut bistro_delta_writer,
    name: *const c_char,
    shape: *const u64,
    rank: usize,
    data: *const f32,
    len: usize,
    encoding: *const bistro_encoding,
    residual: *mut f32,
) -> bistro_status {
    panic::guard(|| {
        // SAFETY: pointers valid for the lengths given (contract).
        unsafe {
            let writer = ffi::arg_mut(writer, "writer")?;
            let name = ffi::arg_str(name, "name")?;
            let shape = ffi::arg_slice(shape, rank, "shape")?;
            let encoding = ffi::arg_ref(encoding, "encoding")?.to_core()?;
            let (data, residual) =
                ffi::arg_slice_with_inout(data, residual, len, ("data", "residual"))?;
            writer.add_tensor(name, shape, data, encoding, residual)
        }
    })
}

/// Bytes written so far (the header and the tensors added), into `*out`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bistro_delta_writer_bytes_written(
    writer: *const bistro_delta_writer,
    out: *mut u64,
) -> bistro_status {
    panic::guard(|| {
        // SAFETY: pointers valid (contract).
        let (writer, out) = unsafe { (ffi::arg_ref(writer, "writer")?, ffi::out(out, "out")?) };
        writer.check_open()?;
        let n = match &writer.state {
            State::Memory(w) => w.bytes_written(),
            State::File { writer, .. } => writer.bytes_written(),
            State::Finished | State::Failed => 0, // excluded by check_open
        };
        out.write(n);
        Ok(())
    })
}

/// Finishes a memory writer: writes the table and footer, signs the digest
/// when `signing_seed` is not NULL (32 bytes: the hotkey's `secretSeed`,
/// whose public key must be the header's hotkey), and hands the delta to
/// `*buffer_out` (free it with `bistro_buffer_free`). `digest_out`, when
/// not NULL, receives the delta's 32-byte digest.
///
/// Argument errors (NULL `buffer_out`, a seed that is not the hotkey's, a
/// file writer) leave the writer as it was. Otherwise the writer is
/// finished, or failed if finishing failed; either way it accepts no more
/// calls but `bistro_delta_writer_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bistro_delta_writer_finish(
    writer: *mut bistro_delta_writer,
    signing_seed: *const u8,
    digest_out: *mut u8,
    buffer_out: *mut *mut bistro_buffer,
) -> bistro_status {
    panic::guard(|| {
        // SAFETY: pointers valid for the sizes documented (contract).
        let (writer, seed, digest_out, buffer_out) = unsafe {
            (
                ffi::arg_mut(writer, "writer")?,
                ffi::arg_array_opt::<BISTRO_SEED_LEN>(signing_seed, "signing_seed")?,
                ffi::out_opt(digest_out.cast::<[u8; BISTRO_DIGEST_LEN]>(), "digest_out")?,
                ffi::out(buffer_out, "buffer_out")?,
            )
        };
        let signer = writer.signer(seed)?;
        let (bytes, digest) = writer.finish_memory(signer.as_ref())?;
        if let Some(d) = digest_out {
            d.write(digest.0);
        }
        buffer_out.write(ffi::into_handle(bistro_buffer::new(bytes)));
        Ok(())
    })
}

/// Finishes a file writer: writes the table and footer (signed when
/// `signing_seed` is not NULL, as `bistro_delta_writer_finish`), flushes
/// the temp file to disk and renames it to the writer's path. `digest_out`,
/// when not NULL, receives the 32-byte digest. On failure the temp file is
/// removed and the path is untouched.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bistro_delta_writer_finish_file(
    writer: *mut bistro_delta_writer,
    signing_seed: *const u8,
    digest_out: *mut u8,
) -> bistro_status {
    panic::guard(|| {
        // SAFETY: pointers valid for the sizes documented (contract).
        let (writer, seed, digest_out) = unsafe {
            (
                ffi::arg_mut(writer, "writer")?,
                ffi::arg_array_opt::<BISTRO_SEED_LEN>(signing_seed, "signing_seed")?,
                ffi::out_opt(digest_out.cast::<[u8; BISTRO_DIGEST_LEN]>(), "digest_out")?,
            )
        };
        let signer = writer.signer(seed)?;
        let digest = writer.finish_file(signer.as_ref())?;
        if let Some(d) = digest_out {
            d.write(digest.0);
        }
        Ok(())
    })
}

/// Frees a writer, finished or not (an unfinished file writer's temp file
/// is removed). NULL is accepted and ignored.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bistro_delta_writer_free(writer: *mut bistro_delta_writer) {
    // SAFETY: NULL or a writer from this library not yet freed (contract).
    panic::guard_value((), || unsafe { ffi::free_handle(writer) })
}

#[cfg(test)]
impl bistro_delta_writer {
    /// The temp file of a file writer (for tests).
    pub(crate) fn temp_path(&self) -> Option<&std::path::Path> {
        match &self.state {
            State::File { temp, .. } => Some(temp.path()),
            _ => None,
        }
    }
}
