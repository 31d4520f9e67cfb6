//! The bucket commitment: the string a miner publishes on chain so that
//! validators can find and read its bucket.
//!
//! ## Format, version 1
//!
//! Six fields separated by `|` (no field can contain `|`):
//!
//! ```text
//! bistro1|<endpoint>|<bucket>|<region>|<read key id>|<read secret>
//! ```
//!
//! - `endpoint`: `https://host[:port]`, `http://host[:port]`, or
//!   `file:///absolute/path` (a local bucket folder's parent, for the local
//!   network). A host is letters, digits, `.` and `-`, or an IPv4 address;
//!   a file path is `/`-separated components of `A-Z a-z 0-9 . _ -` (no `.`
//!   or `..`). At most [`MAX_ENDPOINT_BYTES`].
//! - `bucket`: an S3 bucket name: 3 to 63 of `a-z 0-9 . -`, starting and
//!   ending with a letter or digit (for `file://`, the folder under the path).
//! - `region`: empty (meaning `us-east-1`) or 1 to 32 of `a-z 0-9 -`
//!   (`auto` for Cloudflare R2).
//! - `read key id` and `read secret`: both empty (the bucket is public-read)
//!   or both set: a read-only S3 key pair. The id is 1 to 64 of `A-Z a-z 0-9`;
//!   the secret 1 to 128 of `A-Z a-z 0-9 + / =`.
//!
//! The whole string is at most [`MAX_COMMITMENT_BYTES`] (512, the chain's
//! `BigRaw` limit); a public-read commitment with a short endpoint fits one
//! `Raw` field ([`RAW_FIELD_BYTES`], 128). Parsing is strict: what
//! [`BucketCommitment::parse`] accepts, [`BucketCommitment::encode`] writes
//! back byte for byte.

use std::fmt;

use crate::error::{Error, Result};

/// The version tag every version-1 commitment starts with.
pub const VERSION_TAG: &str = "bistro1";
/// The longest commitment string: the chain's `BigRaw` limit.
pub const MAX_COMMITMENT_BYTES: usize = 512;
/// The longest string that fits one chain `Raw` field.
pub const RAW_FIELD_BYTES: usize = 128;
/// The longest endpoint.
pub const MAX_ENDPOINT_BYTES: usize = 160;
/// The longest read key id (AWS uses 20 characters, R2 32).
pub const MAX_KEY_ID_BYTES: usize = 64;
/// The longest read secret (AWS uses 40 characters, R2 64).
pub const MAX_SECRET_BYTES: usize = 128;

// The largest valid commitment fits the chain's BigRaw field:
// tag, 5 separators, endpoint, bucket (63), region (32), key id, secret.
const _: () = assert!(
    VERSION_TAG.len() + 5 + MAX_ENDPOINT_BYTES + 63 + 32 + MAX_KEY_ID_BYTES + MAX_SECRET_BYTES
        <= MAX_COMMITMENT_BYTES
);
/// The region used when the commitment leaves it empty.
pub const DEFAULT_REGION: &str = "us-east-1";

/// Where a miner's bucket is and how to read it.
#[derive(Clone, PartialEq, Eq)]
pub struct BucketCommitment {
    /// `https://host[:port]`, `http://host[:port]` or `file:///abs/path`.
    pub endpoint: String,
    /// The bucket name.
    pub bucket: String,
    /// The S3 region (`None`: [`DEFAULT_REGION`]).
    pub region: Option<String>,
    /// A read-only access key id (`None`: the bucket is public-read).
    pub read_key_id: Option<String>,
    /// The secret of the read-only key.
    pub read_secret: Option<String>,
}

impl fmt::Debug for BucketCommitment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The secret is published on chain, but logs need not repeat it.
        f.debug_struct("BucketCommitment")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("read_key_id", &self.read_key_id)
            .field("read_secret", &self.read_secret.as_ref().map(|_| "…"))
            .finish()
    }
}

/// What kind of place an endpoint names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndpointKind {
    /// An S3-compatible server over HTTPS.
    Https,
    /// An S3-compatible server over plain HTTP (a local MinIO, tests).
    Http,
    /// A folder on this machine (`file:///abs/path`).
    File,
}

fn bad(field: &str, why: impl Into<String>) -> Error {
    Error::corrupt("bucket commitment", field, why)
}

impl BucketCommitment {
    /// A public-read commitment for `bucket` at `endpoint`.
    pub fn public(endpoint: impl Into<String>, bucket: impl Into<String>) -> Self {
        BucketCommitment {
            endpoint: endpoint.into(),
            bucket: bucket.into(),
            region: None,
            read_key_id: None,
            read_secret: None,
        }
    }

    /// A commitment for a local bucket: folder `bucket` under the absolute
    /// folder `parent`.
    pub fn local(parent: &std::path::Path, bucket: impl Into<String>) -> Result<Self> {
        let parent = parent
            .to_str()
            .ok_or_else(|| Error::InvalidArgument(format!("{} is not UTF-8", parent.display())))?;
        let c = Self::public(format!("file://{parent}"), bucket);
        c.validate()?;
        Ok(c)
    }

    /// The region to use: the committed one or [`DEFAULT_REGION`].
    pub fn region_or_default(&self) -> &str {
        self.region.as_deref().unwrap_or(DEFAULT_REGION)
    }

    /// What kind of endpoint this is (after validation).
    pub fn endpoint_kind(&self) -> Result<EndpointKind> {
        check_endpoint(&self.endpoint)
    }

    /// For an `http(s)://` endpoint, its host and port (the scheme's default
    /// port when none is given); `None` for `file://` or an invalid endpoint.
    pub fn host_and_port(&self) -> Option<(&str, u16)> {
        let (authority, default_port) = match check_endpoint(&self.endpoint).ok()? {
            EndpointKind::Https => (self.endpoint.strip_prefix("https://")?, 443),
            EndpointKind::Http => (self.endpoint.strip_prefix("http://")?, 80),
            EndpointKind::File => return None,
        };
        match authority.rsplit_once(':') {
            Some((host, port)) => Some((host, port.parse().ok()?)),
            None => Some((authority, default_port)),
        }
    }

    /// For a `file://` endpoint, the absolute folder it names.
    pub fn file_path(&self) -> Option<&str> {
        self.endpoint.strip_prefix("file://")
    }

    /// Checks every field against the format.
    pub fn validate(&self) -> Result<()> {
        check_endpoint(&self.endpoint)?;
        check_bucket(&self.bucket)?;
        if let Some(region) = &self.region {
            check_region(region)?;
        }
        match (&self.read_key_id, &self.read_secret) {
            (None, None) => {}
            (Some(id), Some(secret)) => {
                check_key_id(id)?;
                check_secret(secret)?;
            }
            _ => {
                return Err(bad(
                    "read key",
                    "a read key id and its secret must be given together",
                ));
            }
        }
        Ok(())
    }

    /// The commitment string (see the module docs), after validation.
    pub fn encode(&self) -> Result<String> {
        self.validate()?;
        let s = format!(
            "{VERSION_TAG}|{}|{}|{}|{}|{}",
            self.endpoint,
            self.bucket,
            self.region.as_deref().unwrap_or(""),
            self.read_key_id.as_deref().unwrap_or(""),
            self.read_secret.as_deref().unwrap_or(""),
        );
        if s.len() > MAX_COMMITMENT_BYTES {
            return Err(Error::limit(
                "bucket commitment bytes",
                MAX_COMMITMENT_BYTES as u64,
                s.len() as u64,
            ));
        }
        Ok(s)
    }

    /// Parses a commitment read from the chain (hostile input).
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        if bytes.len() > MAX_COMMITMENT_BYTES {
            return Err(Error::limit(
                "bucket commitment bytes",
                MAX_COMMITMENT_BYTES as u64,
                bytes.len() as u64,
            ));
        }
        let text =
            std::str::from_utf8(bytes).map_err(|_| bad("bytes", "not UTF-8 (not a commitment)"))?;
        let fields: Vec<&str> = text.split('|').collect();
        let tag = fields.first().copied().unwrap_or_default();
        if tag != VERSION_TAG {
            if let Some(found) = tag
                .strip_prefix("bistro")
                .and_then(|v| v.parse::<u32>().ok())
            {
                return Err(Error::UnsupportedVersion {
                    input: "bucket commitment",
                    found,
                    supported: "1".into(),
                });
            }
            return Err(Error::BadMagic {
                input: "bucket commitment",
                found: tag.bytes().take(8).collect(),
            });
        }
        let [_, endpoint, bucket, region, key_id, secret] = fields[..] else {
            return Err(bad(
                "fields",
                format!("{} fields, version 1 has 6", fields.len()),
            ));
        };
        let optional = |s: &str| (!s.is_empty()).then(|| s.to_string());
        let c = BucketCommitment {
            endpoint: endpoint.to_string(),
            bucket: bucket.to_string(),
            region: optional(region),
            read_key_id: optional(key_id),
            read_secret: optional(secret),
        };
        c.validate()?;
        Ok(c)
    }
}

fn check_endpoint(endpoint: &str) -> Result<EndpointKind> {
    if endpoint.len() > MAX_ENDPOINT_BYTES {
        return Err(bad(
            "endpoint",
            format!("longer than {MAX_ENDPOINT_BYTES} bytes"),
        ));
    }
    if let Some(path) = endpoint.strip_prefix("file://") {
        check_file_path(path)?;
        return Ok(EndpointKind::File);
    }
    let (kind, authority) = if let Some(rest) = endpoint.strip_prefix("https://") {
        (EndpointKind::Https, rest)
    } else if let Some(rest) = endpoint.strip_prefix("http://") {
        (EndpointKind::Http, rest)
    } else {
        return Err(bad(
            "endpoint",
            "must start with https://, http:// or file://",
        ));
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        && !host.starts_with(['.', '-'])
        && !host.ends_with(['.', '-'])
        && !host.contains("..");
    if !host_ok {
        return Err(bad(
            "endpoint",
            "host must be letters, digits, '.' and '-' (no path, user or query)",
        ));
    }
    if let Some(port) = port {
        let valid = !port.is_empty()
            && port.len() <= 5
            && port.bytes().all(|b| b.is_ascii_digit())
            && !port.starts_with('0')
            && port.parse::<u32>().is_ok_and(|p| (1..=65535).contains(&p));
        if !valid {
            return Err(bad("endpoint", "port must be 1 to 65535"));
        }
    }
    Ok(kind)
}

fn check_file_path(path: &str) -> Result<()> {
    let Some(rest) = path.strip_prefix('/') else {
        return Err(bad("endpoint", "file:// needs an absolute path"));
    };
    if rest.is_empty() {
        return Err(bad("endpoint", "file:/// names the root folder"));
    }
    for component in rest.split('/') {
        let ok = !component.is_empty()
            && component != "."
            && component != ".."
            && component
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !ok {
            return Err(bad(
                "endpoint",
                "file path components must be A-Z a-z 0-9 . _ - (no '.', '..' or empty ones)",
            ));
        }
    }
    Ok(())
}

fn check_bucket(bucket: &str) -> Result<()> {
    let ok = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && bucket
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && bucket
            .bytes()
            .last()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && !bucket.contains("..");
    if ok {
        Ok(())
    } else {
        Err(bad(
            "bucket",
            "must be 3 to 63 of a-z 0-9 . -, starting and ending with a letter or digit",
        ))
    }
}

fn check_region(region: &str) -> Result<()> {
    let ok = (1..=32).contains(&region.len())
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(bad("region", "must be 1 to 32 of a-z 0-9 -"))
    }
}

fn check_key_id(id: &str) -> Result<()> {
    let ok =
        (1..=MAX_KEY_ID_BYTES).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(bad(
            "read key id",
            format!("must be 1 to {MAX_KEY_ID_BYTES} of A-Z a-z 0-9"),
        ))
    }
}

fn check_secret(secret: &str) -> Result<()> {
    let ok = (1..=MAX_SECRET_BYTES).contains(&secret.len())
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='));
    if ok {
        Ok(())
    } else {
        Err(bad(
            "read secret",
            format!("must be 1 to {MAX_SECRET_BYTES} of A-Z a-z 0-9 + / ="),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r2() -> BucketCommitment {
        BucketCommitment {
            endpoint: format!("https://{}.r2.cloudflarestorage.com", "a".repeat(32)),
            bucket: "miner-deltas".into(),
            region: Some("auto".into()),
            read_key_id: Some("b".repeat(32)),
            read_secret: Some("c".repeat(64)),
        }
    }

    #[test]
    fn test_vectors() {
        let public = BucketCommitment::public("https://s3.us-east-1.amazonaws.com", "my-deltas");
        let s = public.encode().unwrap();
        assert_eq!(s, "bistro1|https://s3.us-east-1.amazonaws.com|my-deltas|||");
        assert!(s.len() <= RAW_FIELD_BYTES);
        assert_eq!(BucketCommitment::parse(s.as_bytes()).unwrap(), public);

        let s = r2().encode().unwrap();
        assert!(s.len() <= MAX_COMMITMENT_BYTES, "{}", s.len());
        assert!(s.starts_with("bistro1|https://aaaa"));
        assert!(s.ends_with(&format!(
            "|miner-deltas|auto|{}|{}",
            "b".repeat(32),
            "c".repeat(64)
        )));
        assert_eq!(BucketCommitment::parse(s.as_bytes()).unwrap(), r2());

        let local = BucketCommitment::local(std::path::Path::new("/tmp/net"), "miner-1").unwrap();
        assert_eq!(
            local.encode().unwrap(),
            "bistro1|file:///tmp/net|miner-1|||"
        );
        assert_eq!(local.file_path(), Some("/tmp/net"));
        assert_eq!(local.endpoint_kind().unwrap(), EndpointKind::File);

        let minio = "bistro1|http://127.0.0.1:9000|b12|us-east-1|AKIAX|abc/+=";
        let parsed = BucketCommitment::parse(minio.as_bytes()).unwrap();
        assert_eq!(parsed.encode().unwrap(), minio);
        assert_eq!(parsed.endpoint_kind().unwrap(), EndpointKind::Http);
    }

    #[test]
    fn largest_commitment_fits_big_raw() {
        let c = BucketCommitment {
            endpoint: format!("https://{}", "h".repeat(MAX_ENDPOINT_BYTES - 8)),
            bucket: "b".repeat(63),
            region: Some("r".repeat(32)),
            read_key_id: Some("k".repeat(MAX_KEY_ID_BYTES)),
            read_secret: Some("s".repeat(MAX_SECRET_BYTES)),
        };
        let s = c.encode().unwrap();
        assert!(s.len() <= MAX_COMMITMENT_BYTES, "{}", s.len());
        assert_eq!(BucketCommitment::parse(s.as_bytes()).unwrap(), c);
        // One byte more in any field is refused.
        let mut long_id = c.clone();
        long_id.read_key_id = Some("k".repeat(MAX_KEY_ID_BYTES + 1));
        assert!(long_id.encode().is_err());
        let mut long_endpoint = c.clone();
        long_endpoint.endpoint.push('h');
        assert!(long_endpoint.encode().is_err());
    }

    #[test]
    fn rejects_hostile_input() {
        let cases: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            b"bistro1".to_vec(),
            b"bistro1|https://h|bkt||".to_vec(),
            b"bistro1|https://h|bkt||||".to_vec(),
            b"bistro2|https://h|bkt|||".to_vec(),
            b"hello|https://h|bkt|||".to_vec(),
            b"bistro1|ftp://h|bkt|||".to_vec(),
            b"bistro1|https://|bkt|||".to_vec(),
            b"bistro1|https://h/path|bkt|||".to_vec(),
            b"bistro1|https://user@h|bkt|||".to_vec(),
            b"bistro1|https://h:0|bkt|||".to_vec(),
            b"bistro1|https://h:65536|bkt|||".to_vec(),
            b"bistro1|https://h:|bkt|||".to_vec(),
            b"bistro1|https://h..x|bkt|||".to_vec(),
            b"bistro1|file://relative|bkt|||".to_vec(),
            b"bistro1|file:///|bkt|||".to_vec(),
            b"bistro1|file:///tmp/../etc|bkt|||".to_vec(),
            b"bistro1|file:///tmp//x|bkt|||".to_vec(),
            b"bistro1|https://h|BKT|||".to_vec(),
            b"bistro1|https://h|ab|||".to_vec(),
            b"bistro1|https://h|-bkt|||".to_vec(),
            b"bistro1|https://h|../x|||".to_vec(),
            b"bistro1|https://h|bkt|US-EAST|||".to_vec(),
            b"bistro1|https://h|bkt||key|".to_vec(),
            b"bistro1|https://h|bkt|||secret".to_vec(),
            b"bistro1|https://h|bkt||k y|s".to_vec(),
            b"bistro1|https://h|bkt||k|s\0".to_vec(),
            b"bistro1|https://h|bkt|\xff||".to_vec(),
            vec![b'a'; MAX_COMMITMENT_BYTES + 1],
        ];
        for case in cases {
            let result = BucketCommitment::parse(&case);
            assert!(result.is_err(), "{:?}", String::from_utf8_lossy(&case));
        }
        assert!(matches!(
            BucketCommitment::parse(b"bistro2|https://h|bkt|||"),
            Err(Error::UnsupportedVersion { found: 2, .. })
        ));
        assert!(matches!(
            BucketCommitment::parse(&vec![b'a'; 600]),
            Err(Error::LimitExceeded { .. })
        ));
    }

    #[test]
    fn debug_hides_the_secret() {
        let shown = format!("{:?}", r2());
        assert!(!shown.contains(&"c".repeat(64)));
    }
}
