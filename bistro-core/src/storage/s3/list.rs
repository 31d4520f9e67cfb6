//! Listing with bounds: every page is read through a byte cap, the number of
//! pages and of objects is capped, and a server that never finishes a
//! listing is cut off.

use s3::command::Command;
use s3::serde_types::ListBucketResult;

use super::retry::with_retries;
use super::{S3Bucket, time};
use crate::error::{Error, Result};
use crate::storage::key::validate_key;
use crate::storage::limited::CappedWriter;
use crate::storage::{MAX_LIST_OBJECTS, ObjectInfo};

/// Keys asked for per page (S3's maximum).
const PAGE_KEYS: usize = 1000;
/// The most bytes one listing page may have (1000 keys of 1 KiB each is
/// about 1.5 MB of XML).
const MAX_PAGE_BYTES: u64 = 8 << 20;
/// The most pages one listing may take.
const MAX_PAGES: usize = 2 * MAX_LIST_OBJECTS / PAGE_KEYS + 10;

fn page(bucket: &S3Bucket, prefix: &str, token: Option<String>) -> Result<ListBucketResult> {
    let what = format!("LIST {prefix:?}");
    let ctx = bucket.ctx(&what);
    with_retries(&bucket.config.retry, || {
        let command = Command::ListObjectsV2 {
            prefix: prefix.to_string(),
            delimiter: None,
            continuation_token: token.clone(),
            start_after: None,
            max_keys: Some(PAGE_KEYS),
        };
        let mut body = Vec::new();
        let mut capped = CappedWriter::new(&mut body, MAX_PAGE_BYTES);
        let result = bucket
            .reader
            .send(&bucket.bucket, "/", command, &ctx, &mut capped);
        if capped.exceeded() {
            return Err(Error::limit(
                format!("bytes of one page of {what}"),
                MAX_PAGE_BYTES,
                MAX_PAGE_BYTES.saturating_add(1),
            ));
        }
        result?.ok(&ctx)?;
        quick_xml::de::from_reader(body.as_slice())
            .map_err(|e| Error::corrupt("S3 listing", what.clone(), e.to_string()))
    })
}

/// Every object under `prefix` (already validated), sorted by key. Keys that
/// break the key rule (objects someone else put there) are skipped.
pub(crate) fn list_all(bucket: &S3Bucket, prefix: &str) -> Result<Vec<ObjectInfo>> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let result = page(bucket, prefix, token.take())?;
        for object in result.contents {
            if !object.key.starts_with(prefix) || validate_key(&object.key).is_err() {
                continue;
            }
            if out.len() >= MAX_LIST_OBJECTS {
                return Err(Error::limit(
                    format!("objects under prefix {prefix:?}"),
                    MAX_LIST_OBJECTS as u64,
                    out.len() as u64 + 1,
                ));
            }
            let last_modified = time::parse_iso8601(&object.last_modified).ok_or_else(|| {
                Error::corrupt(
                    "S3 listing",
                    object.key.clone(),
                    format!(
                        "bad LastModified {:?}",
                        object.last_modified.chars().take(40).collect::<String>()
                    ),
                )
            })?;
            out.push(ObjectInfo {
                key: object.key,
                size: object.size,
                last_modified,
            });
        }
        match (result.is_truncated, result.next_continuation_token) {
            (true, Some(next)) => token = Some(next),
            (true, None) => {
                return Err(Error::corrupt(
                    "S3 listing",
                    format!("prefix {prefix:?}"),
                    "truncated page without a continuation token",
                ));
            }
            (false, _) => {
                out.sort_by(|a, b| a.key.cmp(&b.key));
                return Ok(out);
            }
        }
    }
    Err(Error::limit(
        format!("pages listing prefix {prefix:?}"),
        MAX_PAGES as u64,
        MAX_PAGES as u64 + 1,
    ))
}
