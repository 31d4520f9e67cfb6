//! Retries (the crate's one [`Backoff`]), and the mapping from `rust-s3`'s
//! errors to the crate's [`Error`].

use std::io;

use s3::error::S3Error;

use super::config::RetryPolicy;
use crate::error::{Error, Result};
use crate::util::retry::Failed;

/// Runs `attempt` until it succeeds, fails with a non-transient error, or
/// the policy's tries are used up ([`Backoff::run`]). Returns the last error.
pub(crate) fn with_retries<T>(
    policy: &RetryPolicy,
    mut attempt: impl FnMut() -> Result<T>,
) -> Result<T> {
    policy.backoff().run(|| attempt().map_err(Failed::from))
}

/// What we were doing, for error messages.
pub(crate) struct Context<'a> {
    /// The endpoint (`https://host`).
    pub endpoint: &'a str,
    /// The bucket.
    pub bucket: &'a str,
    /// The key, or a description of the request.
    pub what: &'a str,
}

/// HTTP statuses worth retrying.
fn transient_status(status: u16) -> bool {
    matches!(status, 408 | 429) || (500..=599).contains(&status)
}

/// The `<Code>` of an S3 XML error body, if it has one.
fn error_code(body: &str) -> Option<&str> {
    let start = body.find("<Code>")? + "<Code>".len();
    let len = body[start..].find("</Code>")?;
    let code = &body[start..start + len];
    (code.len() <= 64 && code.bytes().all(|b| b.is_ascii_alphanumeric())).then_some(code)
}

fn transient_io(kind: io::ErrorKind) -> bool {
    use io::ErrorKind::*;
    matches!(
        kind,
        ConnectionRefused
            | ConnectionReset
            | ConnectionAborted
            | TimedOut
            | UnexpectedEof
            | BrokenPipe
            | NotConnected
            | NetworkUnreachable
            | HostUnreachable
            | AddrNotAvailable
            | Interrupted
            | WouldBlock
    )
}

/// The I/O error under an HTTP client error, if there is one.
fn io_kind_of(error: &attohttpc::Error) -> Option<io::ErrorKind> {
    match error.kind() {
        attohttpc::ErrorKind::Io(e) => Some(e.kind()),
        _ => None,
    }
}

/// Maps a `rust-s3` error to the crate's error.
pub(crate) fn map_error(ctx: &Context<'_>, error: S3Error) -> Error {
    let network = |detail: String, transient: bool| Error::Network {
        endpoint: format!("{}/{}", ctx.endpoint, ctx.bucket),
        detail: format!("{}: {detail}", ctx.what),
        transient,
    };
    match error {
        S3Error::HttpFailWithBody(status, body) => {
            let code = error_code(&body).unwrap_or("");
            match status {
                401 | 403 => Error::AccessDenied(format!(
                    "{}/{} refused {} (HTTP {status} {code}): check the access key and its permissions",
                    ctx.endpoint, ctx.bucket, ctx.what
                )),
                404 if code == "NoSuchBucket" => {
                    Error::NotFound(format!("bucket {:?} at {}", ctx.bucket, ctx.endpoint))
                }
                404 => Error::NotFound(format!("{} in bucket {:?}", ctx.what, ctx.bucket)),
                416 => Error::InvalidArgument(format!(
                    "{}: range not satisfiable (HTTP 416)",
                    ctx.what
                )),
                _ => network(format!("HTTP {status} {code}"), transient_status(status)),
            }
        }
        S3Error::Atto(e) => {
            let transient = io_kind_of(&e).is_some_and(transient_io);
            network(e.to_string(), transient)
        }
        S3Error::Io(e) => {
            let transient = transient_io(e.kind());
            network(e.to_string(), transient)
        }
        S3Error::Credentials(e) => Error::AccessDenied(format!("S3 credentials: {e}")),
        S3Error::SerdeXml(e) => Error::corrupt("S3 response", ctx.what, e.to_string()),
        other => network(other.to_string(), false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ctx() -> Context<'static> {
        Context {
            endpoint: "http://h",
            bucket: "b",
            what: "GET k",
        }
    }

    #[test]
    fn statuses_map_to_errors() {
        let denied = map_error(
            &ctx(),
            S3Error::HttpFailWithBody(
                403,
                "<Error><Code>SignatureDoesNotMatch</Code></Error>".into(),
            ),
        );
        assert!(matches!(&denied, Error::AccessDenied(m) if m.contains("SignatureDoesNotMatch")));
        assert!(matches!(
            map_error(&ctx(), S3Error::HttpFailWithBody(404, String::new())),
            Error::NotFound(_)
        ));
        for (status, transient) in [(500, true), (503, true), (429, true), (400, false)] {
            let e = map_error(&ctx(), S3Error::HttpFailWithBody(status, String::new()));
            assert_eq!(e.is_transient(), transient, "{status}");
        }
        let refused = S3Error::Io(io::Error::from(io::ErrorKind::ConnectionRefused));
        assert!(map_error(&ctx(), refused).is_transient());
    }

    #[test]
    fn the_policy_is_the_shared_backoff() {
        let policy = RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(2),
        };
        let mut calls = 0;
        let r: Result<()> = with_retries(&policy, || {
            calls += 1;
            Err(Error::Network {
                endpoint: "e".into(),
                detail: "d".into(),
                transient: true,
            })
        });
        assert!(r.is_err());
        assert_eq!(calls, 3);
    }
}
