//! [`open_bucket`]: from a chain commitment to a bucket a validator can read.

use super::commitment::{BucketCommitment, EndpointKind};
use super::{Bucket, EndpointPolicy, LocalBucket};
use crate::error::{Error, Result};

/// Opens the bucket a commitment names, as its readers see it, if `policy`
/// allows its endpoint ([`EndpointPolicy::check`]; a refusal is
/// [`Error::Refused`]): a `file://` endpoint opens the existing folder
/// `<path>/<bucket>`; an `http(s)://` endpoint opens an `S3Bucket` (feature
/// `s3`) with the commitment's read-only key, or anonymously when the bucket
/// is public-read, whose every read applies `policy` again (no redirects,
/// every address it connects to checked).
///
/// Writers (the miner itself) open their own bucket with write credentials
/// instead: [`LocalBucket::create`], or `S3Bucket::new` with
/// `S3Credentials::from_env()`.
pub fn open_bucket(
    commitment: &BucketCommitment,
    policy: EndpointPolicy,
) -> Result<Box<dyn Bucket>> {
    policy.check(commitment)?;
    match commitment.endpoint_kind()? {
        EndpointKind::File => {
            commitment.validate()?;
            let parent = commitment
                .file_path()
                .ok_or_else(|| Error::InvalidArgument("file endpoint without a path".into()))?;
            let root = std::path::Path::new(parent).join(&commitment.bucket);
            Ok(Box::new(LocalBucket::open(root)?))
        }
        EndpointKind::Http | EndpointKind::Https => open_s3(commitment, policy),
    }
}

#[cfg(feature = "s3")]
fn open_s3(commitment: &BucketCommitment, policy: EndpointPolicy) -> Result<Box<dyn Bucket>> {
    let config = super::S3Config::from_commitment(commitment, policy)?;
    Ok(Box::new(super::S3Bucket::new(config)?))
}

#[cfg(not(feature = "s3"))]
fn open_s3(commitment: &BucketCommitment, _policy: EndpointPolicy) -> Result<Box<dyn Bucket>> {
    Err(Error::Unavailable(format!(
        "bucket at {} needs S3 support: build bistro-core with the `s3` feature",
        commitment.endpoint
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_a_local_commitment() {
        let dir = tempfile::tempdir().unwrap();
        let parent = dir.path().canonicalize().unwrap();
        let writer = LocalBucket::create(parent.join("miner-1")).unwrap();
        writer.put("a/b", b"hello").unwrap();

        let commitment = BucketCommitment::local(&parent, "miner-1").unwrap();
        let encoded = commitment.encode().unwrap();
        let reader = open_bucket(
            &BucketCommitment::parse(encoded.as_bytes()).unwrap(),
            EndpointPolicy::Any,
        )
        .unwrap();
        assert_eq!(reader.get("a/b", 100).unwrap(), b"hello");

        let missing = BucketCommitment::local(&parent, "nobody").unwrap();
        assert!(matches!(
            open_bucket(&missing, EndpointPolicy::Any),
            Err(Error::NotFound(_))
        ));
        assert!(matches!(
            open_bucket(&commitment, EndpointPolicy::Public),
            Err(Error::Refused(_))
        ));
    }

    #[cfg(not(feature = "s3"))]
    #[test]
    fn s3_needs_the_feature() {
        let c = BucketCommitment::public("https://s3.amazonaws.com", "bkt");
        assert!(matches!(
            open_bucket(&c, EndpointPolicy::Any),
            Err(Error::Unavailable(_))
        ));
    }
}
