//! `HttpShardSource` against real shard files served by a local HTTP server
//! (with injected faults) and by a real S3-compatible server (`moto_server`).
#![cfg(feature = "http")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // not library code: a failure here should stop loudly

mod support_http;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bistro_core::Error;
use bistro_core::data::{
    HttpOptions, HttpShardSource, PageSource, ShardSource, ShardWriter, TokenizerInfo,
};
use support_http::{Reply, TestServer, serve_bytes};

/// Fast retries for tests.
fn options() -> HttpOptions {
    HttpOptions {
        timeout: Duration::from_secs(5),
        max_attempts: 3,
        backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        max_retry_after: Duration::from_millis(50),
        ..HttpOptions::default()
    }
}

/// A shard of 40 pages of varied shapes (some empty) in `dir`.
fn write_shard(dir: &Path, name: &str) -> (PathBuf, Vec<u8>) {
    let path = dir.join(name);
    let mut w = ShardWriter::create(&path, TokenizerInfo::gpt2(), 2).unwrap();
    for p in 0..40u32 {
        let seqs: Vec<Vec<u32>> = (0..p % 3)
            .map(|s| {
                (0..(5 * p + s))
                    .map(|t| (p * 1000 + s * 10 + t) % 50_257)
                    .collect()
            })
            .collect();
        w.push_page(seqs.iter().map(|s| &s[..])).unwrap();
    }
    w.finish().unwrap();
    let bytes = std::fs::read(&path).unwrap();
    (path, bytes)
}

fn file_server(bytes: Vec<u8>) -> TestServer {
    TestServer::start(move |r, _| serve_bytes(&bytes, r.range.as_deref()))
}

#[test]
fn http_pages_equal_local_pages() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = write_shard(dir.path(), "a.shard");
    let sample = bistro_core::data::sample::split_paths("heldout").unwrap();
    let sample_bytes = std::fs::read(&sample[0]).unwrap();
    let a = file_server(bytes);
    let b = file_server(sample_bytes);
    let urls = [
        format!("{}/a.shard", a.base),
        format!("{}/heldout.shard", b.base),
    ];
    let remote = HttpShardSource::open(&urls, None, options()).unwrap();
    let local = ShardSource::open(&[path, sample[0].clone()]).unwrap();
    assert_eq!(remote.dataset_id(), local.dataset_id());
    assert_eq!(remote.num_pages(), local.num_pages());
    assert_eq!(remote.tokenizer(), local.tokenizer());
    for id in (0..local.num_pages()).filter(|id| id % 3 == 0 || *id < 45) {
        assert_eq!(
            remote.page(id).unwrap(),
            local.page(id).unwrap(),
            "page {id}"
        );
    }
    assert!(matches!(
        remote.page(local.num_pages()),
        Err(Error::NotFound(_))
    ));
    // Every page request was a Range request for exactly that page's bytes.
    assert!(a.requests().iter().all(|r| r.range.is_some()));
}

#[test]
fn pages_are_read_in_parallel_deterministically() {
    let dir = tempfile::tempdir().unwrap();
    let (_, bytes) = write_shard(dir.path(), "a.shard");
    let server = file_server(bytes);
    let remote =
        Arc::new(HttpShardSource::open(&[format!("{}/a", server.base)], None, options()).unwrap());
    let expected: Vec<_> = (0..40).map(|id| remote.page(id).unwrap()).collect();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let remote = remote.clone();
            std::thread::spawn(move || {
                (0..40)
                    .rev()
                    .map(|id| (id, remote.page((id + t) % 40).unwrap()))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for (t, handle) in threads.into_iter().enumerate() {
        for (id, page) in handle.join().unwrap() {
            assert_eq!(page, expected[((id + t as u64) % 40) as usize]);
        }
    }
}

#[test]
fn cache_serves_repeat_reads_and_heals_bad_entries() {
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let (_, bytes) = write_shard(dir.path(), "a.shard");
    let server = file_server(bytes);
    let url = [format!("{}/a.shard", server.base)];
    let first = HttpShardSource::open(&url, Some(cache.path()), options()).unwrap();
    let pages: Vec<_> = (0..40).map(|id| first.page(id).unwrap()).collect();
    let after_first = server.request_count();
    let non_empty = pages.iter().filter(|p| !p.tokens.is_empty()).count();
    // Header + index + one request per non-empty page.
    assert_eq!(after_first, 2 + non_empty);

    let second = HttpShardSource::open(&url, Some(cache.path()), options()).unwrap();
    for (id, page) in pages.iter().enumerate() {
        assert_eq!(&second.page(id as u64).unwrap(), page);
    }
    // Only the header was fetched again (the identity is always the server's).
    assert_eq!(server.request_count(), after_first + 1);

    // Corrupt every cached file: the source notices and fetches again.
    for entry in walk(cache.path()) {
        let mut b = std::fs::read(&entry).unwrap();
        if let Some(x) = b.last_mut() {
            *x ^= 0xff;
        }
        std::fs::write(&entry, b).unwrap();
    }
    let third = HttpShardSource::open(&url, Some(cache.path()), options()).unwrap();
    for (id, page) in pages.iter().enumerate() {
        assert_eq!(&third.page(id as u64).unwrap(), page);
    }
    // Header, index and every non-empty page again.
    assert_eq!(server.request_count(), after_first + 1 + 2 + non_empty);
}

#[test]
fn a_bounded_cache_stays_within_its_bound_and_still_serves() {
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let (_, bytes) = write_shard(dir.path(), "a.shard");
    let server = file_server(bytes);
    let url = [format!("{}/a.shard", server.base)];
    let unbounded = HttpShardSource::open(&url, Some(cache.path()), options()).unwrap();
    let pages: Vec<_> = (0..40).map(|id| unbounded.page(id).unwrap()).collect();
    let size = |d: &Path| -> u64 { walk(d).iter().map(|p| p.metadata().unwrap().len()).sum() };
    let full = size(cache.path());
    assert!(full > 0);

    // A third of that: opening trims the cache, reading keeps it bounded.
    let bound = full / 3;
    let bounded = HttpShardSource::open(
        &url,
        Some(cache.path()),
        HttpOptions {
            max_cache_bytes: bound,
            ..options()
        },
    )
    .unwrap();
    assert!(size(cache.path()) <= bound);
    for round in 0..2 {
        for (id, page) in pages.iter().enumerate() {
            assert_eq!(&bounded.page(id as u64).unwrap(), page, "round {round}");
            assert!(size(cache.path()) <= bound);
        }
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn transient_errors_are_retried() {
    let dir = tempfile::tempdir().unwrap();
    let (_, bytes) = write_shard(dir.path(), "a.shard");
    // Requests 0 and 1 fail (500, then 429 with Retry-After), then all succeed.
    let server = TestServer::start(move |r, n| match n {
        0 => Reply::status(500, "{\"error\":\"boom\"}"),
        1 => Reply::status(429, "slow down").with_header("Retry-After", "1"),
        _ => serve_bytes(&bytes, r.range.as_deref()),
    });
    let remote = HttpShardSource::open(&[format!("{}/a", server.base)], None, options()).unwrap();
    assert_eq!(remote.num_pages(), 40);
    assert_eq!(server.request_count(), 4, "two failures, header, index");
}

#[test]
fn retries_are_bounded() {
    let server = TestServer::start(|_, _| Reply::status(503, "down"));
    let err = HttpShardSource::open(&[format!("{}/a", server.base)], None, options()).unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert_eq!(server.request_count(), 3, "one attempt and two retries");
}

#[test]
fn permanent_errors_are_not_retried() {
    for (status, check) in [
        (
            404u16,
            (|e: &Error| matches!(e, Error::NotFound(_))) as fn(&Error) -> bool,
        ),
        (403, |e| matches!(e, Error::AccessDenied(_))),
        (400, |e| {
            matches!(
                e,
                Error::Network {
                    transient: false,
                    ..
                }
            )
        }),
    ] {
        let server = TestServer::start(move |_, _| Reply::status(status, "{\"error\":\"no\"}"));
        let err =
            HttpShardSource::open(&[format!("{}/a", server.base)], None, options()).unwrap_err();
        assert!(check(&err), "{status}: {err}");
        assert_eq!(server.request_count(), 1);
    }
}

#[test]
fn servers_that_ignore_range_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_, bytes) = write_shard(dir.path(), "a.shard");
    let server = TestServer::start(move |_, _| serve_bytes(&bytes, None));
    let err = HttpShardSource::open(&[format!("{}/a", server.base)], None, options()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Network {
                transient: false,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn bad_content_gives_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (_, bytes) = write_shard(dir.path(), "a.shard");

    // Not a shard at all.
    let html = b"<html><body>Not Found</body></html>".repeat(10);
    let server = TestServer::start(move |r, _| serve_bytes(&html, r.range.as_deref()));
    let err = HttpShardSource::open(&[format!("{}/x", server.base)], None, options()).unwrap_err();
    assert!(matches!(err, Error::BadMagic { .. }), "{err}");

    // The object is longer than the header says.
    let mut longer = bytes.clone();
    longer.extend_from_slice(&[0; 10]);
    let server = TestServer::start(move |r, _| serve_bytes(&longer, r.range.as_deref()));
    let err = HttpShardSource::open(&[format!("{}/x", server.base)], None, options()).unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");

    // Tampered tokens: the page digest catches them. (The last byte is in
    // page 38; page 39 is empty.)
    let mut tampered = bytes.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    let server = TestServer::start(move |r, _| serve_bytes(&tampered, r.range.as_deref()));
    let remote = HttpShardSource::open(&[format!("{}/x", server.base)], None, options()).unwrap();
    assert!(matches!(remote.page(38), Err(Error::DigestMismatch { .. })));
    assert!(remote.page(37).is_ok());

    // A 206 for a different range than asked.
    let shifted = bytes.clone();
    let server = TestServer::start(move |r, n| {
        if n < 2 {
            return serve_bytes(&shifted, r.range.as_deref());
        }
        serve_bytes(&shifted, Some("bytes=0-9"))
    });
    let remote = HttpShardSource::open(&[format!("{}/x", server.base)], None, options()).unwrap();
    let err = remote.page(5).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Network {
                transient: false,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn cut_bodies_and_stalls_are_transient_and_bounded() {
    let server = TestServer::start(|_, _| Reply::CutShort {
        declared: 128,
        body: b"BSTRSHRD".to_vec(),
    });
    let err = HttpShardSource::open(&[format!("{}/a", server.base)], None, options()).unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert_eq!(server.request_count(), 3);

    let server = TestServer::start(|_, _| Reply::Stall(Duration::from_secs(3)));
    let quick = HttpOptions {
        timeout: Duration::from_millis(300),
        max_attempts: 2,
        ..options()
    };
    let err = HttpShardSource::open(&[format!("{}/a", server.base)], None, quick).unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert_eq!(server.request_count(), 2);
}

/// A `moto_server` child process on a free port, killed on drop.
struct Moto {
    child: std::process::Child,
    base: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_moto() -> Moto {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect(
            "moto_server (pip install 'moto[server]') is required by this test and was not found",
        );
    let moto = Moto {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return moto;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("moto_server did not start on port {port}");
}

#[test]
fn reads_shards_from_an_s3_compatible_bucket() {
    let moto = start_moto();
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = write_shard(dir.path(), "a.shard");
    // moto accepts unsigned requests: create a bucket and put a public-read
    // object, then read it through its plain object URL, as anyone could.
    let agent = ureq::Agent::new_with_defaults();
    agent
        .put(&format!("{}/shards", moto.base))
        .header("x-amz-acl", "public-read")
        .send_empty()
        .unwrap();
    agent
        .put(&format!("{}/shards/train/a.shard", moto.base))
        .header("x-amz-acl", "public-read")
        .send(&bytes[..])
        .unwrap();
    let url = format!("{}/shards/train/a.shard", moto.base);
    let remote = HttpShardSource::open(&[url], None, options()).unwrap();
    let local = ShardSource::open(&[path]).unwrap();
    assert_eq!(remote.dataset_id(), local.dataset_id());
    for id in 0..40 {
        assert_eq!(remote.page(id).unwrap(), local.page(id).unwrap());
    }
    // An object in a private bucket is AccessDenied; a missing one NotFound.
    agent
        .put(&format!("{}/private", moto.base))
        .send_empty()
        .unwrap();
    agent
        .put(&format!("{}/private/a.shard", moto.base))
        .send(&bytes[..])
        .unwrap();
    let private = format!("{}/private/a.shard", moto.base);
    let err = HttpShardSource::open(&[private], None, options()).unwrap_err();
    assert!(matches!(err, Error::AccessDenied(_)), "{err}");
    let missing = format!("{}/shards/train/missing.shard", moto.base);
    assert!(matches!(
        HttpShardSource::open(&[missing], None, options()),
        Err(Error::NotFound(_))
    ));
}
