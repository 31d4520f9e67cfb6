//! Tensor table entries: what one tensor is (name, shape, encoding) and where
//! its payload lies; parsing with every check of `docs/delta-format.md`
//! step 3, and serialising.

use byteorder::{ByteOrder, LittleEndian as LE};

use super::encoding::{Encoding, WireEncoding};
use super::format::{ENTRY_ALIGN, ENTRY_FIXED_LEN, INPUT, align_up};
use super::limits::Limits;
use crate::error::{Error, Result};

/// One tensor's entry, owned (names and shapes are copied out of the table,
/// bounded by the limits).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TableEntry {
    pub name: Box<str>,
    pub shape: Box<[u64]>,
    pub encoding: Encoding,
    pub elements: u64,
    pub payload_offset: u64,
    pub payload_length: u64,
}

impl TableEntry {
    /// The entry's length on disk.
    pub(crate) fn encoded_len(name_len: usize, rank: usize) -> u64 {
        // Callers pass lengths bounded by the limits (u16 and u8), so no overflow.
        ENTRY_FIXED_LEN + 8 * rank as u64 + (name_len as u64).next_multiple_of(ENTRY_ALIGN)
    }

    /// Appends the entry's bytes to `out`.
    pub(crate) fn write_to(&self, out: &mut Vec<u8>) {
        let w = self.encoding.to_wire();
        let mut fixed = [0u8; ENTRY_FIXED_LEN as usize];
        fixed[0] = w.kind;
        fixed[1] = w.dtype;
        // The writer checked rank and name length against u8/u16 limits.
        fixed[2] = self.shape.len() as u8;
        LE::write_u32(&mut fixed[4..8], w.param);
        LE::write_u64(&mut fixed[8..16], w.count);
        LE::write_u64(&mut fixed[16..24], self.payload_offset);
        LE::write_u64(&mut fixed[24..32], self.payload_length);
        LE::write_u16(&mut fixed[32..34], self.name.len() as u16);
        out.extend_from_slice(&fixed);
        for &d in self.shape.iter() {
            out.extend_from_slice(&d.to_le_bytes());
        }
        out.extend_from_slice(self.name.as_bytes());
        let padded = self.name.len().next_multiple_of(ENTRY_ALIGN as usize);
        out.resize(out.len() + padded - self.name.len(), 0);
    }
}

/// Checks a tensor name: non-empty, within the limit, no NUL.
pub(crate) fn check_name(name: &str, limits: &Limits) -> std::result::Result<(), Error> {
    if name.is_empty() {
        return Err(Error::InvalidArgument("tensor name is empty".into()));
    }
    if name.len() > usize::from(limits.max_name_len) {
        return Err(Error::limit(
            format!("length of tensor name {:?}", truncate(name)),
            u64::from(limits.max_name_len),
            name.len() as u64,
        ));
    }
    if name.contains('\0') {
        return Err(Error::InvalidArgument(format!(
            "tensor name {name:?} contains a NUL byte"
        )));
    }
    Ok(())
}

/// The element count of `shape`, or `None` if the product overflows u64.
pub(crate) fn element_count(shape: &[u64]) -> Option<u64> {
    shape.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d))
}

fn truncate(name: &str) -> String {
    name.chars().take(40).collect()
}

/// Reads table entries one at a time from the table bytes.
pub(crate) struct TableParser<'a> {
    table: &'a [u8],
    table_offset: u64,
    pos: usize,
    index: u64,
}

impl<'a> TableParser<'a> {
    pub(crate) fn new(table: &'a [u8], table_offset: u64) -> Self {
        TableParser {
            table,
            table_offset,
            pos: 0,
            index: 0,
        }
    }

    /// Whether every byte of the table was consumed.
    pub(crate) fn at_end(&self) -> bool {
        self.pos == self.table.len()
    }

    fn location(&self, field: &str) -> String {
        format!(
            "table entry {} (byte {}): {field}",
            self.index,
            self.table_offset + self.pos as u64
        )
    }

    fn take(&mut self, len: u64, what: &str) -> Result<&'a [u8]> {
        let available = (self.table.len() - self.pos) as u64;
        let bytes = usize::try_from(len)
            .ok()
            .and_then(|l| self.table.get(self.pos..self.pos.checked_add(l)?));
        match bytes {
            Some(b) => {
                self.pos += b.len();
                Ok(b)
            }
            None => Err(Error::Truncated {
                input: INPUT,
                what: format!("table entry {} {what}", self.index),
                needed: len,
                available,
            }),
        }
    }

    /// Parses the next entry, checking everything that concerns it alone.
    /// `total` is the running element count of the entries before it.
    pub(crate) fn next_entry(&mut self, limits: &Limits, total: u64) -> Result<TableEntry> {
        let start_location = self.location("");
        let fixed = self.take(ENTRY_FIXED_LEN, "fixed part")?;
        let bad = |reason: String| Error::corrupt(INPUT, start_location.clone(), reason);
        if fixed[3] != 0 || fixed[34..40].iter().any(|&b| b != 0) {
            return Err(bad("reserved byte is not zero".into()));
        }
        let wire = WireEncoding {
            kind: fixed[0],
            dtype: fixed[1],
            param: LE::read_u32(&fixed[4..8]),
            count: LE::read_u64(&fixed[8..16]),
        };
        let encoding = Encoding::from_wire(wire).map_err(bad)?;
        let rank = fixed[2];
        if rank > limits.max_rank {
            return Err(Error::limit(
                format!("rank of table entry {}", self.index),
                u64::from(limits.max_rank),
                u64::from(rank),
            ));
        }
        let payload_offset = LE::read_u64(&fixed[16..24]);
        let payload_length = LE::read_u64(&fixed[24..32]);
        let name_len = LE::read_u16(&fixed[32..34]);
        if name_len > limits.max_name_len {
            return Err(Error::limit(
                format!("name length of table entry {}", self.index),
                u64::from(limits.max_name_len),
                u64::from(name_len),
            ));
        }
        let dims = self.take(8 * u64::from(rank), "dims")?;
        let shape: Box<[u64]> = dims.chunks_exact(8).map(LE::read_u64).collect();
        let padded = u64::from(name_len).next_multiple_of(ENTRY_ALIGN);
        let name_bytes = self.take(padded, "name")?;
        let (name_bytes, padding) = name_bytes.split_at(usize::from(name_len));
        let name = std::str::from_utf8(name_bytes)
            .map_err(|e| bad(format!("tensor name is not valid UTF-8: {e}")))?;
        if padding.iter().any(|&b| b != 0) {
            return Err(bad(format!("padding after name {name:?} is not zero")));
        }
        check_name(name, limits).map_err(|e| match e {
            Error::InvalidArgument(reason) => bad(reason),
            other => other,
        })?;
        let elements = element_count(&shape).ok_or_else(|| {
            bad(format!(
                "element count of {name:?} with shape {shape:?} overflows"
            ))
        })?;
        let new_total = total.saturating_add(elements);
        if new_total > limits.max_total_elements {
            return Err(Error::limit(
                format!("total elements up to tensor {name:?}"),
                limits.max_total_elements,
                new_total,
            ));
        }
        let expected = encoding
            .payload_len(elements)
            .map_err(|reason| bad(format!("tensor {name:?}: {reason}")))?;
        if expected != payload_length {
            return Err(bad(format!(
                "tensor {name:?} ({encoding}, {elements} elements) needs a payload of \
                 {expected} bytes, the table says {payload_length}"
            )));
        }
        self.index += 1;
        Ok(TableEntry {
            name: name.into(),
            shape,
            encoding,
            elements,
            payload_offset,
            payload_length,
        })
    }
}

/// The offset where the payload after one ending at `end` starts.
pub(crate) fn next_payload_offset(end: u64) -> Option<u64> {
    align_up(end, super::format::PAYLOAD_ALIGN)
}
