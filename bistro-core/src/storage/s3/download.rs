//! Bounded downloads: ranged `GET`s of at most one part each, pinned to the
//! `ETag` seen by `HEAD`, each written through a byte cap.

use std::io::Write;
use std::ops::Range;

use s3::command::Command;

use super::retry::with_retries;
use super::send::Sent;
use super::{Head, S3Bucket};
use crate::error::{Error, Result};
use crate::storage::limited::CappedWriter;

/// Refuses an object whose declared size is over the caller's cap.
pub(crate) fn check_cap(key: &str, size: u64, max_bytes: u64) -> Result<()> {
    if size > max_bytes {
        return Err(Error::limit(format!("object {key:?}"), max_bytes, size));
    }
    Ok(())
}

/// A copy of the client that sends `If-Match: <etag>` with every request,
/// so that a range of a newer object is refused (HTTP 412), never spliced in.
fn pinned(bucket: &S3Bucket, etag: Option<&str>) -> Result<Box<s3::Bucket>> {
    let mut headers = bucket.bucket.extra_headers.clone();
    if let Some(etag) = etag {
        let value = http::HeaderValue::from_str(etag)
            .map_err(|_| Error::corrupt("S3 response", "ETag", "not a valid header value"))?;
        headers.insert(http::header::IF_MATCH, value);
    }
    let pinned = bucket
        .bucket
        .with_extra_headers(headers)
        .map_err(|e| Error::InvalidArgument(format!("S3 headers: {e}")))?;
    Ok(Box::new(pinned))
}

/// Downloads `range` (within the object `head` describes) into `sink`, one
/// part-sized request at a time; each request is retried on its own.
pub(crate) fn fetch(
    bucket: &S3Bucket,
    head: &Head,
    range: Range<u64>,
    sink: &mut dyn Write,
) -> Result<()> {
    let key = head.info.key.as_str();
    let client = pinned(bucket, head.etag.as_deref())?;
    let step = bucket.config.part_size;
    let mut chunk: Vec<u8> = Vec::new();
    let mut offset = range.start;
    let replaced = || Error::Network {
        endpoint: format!("{}/{}", bucket.config.endpoint, bucket.config.bucket),
        detail: format!("{key} was replaced during the download; fetch it again"),
        transient: true,
    };
    while offset < range.end {
        let end = offset.saturating_add(step).min(range.end); // exclusive, > offset
        let want = end - offset;
        let what = format!("GET {key} bytes {offset}..{end}");
        let ctx = bucket.ctx(&what);
        let mut was_replaced = false;
        let fetched = with_retries(&bucket.config.retry, || {
            chunk.clear();
            let mut capped = CappedWriter::new(&mut chunk, want);
            // `end - 1 >= offset` because `end > offset`: rust-s3 asserts it.
            let command = Command::GetObjectRange {
                start: offset,
                end: Some(end - 1),
            };
            let result = bucket.reader.send(&client, key, command, &ctx, &mut capped);
            if capped.exceeded() {
                return Err(Error::limit(
                    format!("bytes the server sent for {what}"),
                    want,
                    want.saturating_add(1),
                ));
            }
            let got = capped.written();
            match result? {
                Sent::Ok(_) => {}
                Sent::Failed(f) if f.status == 412 => {
                    // Retrying this range cannot help: stop, and let the
                    // caller start over from HEAD (the error is transient).
                    was_replaced = true;
                    return Err(Error::InvalidArgument("object replaced".into()));
                }
                failed => {
                    failed.ok(&ctx)?;
                }
            }
            if got != want {
                return Err(Error::Network {
                    endpoint: format!("{}/{}", bucket.config.endpoint, bucket.config.bucket),
                    detail: format!("{what}: the server sent {got} of {want} bytes"),
                    transient: true,
                });
            }
            Ok(())
        });
        if was_replaced {
            return Err(replaced());
        }
        fetched?;
        sink.write_all(&chunk)
            .map_err(|e| Error::io(format!("download of {key}"), e))?;
        offset = end;
    }
    Ok(())
}
