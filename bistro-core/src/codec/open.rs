//! Validating a whole delta up front (`docs/delta-format.md`, "Validation a
//! reader performs"): after this, every view of the file is known good.

use rayon::prelude::*;

use super::encoding::Encoding;
use super::format::{
    DeltaHeader, FOOTER_LEN, HEADER_LEN, INPUT, Locator, PAYLOAD_ALIGN, UNDIGESTED_LEN,
};
use super::limits::Limits;
use super::sparse::SparsePayload;
use super::table::{TableEntry, TableParser, next_payload_offset};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::identity::Signature;

/// Everything [`DeltaReader`](super::DeltaReader) knows about a file besides its bytes.
#[derive(Clone, Debug)]
pub(crate) struct Layout {
    pub header: DeltaHeader,
    pub digest: Digest,
    pub signature: Signature,
    pub entries: Vec<TableEntry>,
    /// Entry positions sorted by name, for lookup.
    pub by_name: Vec<usize>,
    pub total_elements: u64,
}

impl Layout {
    /// Validates `bytes` completely.
    pub(crate) fn parse(bytes: &[u8], limits: &Limits) -> Result<Self> {
        let len = bytes.len() as u64;
        let header = DeltaHeader::parse(bytes)?;
        if len > limits.max_file_size {
            return Err(Error::limit("delta file size", limits.max_file_size, len));
        }
        let (before_footer, footer) = bytes.split_at(bytes.len() - FOOTER_LEN);
        let footer: &[u8; FOOTER_LEN] = footer
            .try_into()
            .map_err(|_| Error::corrupt(INPUT, "footer", "footer is not 128 bytes"))?;
        let locator = Locator::parse(footer, len)?;
        let (entries, total_elements) = parse_table(before_footer, &locator, limits)?;
        check_payload_layout(bytes, &entries, locator.table_offset)?;
        let by_name = sorted_unique_names(&entries)?;
        entries
            .par_iter()
            .try_for_each(|e| check_indices(bytes, e))?;

        let mut stored = [0u8; 32];
        stored.copy_from_slice(&footer[32..64]);
        let stored = Digest(stored);
        let computed = Digest::of(&bytes[..bytes.len() - UNDIGESTED_LEN]);
        if stored != computed {
            return Err(Error::DigestMismatch {
                what: "delta".into(),
                expected: stored,
                computed,
            });
        }
        let mut signature = [0u8; 64];
        signature.copy_from_slice(&footer[64..128]);
        Ok(Layout {
            header,
            digest: stored,
            signature: Signature(signature),
            entries,
            by_name,
            total_elements,
        })
    }
}

/// Parses the table at the locator's place.
fn parse_table(
    before_footer: &[u8],
    locator: &Locator,
    limits: &Limits,
) -> Result<(Vec<TableEntry>, u64)> {
    if locator.tensor_count > limits.max_tensors {
        return Err(Error::limit(
            "tensor count",
            limits.max_tensors,
            locator.tensor_count,
        ));
    }
    let table_end = locator
        .table_offset
        .checked_add(locator.table_length)
        .filter(|&end| end == before_footer.len() as u64);
    if table_end.is_none()
        || locator.table_offset < HEADER_LEN as u64
        || !locator.table_offset.is_multiple_of(PAYLOAD_ALIGN)
    {
        return Err(Error::corrupt(
            INPUT,
            "footer (table location)",
            format!(
                "table at offset {} with length {} does not end where the footer starts \
                 (byte {}) or is not a 64-aligned offset after the header",
                locator.table_offset,
                locator.table_length,
                before_footer.len()
            ),
        ));
    }
    // Both bounds were checked just above.
    let table = &before_footer[locator.table_offset as usize..];
    let most = locator.tensor_count.saturating_mul(limits.max_entry_len());
    if locator.table_length > most {
        return Err(Error::limit(
            format!("table length for {} tensors", locator.tensor_count),
            most,
            locator.table_length,
        ));
    }
    let mut parser = TableParser::new(table, locator.table_offset);
    let mut entries = Vec::with_capacity(locator.tensor_count as usize);
    let mut total = 0u64;
    for _ in 0..locator.tensor_count {
        let entry = parser.next_entry(limits, total)?;
        total += entry.elements;
        entries.push(entry);
    }
    if !parser.at_end() {
        return Err(Error::corrupt(
            INPUT,
            "tensor table",
            format!(
                "{} entries end before the table's {} bytes do",
                locator.tensor_count, locator.table_length
            ),
        ));
    }
    Ok((entries, total))
}

/// Payloads are contiguous from the header on, 64-aligned, zero-padded, and
/// end where the table starts.
fn check_payload_layout(bytes: &[u8], entries: &[TableEntry], table_offset: u64) -> Result<()> {
    let mut cursor = HEADER_LEN as u64;
    for (i, e) in entries.iter().enumerate() {
        let expected = next_payload_offset(cursor);
        if expected != Some(e.payload_offset) {
            return Err(Error::corrupt(
                INPUT,
                format!("table entry {i} ({:?})", e.name),
                format!(
                    "payload offset {} is not {} (payloads are contiguous and 64-aligned: \
                     no gaps, no overlaps)",
                    e.payload_offset,
                    expected.map_or("representable".into(), |x| x.to_string())
                ),
            ));
        }
        check_zero_padding(bytes, cursor, e.payload_offset)?;
        cursor = e
            .payload_offset
            .checked_add(e.payload_length)
            .filter(|&end| end <= table_offset)
            .ok_or_else(|| {
                Error::corrupt(
                    INPUT,
                    format!("table entry {i} ({:?})", e.name),
                    format!(
                        "payload [{}, +{}) runs past the table at {table_offset}",
                        e.payload_offset, e.payload_length
                    ),
                )
            })?;
    }
    if next_payload_offset(cursor) != Some(table_offset) {
        return Err(Error::corrupt(
            INPUT,
            "footer (table location)",
            format!(
                "table offset {table_offset} is not right after the last payload (ends at {cursor})"
            ),
        ));
    }
    check_zero_padding(bytes, cursor, table_offset)
}

fn check_zero_padding(bytes: &[u8], start: u64, end: u64) -> Result<()> {
    let padding = slice(bytes, start, end).ok_or_else(|| {
        Error::corrupt(
            INPUT,
            format!("bytes {start}..{end}"),
            "padding lies outside the file",
        )
    })?;
    match padding.iter().position(|&b| b != 0) {
        Some(i) => Err(Error::corrupt(
            INPUT,
            format!("byte {}", start + i as u64),
            "padding byte is not zero",
        )),
        None => Ok(()),
    }
}

/// Entry positions sorted by name; duplicates are an error.
fn sorted_unique_names(entries: &[TableEntry]) -> Result<Vec<usize>> {
    let mut by_name: Vec<usize> = (0..entries.len()).collect();
    by_name.sort_by(|&a, &b| entries[a].name.cmp(&entries[b].name).then(a.cmp(&b)));
    for pair in by_name.windows(2) {
        let (first, second) = (pair[0], pair[1]);
        if entries[first].name == entries[second].name {
            return Err(Error::corrupt(
                INPUT,
                format!("table entry {second} ({:?})", entries[second].name),
                format!("duplicate tensor name (also entry {first})"),
            ));
        }
    }
    Ok(by_name)
}

/// Top-k indices are in range and strictly increasing.
fn check_indices(bytes: &[u8], e: &TableEntry) -> Result<()> {
    let Encoding::TopK { k, values } = e.encoding else {
        return Ok(());
    };
    let corrupt = |reason| Error::corrupt(INPUT, format!("tensor {:?} indices", e.name), reason);
    let payload = e
        .payload_offset
        .checked_add(e.payload_length)
        .and_then(|end| slice(bytes, e.payload_offset, end))
        .ok_or_else(|| corrupt("payload lies outside the file".into()))?;
    SparsePayload::new(payload, e.elements, k, values)
        .and_then(|sparse| sparse.ef.validate())
        .map_err(corrupt)
}

/// `bytes[start..end]`, if it is inside `bytes`.
fn slice(bytes: &[u8], start: u64, end: u64) -> Option<&[u8]> {
    bytes.get(usize::try_from(start).ok()?..usize::try_from(end).ok()?)
}
