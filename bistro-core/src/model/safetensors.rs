//! The safetensors file format, read with validation and written atomically.
//!
//! Layout (<https://github.com/huggingface/safetensors>): an 8-byte
//! little-endian header length `n`, `n` bytes of JSON, then the tensor data.
//! The JSON object maps each tensor name to `{"dtype", "shape",
//! "data_offsets": [begin, end]}` (offsets relative to the data section) and
//! may hold a `"__metadata__"` object of strings. The reader accepts a file
//! only when every entry is well formed, names are unique, and the entries,
//! sorted by offset, tile the data section exactly: from 0, contiguous, no
//! holes, ending at the end of the file.

use std::collections::HashSet;
use std::fmt;
use std::io::{Read, Write};
use std::path::Path;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::Value;

use crate::error::{Error, Result};

/// Largest JSON header read (the reference implementation's cap).
pub const MAX_HEADER_BYTES: u64 = 100 << 20;
/// Most tensors in one file.
pub const MAX_TENSORS: usize = 1 << 16;
/// Largest tensor rank.
pub const MAX_RANK: usize = 8;

const INPUT: &str = "checkpoint";

/// Element types bistro reads (and converts to f32); it writes only `F32`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dtype {
    F32,
    F16,
    BF16,
}

impl Dtype {
    fn parse(s: &str) -> Option<Dtype> {
        match s {
            "F32" => Some(Dtype::F32),
            "F16" => Some(Dtype::F16),
            "BF16" => Some(Dtype::BF16),
            _ => None,
        }
    }

    pub fn size(self) -> u64 {
        match self {
            Dtype::F32 => 4,
            Dtype::F16 | Dtype::BF16 => 2,
        }
    }
}

/// One tensor of a validated header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub name: String,
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    /// Offset of the first byte within the data section.
    pub begin: u64,
    /// Offset one past the last byte within the data section.
    pub end: u64,
}

/// A validated header: the entries sorted by offset, and where data begins
/// in the file.
#[derive(Clone, Debug)]
pub(crate) struct Header {
    pub entries: Vec<Entry>,
    pub data_start: u64,
}

/// The JSON object's members in file order, duplicates kept (a map type
/// would silently keep only the last).
struct Members(Vec<(String, Value)>);

impl<'de> serde::Deserialize<'de> for Members {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Members;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Members, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Value>()? {
                    if out.len() > MAX_TENSORS {
                        return Err(serde::de::Error::custom("too many tensors"));
                    }
                    out.push((k, v));
                }
                Ok(Members(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// Reads and validates the header of the safetensors file `path` of
/// `file_len` bytes, from `r` positioned at its start.
pub(crate) fn read_header(r: &mut impl Read, file_len: u64, path: &Path) -> Result<Header> {
    if file_len < 8 {
        return Err(Error::Truncated {
            input: INPUT,
            what: "header length".into(),
            needed: 8,
            available: file_len,
        });
    }
    let mut len_bytes = [0u8; 8];
    r.read_exact(&mut len_bytes)
        .map_err(|e| Error::io(path, e))?;
    let n = u64::from_le_bytes(len_bytes);
    if n > MAX_HEADER_BYTES {
        return Err(Error::limit(
            "safetensors header bytes",
            MAX_HEADER_BYTES,
            n,
        ));
    }
    let data_start = 8 + n;
    if data_start > file_len {
        return Err(Error::Truncated {
            input: INPUT,
            what: "header".into(),
            needed: data_start,
            available: file_len,
        });
    }
    // n <= MAX_HEADER_BYTES and n <= file_len: a bounded allocation.
    let mut json = vec![0u8; n as usize];
    r.read_exact(&mut json).map_err(|e| Error::io(path, e))?;
    let entries = parse_header(&json, file_len - data_start)?;
    Ok(Header {
        entries,
        data_start,
    })
}

/// Validates a header's JSON against a data section of `data_len` bytes;
/// returns the entries sorted by offset.
pub(crate) fn parse_header(json: &[u8], data_len: u64) -> Result<Vec<Entry>> {
    let members: Members = serde_json::from_slice(json)
        .map_err(|e| Error::corrupt(INPUT, "header", format!("not a JSON object: {e}")))?;
    let mut seen = HashSet::new();
    let mut entries = Vec::with_capacity(members.0.len());
    for (name, value) in members.0 {
        if !seen.insert(name.clone()) {
            return Err(Error::corrupt(INPUT, name, "duplicate tensor name"));
        }
        if name == "__metadata__" {
            let ok = value
                .as_object()
                .is_some_and(|m| m.values().all(Value::is_string));
            if !ok {
                return Err(Error::corrupt(
                    INPUT,
                    name,
                    "__metadata__ must map strings to strings",
                ));
            }
            continue;
        }
        entries.push(parse_entry(name, &value)?);
    }
    entries.sort_by_key(|e| (e.begin, e.end));
    if let Some(last) = entries.iter().map(|e| e.end).max()
        && last > data_len
    {
        return Err(Error::Truncated {
            input: INPUT,
            what: "tensor data".into(),
            needed: last,
            available: data_len,
        });
    }
    let mut expected = 0u64;
    for e in &entries {
        if e.begin != expected {
            return Err(Error::corrupt(
                INPUT,
                e.name.clone(),
                format!(
                    "data begins at {} but the previous tensor ends at {expected} \
                     (overlap or hole)",
                    e.begin
                ),
            ));
        }
        expected = e.end;
    }
    if expected != data_len {
        return Err(Error::corrupt(
            INPUT,
            "data",
            format!("tensors end at byte {expected} of a {data_len}-byte data section"),
        ));
    }
    Ok(entries)
}

fn parse_entry(name: String, value: &Value) -> Result<Entry> {
    let bad = |reason: String| Err(Error::corrupt(INPUT, name.clone(), reason));
    let Some(obj) = value.as_object() else {
        return bad("entry is not an object".into());
    };
    let dtype_name = obj.get("dtype").and_then(Value::as_str).unwrap_or("");
    let Some(dtype) = Dtype::parse(dtype_name) else {
        return bad(format!(
            "dtype {dtype_name:?} is not supported (bistro reads F32, F16, BF16)"
        ));
    };
    let Some(dims) = obj.get("shape").and_then(Value::as_array) else {
        return bad("missing shape".into());
    };
    if dims.len() > MAX_RANK {
        return bad(format!(
            "rank {} is over the limit of {MAX_RANK}",
            dims.len()
        ));
    }
    let mut shape = Vec::with_capacity(dims.len());
    for d in dims {
        match d.as_u64().and_then(|d| usize::try_from(d).ok()) {
            Some(d) => shape.push(d),
            None => return bad(format!("shape entry {d} is not a size")),
        }
    }
    let offsets = obj.get("data_offsets").and_then(Value::as_array);
    let (begin, end) = match offsets.map(|o| o.as_slice()) {
        Some([b, e]) => match (b.as_u64(), e.as_u64()) {
            (Some(b), Some(e)) if b <= e => (b, e),
            _ => return bad("data_offsets must be [begin, end] with begin <= end".into()),
        },
        _ => return bad("missing data_offsets [begin, end]".into()),
    };
    let bytes = shape
        .iter()
        .try_fold(dtype.size(), |n, &d| n.checked_mul(d as u64));
    match bytes {
        Some(b) if b == end - begin => {}
        Some(b) => {
            return bad(format!(
                "shape {shape:?} of {dtype_name} needs {b} bytes, data_offsets give {}",
                end - begin
            ));
        }
        None => return bad(format!("shape {shape:?} overflows")),
    }
    Ok(Entry {
        name,
        dtype,
        shape,
        begin,
        end,
    })
}

/// A tensor to write: its name and shape (f32 data comes from a callback).
pub(crate) struct Outgoing<'a> {
    pub name: &'a str,
    pub shape: &'a [usize],
}

/// The header bytes (length prefix included) for f32 tensors written in the
/// given order, with `{"format": "pt"}` metadata (which HF `transformers`
/// requires). The JSON is padded with spaces to a multiple of 8 bytes.
pub(crate) fn header_bytes(tensors: &[Outgoing<'_>]) -> Result<Vec<u8>> {
    let mut map = serde_json::Map::new();
    let mut meta = serde_json::Map::new();
    meta.insert("format".into(), Value::String("pt".into()));
    map.insert("__metadata__".into(), Value::Object(meta));
    let mut offset = 0u64;
    for t in tensors {
        let bytes = t
            .shape
            .iter()
            .try_fold(4u64, |n, &d| n.checked_mul(d as u64))
            .ok_or_else(|| Error::InvalidArgument(format!("tensor {} too large", t.name)))?;
        let end = offset
            .checked_add(bytes)
            .ok_or_else(|| Error::InvalidArgument("checkpoint too large".into()))?;
        let entry = serde_json::json!({
            "dtype": "F32",
            "shape": t.shape,
            "data_offsets": [offset, end],
        });
        if map.insert(t.name.to_string(), entry).is_some() {
            return Err(Error::InvalidArgument(format!(
                "duplicate tensor {}",
                t.name
            )));
        }
        offset = end;
    }
    let mut json = serde_json::to_vec(&Value::Object(map))
        .map_err(|e| Error::Model(format!("cannot serialize safetensors header: {e}")))?;
    while !json.len().is_multiple_of(8) {
        json.push(b' ');
    }
    // The writer's output must pass the reader's checks.
    parse_header(&json, offset)?;
    let mut out = Vec::with_capacity(8 + json.len());
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(&json);
    Ok(out)
}

/// Writes `bytes` to `w`, mapping the error to the file being written.
pub(crate) fn put(w: &mut impl Write, path: &Path, bytes: &[u8]) -> Result<()> {
    w.write_all(bytes).map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(json: &str) -> Vec<u8> {
        json.as_bytes().to_vec()
    }

    #[test]
    fn accepts_a_tiled_data_section() {
        let h = header(
            r#"{"__metadata__":{"format":"pt"},
                "b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]},
                "a":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}}"#,
        );
        let entries = parse_header(&h, 12).unwrap();
        assert_eq!(entries[0].name, "a");
        assert_eq!(entries[1].dtype, Dtype::F32);
    }

    #[test]
    fn rejects_each_malformation_with_its_own_error() {
        let cases = [
            (
                r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}"#,
                16,
                "duplicate",
            ),
            (
                r#"{"a":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}"#,
                8,
                "not supported",
            ),
            (
                r#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#,
                8,
                "needs 12 bytes",
            ),
            (
                r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
                12,
                "hole",
            ),
            (
                r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
                9,
                "end at byte 8",
            ),
            (
                r#"{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}"#,
                8,
                "overflows",
            ),
            (r#"[1,2]"#, 0, "not a JSON object"),
            (r#"{"__metadata__":{"x":1}}"#, 0, "strings"),
        ];
        for (json, len, needle) in cases {
            let err = parse_header(json.as_bytes(), len).unwrap_err().to_string();
            assert!(err.contains(needle), "{json}: {err}");
        }
        let err = parse_header(
            br#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#,
            8,
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                Error::Truncated {
                    needed: 16,
                    available: 8,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn written_headers_pass_the_reader() {
        let t = [
            Outgoing {
                name: "z",
                shape: &[3],
            },
            Outgoing {
                name: "a",
                shape: &[2, 2],
            },
        ];
        let bytes = header_bytes(&t).unwrap();
        assert_eq!((bytes.len() - 8) % 8, 0);
        let entries = parse_header(&bytes[8..], 28).unwrap();
        assert_eq!(entries[0].name, "z");
        assert_eq!((entries[1].begin, entries[1].end), (12, 28));
    }
}
