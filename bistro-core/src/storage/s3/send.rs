//! The one way this crate reads from an S3 server: `rust-s3` signs the
//! request (URL and headers, AWS Signature V4), and `ureq` sends it with
//!
//! - **no redirects**: a `3xx` answer is a [`Error::Refused`], never
//!   followed, so a server cannot send the reader on to `127.0.0.1` or a
//!   cloud's metadata address (`169.254.169.254`);
//! - **the endpoint policy on every connection**: under
//!   [`EndpointPolicy::Public`] the host name is resolved for each new
//!   connection and refused ([`Error::Refused`]) if any address it resolves
//!   to is not public, so a name that resolved to a public address when the
//!   commitment was first checked and to a private one later (DNS rebinding)
//!   is refused too; the connection goes only to the addresses checked;
//! - **no proxy from the environment**, no compression (ranges are byte
//!   offsets of the stored object), one time limit per request.
//!
//! Writes (a miner's own uploads) stay with `rust-s3`'s client: they go to
//! the writer's own bucket, named by the writer.

use std::io::{self, Read, Write};
use std::time::Duration;

use s3::command::{Command, HttpMethod};
use s3::request::Request as _;
use s3::request::blocking::AttoRequest;
use ureq::config::AutoHeaderValue;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};

use super::retry::{Context, map_error};
use crate::error::{Error, Result};
use crate::storage::endpoint::{EndpointPolicy, is_public};

/// The most bytes of an error answer's body kept (for its `<Code>`).
const MAX_ERROR_BODY: u64 = 64 << 10;

/// Sends signed read requests (`HEAD`, `GET`, listings) for one bucket.
#[derive(Debug)]
pub(crate) struct Sender {
    agent: ureq::Agent,
}

/// An answer with a success status: its status and headers (the body went to
/// the caller's sink).
pub(crate) struct Answer {
    pub headers: http::HeaderMap,
}

/// An answer that is not a success: the status and the start of its body.
pub(crate) struct Failure {
    pub status: u16,
    pub body: String,
}

/// What one request produced.
pub(crate) enum Sent {
    /// A 2xx answer.
    Ok(Answer),
    /// A 4xx or 5xx answer.
    Failed(Failure),
}

impl Sent {
    /// The answer, or the failure mapped to the crate's error
    /// ([`map_error`]: 401/403 access denied, 404 not found, 5xx transient).
    pub(crate) fn ok(self, ctx: &Context<'_>) -> Result<Answer> {
        match self {
            Sent::Ok(answer) => Ok(answer),
            Sent::Failed(f) => Err(map_error(
                ctx,
                s3::error::S3Error::HttpFailWithBody(f.status, f.body),
            )),
        }
    }
}

/// Resolves like the system does, then applies the endpoint policy to every
/// address (see the module docs).
#[derive(Debug)]
struct PolicyResolver {
    policy: EndpointPolicy,
    system: DefaultResolver,
}

/// The reason a resolved address was refused (carried through `ureq`).
#[derive(Debug)]
struct Refusal(String);

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refusal {}

impl Resolver for PolicyResolver {
    fn resolve(
        &self,
        uri: &http::Uri,
        config: &ureq::config::Config,
        timeout: NextTimeout,
    ) -> std::result::Result<ResolvedSocketAddrs, ureq::Error> {
        let addresses = self.system.resolve(uri, config, timeout)?;
        if self.policy == EndpointPolicy::Public
            && let Some(private) = addresses.iter().find(|a| !is_public(a.ip()))
        {
            let host = uri.host().unwrap_or("the endpoint");
            return Err(ureq::Error::Other(Box::new(Refusal(format!(
                "{host} resolves to {}, which is not a public address",
                private.ip()
            )))));
        }
        Ok(addresses)
    }
}

impl Sender {
    /// A sender whose requests each take at most `timeout`, connecting only
    /// where `policy` allows.
    pub(crate) fn new(timeout: Duration, policy: EndpointPolicy) -> Sender {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .max_redirects(0)
            .proxy(None)
            .accept_encoding(AutoHeaderValue::None)
            .user_agent(concat!("bistro/", env!("CARGO_PKG_VERSION")))
            .build();
        let resolver = PolicyResolver {
            policy,
            system: DefaultResolver::default(),
        };
        Sender {
            agent: ureq::Agent::with_parts(config, DefaultConnector::new(), resolver),
        }
    }

    /// Signs `command` on `path` with `bucket`'s credentials and sends it;
    /// a success's body is copied into `sink` (which the caller caps).
    pub(crate) fn send(
        &self,
        bucket: &s3::Bucket,
        path: &str,
        command: Command<'_>,
        ctx: &Context<'_>,
        sink: &mut dyn Write,
    ) -> Result<Sent> {
        let signing =
            |e: s3::error::S3Error| Error::InvalidArgument(format!("signing {}: {e}", ctx.what));
        let method = command.http_verb();
        let request = AttoRequest::new(bucket, path, command).map_err(signing)?;
        let url = request.url().map_err(signing)?;
        let headers = request.headers().map_err(signing)?;
        let mut builder = match method {
            HttpMethod::Get => self.agent.get(url.as_str()),
            HttpMethod::Head => self.agent.head(url.as_str()),
            other => {
                return Err(Error::InvalidArgument(format!(
                    "{}: the reader sends GET and HEAD only, not {other:?}",
                    ctx.what
                )));
            }
        };
        for (name, value) in &headers {
            builder = builder.header(name, value);
        }
        let response = builder.call().map_err(|e| transport_error(ctx, e))?;
        let status = response.status().as_u16();
        if response.status().is_redirection() {
            let to = response
                .headers()
                .get(http::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.chars().take(200).collect::<String>())
                .unwrap_or_default();
            return Err(Error::Refused(format!(
                "{}/{} answered {} with HTTP {status} to {to:?}: redirects are not followed",
                ctx.endpoint, ctx.bucket, ctx.what
            )));
        }
        let (parts, body) = response.into_parts();
        let mut reader = body.into_reader();
        if !parts.status.is_success() {
            let mut kept = Vec::new();
            let _ = (&mut reader).take(MAX_ERROR_BODY).read_to_end(&mut kept);
            return Ok(Sent::Failed(Failure {
                status,
                body: String::from_utf8_lossy(&kept).into_owned(),
            }));
        }
        if method == HttpMethod::Get {
            io::copy(&mut reader, sink).map_err(|e| body_error(ctx, e))?;
        }
        Ok(Sent::Ok(Answer {
            headers: parts.headers,
        }))
    }
}

/// A failure to get an answer at all: refused by the endpoint policy, or a
/// network error (transient when retrying may help).
fn transport_error(ctx: &Context<'_>, e: ureq::Error) -> Error {
    if let ureq::Error::Other(inner) = &e
        && let Some(refusal) = inner.downcast_ref::<Refusal>()
    {
        return Error::Refused(format!(
            "{}/{} ({}): {refusal}",
            ctx.endpoint, ctx.bucket, ctx.what
        ));
    }
    let endpoint = format!("{}/{}", ctx.endpoint, ctx.bucket);
    crate::util::ureq_error::network_error(&endpoint, ctx.what, &e)
}

/// A body that broke off or overflowed the caller's cap.
fn body_error(ctx: &Context<'_>, e: io::Error) -> Error {
    Error::Network {
        endpoint: format!("{}/{}", ctx.endpoint, ctx.bucket),
        detail: format!("{}: reading the body: {e}", ctx.what),
        transient: true,
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use crate::error::Error;
    use crate::storage::endpoint::EndpointPolicy;
    use crate::storage::{Bucket, S3Bucket, S3Config, S3Credentials};

    /// The policy applies to the address each connection goes to, not only
    /// to the commitment when it was first checked: a bucket whose name now
    /// resolves to loopback (DNS rebinding) is refused before connecting.
    #[test]
    fn a_public_policy_refuses_to_connect_to_a_private_address() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let mut config = S3Config::new(endpoint, "miner", S3Credentials::Anonymous);
        config.endpoint_policy = EndpointPolicy::Public;
        let bucket = S3Bucket::new(config).unwrap();
        for result in [
            bucket.head("deltas/k").map(|_| ()),
            bucket.list("deltas/").map(|_| ()),
            bucket.get("deltas/k", 10).map(|_| ()),
        ] {
            match result {
                Err(Error::Refused(why)) => assert!(why.contains("not a public address"), "{why}"),
                other => panic!("expected a refusal, got {other:?}"),
            }
        }
        assert!(listener.accept().is_err(), "a connection was made");
    }
}
