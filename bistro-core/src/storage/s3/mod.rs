//! [`S3Bucket`]: a bucket on AWS S3, Cloudflare R2, MinIO or any
//! S3-compatible server, with `rust-s3`'s blocking client.
//!
//! - **Atomic puts** come from S3 itself: a single `PUT`, or a multipart
//!   upload, becomes visible whole when it completes. Objects larger than
//!   [`S3Config::part_size`] are uploaded in parts (memory: one part), each
//!   part retried on its own; a failed upload is aborted.
//! - **Guarded reads**: every read (`HEAD`, ranged `GET`, listing) is sent
//!   by [`send`]: no redirects followed, the bucket's
//!   [`EndpointPolicy`](crate::storage::EndpointPolicy) applied to every
//!   address connected to.
//! - **Bounded reads**: a `HEAD` first refuses objects over the caller's cap;
//!   the body is then fetched in ranges of at most `part_size` bytes with
//!   `If-Match` on the `ETag`, each range written through a byte cap, so a
//!   lying `Content-Length` or an object replaced mid-download is detected,
//!   never spliced. Listings are read through a byte cap too.
//! - **Retries**: transient failures (connection refused or reset, timeouts,
//!   HTTP 408/429/5xx) are retried with bounded exponential backoff
//!   ([`RetryPolicy`]); 4xx answers are final: 401/403 become
//!   [`Error::AccessDenied`], 404 [`Error::NotFound`]. `rust-s3`'s own
//!   (process-global) retry count is set to 0 when a bucket is created so
//!   that there is exactly one retry loop.

mod config;
mod download;
mod list;
mod retry;
mod send;
mod time;
mod upload;

use std::ops::Range;
use std::path::Path;

use s3::command::Command;
use s3::creds::Credentials;
use s3::error::S3Error;
use s3::region::Region;

pub use config::{
    ACCESS_KEY_ENV, MAX_PART_BYTES, MAX_PARTS, MIN_PART_BYTES, RetryPolicy, S3Config,
    S3Credentials, SECRET_KEY_ENV,
};
use retry::{Context, map_error, with_retries};

use super::key::{validate_key, validate_prefix};
use super::limited::CappedWriter;
use super::{Bucket, ObjectInfo};
use crate::error::{Error, Result};
use crate::util::atomic::TempFile;

/// A bucket on an S3-compatible server.
pub struct S3Bucket {
    config: S3Config,
    bucket: Box<s3::Bucket>,
    reader: send::Sender,
}

impl std::fmt::Debug for S3Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Bucket")
            .field("config", &self.config)
            .finish()
    }
}

/// `ETag` and `Last-Modified` of an object, from `HEAD`.
#[derive(Clone, Debug)]
pub(crate) struct Head {
    pub info: ObjectInfo,
    pub etag: Option<String>,
}

impl S3Bucket {
    /// Opens the bucket `config` describes (no request is made).
    pub fn new(config: S3Config) -> Result<Self> {
        config.validate()?;
        // One retry loop: ours (see the module docs).
        s3::set_retries(0);
        let credentials = match &config.credentials {
            S3Credentials::Anonymous => Credentials::anonymous(),
            S3Credentials::Key { id, secret } => {
                Credentials::new(Some(id), Some(secret), None, None, None)
            }
        }
        .map_err(|e| Error::InvalidArgument(format!("S3 credentials: {e}")))?;
        let region = Region::Custom {
            region: config.region.clone(),
            endpoint: config.endpoint.trim_end_matches('/').to_string(),
        };
        let mut bucket = s3::Bucket::new(&config.bucket, region, credentials)
            .map_err(|e| Error::InvalidArgument(format!("S3 bucket: {e}")))?;
        if config.path_style {
            bucket = bucket.with_path_style();
        }
        let bucket = bucket
            .with_request_timeout(config.request_timeout)
            .map_err(|e| Error::InvalidArgument(format!("S3 bucket: {e}")))?;
        let reader = send::Sender::new(config.request_timeout, config.endpoint_policy);
        Ok(S3Bucket {
            config,
            bucket,
            reader,
        })
    }

    /// The configuration this bucket was opened with.
    pub fn config(&self) -> &S3Config {
        &self.config
    }

    /// Creates the bucket on the server if it does not exist yet (a miner's
    /// first run; tests). An existing bucket owned by the caller is fine.
    pub fn create_bucket_if_missing(&self) -> Result<()> {
        let ctx = self.ctx("create bucket");
        with_retries(&self.config.retry, || {
            use s3::request::Request as _;
            // us-east-1 takes no location constraint (AWS and moto refuse
            // one); rust-s3 only knows that for its built-in region value.
            let mut config = s3::BucketConfiguration::default();
            if self.config.region != crate::storage::commitment::DEFAULT_REGION {
                config.set_location_constraint(self.bucket.region.clone());
            }
            let command = s3::command::Command::CreateBucket { config };
            let created = s3::request::blocking::AttoRequest::new(&self.bucket, "", command)
                .and_then(|request| request.response_data(false));
            match created {
                Ok(_) => Ok(()),
                Err(S3Error::HttpFailWithBody(409, body))
                    if body.contains("BucketAlreadyOwnedByYou") =>
                {
                    Ok(())
                }
                Err(e) => Err(map_error(&ctx, e)),
            }
        })
    }

    fn ctx<'a>(&'a self, what: &'a str) -> Context<'a> {
        Context {
            endpoint: &self.config.endpoint,
            bucket: &self.config.bucket,
            what,
        }
    }

    /// Runs one `rust-s3` call with retries, mapping its errors.
    fn call<T>(
        &self,
        what: &str,
        mut f: impl FnMut(&s3::Bucket) -> Result<T, S3Error>,
    ) -> Result<T> {
        let ctx = self.ctx(what);
        with_retries(&self.config.retry, || {
            f(&self.bucket).map_err(|e| map_error(&ctx, e))
        })
    }

    /// `HEAD` of `key`: `None` when there is no such object.
    pub(crate) fn head_full(&self, key: &str) -> Result<Option<Head>> {
        validate_key(key)?;
        let what = format!("HEAD {key}");
        let ctx = self.ctx(&what);
        let result = with_retries(&self.config.retry, || {
            self.reader
                .send(
                    &self.bucket,
                    key,
                    Command::HeadObject,
                    &ctx,
                    &mut std::io::sink(),
                )?
                .ok(&ctx)
        });
        let head = match result {
            Ok(answer) => answer.headers,
            Err(Error::NotFound(_)) => return Ok(None),
            Err(Error::AccessDenied(_)) => return Err(self.explain_denied(key, &what)),
            Err(e) => return Err(e),
        };
        let header = |name: http::header::HeaderName| head.get(name).and_then(|v| v.to_str().ok());
        let size = header(http::header::CONTENT_LENGTH)
            .and_then(|n| n.trim().parse::<u64>().ok())
            .ok_or_else(|| {
                Error::corrupt("S3 response", what.clone(), "no valid Content-Length")
            })?;
        let last_modified = header(http::header::LAST_MODIFIED)
            .and_then(time::parse_http_date)
            .ok_or_else(|| Error::corrupt("S3 response", what.clone(), "no valid Last-Modified"))?;
        let etag = header(http::header::ETAG).map(str::to_string);
        Ok(Some(Head {
            info: ObjectInfo {
                key: key.to_string(),
                size,
                last_modified,
            },
            etag,
        }))
    }
}

impl S3Bucket {
    /// A `HEAD` refusal has no body, so no reason: ask once more with a
    /// one-byte `GET`, whose refusal says why (`SignatureDoesNotMatch`,
    /// `InvalidAccessKeyId`, `AccessDenied`, ...).
    fn explain_denied(&self, key: &str, what: &str) -> Error {
        let ctx = self.ctx(what);
        let command = Command::GetObjectRange {
            start: 0,
            end: Some(0),
        };
        let mut one = CappedWriter::new(Vec::new(), 1);
        match self.reader.send(&self.bucket, key, command, &ctx, &mut one) {
            Ok(send::Sent::Failed(f)) if matches!(f.status, 401 | 403) => {
                map_error(&ctx, S3Error::HttpFailWithBody(f.status, f.body))
            }
            Err(refused @ Error::Refused(_)) => refused,
            _ => map_error(&ctx, S3Error::HttpFailWithBody(403, String::new())),
        }
    }
}

impl Bucket for S3Bucket {
    fn put(&self, key: &str, bytes: &[u8]) -> Result<()> {
        validate_key(key)?;
        if bytes.len() as u64 <= self.config.part_size {
            return upload::put_single(self, key, bytes);
        }
        upload::put_multipart(self, key, &mut std::io::Cursor::new(bytes))
    }

    fn put_file(&self, key: &str, path: &Path) -> Result<()> {
        validate_key(key)?;
        let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        upload::put_reader(self, key, &mut file, path)
    }

    fn get(&self, key: &str, max_bytes: u64) -> Result<Vec<u8>> {
        let head = self.expect_head(key)?;
        download::check_cap(key, head.info.size, max_bytes)?;
        let mut out = Vec::with_capacity(usize::try_from(head.info.size).unwrap_or(0));
        download::fetch(self, &head, 0..head.info.size, &mut out)?;
        Ok(out)
    }

    fn get_range(&self, key: &str, range: Range<u64>) -> Result<Vec<u8>> {
        validate_key(key)?;
        if range.start > range.end {
            return Err(Error::InvalidArgument(format!(
                "range {}..{} ends before it starts",
                range.start, range.end
            )));
        }
        let head = self.expect_head(key)?;
        if range.is_empty() {
            return Ok(Vec::new());
        }
        if range.start >= head.info.size {
            return Err(Error::InvalidArgument(format!(
                "range {}..{} starts past the end of {key:?} ({} bytes)",
                range.start, range.end, head.info.size
            )));
        }
        let clipped = range.start..range.end.min(head.info.size);
        let mut out = Vec::with_capacity(usize::try_from(clipped.end - clipped.start).unwrap_or(0));
        download::fetch(self, &head, clipped, &mut out)?;
        Ok(out)
    }

    fn get_to_file(&self, key: &str, dest: &Path, max_bytes: u64) -> Result<ObjectInfo> {
        let head = self.expect_head(key)?;
        download::check_cap(key, head.info.size, max_bytes)?;
        let mut temp = TempFile::beside(dest)?;
        {
            let temp_path = temp.path().to_path_buf();
            let file = temp.file()?;
            let mut writer = std::io::BufWriter::with_capacity(1 << 20, file);
            download::fetch(self, &head, 0..head.info.size, &mut writer)?;
            use std::io::Write;
            writer.flush().map_err(|e| Error::io(&temp_path, e))?;
        }
        temp.commit()?;
        Ok(head.info)
    }

    fn head(&self, key: &str) -> Result<Option<ObjectInfo>> {
        Ok(self.head_full(key)?.map(|h| h.info))
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        validate_prefix(prefix)?;
        list::list_all(self, prefix)
    }

    fn delete(&self, key: &str) -> Result<()> {
        validate_key(key)?;
        let what = format!("DELETE {key}");
        match self.call(&what, |b| b.delete_object(key)) {
            Ok(_) | Err(Error::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

impl S3Bucket {
    fn expect_head(&self, key: &str) -> Result<Head> {
        self.head_full(key)?
            .ok_or_else(|| Error::NotFound(format!("{key} in bucket {:?}", self.config.bucket)))
    }
}
