//! [`DeltaReader`]: a validated, zero-copy view of a delta held in memory or
//! memory-mapped ([`open_file`]).

use std::borrow::Cow;
use std::fs::File;
use std::path::Path;

use rayon::prelude::*;

use super::format::DeltaHeader;
use super::limits::Limits;
use super::open::Layout;
use super::view::TensorView;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::identity::Signature;

/// A delta whose every structural rule was checked when it was opened
/// (header, table, payload layout, top-k indices, digest): reading values
/// from it cannot fail on the format any more, only on what the values are
/// ([`check_all_finite`](DeltaReader::check_all_finite)) or on the caller's
/// buffers.
///
/// ```
/// use bistro_core::codec::{DeltaHeader, DeltaReader, DeltaWriter, DType, Encoding, Limits};
/// let limits = Limits::default();
/// let mut writer = DeltaWriter::new(Vec::new(), &DeltaHeader::default(), &limits)?;
/// writer.add_tensor("w", &[2, 2], &[0.5, -1.0, 0.0, 2.0], Encoding::Dense(DType::F32), None)?;
/// let (bytes, digest) = writer.finish()?;
///
/// let reader = DeltaReader::open(&bytes, &limits)?;
/// assert_eq!(reader.digest(), digest);
/// reader.check_all_finite()?;
/// let mut weights = vec![1.0f32; 4];
/// reader.tensor("w")?.apply(&mut weights, 1.0)?;
/// assert_eq!(weights, [1.5, 0.0, 1.0, 3.0]);
/// # Ok::<(), bistro_core::Error>(())
/// ```
#[derive(Clone)]
pub struct DeltaReader<'a> {
    bytes: &'a [u8],
    layout: Cow<'a, Layout>,
}

impl<'a> DeltaReader<'a> {
    /// Validates `bytes` as a delta within `limits` (reads all of it: the
    /// digest covers every byte) and returns a reader over them, copying nothing.
    pub fn open(bytes: &'a [u8], limits: &Limits) -> Result<Self> {
        Ok(DeltaReader {
            bytes,
            layout: Cow::Owned(Layout::parse(bytes, limits)?),
        })
    }

    /// The header: base revision, block, uid, hotkey.
    pub fn header(&self) -> &DeltaHeader {
        &self.layout.header
    }

    /// The content digest (checked against the content when opened).
    pub fn digest(&self) -> Digest {
        self.layout.digest
    }

    /// The signature in the footer (all zero when unsigned; not checked by `open`).
    pub fn signature(&self) -> Signature {
        self.layout.signature
    }

    /// Checks that the footer holds a valid signature of the digest by the
    /// header's hotkey.
    #[cfg(feature = "sr25519")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sr25519")))]
    pub fn verify_signature(&self) -> Result<()> {
        if self.layout.signature.is_none() {
            return Err(Error::BadSignature("the delta is not signed".into()));
        }
        self.layout
            .header
            .hotkey
            .verify(&self.layout.digest.0, &self.layout.signature)
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.layout.entries.len()
    }

    /// Whether the delta holds no tensors.
    pub fn is_empty(&self) -> bool {
        self.layout.entries.is_empty()
    }

    /// Elements over all tensors.
    pub fn total_elements(&self) -> u64 {
        self.layout.total_elements
    }

    /// The whole file.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The tensors, in file order.
    pub fn tensors(&self) -> impl ExactSizeIterator<Item = TensorView<'_>> + '_ {
        self.layout
            .entries
            .iter()
            .map(|e| TensorView::new(e, self.bytes))
    }

    /// The tensor named `name`, if there is one.
    pub fn get(&self, name: &str) -> Option<TensorView<'_>> {
        let entries = &self.layout.entries;
        let at = self
            .layout
            .by_name
            .binary_search_by(|&i| entries.get(i).map_or("", |e| &e.name).cmp(name))
            .ok()?;
        let entry = entries.get(*self.layout.by_name.get(at)?)?;
        Some(TensorView::new(entry, self.bytes))
    }

    /// The tensor named `name`, or [`Error::NotFound`].
    pub fn tensor(&self, name: &str) -> Result<TensorView<'_>> {
        self.get(name)
            .ok_or_else(|| Error::NotFound(format!("tensor {name:?} in delta {}", self.digest())))
    }

    /// Checks every value of every tensor for NaN and infinity (in parallel):
    /// the first bad one is reported as [`Error::NonFinite`] with its tensor
    /// name and element index. Validators call this before applying.
    pub fn check_all_finite(&self) -> Result<()> {
        let views: Vec<TensorView<'_>> = self.tensors().collect();
        views.par_iter().try_for_each(|t| t.check_finite())
    }
}

impl std::fmt::Debug for DeltaReader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeltaReader")
            .field("len", &self.bytes.len())
            .field("header", &self.layout.header)
            .field("digest", &self.layout.digest)
            .field("tensors", &self.layout.entries.len())
            .finish()
    }
}

/// A delta in memory that it owns, validated when opened; borrow a
/// [`DeltaReader`] from it with [`DeltaBuf::reader`]. For holding a delta
/// beyond the lifetime of a borrowed buffer (the C library's readers, a
/// download kept for later) without self-referential tricks.
///
/// ```
/// use bistro_core::codec::{DeltaBuf, DeltaHeader, DeltaWriter, DType, Encoding, Limits};
/// let limits = Limits::default();
/// let mut writer = DeltaWriter::new(Vec::new(), &DeltaHeader::default(), &limits)?;
/// writer.add_tensor("w", &[2], &[0.5, -1.0], Encoding::Dense(DType::F32), None)?;
/// let (bytes, digest) = writer.finish()?;
/// let delta = DeltaBuf::open(bytes, &limits)?;
/// assert_eq!(delta.reader().digest(), digest);
/// assert_eq!(delta.reader().tensor("w")?.decode()?, [0.5, -1.0]);
/// # Ok::<(), bistro_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct DeltaBuf {
    bytes: Vec<u8>,
    layout: Layout,
}

impl DeltaBuf {
    /// Validates `bytes` as a delta within `limits` (as
    /// [`DeltaReader::open`]) and keeps them.
    pub fn open(bytes: Vec<u8>, limits: &Limits) -> Result<Self> {
        let layout = Layout::parse(&bytes, limits)?;
        Ok(DeltaBuf { bytes, layout })
    }

    /// A reader over the bytes (no validation again, no copy).
    pub fn reader(&self) -> DeltaReader<'_> {
        DeltaReader {
            bytes: &self.bytes,
            layout: Cow::Borrowed(&self.layout),
        }
    }

    /// The delta's bytes, given back.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

/// A memory-mapped delta file, validated when opened; borrow a
/// [`DeltaReader`] from it with [`MappedDelta::reader`].
#[derive(Debug)]
pub struct MappedDelta {
    map: memmap2::Mmap,
    layout: Layout,
}

impl MappedDelta {
    /// A reader over the mapped bytes (no validation again, no copy).
    pub fn reader(&self) -> DeltaReader<'_> {
        DeltaReader {
            bytes: &self.map,
            layout: Cow::Borrowed(&self.layout),
        }
    }
}

/// Memory-maps the delta file at `path` and validates it; the file's length
/// is checked against `limits.max_file_size` before it is mapped.
///
/// Map only files this process owns (for example ones it downloaded into its
/// own directory): the mapping reads the file as it is on disk, so another
/// process that changes or truncates it while mapped changes what is read or
/// makes the process fault.
pub fn open_file(path: impl AsRef<Path>, limits: &Limits) -> Result<MappedDelta> {
    let path = path.as_ref();
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    if len > limits.max_file_size {
        return Err(Error::limit(
            format!("size of delta file {}", path.display()),
            limits.max_file_size,
            len,
        ));
    }
    if len == 0 {
        // Mapping an empty file fails on some systems; report it as what it is.
        return Err(Error::Truncated {
            input: super::format::INPUT,
            what: "header and footer".into(),
            needed: (super::format::HEADER_LEN + super::format::FOOTER_LEN) as u64,
            available: 0,
        });
    }
    // SAFETY: the map is read-only and private to this process; the caller
    // is told (above) not to map files that others modify meanwhile, which is
    // the one way a mapped slice could change under us.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
    let layout = Layout::parse(&map, limits)?;
    Ok(MappedDelta { map, layout })
}
