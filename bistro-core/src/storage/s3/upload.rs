//! Uploads: one `PUT` for small objects, a multipart upload (parts retried
//! one by one, aborted on failure) for large ones. Either way S3 shows the
//! new object only once it is complete.

use std::io::Read;
use std::path::Path;

use s3::serde_types::Part;

use super::S3Bucket;
use super::config::{MAX_PART_BYTES, MAX_PARTS};
use crate::error::{Error, Result};

const CONTENT_TYPE: &str = "application/octet-stream";

/// One `PUT` of the whole object (retried: a whole-object PUT is idempotent).
pub(crate) fn put_single(bucket: &S3Bucket, key: &str, bytes: &[u8]) -> Result<()> {
    let what = format!("PUT {key}");
    bucket.call(&what, |b| {
        b.put_object_with_content_type(key, bytes, CONTENT_TYPE)
    })?;
    Ok(())
}

/// Reads until `buf` holds `want` bytes or the input ends; returns the count.
fn read_part(input: &mut dyn Read, buf: &mut Vec<u8>, want: u64, source: &Path) -> Result<usize> {
    buf.clear();
    input
        .take(want)
        .read_to_end(buf)
        .map_err(|e| Error::io(source, e))
}

/// The part size for an input of `size` bytes (if known): the configured one,
/// grown so that the upload needs at most [`MAX_PARTS`] parts.
fn part_size_for(bucket: &S3Bucket, size: Option<u64>) -> Result<u64> {
    let base = bucket.config.part_size;
    let Some(size) = size else { return Ok(base) };
    let needed = size.div_ceil(MAX_PARTS).next_multiple_of(1 << 20);
    let part = base.max(needed);
    if part > MAX_PART_BYTES {
        return Err(Error::limit(
            "S3 object bytes",
            MAX_PART_BYTES * MAX_PARTS,
            size,
        ));
    }
    Ok(part)
}

/// Uploads everything `input` yields (a file, or a pipe). Small inputs go in
/// one `PUT`; larger ones in parts, holding at most two parts in memory.
pub(crate) fn put_reader(
    bucket: &S3Bucket,
    key: &str,
    input: &mut std::fs::File,
    source: &Path,
) -> Result<()> {
    let size = input
        .metadata()
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.len());
    let part = part_size_for(bucket, size)?;
    let mut first = Vec::new();
    let n = read_part(input, &mut first, part, source)?;
    if (n as u64) < part {
        return put_single(bucket, key, &first);
    }
    let mut second = Vec::new();
    if read_part(input, &mut second, part, source)? == 0 {
        return put_single(bucket, key, &first);
    }
    let mut rest = std::io::Cursor::new(first)
        .chain(std::io::Cursor::new(second))
        .chain(input);
    multipart(bucket, key, &mut rest, part, source)
}

/// Uploads `input` in parts of the configured size.
pub(crate) fn put_multipart(bucket: &S3Bucket, key: &str, input: &mut dyn Read) -> Result<()> {
    let part = bucket.config.part_size;
    multipart(bucket, key, input, part, Path::new("<memory>"))
}

fn multipart(
    bucket: &S3Bucket,
    key: &str,
    input: &mut dyn Read,
    part: u64,
    source: &Path,
) -> Result<()> {
    let what = format!("start multipart upload of {key}");
    let upload_id = bucket
        .call(&what, |b| b.initiate_multipart_upload(key, CONTENT_TYPE))?
        .upload_id;
    let result = upload_parts(bucket, key, &upload_id, input, part, source);
    if result.is_err() {
        // Best effort, one try: an upload left behind is invisible (S3
        // lifecycle rules or a later abort clean it up), never half an object.
        let _ = bucket.bucket.abort_upload(key, &upload_id);
    }
    result
}

fn upload_parts(
    bucket: &S3Bucket,
    key: &str,
    upload_id: &str,
    input: &mut dyn Read,
    part: u64,
    source: &Path,
) -> Result<()> {
    let mut parts: Vec<Part> = Vec::new();
    let mut buf = Vec::new();
    let mut total: u64 = 0;
    loop {
        let n = read_part(input, &mut buf, part, source)?;
        if n == 0 {
            break;
        }
        let number = u32::try_from(parts.len() + 1).unwrap_or(u32::MAX);
        if u64::from(number) > MAX_PARTS {
            return Err(Error::limit(
                "S3 upload parts",
                MAX_PARTS,
                u64::from(number),
            ));
        }
        let what = format!("upload part {number} of {key}");
        let uploaded = bucket.call(&what, |b| {
            b.put_multipart_chunk(&buf, key, number, upload_id, CONTENT_TYPE)
        })?;
        parts.push(uploaded);
        total = total.saturating_add(n as u64);
        if (n as u64) < part {
            break;
        }
    }
    complete(bucket, key, upload_id, parts, total)
}

/// Completes the upload. If an earlier try's answer was lost and the server
/// already completed it, the retry finds no upload (404): then the object
/// itself, with the expected size and a multipart ETag, is the proof.
fn complete(
    bucket: &S3Bucket,
    key: &str,
    upload_id: &str,
    parts: Vec<Part>,
    total: u64,
) -> Result<()> {
    let count = parts.len();
    let what = format!("complete multipart upload of {key}");
    let mut tries = 0u32;
    let result = bucket.call(&what, |b| {
        tries += 1;
        b.complete_multipart_upload(key, upload_id, parts.clone())
    });
    match result {
        Ok(_) => Ok(()),
        Err(Error::NotFound(detail)) if tries > 1 => {
            let done = bucket.head_full(key)?.is_some_and(|head| {
                head.info.size == total
                    && head
                        .etag
                        .as_deref()
                        .is_some_and(|etag| etag.trim_matches('"').ends_with(&format!("-{count}")))
            });
            if done {
                Ok(())
            } else {
                Err(Error::NotFound(detail))
            }
        }
        Err(e) => Err(e),
    }
}
