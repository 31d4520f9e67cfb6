//! `S3Bucket` against a real S3-compatible server (`moto_server`).
//!
//! Run `scripts/setup-test-tools.sh` once, then
//! `cargo test -p bistro-core --features s3 --test s3_bucket`.
//! Every test starts its own server on 127.0.0.1 and kills it when done.
#![cfg(feature = "s3")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // not library code: a failure here should stop loudly

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bistro_core::digest::Hasher;
use bistro_core::storage::keys::{delta_key, latest_delta, publish_master, read_master_pointer};
use bistro_core::storage::{
    Bucket, BucketCommitment, EndpointPolicy, S3Bucket, S3Config, S3Credentials, open_bucket,
};
use bistro_core::{Digest, Error, PublicKey};

use support::data::{check_versioned, fill_pattern, pattern, versioned_object};
use support::moto::{Moto, MotoOptions};

const MIB: usize = 1 << 20;

/// A client with 5 MiB parts, so that multipart paths run on small objects.
fn small_parts(moto: &Moto, name: &str) -> S3Bucket {
    let mut config = moto.config(name, S3Credentials::key("test", "test"));
    config.part_size = 5 * MIB as u64;
    moto.bucket_with(config)
}

#[test]
fn round_trip_head_list_delete() {
    let moto = Moto::start();
    let bucket = moto.bucket("round-trip");

    assert!(bucket.head("a/b.bin").unwrap().is_none());
    assert!(matches!(
        bucket.get("a/b.bin", 100),
        Err(Error::NotFound(_))
    ));

    let data = pattern(1, 1000);
    bucket.put("a/b.bin", &data).unwrap();
    assert_eq!(bucket.get("a/b.bin", 1000).unwrap(), data);
    let info = bucket.head("a/b.bin").unwrap().unwrap();
    assert_eq!((info.key.as_str(), info.size), ("a/b.bin", 1000));
    let age = std::time::SystemTime::now()
        .duration_since(info.last_modified)
        .unwrap_or_default();
    assert!(age < Duration::from_secs(3600), "last_modified {age:?} ago");

    // The cap is checked before the download.
    assert!(matches!(
        bucket.get("a/b.bin", 999),
        Err(Error::LimitExceeded {
            limit: 999,
            actual: 1000,
            ..
        })
    ));

    // Replace, empty objects, get_to_file.
    bucket.put("a/b.bin", b"second").unwrap();
    assert_eq!(bucket.get("a/b.bin", 100).unwrap(), b"second");
    bucket.put("empty", b"").unwrap();
    assert_eq!(bucket.get("empty", 0).unwrap(), b"");
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out.bin");
    let got = bucket.get_to_file("a/b.bin", &dest, 6).unwrap();
    assert_eq!(got.size, 6);
    assert_eq!(std::fs::read(&dest).unwrap(), b"second");
    assert!(matches!(
        bucket.get_to_file("a/b.bin", &dir.path().join("small"), 5),
        Err(Error::LimitExceeded { .. })
    ));
    assert!(!dir.path().join("small").exists());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no temp files left"
    );

    let keys: Vec<String> = bucket
        .list("")
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert_eq!(keys, ["a/b.bin", "empty"]);

    bucket.delete("a/b.bin").unwrap();
    bucket.delete("a/b.bin").unwrap(); // idempotent
    assert!(bucket.head("a/b.bin").unwrap().is_none());

    // Keys are checked before any request.
    for bad in ["../x", "/abs", "a//b", "a\0b", ".hidden"] {
        assert!(
            matches!(bucket.put(bad, b"x"), Err(Error::InvalidArgument(_))),
            "{bad:?}"
        );
    }
}

#[test]
fn range_reads() {
    let moto = Moto::start();
    let bucket = small_parts(&moto, "ranges");
    let data = pattern(2, 12 * MIB + 17);
    bucket.put("obj", &data).unwrap();

    let len = data.len() as u64;
    for range in [
        0..1,
        0..100,
        5..6,
        4 * MIB as u64..11 * MIB as u64,
        len - 10..len,
        0..len,
    ] {
        let got = bucket.get_range("obj", range.clone()).unwrap();
        assert_eq!(
            got,
            data[range.start as usize..range.end as usize],
            "{range:?}"
        );
    }
    // Clipped at the end, like HTTP.
    assert_eq!(
        bucket.get_range("obj", len - 3..len + 100).unwrap(),
        data[data.len() - 3..]
    );
    assert_eq!(bucket.get_range("obj", 7..7).unwrap(), b"");
    assert!(matches!(
        bucket.get_range("obj", len..len + 1),
        Err(Error::InvalidArgument(_))
    ));
    #[allow(clippy::reversed_empty_ranges)]
    let backwards = bucket.get_range("obj", 9..3);
    assert!(matches!(backwards, Err(Error::InvalidArgument(_))));
    assert!(matches!(
        bucket.get_range("missing", 0..1),
        Err(Error::NotFound(_))
    ));

    // A whole get spanning three download ranges.
    assert_eq!(bucket.get("obj", len).unwrap(), data);
}

/// rust-s3's own client for `bucket`, for what the SDK does not expose
/// (ETags, bucket policies).
fn raw_bucket(moto: &Moto, bucket: &str) -> Box<s3::Bucket> {
    s3::Bucket::new(
        bucket,
        s3::Region::Custom {
            region: "us-east-1".into(),
            endpoint: moto.endpoint.clone(),
        },
        s3::creds::Credentials::new(Some("test"), Some("test"), None, None, None).unwrap(),
    )
    .unwrap()
    .with_path_style()
}

/// Writes `len` pattern bytes to `path` in 4 MiB pieces; returns their digest.
fn write_pattern_file(path: &std::path::Path, seed: u64, len: usize) -> Digest {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut hasher = Hasher::new();
    let mut piece = Vec::with_capacity(4 * MIB);
    let mut left = len;
    let mut n = 0u64;
    while left > 0 {
        let take = left.min(4 * MIB);
        piece.clear();
        fill_pattern(seed.wrapping_add(n), &mut piece, take);
        hasher.update(&piece);
        file.write_all(&piece).unwrap();
        left -= take;
        n += 1;
    }
    file.flush().unwrap();
    hasher.finalize()
}

fn digest_file(path: &std::path::Path) -> (Digest, u64) {
    let mut file = std::fs::File::open(path).unwrap();
    let mut hasher = Hasher::new();
    let mut buf = vec![0u8; 4 * MIB];
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    (hasher.finalize(), total)
}

#[test]
fn multipart_upload_of_105_mib() {
    let moto = Moto::start();
    let mut config = moto.config("big", S3Credentials::key("test", "test"));
    config.part_size = 16 * MIB as u64;
    let bucket = moto.bucket_with(config);

    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("delta.bin");
    let len = 105 * MIB + 12_345;
    let digest = write_pattern_file(&source, 3, len);

    bucket.put_file("deltas/big.delta", &source).unwrap();
    let info = bucket.head("deltas/big.delta").unwrap().unwrap();
    assert_eq!(info.size, len as u64);

    // It really went up in parts: S3's multipart ETag ends in -<parts>.
    let (head, _) = raw_bucket(&moto, "big")
        .head_object("deltas/big.delta")
        .unwrap();
    let etag = head.e_tag.unwrap();
    assert!(etag.trim_matches('"').ends_with("-7"), "ETag {etag}");

    let dest = dir.path().join("downloaded.bin");
    let got = bucket
        .get_to_file("deltas/big.delta", &dest, len as u64)
        .unwrap();
    assert_eq!(got.size, len as u64);
    assert_eq!(digest_file(&dest), (digest, len as u64));

    // Over the cap: refused before downloading, and `dest` is untouched.
    assert!(matches!(
        bucket.get_to_file("deltas/big.delta", &dest, len as u64 - 1),
        Err(Error::LimitExceeded { .. })
    ));
    assert_eq!(digest_file(&dest).0, digest);
}

#[test]
fn listing_many_keys_pages_and_prefixes() {
    let moto = Moto::start();
    let bucket = Arc::new(moto.bucket("many"));
    let hotkey = PublicKey([9; 32]);
    let other = PublicKey([8; 32]);
    // 2,100 deltas of one miner: three listing pages of at most 1,000.
    let blocks: Vec<u64> = (0..2100u64).map(|i| 1_000 + i * 7).collect();
    std::thread::scope(|s| {
        for t in 0..6 {
            let bucket = Arc::clone(&bucket);
            let blocks = &blocks;
            s.spawn(move || {
                for (i, block) in blocks.iter().enumerate() {
                    if i % 6 == t {
                        bucket
                            .put(
                                &delta_key(&hotkey, *block, &Digest::of(b"bytes")),
                                &block.to_le_bytes(),
                            )
                            .unwrap();
                    }
                }
            });
        }
    });
    for block in [5u64, 6, 7] {
        bucket
            .put(&delta_key(&other, block, &Digest::of(b"bytes")), b"other")
            .unwrap();
    }
    bucket
        .put("deltas/not-a-hotkey/00000000000000000001.delta", b"x")
        .unwrap();

    let mine = bucket
        .list(&format!("deltas/{}/", hotkey.to_ss58()))
        .unwrap();
    assert_eq!(mine.len(), blocks.len());
    let expected: Vec<String> = blocks
        .iter()
        .map(|b| delta_key(&hotkey, *b, &Digest::of(b"bytes")))
        .collect();
    let listed: Vec<String> = mine.iter().map(|o| o.key.clone()).collect();
    assert_eq!(listed, expected, "sorted by key = by block");
    assert!(mine.iter().all(|o| o.size == 8));
    assert_eq!(bucket.list("deltas/").unwrap().len(), blocks.len() + 4);
    assert_eq!(bucket.list("nothing/").unwrap().len(), 0);

    // The latest delta in a window: by block in the key.
    let latest = latest_delta(&*bucket, &hotkey, 0..=5_000).unwrap().unwrap();
    assert_eq!(latest.block, 4_997);
    assert_eq!(
        bucket.get(&latest.info.key, 8).unwrap(),
        4_997u64.to_le_bytes()
    );
    assert!(latest_delta(&*bucket, &hotkey, 0..=999).unwrap().is_none());
    assert_eq!(
        latest_delta(&*bucket, &other, 0..=100)
            .unwrap()
            .unwrap()
            .block,
        7
    );
}

#[test]
fn concurrent_writers_of_one_key() {
    let moto = Moto::start();
    let bucket = Arc::new(small_parts(&moto, "race"));
    // Above the 5 MiB part size: every put is a multipart upload.
    let len = 6 * MIB;
    let writers = 4u32;
    let rounds = 2u32;
    bucket.put("shared", &versioned_object(99, 0, len)).unwrap();

    let done = Arc::new(AtomicBool::new(false));
    let reads = std::thread::scope(|s| {
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let bucket = Arc::clone(&bucket);
                let done = Arc::clone(&done);
                s.spawn(move || {
                    let mut seen = 0;
                    while !done.load(Ordering::Relaxed) && seen < 500 {
                        match bucket.get("shared", len as u64) {
                            Ok(bytes) => {
                                check_versioned(&bytes, len).unwrap();
                                seen += 1;
                            }
                            // A replacement between HEAD and GET is reported, never spliced.
                            Err(e) if e.is_transient() => {}
                            Err(e) => panic!("reader: {e}"),
                        }
                    }
                    seen
                })
            })
            .collect();
        let writers: Vec<_> = (0..writers)
            .map(|w| {
                let bucket = Arc::clone(&bucket);
                s.spawn(move || {
                    for round in 1..=rounds {
                        bucket
                            .put("shared", &versioned_object(w, round, len))
                            .unwrap();
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        done.store(true, Ordering::Relaxed);
        readers
            .into_iter()
            .map(|r| r.join().unwrap())
            .sum::<usize>()
    });
    assert!(reads > 0);
    let (writer, round) = check_versioned(&bucket.get("shared", len as u64).unwrap(), len).unwrap();
    assert!(
        writer < writers && (1..=rounds).contains(&round),
        "{writer} {round}"
    );
}

/// Truncates a file to its last complete line (a kill may cut the last one).
fn truncate_to_last_line(path: &std::path::Path) {
    let bytes = std::fs::read(path).unwrap();
    let end = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    std::fs::write(path, &bytes[..end]).unwrap();
}

#[test]
fn server_killed_mid_upload_keeps_the_old_object() {
    let state = tempfile::tempdir().unwrap();
    let recording = state.path().join("requests.jsonl");
    let options = MotoOptions {
        port: Some(support::moto::free_port()),
        recording: Some(recording.clone()),
    };
    let mut moto = Moto::start_with(options.clone());
    let bucket = small_parts(&moto, "killed");
    let old = pattern(4, 3 * MIB);
    bucket.put("master/model.ckpt", &old).unwrap();

    // The upload reads its source from a pipe, so the test decides exactly
    // how far it gets: two parts, then the server dies.
    let fifo = state.path().join("source.fifo");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success(), "mkfifo");
    let upload = {
        let fifo = fifo.clone();
        std::thread::spawn(move || bucket.put_file("master/model.ckpt", &fifo))
    };
    let mut pipe = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    pipe.write_all(&pattern(5, 11 * MIB)).unwrap();

    // Wait until the server has received part 2 (bounded: 60 s).
    let mut received = false;
    for _ in 0..1200 {
        let text = std::fs::read(&recording).unwrap_or_default();
        if String::from_utf8_lossy(&text).contains("partNumber=2") {
            received = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        received,
        "part 2 never reached the server:\n{}",
        moto.log_tail()
    );
    moto.kill();

    // The rest of the data goes to a dead server: the put must fail.
    pipe.write_all(&pattern(6, 2 * MIB)).unwrap();
    drop(pipe);
    let result = upload.join().unwrap();
    let err = result.expect_err("an upload to a killed server cannot succeed");
    assert!(matches!(err, Error::Network { .. }), "{err}");

    // Restart on the same port with the recorded history: the old object is
    // intact, and no trace of the new one is visible.
    truncate_to_last_line(&recording);
    let restarted = Moto::start_with(options);
    restarted.replay_recording();
    let reader =
        restarted.bucket_with(restarted.config("killed", S3Credentials::key("test", "test")));
    assert_eq!(
        reader.get("master/model.ckpt", old.len() as u64).unwrap(),
        old
    );
    let listed: Vec<String> = reader
        .list("")
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert_eq!(listed, ["master/model.ckpt"]);
}

#[test]
fn wrong_credentials_and_read_only_keys() {
    let moto = Moto::start();
    let writer = moto.create_user("miner", &["s3:*"]);
    let reader = moto.create_user("validators", &["s3:GetObject", "s3:ListBucket"]);
    moto.enforce_iam();

    let bucket =
        moto.bucket_with(moto.config("guarded", S3Credentials::key(&writer.id, &writer.secret)));
    bucket.put("deltas/x.delta", b"delta bytes").unwrap();

    // Wrong secret, unknown key id: AccessDenied naming the server's reason.
    let wrong_secret =
        S3Bucket::new(moto.config("guarded", S3Credentials::key(&writer.id, "not-the-secret")))
            .unwrap();
    match wrong_secret.get("deltas/x.delta", 100) {
        Err(Error::AccessDenied(msg)) => {
            assert!(
                msg.contains("SignatureDoesNotMatch") && msg.contains("access key"),
                "{msg}"
            )
        }
        other => panic!("expected AccessDenied, got {other:?}"),
    }
    let unknown =
        S3Bucket::new(moto.config("guarded", S3Credentials::key("AKIANOBODY", "x"))).unwrap();
    match unknown.put("deltas/y.delta", b"y") {
        Err(Error::AccessDenied(msg)) => assert!(msg.contains("InvalidAccessKeyId"), "{msg}"),
        other => panic!("expected AccessDenied, got {other:?}"),
    }

    // The read-only key, published through a commitment, reads but cannot write.
    let commitment = BucketCommitment {
        endpoint: moto.endpoint.clone(),
        bucket: "guarded".into(),
        region: None,
        read_key_id: Some(reader.id.clone()),
        read_secret: Some(reader.secret.clone()),
    };
    let encoded = commitment.encode().unwrap();
    let validator_view = open_bucket(
        &BucketCommitment::parse(encoded.as_bytes()).unwrap(),
        EndpointPolicy::Any,
    )
    .unwrap();
    assert_eq!(
        validator_view.get("deltas/x.delta", 100).unwrap(),
        b"delta bytes"
    );
    assert_eq!(validator_view.list("deltas/").unwrap().len(), 1);
    match validator_view.put("deltas/x.delta", b"overwritten") {
        Err(Error::AccessDenied(msg)) => assert!(msg.contains("AccessDenied"), "{msg}"),
        other => panic!("expected AccessDenied, got {other:?}"),
    }
    assert_eq!(bucket.get("deltas/x.delta", 100).unwrap(), b"delta bytes");
}

#[test]
fn public_read_commitment_and_master_pointer() {
    let moto = Moto::start();
    let owner = moto.bucket("master-owner");
    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("master.ckpt");
    let bytes = pattern(7, 2 * MIB);
    std::fs::write(&ckpt, &bytes).unwrap();
    let revision = Digest::of(&bytes);
    publish_master(&owner, &ckpt, revision, 1234).unwrap();

    // A validator reads it anonymously: refused until the owner makes the
    // bucket public-read, then served.
    let public = BucketCommitment::public(moto.endpoint.clone(), "master-owner");
    let view = open_bucket(&public, EndpointPolicy::Any).unwrap();
    assert!(matches!(
        read_master_pointer(&view),
        Err(Error::AccessDenied(_))
    ));
    // AWS checks HEAD against s3:GetObject; moto against "s3:HeadObject".
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*",
        "Action":["s3:GetObject","s3:HeadObject","s3:ListBucket"],
        "Resource":["arn:aws:s3:::master-owner","arn:aws:s3:::master-owner/*"]}]}"#;
    raw_bucket(&moto, "master-owner")
        .put_bucket_policy(policy)
        .unwrap();
    // (Whether the policy also refuses anonymous writes is the server's
    // policy engine, which moto does not model fully; write refusal is
    // tested with a read-only key in `wrong_credentials_and_read_only_keys`.)
    let pointer = read_master_pointer(&view).unwrap().unwrap();
    assert_eq!(
        (pointer.revision, pointer.block, pointer.size),
        (revision, 1234, bytes.len() as u64)
    );
    let got = view.get(&pointer.key, pointer.size).unwrap();
    assert_eq!(Digest::of(&got), revision);
}

#[test]
fn lying_content_length_is_cut_off_at_the_cap() {
    // A hostile "S3" server: HEAD says 16 bytes; GET then streams 4 MiB with
    // no length, until the connection closes.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        // Serves at most two connections, and stops after 30 s regardless.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let mut served = 0;
        while served < 2 && std::time::Instant::now() < deadline {
            let mut conn = match listener.accept() {
                Ok((conn, _)) => conn,
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
            };
            served += 1;
            conn.set_nonblocking(false).unwrap();
            conn.set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            if request.starts_with(b"HEAD") {
                let head = "HTTP/1.1 200 OK\r\nContent-Length: 16\r\nETag: \"abc\"\r\n\
                            Last-Modified: Wed, 01 May 2024 12:34:56 GMT\r\nConnection: close\r\n\r\n";
                let _ = conn.write_all(head.as_bytes());
            } else {
                let _ =
                    conn.write_all(b"HTTP/1.1 206 Partial Content\r\nConnection: close\r\n\r\n");
                let junk = vec![b'x'; 64 * 1024];
                for _ in 0..64 {
                    if conn.write_all(&junk).is_err() {
                        break;
                    }
                }
            }
        }
        served
    });
    let mut config = S3Config::new(
        format!("http://127.0.0.1:{port}"),
        "evil",
        S3Credentials::Anonymous,
    );
    config.retry.max_attempts = 1;
    let bucket = S3Bucket::new(config).unwrap();
    let result = bucket.get("deltas/x.delta", 1 << 20);
    assert!(
        matches!(result, Err(Error::LimitExceeded { limit: 16, .. })),
        "{result:?}"
    );
    assert_eq!(server.join().unwrap(), 2);
}

#[test]
fn connection_refused_is_retried_then_reported() {
    let port = support::moto::free_port(); // nothing listens there
    let mut config = S3Config::new(
        format!("http://127.0.0.1:{port}"),
        "gone",
        S3Credentials::Anonymous,
    );
    config.retry.max_attempts = 3;
    config.retry.initial_backoff = Duration::from_millis(10);
    let bucket = S3Bucket::new(config).unwrap();
    let err = bucket.get("k", 10).unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(matches!(err, Error::Network { .. }));
}

#[test]
#[should_panic(expected = "run scripts/setup-test-tools.sh")]
fn a_missing_moto_server_fails_with_the_setup_command() {
    let empty = tempfile::tempdir().unwrap();
    support::moto::find_moto(
        None,
        empty.path(),
        Some(empty.path().as_os_str().to_owned()),
    );
}

#[test]
#[should_panic(expected = "run scripts/setup-test-tools.sh")]
fn a_wrong_moto_server_path_fails_with_the_setup_command() {
    let empty = tempfile::tempdir().unwrap();
    support::moto::find_moto(Some(empty.path().join("nope")), empty.path(), None);
}
