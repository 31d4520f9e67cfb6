//! Shard round trips and one test per way a shard can be bad.

use std::path::{Path, PathBuf};

use super::*;
use crate::data::source::{PageSource, TokenizerInfo};
use crate::digest::Digest;
use crate::error::Error;

/// An edit to a shard's bytes.
type Tamper<'a> = Box<dyn Fn(&mut Vec<u8>) + 'a>;

fn gpt2() -> TokenizerInfo {
    TokenizerInfo::gpt2()
}

/// Pages of varied shapes: page p has (p % 4) sequences of lengths 3p+s.
fn sample_pages(count: u64) -> Vec<Vec<Vec<u32>>> {
    (0..count)
        .map(|p| {
            (0..p % 4)
                .map(|s| {
                    (0..3 * p + s)
                        .map(|t| ((p * 7919 + s * 31 + t) % 50_257) as u32)
                        .collect()
                })
                .collect()
        })
        .collect()
}

fn write(path: &Path, pages: &[Vec<Vec<u32>>], width: u32) -> ShardSummary {
    let mut w = ShardWriter::create(path, gpt2(), width).unwrap();
    for page in pages {
        w.push_page(page.iter().map(|s| &s[..])).unwrap();
    }
    w.finish().unwrap()
}

fn shard_bytes(dir: &Path, width: u32) -> (PathBuf, Vec<u8>) {
    let path = dir.join("a.shard");
    write(&path, &sample_pages(20), width);
    let bytes = std::fs::read(&path).unwrap();
    (path, bytes)
}

/// Rewrites the index digest in the header to match a tampered index, so
/// that the table checks (not the digest) are what rejects it.
fn fix_index_digest(bytes: &mut [u8]) {
    let header = Header::parse(bytes).unwrap();
    let layout = header.layout();
    let digest = Digest::of(&bytes[HEADER_LEN..layout.tokens as usize]);
    bytes[80..112].copy_from_slice(&digest.0);
}

fn open_bytes(dir: &Path, bytes: &[u8]) -> crate::Result<ShardFile> {
    let path = dir.join("bad.shard");
    std::fs::write(&path, bytes).unwrap();
    ShardFile::open(&path)
}

#[test]
fn round_trip_u16_and_u32() {
    let dir = tempfile::tempdir().unwrap();
    let pages = sample_pages(37);
    for width in [2, 4] {
        let path = dir.path().join(format!("w{width}.shard"));
        let summary = write(&path, &pages, width);
        assert_eq!(summary.pages, 37);
        assert_eq!(summary.bytes, std::fs::metadata(&path).unwrap().len());
        let source = ShardSource::open(&[&path]).unwrap();
        assert_eq!(source.num_pages(), 37);
        assert_eq!(source.tokenizer(), gpt2());
        for (id, expected) in pages.iter().enumerate() {
            let page = source.page(id as u64).unwrap();
            assert_eq!(page.id, id as u64);
            let got: Vec<Vec<u32>> = page.sequences().map(|s| s.to_vec()).collect();
            assert_eq!(&got, expected);
        }
        source.verify().unwrap();
    }
    // No temporary files are left beside the shards.
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| n.ends_with(".shard")), "{names:?}");
}

#[test]
fn several_shards_number_pages_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let pages = sample_pages(30);
    let paths: Vec<PathBuf> = (0..3)
        .map(|i| {
            let path = dir.path().join(format!("{i}.shard"));
            // Shard 1 is empty: it adds no page ids.
            let range = [0..12, 12..12, 12..30][i].clone();
            write(&path, &pages[range], 2);
            path
        })
        .collect();
    let source = ShardSource::open(&paths).unwrap();
    assert_eq!(source.num_pages(), 30);
    for id in 0..30u64 {
        let got: Vec<Vec<u32>> = source
            .page(id)
            .unwrap()
            .sequences()
            .map(|s| s.to_vec())
            .collect();
        assert_eq!(got, pages[id as usize]);
    }
    // The identity depends on every shard and on their order.
    let reversed: Vec<PathBuf> = paths.iter().rev().cloned().collect();
    let other = ShardSource::open(&reversed).unwrap();
    assert_ne!(other.dataset_id(), source.dataset_id());
    let ids: Vec<Digest> = source.shards().iter().map(|s| s.identity()).collect();
    assert_eq!(source.dataset_id(), dataset_identity(&ids));
}

#[test]
fn page_past_the_end_is_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = shard_bytes(dir.path(), 2);
    let source = ShardSource::open(&[&path]).unwrap();
    assert!(matches!(source.page(20), Err(Error::NotFound(_))));
    assert!(matches!(source.page(u64::MAX), Err(Error::NotFound(_))));
}

#[test]
fn wrong_magic_is_bad_magic() {
    let dir = tempfile::tempdir().unwrap();
    let (_, mut bytes) = shard_bytes(dir.path(), 2);
    bytes[0] = b'X';
    assert!(matches!(
        open_bytes(dir.path(), &bytes),
        Err(Error::BadMagic { .. })
    ));
    // A short file that is not a shard at all.
    assert!(matches!(
        open_bytes(dir.path(), b"{\"not\": \"a shard\"}"),
        Err(Error::BadMagic { .. })
    ));
}

#[test]
fn other_versions_are_unsupported() {
    let dir = tempfile::tempdir().unwrap();
    let (_, mut bytes) = shard_bytes(dir.path(), 2);
    bytes[8..12].copy_from_slice(&2u32.to_le_bytes());
    assert!(matches!(
        open_bytes(dir.path(), &bytes),
        Err(Error::UnsupportedVersion { found: 2, .. })
    ));
}

#[test]
fn truncated_files_are_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let (_, bytes) = shard_bytes(dir.path(), 2);
    for len in [0, 5, 100, HEADER_LEN, HEADER_LEN + 9, bytes.len() - 1] {
        let err = open_bytes(dir.path(), &bytes[..len]).unwrap_err();
        assert!(matches!(err, Error::Truncated { .. }), "len {len}: {err}");
    }
}

#[test]
fn trailing_bytes_are_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let (_, mut bytes) = shard_bytes(dir.path(), 2);
    bytes.push(0);
    assert!(matches!(
        open_bytes(dir.path(), &bytes),
        Err(Error::Corrupt { .. })
    ));
}

#[test]
fn header_fields_out_of_range_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let (_, good) = shard_bytes(dir.path(), 2);
    let cases: Vec<(&str, Tamper)> = vec![
        (
            "token width 3",
            Box::new(|b| b[12..16].copy_from_slice(&3u32.to_le_bytes())),
        ),
        (
            "vocab too big for u16",
            Box::new(|b| b[40..44].copy_from_slice(&70_000u32.to_le_bytes())),
        ),
        (
            "eos not below vocab",
            Box::new(|b| b[44..48].copy_from_slice(&60_000u32.to_le_bytes())),
        ),
        ("name not padded", Box::new(|b| b[60] = b'x')),
        ("name not lowercase", Box::new(|b| b[48] = b'G')),
        ("reserved not zero", Box::new(|b| b[120] = 1)),
    ];
    for (name, tamper) in cases {
        let mut bytes = good.clone();
        tamper(&mut bytes);
        let err = open_bytes(dir.path(), &bytes).unwrap_err();
        assert!(matches!(err, Error::Corrupt { .. }), "{name}: {err}");
    }
    let mut huge = good.clone();
    huge[16..24].copy_from_slice(&(MAX_PAGES + 1).to_le_bytes());
    assert!(matches!(
        open_bytes(dir.path(), &huge),
        Err(Error::LimitExceeded { .. })
    ));
    let mut huge_tokens = good;
    huge_tokens[32..40].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(matches!(
        open_bytes(dir.path(), &huge_tokens),
        Err(Error::LimitExceeded { .. })
    ));
}

#[test]
fn tampered_index_fails_its_digest() {
    let dir = tempfile::tempdir().unwrap();
    let (_, mut bytes) = shard_bytes(dir.path(), 2);
    bytes[HEADER_LEN + 8] ^= 1;
    assert!(matches!(
        open_bytes(dir.path(), &bytes),
        Err(Error::DigestMismatch { .. })
    ));
}

#[test]
fn bad_tables_are_corrupt_even_with_a_matching_digest() {
    let dir = tempfile::tempdir().unwrap();
    let (_, good) = shard_bytes(dir.path(), 2);
    let header = Header::parse(&good).unwrap();
    let layout = header.layout();
    let put = |b: &mut Vec<u8>, at: u64, v: u64| {
        b[at as usize..at as usize + 8].copy_from_slice(&v.to_le_bytes())
    };
    let cases: Vec<(&str, Tamper)> = vec![
        (
            "page table starts above 0",
            Box::new(|b| put(b, layout.page_table, 1)),
        ),
        (
            "page table decreases",
            Box::new(|b| put(b, layout.page_table + 8 * 10, 0)),
        ),
        (
            "page table ends short",
            Box::new(|b| put(b, layout.page_table + 8 * 20, 1)),
        ),
        (
            "sequence table starts above 0",
            Box::new(|b| put(b, layout.sequence_table, 5)),
        ),
        (
            "sequence table ends past the tokens",
            Box::new(move |b| put(b, layout.page_digests - 8, header.token_count + 1)),
        ),
    ];
    for (name, tamper) in cases {
        let mut bytes = good.clone();
        tamper(&mut bytes);
        fix_index_digest(&mut bytes);
        let err = open_bytes(dir.path(), &bytes).unwrap_err();
        assert!(matches!(err, Error::Corrupt { .. }), "{name}: {err}");
    }
}

#[test]
fn tampered_tokens_fail_the_page_digest() {
    let dir = tempfile::tempdir().unwrap();
    let (_, mut bytes) = shard_bytes(dir.path(), 2);
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    let file = open_bytes(dir.path(), &bytes).unwrap();
    assert!(matches!(file.page(19), Err(Error::DigestMismatch { .. })));
    assert!(file.page(18).is_ok(), "other pages stay readable");
    let source = ShardSource::from_files(vec![file]).unwrap();
    assert!(matches!(source.verify(), Err(Error::DigestMismatch { .. })));
}

#[test]
fn tokens_past_the_vocabulary_are_corrupt() {
    // A shard written with a large vocabulary whose header is then edited to
    // claim a small one: the index digest still matches, the tokens do not fit.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.shard");
    let big = TokenizerInfo {
        name: "test".into(),
        vocab_size: 1000,
        eos_id: 0,
    };
    let mut w = ShardWriter::create(&path, big, 2).unwrap();
    w.push_page([&[1u32, 999, 2][..]]).unwrap();
    w.finish().unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[40..44].copy_from_slice(&500u32.to_le_bytes());
    let file = open_bytes(dir.path(), &bytes).unwrap();
    let err = file.page(0).unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
}

#[test]
fn writer_rejects_what_the_reader_would() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.shard");
    let mut w = ShardWriter::create(&path, gpt2(), 2).unwrap();
    assert!(matches!(
        w.push_page([&[50_257u32][..]]),
        Err(Error::InvalidArgument(_))
    ));
    let big = vec![0u32; MAX_PAGE_TOKENS as usize + 1];
    assert!(matches!(
        w.push_page([&big[..]]),
        Err(Error::LimitExceeded { .. })
    ));
    drop(w);
    assert!(!path.exists());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "temp files removed"
    );
    let wide = TokenizerInfo {
        name: "wide".into(),
        vocab_size: 100_000,
        eos_id: 1,
    };
    assert!(ShardWriter::create(&path, wide.clone(), 2).is_err());
    assert!(ShardWriter::create(&path, wide, 4).is_ok());
    assert!(ShardWriter::create(&path, gpt2(), 3).is_err());
}

#[test]
fn mixed_tokenizers_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.shard");
    write(&a, &sample_pages(3), 2);
    let b = dir.path().join("b.shard");
    let other = TokenizerInfo {
        name: "other".into(),
        vocab_size: 100,
        eos_id: 99,
    };
    let mut w = ShardWriter::create(&b, other, 2).unwrap();
    w.push_page([&[1u32][..]]).unwrap();
    w.finish().unwrap();
    assert!(matches!(
        ShardSource::open(&[&a, &b]),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        ShardSource::open::<PathBuf>(&[]),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn batches_pack_pages_with_eos_padding() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.shard");
    let mut w = ShardWriter::create(&path, gpt2(), 2).unwrap();
    w.push_page([&[1u32, 2, 3, 50_256][..], &[4, 5, 50_256][..]])
        .unwrap();
    w.push_page([&[6u32, 7, 50_256][..]]).unwrap();
    w.finish().unwrap();
    let source = ShardSource::open(&[&path]).unwrap();
    let batch = source.batch(&[1, 0], 4).unwrap();
    assert_eq!(batch.rows, 3);
    assert_eq!(
        batch.tokens,
        vec![6, 7, 50_256, 50_256, 1, 2, 3, 50_256, 4, 5, 50_256, 50_256]
    );
    assert_eq!(batch.mask, vec![1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 0]);
    let params = source.params(1, 10, 1).unwrap();
    assert_eq!(params.num_pages, 2);
    assert_eq!(params.dataset_id, source.dataset_id());
}

#[test]
fn a_view_over_bytes_reads_what_the_file_reads() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = shard_bytes(dir.path(), 4);
    let file = ShardFile::open(&path).unwrap();
    let view = ShardView::parse(&bytes).unwrap();
    assert_eq!(view.header(), file.header());
    for p in 0..view.page_count() {
        assert_eq!(view.page(p).unwrap(), file.page(p).unwrap());
    }
    assert!(matches!(view.page(20), Err(Error::NotFound(_))));
    assert!(matches!(
        ShardView::parse(&bytes[..bytes.len() - 2]),
        Err(Error::Truncated { .. })
    ));
}
