//! How to reach an S3-compatible bucket: endpoint, region, addressing style,
//! credentials, timeouts, retries and part size.

use std::fmt;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::storage::commitment::{BucketCommitment, EndpointKind};
use crate::storage::endpoint::EndpointPolicy;

/// The environment variable holding the access key id (as in the seed README).
pub const ACCESS_KEY_ENV: &str = "AWS_ACCESS_KEY_ID";
/// The environment variable holding the secret access key.
pub const SECRET_KEY_ENV: &str = "AWS_SECRET_ACCESS_KEY";

/// S3's smallest part (all but the last part of a multipart upload).
pub const MIN_PART_BYTES: u64 = 5 << 20;
/// S3's largest part.
pub const MAX_PART_BYTES: u64 = 5 << 30;
/// S3's most parts in one upload.
pub const MAX_PARTS: u64 = 10_000;

/// Who we are to the server.
#[derive(Clone, PartialEq, Eq)]
pub enum S3Credentials {
    /// No credentials: unsigned requests, for public-read buckets.
    Anonymous,
    /// An access key pair.
    Key {
        /// The access key id.
        id: String,
        /// The secret access key.
        secret: String,
    },
}

impl fmt::Debug for S3Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            S3Credentials::Anonymous => f.write_str("Anonymous"),
            S3Credentials::Key { id, .. } => write!(f, "Key {{ id: {id:?}, secret: … }}"),
        }
    }
}

impl S3Credentials {
    /// A key pair.
    pub fn key(id: impl Into<String>, secret: impl Into<String>) -> Self {
        S3Credentials::Key {
            id: id.into(),
            secret: secret.into(),
        }
    }

    /// The key pair in `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`.
    pub fn from_env() -> Result<Self> {
        let read = |name: &str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| {
                    Error::Unavailable(format!(
                        "S3 credentials: set {ACCESS_KEY_ENV} and {SECRET_KEY_ENV} ({name} is not set)"
                    ))
                })
        };
        Ok(S3Credentials::key(
            read(ACCESS_KEY_ENV)?,
            read(SECRET_KEY_ENV)?,
        ))
    }
}

/// When and how often a failed request is tried again.
///
/// Only transient failures are retried (connection refused or reset,
/// timeouts, HTTP 408, 429 and 5xx); 4xx answers are final. The wait before
/// try `n` (from 1) is `initial_backoff * 2^(n-1)`, at most `max_backoff`,
/// scaled by a random factor in [0.5, 1] so that many clients do not retry in
/// step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in all, including the first (at least 1).
    pub max_attempts: u32,
    /// The wait after the first failure.
    pub initial_backoff: Duration,
    /// The longest wait between tries.
    pub max_backoff: Duration,
}

impl RetryPolicy {
    /// The policy as the crate's shared retry helper.
    pub(crate) fn backoff(&self) -> crate::util::retry::Backoff {
        crate::util::retry::Backoff {
            max_attempts: self.max_attempts,
            initial: self.initial_backoff,
            max: self.max_backoff,
        }
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(8),
        }
    }
}

/// Everything an [`S3Bucket`](super::S3Bucket) needs.
#[derive(Clone, Debug)]
pub struct S3Config {
    /// `https://host[:port]` (or `http://` for a local server).
    pub endpoint: String,
    /// The bucket name.
    pub bucket: String,
    /// The region (`us-east-1` for MinIO and moto, `auto` for R2).
    pub region: String,
    /// Path-style addressing (`endpoint/bucket/key`, what MinIO and moto
    /// need) instead of virtual-hosted (`bucket.endpoint/key`).
    pub path_style: bool,
    /// Who we are.
    pub credentials: S3Credentials,
    /// The longest one request may take, body included. Transfers are split
    /// into requests of at most `part_size` bytes, so this bounds the time per
    /// part, not per object.
    pub request_timeout: Duration,
    /// Retries of transient failures.
    pub retry: RetryPolicy,
    /// Which addresses reads may connect to ([`EndpointPolicy`]): `Any` for
    /// a bucket of one's own, what the validator's policy says for a bucket a
    /// miner named.
    pub endpoint_policy: EndpointPolicy,
    /// Objects larger than this are uploaded in parts of this size, and
    /// downloaded in ranges of this size. Between [`MIN_PART_BYTES`] and
    /// [`MAX_PART_BYTES`]; grown automatically when an upload would need more
    /// than [`MAX_PARTS`] parts.
    pub part_size: u64,
}

impl S3Config {
    /// The default part size: 32 MiB.
    pub const DEFAULT_PART_BYTES: u64 = 32 << 20;

    /// A configuration with the defaults: region `us-east-1`, path-style
    /// unless the endpoint is AWS's own (`*.amazonaws.com`), 120 s per
    /// request, [`RetryPolicy::default`], 32 MiB parts.
    pub fn new(
        endpoint: impl Into<String>,
        bucket: impl Into<String>,
        credentials: S3Credentials,
    ) -> Self {
        let endpoint = endpoint.into();
        let path_style = !endpoint.trim_end_matches('/').ends_with(".amazonaws.com");
        S3Config {
            endpoint,
            bucket: bucket.into(),
            region: crate::storage::commitment::DEFAULT_REGION.to_string(),
            path_style,
            credentials,
            request_timeout: Duration::from_secs(120),
            retry: RetryPolicy::default(),
            endpoint_policy: EndpointPolicy::Any,
            part_size: Self::DEFAULT_PART_BYTES,
        }
    }

    /// How a validator reads the bucket a miner committed: with the
    /// commitment's read-only key, or anonymously if it has none, connecting
    /// only where `policy` allows.
    pub fn from_commitment(commitment: &BucketCommitment, policy: EndpointPolicy) -> Result<Self> {
        commitment.validate()?;
        if commitment.endpoint_kind()? == EndpointKind::File {
            return Err(Error::InvalidArgument(format!(
                "{} is a local folder, not an S3 endpoint",
                commitment.endpoint
            )));
        }
        let credentials = match (&commitment.read_key_id, &commitment.read_secret) {
            (Some(id), Some(secret)) => S3Credentials::key(id, secret),
            _ => S3Credentials::Anonymous,
        };
        let mut config = S3Config::new(&commitment.endpoint, &commitment.bucket, credentials);
        config.region = commitment.region_or_default().to_string();
        config.endpoint_policy = policy;
        Ok(config)
    }

    /// Sets the region.
    pub fn with_region(mut self, region: impl Into<String>) -> Self {
        self.region = region.into();
        self
    }

    /// Checks the settings.
    pub fn validate(&self) -> Result<()> {
        let endpoint_ok =
            self.endpoint.starts_with("https://") || self.endpoint.starts_with("http://");
        if !endpoint_ok {
            return Err(Error::InvalidArgument(format!(
                "S3 endpoint {:?} must start with https:// or http://",
                self.endpoint
            )));
        }
        if self.bucket.is_empty() || self.bucket.contains(['/', ' ', '\0']) {
            return Err(Error::InvalidArgument(format!(
                "bad S3 bucket name {:?}",
                self.bucket
            )));
        }
        if !(MIN_PART_BYTES..=MAX_PART_BYTES).contains(&self.part_size) {
            return Err(Error::InvalidArgument(format!(
                "S3 part size {} is outside {MIN_PART_BYTES}..={MAX_PART_BYTES}",
                self.part_size
            )));
        }
        if self.retry.max_attempts == 0 {
            return Err(Error::InvalidArgument(
                "S3 retry policy needs at least one attempt".into(),
            ));
        }
        if self.request_timeout.is_zero() {
            return Err(Error::InvalidArgument(
                "S3 request timeout must be positive".into(),
            ));
        }
        Ok(())
    }
}
