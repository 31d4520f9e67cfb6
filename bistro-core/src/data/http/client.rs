//! A blocking HTTP GET with timeouts, a response-size cap, optional Range,
//! and bounded retries with exponential backoff; `Retry-After` on 429 and 503
//! is honoured up to a cap. Errors say whether a retry could help
//! ([`Error::Network`] with `transient`).

use std::time::Duration;

use ureq::Agent;
use ureq::config::AutoHeaderValue;

use super::content_range::parse_content_range;
use crate::error::{Error, Result};
use crate::util::retry::{Backoff, Failed};

/// Network settings shared by the HTTP sources.
#[derive(Clone, Debug)]
pub struct HttpOptions {
    /// Limit on one whole request: connect, send, receive headers and body.
    pub timeout: Duration,
    /// Limit on connecting.
    pub connect_timeout: Duration,
    /// Tries in all, the first included, for transient failures only (1
    /// means no retry; the same meaning as S3's `RetryPolicy::max_attempts`).
    pub max_attempts: u32,
    /// The wait after failed try `n` (from 1) is `backoff * 2^(n-1)`, capped
    /// at `max_backoff`, times a random factor in [0.5, 1].
    pub backoff: Duration,
    /// Largest backoff between attempts.
    pub max_backoff: Duration,
    /// Longest `Retry-After` honoured; a server asking for more gets this.
    pub max_retry_after: Duration,
    /// Largest response body accepted, in bytes.
    pub max_response_bytes: u64,
    /// Sent as `Authorization: Bearer <token>` when set (a HuggingFace token).
    pub bearer_token: Option<String>,
    /// Bound on a source's cache directory, in bytes: past it the least
    /// recently used entries are deleted (default 8 GiB).
    pub max_cache_bytes: u64,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            max_attempts: 6,
            backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(120),
            max_response_bytes: 64 << 20,
            bearer_token: None,
            max_cache_bytes: 8 << 30,
        }
    }
}

/// A response with a success status.
#[derive(Debug)]
pub(crate) struct Response {
    pub status: u16,
    pub body: Vec<u8>,
    /// `Content-Range: bytes START-END/TOTAL`, parsed (TOTAL `None` for `*`).
    pub content_range: Option<(u64, u64, Option<u64>)>,
}

/// The client: a connection-pooling agent and the options.
#[derive(Clone)]
pub(crate) struct HttpClient {
    agent: Agent,
    options: HttpOptions,
}

fn network(endpoint: &str, detail: impl Into<String>, transient: bool) -> Error {
    Error::Network {
        endpoint: endpoint.to_string(),
        detail: detail.into(),
        transient,
    }
}

/// What one attempt produced: a response, or an error and how long the
/// server asked us to wait before trying again.
enum Attempt {
    Done(Response),
    Failed(Error, Option<Duration>),
}

impl HttpClient {
    pub(crate) fn new(options: HttpOptions) -> Self {
        let agent: Agent = Agent::config_builder()
            .timeout_global(Some(options.timeout))
            .timeout_connect(Some(options.connect_timeout))
            .http_status_as_error(false)
            .max_redirects(5)
            // Ranges are byte offsets in the stored file: ask for it as stored.
            .accept_encoding(AutoHeaderValue::None)
            .user_agent(concat!("bistro/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        HttpClient { agent, options }
    }

    /// GETs `url` (bytes `start..end` if `range` is given), retrying
    /// transient failures. Statuses: 2xx is success, 404 and 410
    /// [`Error::NotFound`], 401 and 403 [`Error::AccessDenied`], 408, 429 and
    /// 5xx transient, other 4xx permanent.
    pub(crate) fn get(&self, url: &str, range: Option<(u64, u64)>) -> Result<Response> {
        let backoff = Backoff {
            max_attempts: self.options.max_attempts,
            initial: self.options.backoff,
            max: self.options.max_backoff,
        };
        backoff.run(|| match self.attempt(url, range) {
            Attempt::Done(response) => Ok(response),
            Attempt::Failed(error, retry_after) => Err(Failed {
                error,
                wait: retry_after.map(|d| d.min(self.options.max_retry_after)),
            }),
        })
    }

    fn attempt(&self, url: &str, range: Option<(u64, u64)>) -> Attempt {
        let mut request = self.agent.get(url);
        if let Some((start, end)) = range {
            // HTTP ranges are inclusive; callers never ask for an empty range.
            request = request.header("Range", format!("bytes={start}-{}", end.saturating_sub(1)));
        }
        if let Some(token) = &self.options.bearer_token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        let mut response = match request.call() {
            Ok(r) => r,
            Err(e) => return Attempt::Failed(classify(url, e), None),
        };
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let retry_after = header("retry-after")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let content_range = header("content-range");
        let limit = self.options.max_response_bytes;
        let body = response.body_mut().with_config().limit(limit).read_to_vec();
        if !(200..300).contains(&status) {
            let detail = body
                .ok()
                .map(|b| String::from_utf8_lossy(&b[..b.len().min(300)]).into_owned())
                .unwrap_or_default();
            let detail = format!("HTTP {status}: {}", detail.trim());
            let error = match status {
                404 | 410 => Error::NotFound(format!("{url}: {detail}")),
                401 | 403 => Error::AccessDenied(format!("{url}: {detail}")),
                408 | 429 | 500..=599 => network(url, detail, true),
                _ => network(url, detail, false),
            };
            return Attempt::Failed(
                error,
                retry_after.filter(|_| status == 429 || status == 503),
            );
        }
        let body = match body {
            Ok(b) => b,
            Err(ureq::Error::BodyExceedsLimit(_)) => {
                return Attempt::Failed(
                    Error::limit(
                        format!("response body from {url} (bytes)"),
                        limit,
                        limit + 1,
                    ),
                    None,
                );
            }
            Err(e) => return Attempt::Failed(classify(url, e), None),
        };
        let content_range = match content_range {
            None => None,
            Some(v) => match parse_content_range(&v) {
                Some(r) => Some(r),
                None => {
                    return Attempt::Failed(
                        network(url, format!("malformed Content-Range {v:?}"), false),
                        None,
                    );
                }
            },
        };
        Attempt::Done(Response {
            status,
            body,
            content_range,
        })
    }

    /// GETs exactly the bytes `start..end` (`start < end`) of the object at
    /// `url`; checks the server honoured the range. Returns the bytes and the
    /// object's total size when the server reported it.
    pub(crate) fn get_range(
        &self,
        url: &str,
        start: u64,
        end: u64,
    ) -> Result<(Vec<u8>, Option<u64>)> {
        let want = end - start;
        if want > self.options.max_response_bytes {
            return Err(Error::limit(
                format!("range of {url} (bytes)"),
                self.options.max_response_bytes,
                want,
            ));
        }
        let r = self.get(url, Some((start, end)))?;
        let total = match (r.status, r.content_range) {
            (206, Some((s, e, total))) if s == start && e.checked_add(1) == Some(end) => total,
            (206, Some((s, e, _))) => {
                return Err(network(
                    url,
                    format!("asked for bytes {start}-{}, got {s}-{e}", end - 1),
                    false,
                ));
            }
            (206, None) => return Err(network(url, "206 response without Content-Range", false)),
            // A server that ignores Range sends the whole object: usable only
            // when the range was the whole object.
            (_, _) if start == 0 && r.body.len() as u64 == want => Some(want),
            (status, _) => {
                return Err(network(
                    url,
                    format!(
                        "status {status} to a Range request: the server does not serve byte ranges"
                    ),
                    false,
                ));
            }
        };
        if r.body.len() as u64 != want {
            return Err(Error::Truncated {
                input: "http range",
                what: format!("{url} bytes {start}-{}", end - 1),
                needed: want,
                available: r.body.len() as u64,
            });
        }
        Ok((r.body, total))
    }
}

/// Maps a transport error: timeouts, refused or reset connections and DNS
/// failures are transient; TLS, protocol and URL errors are not.
fn classify(url: &str, e: ureq::Error) -> Error {
    crate::util::ureq_error::network_error(url, "", &e)
}
