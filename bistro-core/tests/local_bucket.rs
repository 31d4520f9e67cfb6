//! `LocalBucket`: atomic replacement, key escapes, listing, ranges, and a
//! writer process killed mid-write.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // not library code: a failure here should stop loudly

mod support;

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bistro_core::digest::Digest;
use bistro_core::storage::keys::{delta_key, latest_delta, list_deltas};
use bistro_core::storage::{Bucket, LocalBucket, MAX_KEY_BYTES};
use bistro_core::{Error, PublicKey};

use support::data::{check_versioned, pattern, versioned_object};

fn bucket() -> (tempfile::TempDir, LocalBucket) {
    let dir = tempfile::tempdir().unwrap();
    let bucket = LocalBucket::create(dir.path().join("bucket")).unwrap();
    (dir, bucket)
}

#[test]
fn round_trip_and_caps() {
    let (dir, b) = bucket();
    assert!(b.head("a/b").unwrap().is_none());
    assert!(matches!(b.get("a/b", 10), Err(Error::NotFound(_))));

    b.put("a/b", b"hello").unwrap();
    assert_eq!(b.get("a/b", 5).unwrap(), b"hello");
    assert!(matches!(
        b.get("a/b", 4),
        Err(Error::LimitExceeded {
            limit: 4,
            actual: 5,
            ..
        })
    ));
    let info = b.head("a/b").unwrap().unwrap();
    assert_eq!((info.key.as_str(), info.size), ("a/b", 5));

    b.put("a/b", b"").unwrap();
    assert_eq!(b.get("a/b", 0).unwrap(), b"");

    let src = dir.path().join("src.bin");
    let data = pattern(1, 300_000);
    std::fs::write(&src, &data).unwrap();
    b.put_file("c", &src).unwrap();
    let dest = dir.path().join("dest.bin");
    assert_eq!(b.get_to_file("c", &dest, 300_000).unwrap().size, 300_000);
    assert_eq!(std::fs::read(&dest).unwrap(), data);
    let small = dir.path().join("small.bin");
    assert!(matches!(
        b.get_to_file("c", &small, 299_999),
        Err(Error::LimitExceeded { .. })
    ));
    assert!(!small.exists());

    b.delete("c").unwrap();
    b.delete("c").unwrap();
    assert!(b.head("c").unwrap().is_none());
    assert!(
        matches!(b.delete("a"), Err(Error::InvalidArgument(_))),
        "a folder is not an object"
    );
}

#[test]
fn ranges() {
    let (_dir, b) = bucket();
    let data = pattern(2, 10_000);
    b.put("r", &data).unwrap();
    for range in [0..1u64, 0..10_000, 17..4_000, 9_999..10_000] {
        assert_eq!(
            b.get_range("r", range.clone()).unwrap(),
            data[range.start as usize..range.end as usize]
        );
    }
    assert_eq!(b.get_range("r", 9_990..20_000).unwrap(), data[9_990..]);
    assert_eq!(b.get_range("r", 5..5).unwrap(), b"");
    assert!(matches!(
        b.get_range("r", 10_000..10_001),
        Err(Error::InvalidArgument(_))
    ));
    #[allow(clippy::reversed_empty_ranges)]
    let backwards = b.get_range("r", 7..3);
    assert!(matches!(backwards, Err(Error::InvalidArgument(_))));
    assert!(matches!(b.get_range("none", 0..1), Err(Error::NotFound(_))));
}

#[test]
fn keys_cannot_escape_the_directory() {
    let (dir, b) = bucket();
    std::fs::write(dir.path().join("secret"), b"outside").unwrap();
    let long = "k".repeat(MAX_KEY_BYTES + 1);
    for key in [
        "../secret",
        "a/../../secret",
        "/etc/passwd",
        "..",
        ".",
        "a/./b",
        "a\0b",
        "a\\..\\secret",
        "",
        "a//b",
        "a/",
        ".bucket-temp",
        long.as_str(),
    ] {
        for result in [
            b.put(key, b"x").map(|_| ()),
            b.get(key, 100).map(|_| ()),
            b.head(key).map(|_| ()),
            b.delete(key),
        ] {
            assert!(
                matches!(result, Err(Error::InvalidArgument(_))),
                "{key:?}: {result:?}"
            );
        }
    }
    assert!(matches!(b.list("../"), Err(Error::InvalidArgument(_))));
    assert_eq!(
        std::fs::read(dir.path().join("secret")).unwrap(),
        b"outside"
    );
    assert!(b.list("").unwrap().is_empty());

    // A symlink planted inside the bucket is neither followed nor listed.
    std::os::unix::fs::symlink(dir.path().join("secret"), b.root().join("link")).unwrap();
    std::fs::create_dir(b.root().join("d")).unwrap();
    std::os::unix::fs::symlink(dir.path(), b.root().join("d/up")).unwrap();
    assert!(b.get("link", 100).is_err());
    assert!(b.get("d/up/secret", 100).is_err());
    assert!(matches!(
        b.put("d/up/secret", b"overwrite"),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        b.put("d/up/new/x", b"x"),
        Err(Error::InvalidArgument(_))
    ));
    assert_eq!(
        std::fs::read(dir.path().join("secret")).unwrap(),
        b"outside"
    );
    assert!(!dir.path().join("new").exists());
    assert!(b.list("").unwrap().is_empty());
}

#[test]
fn listing_by_prefix() {
    let (_dir, b) = bucket();
    let hotkey = PublicKey([3; 32]);
    let blocks: Vec<u64> = (0..300u64).map(|i| 50 + i * 3).collect();
    for block in &blocks {
        b.put(
            &delta_key(&hotkey, *block, &Digest::of(b"bytes")),
            &block.to_le_bytes(),
        )
        .unwrap();
    }
    b.put("deltas/readme.txt", b"not a delta").unwrap();
    b.put("deltasx", b"sibling").unwrap();
    b.put("master/LATEST.json", b"{}").unwrap();

    let prefix = format!("deltas/{}/", hotkey.to_ss58());
    let listed: Vec<String> = b
        .list(&prefix)
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    let expected: Vec<String> = blocks
        .iter()
        .map(|x| delta_key(&hotkey, *x, &Digest::of(b"bytes")))
        .collect();
    assert_eq!(listed, expected);
    // Partial last components match like S3's plain prefixes.
    assert_eq!(b.list("delta").unwrap().len(), blocks.len() + 2);
    assert_eq!(b.list("deltas").unwrap().len(), blocks.len() + 2);
    assert_eq!(b.list("deltas/").unwrap().len(), blocks.len() + 1);
    let with_partial = format!("deltas/{}/000000000000000001", hotkey.to_ss58());
    let partial = b.list(&with_partial).unwrap();
    assert!(partial.iter().all(|o| o.key.starts_with(&with_partial)));
    assert_eq!(
        partial.len(),
        blocks.iter().filter(|x| (100..200).contains(*x)).count()
    );
    assert_eq!(b.list("").unwrap().len(), blocks.len() + 3);
    assert!(b.list("nothing/here").unwrap().is_empty());

    let window = list_deltas(&b, &hotkey, 100..=200).unwrap();
    assert_eq!(window.first().unwrap().block, 101);
    assert_eq!(window.last().unwrap().block, 200);
    assert_eq!(
        latest_delta(&b, &hotkey, 0..=10_000)
            .unwrap()
            .unwrap()
            .block,
        *blocks.last().unwrap()
    );
    assert!(latest_delta(&b, &hotkey, 0..=49).unwrap().is_none());
}

#[test]
fn concurrent_writers_and_readers_never_see_a_torn_object() {
    let (_dir, b) = bucket();
    let b = Arc::new(b);
    let len = 1 << 20;
    b.put("shared", &versioned_object(99, 0, len)).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    std::thread::scope(|s| {
        let readers: Vec<_> = (0..3)
            .map(|_| {
                let (b, done) = (Arc::clone(&b), Arc::clone(&done));
                s.spawn(move || {
                    let mut reads = 0u32;
                    while !done.load(Ordering::Relaxed) && reads < 5_000 {
                        let bytes = b.get("shared", len as u64).unwrap();
                        check_versioned(&bytes, len).unwrap();
                        let head = b.get_range("shared", 0..40).unwrap();
                        assert_eq!(head.len(), 40);
                        reads += 1;
                    }
                    reads
                })
            })
            .collect();
        let writers: Vec<_> = (0..4u32)
            .map(|w| {
                let b = Arc::clone(&b);
                s.spawn(move || {
                    for round in 1..=20 {
                        b.put("shared", &versioned_object(w, round, len)).unwrap();
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        done.store(true, Ordering::Relaxed);
        let reads: u32 = readers.into_iter().map(|r| r.join().unwrap()).sum();
        assert!(reads > 0);
    });
    let (writer, round) = check_versioned(&b.get("shared", len as u64).unwrap(), len).unwrap();
    assert!(
        writer < 4 && round == 20,
        "the last write of some writer wins: {writer} {round}"
    );
    let names: Vec<String> = std::fs::read_dir(b.root())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["shared"], "no temp files left behind");
}

/// The environment variable that makes [`child_writer_process`] act.
const CHILD_ENV: &str = "BISTRO_TEST_CHILD_WRITER";

/// Not a test on its own: the body of the writer process that
/// `writer_killed_mid_write_leaves_the_old_object` starts (this test binary,
/// run again with `CHILD_ENV` set) and kills.
#[test]
fn child_writer_process() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (root, source) = spec.split_once('|').unwrap();
    let b = LocalBucket::open(root).unwrap();
    // Blocks reading the pipe until the parent kills this process.
    b.put_file("model.ckpt", std::path::Path::new(source))
        .unwrap();
    panic!("the parent should have killed this writer before it finished");
}

#[test]
fn writer_killed_mid_write_leaves_the_old_object() {
    let (dir, b) = bucket();
    let old = pattern(8, 100_000);
    b.put("model.ckpt", &old).unwrap();

    let fifo = dir.path().join("source.fifo");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success(), "mkfifo");
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_writer_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(
            CHILD_ENV,
            format!("{}|{}", b.root().display(), fifo.display()),
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();

    // Feed half an object, wait until it is in the writer's temp file, kill.
    let mut pipe = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    pipe.write_all(&pattern(9, 3 << 20)).unwrap();
    let temp_size = || {
        std::fs::read_dir(b.root())
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .map(|e| e.metadata().unwrap().len())
            .max()
    };
    let mut written = None;
    for _ in 0..600 {
        written = temp_size().filter(|&n| n > 0);
        if written.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(written.is_some(), "the writer never started its temp file");
    child.kill().unwrap();
    child.wait().unwrap();
    drop(pipe);

    // The old object is whole; the half-written temp file is still on disk
    // (proof that the kill came mid-write) but is not an object.
    assert_eq!(b.get("model.ckpt", 1 << 30).unwrap(), old);
    assert!(temp_size().is_some());
    let listed: Vec<String> = b.list("").unwrap().into_iter().map(|o| o.key).collect();
    assert_eq!(listed, ["model.ckpt"]);
    // And the bucket keeps working.
    b.put("model.ckpt", b"new").unwrap();
    assert_eq!(b.get("model.ckpt", 3).unwrap(), b"new");
}
