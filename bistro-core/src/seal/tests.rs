//! Sealing round trips and every kind of bad envelope (feature `timelock`).

use super::*;
use crate::chain::beacon::Pulse;
use crate::timelock::LocalBeacon;

const CAP: u64 = 1 << 24;

fn beacon() -> LocalBeacon {
    LocalBeacon::from_seed([0x42; 32])
}

fn data(len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    blake3::Hasher::new()
        .update(b"seal test data")
        .finalize_xof()
        .fill(&mut out);
    out
}

fn sealed_small(plain: &[u8], round: u64) -> Vec<u8> {
    seal_with_options(
        plain,
        &beacon().key(),
        round,
        &SealOptions {
            content_key: [9; 32],
            rng_seed: [8; 32],
            chunk_size: MIN_CHUNK_SIZE,
        },
    )
    .unwrap()
}

fn timelock_error<T: std::fmt::Debug>(result: Result<T>) -> TimelockError {
    match result {
        Err(Error::Timelock(e)) => e,
        other => panic!("expected a timelock error, got {other:?}"),
    }
}

#[test]
fn round_trips_at_every_size_class() {
    let b = beacon();
    for len in [0usize, 1, 1023, 1024, 1025, 3000, 4096] {
        let plain = data(len);
        let sealed = sealed_small(&plain, 5);
        let header = read_header(&sealed, CAP).unwrap();
        assert_eq!(header.plain_len, len as u64);
        assert_eq!(header.round, 5);
        header.check_beacon(&b.key()).unwrap();
        assert_eq!(
            unseal(&sealed, &b.pulse(5), CAP).unwrap(),
            plain,
            "len {len}"
        );
    }
    // The default chunk size, with a last chunk that is not full.
    let plain = data(2 * DEFAULT_CHUNK_SIZE as usize + 12345);
    let sealed = seal(&plain, &b.key(), 9).unwrap();
    assert_eq!(read_header(&sealed, CAP).unwrap().chunk_count(), 3);
    assert_eq!(unseal(&sealed, &b.pulse(9), CAP).unwrap(), plain);
    // Fresh keys: sealing twice gives different bytes.
    assert_ne!(seal(&plain, &b.key(), 9).unwrap(), sealed);
    // Fixed key and seed: reproducible.
    assert_eq!(
        sealed_small(&plain[..5000], 3),
        sealed_small(&plain[..5000], 3)
    );
}

#[test]
fn a_delta_file_inside_stays_byte_identical() {
    // The envelope is opaque to what it holds: a delta's bytes come back exactly.
    let plain = {
        let mut d = b"BSTRDLTA".to_vec();
        d.extend(data(700));
        d
    };
    assert!(!is_sealed(&plain));
    let sealed = sealed_small(&plain, 1);
    assert!(is_sealed(&sealed));
    assert_eq!(unseal(&sealed, &beacon().pulse(1), CAP).unwrap(), plain);
}

#[test]
fn wrong_round_and_wrong_beacon_are_refused() {
    let sealed = sealed_small(&data(2000), 10);
    let b = beacon();
    assert_eq!(
        timelock_error(unseal(&sealed, &b.pulse(11), CAP)),
        TimelockError::WrongRound {
            sealed: 10,
            pulse: 11
        }
    );
    // A pulse that claims round 10 but is round 11's signature.
    let forged = Pulse {
        round: 10,
        signature: b.pulse(11).signature,
    };
    assert_eq!(
        timelock_error(unseal(&sealed, &forged, CAP)),
        TimelockError::DecryptFailed { round: 10 }
    );
    // Another beacon's pulse for the right round.
    let other = LocalBeacon::from_seed([1; 32]);
    assert!(matches!(
        timelock_error(unseal(&sealed, &other.pulse(10), CAP)),
        TimelockError::DecryptFailed { .. }
    ));
    assert!(matches!(
        read_header(&sealed, CAP)
            .unwrap()
            .check_beacon(&other.key()),
        Err(Error::Timelock(TimelockError::WrongBeacon { .. }))
    ));
}

#[test]
fn truncation_at_every_boundary_is_a_typed_error() {
    let plain = data(2500);
    let sealed = sealed_small(&plain, 4);
    let pulse = beacon().pulse(4);
    let key_end = HEADER_LEN + 276;
    let mut cuts: Vec<usize> = (0..=HEADER_LEN + 1).collect();
    cuts.extend([key_end - 1, key_end, key_end + 1]);
    for chunk in 0..3 {
        let end = key_end + chunk * (1024 + TAG_LEN);
        cuts.extend([end + 1023, end + 1024, end + 1024 + 15]);
    }
    cuts.push(sealed.len() - 1);
    for cut in cuts {
        let cut = cut.min(sealed.len() - 1);
        match unseal(&sealed[..cut], &pulse, CAP) {
            Err(Error::Truncated { .. }) => {}
            other => panic!("cut at {cut}: {other:?}"),
        }
    }
}

#[test]
fn a_lying_declared_length_is_refused_before_allocating() {
    let sealed = sealed_small(&data(100), 4);
    let mut bad = sealed.clone();
    bad[56..64].copy_from_slice(&(1u64 << 60).to_le_bytes());
    assert!(matches!(
        unseal(&bad, &beacon().pulse(4), CAP),
        Err(Error::LimitExceeded { .. })
    ));
    // Within the cap but larger than the buffer.
    bad[56..64].copy_from_slice(&(CAP - 1).to_le_bytes());
    assert!(matches!(
        unseal(&bad, &beacon().pulse(4), CAP),
        Err(Error::Truncated { .. })
    ));
    // The plaintext over the caller's limit.
    assert!(matches!(
        unseal(&sealed, &beacon().pulse(4), 99),
        Err(Error::LimitExceeded { .. })
    ));
}

#[test]
fn bad_magic_and_version() {
    let mut sealed = sealed_small(&data(10), 4);
    sealed[8] = 2;
    assert!(matches!(
        unseal(&sealed, &beacon().pulse(4), CAP),
        Err(Error::UnsupportedVersion { found: 2, .. })
    ));
    sealed[0] = b'X';
    assert!(matches!(
        unseal(&sealed, &beacon().pulse(4), CAP),
        Err(Error::BadMagic { .. })
    ));
}

#[test]
fn every_flipped_bit_region_fails_authentication() {
    let plain = data(3000);
    let sealed = sealed_small(&plain, 6);
    let pulse = beacon().pulse(6);
    let key_end = HEADER_LEN + 276;
    // Header fields that are authenticated but not checked by the parser
    // (beacon id), the key ciphertext, every chunk body and tag.
    let mut positions = vec![24, 40, 55, HEADER_LEN, HEADER_LEN + 100, key_end - 1];
    for chunk in 0..3 {
        let start = key_end + chunk * (1024 + TAG_LEN);
        positions.extend([start, start + 500, start + 950]);
    }
    positions.push(sealed.len() - 1);
    for at in positions {
        let mut bad = sealed.clone();
        bad[at] ^= 0x01;
        match unseal(&bad, &pulse, CAP) {
            Err(Error::Timelock(
                TimelockError::Unauthentic { .. }
                | TimelockError::DecryptFailed { .. }
                | TimelockError::Malformed { .. },
            )) => {}
            other => panic!("flip at {at}: {:?}", other.map(|v| v.len())),
        }
    }
    // A payload flip with the key intact names the chunk.
    let mut bad = sealed.clone();
    bad[key_end + (1024 + TAG_LEN) + 3] ^= 0x80;
    assert_eq!(
        timelock_error(unseal(&bad, &pulse, CAP)),
        TimelockError::Unauthentic { chunk: 1 }
    );
    // The round in the header is authenticated too: change it and use that
    // round's (valid) pulse.
    let mut bad = sealed.clone();
    bad[16..24].copy_from_slice(&7u64.to_le_bytes());
    assert!(unseal(&bad, &beacon().pulse(7), CAP).is_err());
}

#[test]
fn reordered_and_spliced_chunks_fail() {
    let plain = data(4096);
    let sealed = sealed_small(&plain, 2);
    let pulse = beacon().pulse(2);
    let key_end = HEADER_LEN + 276;
    let stride = 1024 + TAG_LEN;
    let chunk =
        |bytes: &[u8], i: usize| bytes[key_end + i * stride..key_end + (i + 1) * stride].to_vec();
    // Swap chunks 0 and 1.
    let mut swapped = sealed.clone();
    swapped[key_end..key_end + stride].copy_from_slice(&chunk(&sealed, 1));
    swapped[key_end + stride..key_end + 2 * stride].copy_from_slice(&chunk(&sealed, 0));
    assert!(matches!(
        timelock_error(unseal(&swapped, &pulse, CAP)),
        TimelockError::Unauthentic { .. }
    ));
    // Drop the last chunk and declare the shorter length: the new last chunk
    // was not sealed as last.
    let mut shorter = sealed[..key_end + 3 * stride].to_vec();
    shorter[56..64].copy_from_slice(&3072u64.to_le_bytes());
    assert!(matches!(
        timelock_error(unseal(&shorter, &pulse, CAP)),
        TimelockError::Unauthentic { .. }
    ));
    // A chunk from another envelope of the same round and size (another
    // content key, as every real envelope has).
    let other = seal_with_options(
        &data(4096).iter().map(|b| b ^ 1).collect::<Vec<_>>(),
        &beacon().key(),
        2,
        &SealOptions {
            content_key: [10; 32],
            rng_seed: [8; 32],
            chunk_size: MIN_CHUNK_SIZE,
        },
    )
    .unwrap();
    let mut spliced = sealed.clone();
    spliced[key_end + stride..key_end + 2 * stride].copy_from_slice(&chunk(&other, 1));
    assert!(matches!(
        timelock_error(unseal(&spliced, &pulse, CAP)),
        TimelockError::Unauthentic { chunk: 1 }
    ));
}

#[test]
fn unseal_file_writes_atomically_and_leaves_nothing_on_failure() {
    let dir = tempfile::tempdir().unwrap();
    let plain = data(5 * DEFAULT_CHUNK_SIZE as usize + 77);
    let sealed = seal(&plain, &beacon().key(), 12).unwrap();
    let src = dir.path().join("delta.sealed");
    let dst = dir.path().join("delta");
    std::fs::write(&src, &sealed).unwrap();
    let n = unseal_file(&src, &dst, &beacon().pulse(12), CAP).unwrap();
    assert_eq!(n, plain.len() as u64);
    assert_eq!(std::fs::read(&dst).unwrap(), plain);

    // An empty plaintext.
    let empty_src = dir.path().join("empty.sealed");
    std::fs::write(&empty_src, seal(b"", &beacon().key(), 12).unwrap()).unwrap();
    let empty_dst = dir.path().join("empty");
    assert_eq!(
        unseal_file(&empty_src, &empty_dst, &beacon().pulse(12), CAP).unwrap(),
        0
    );
    assert_eq!(std::fs::read(&empty_dst).unwrap(), b"");

    // A flip in the last chunk: an error, the old destination untouched,
    // no temp file left behind.
    let mut bad = sealed.clone();
    let last = bad.len() - 20;
    bad[last] ^= 1;
    std::fs::write(&src, &bad).unwrap();
    std::fs::write(&dst, b"old").unwrap();
    assert!(matches!(
        timelock_error(unseal_file(&src, &dst, &beacon().pulse(12), CAP)),
        TimelockError::Unauthentic { chunk: 5 }
    ));
    assert_eq!(std::fs::read(&dst).unwrap(), b"old");
    // A file shorter than the header, and an empty one.
    std::fs::write(&src, &sealed[..10]).unwrap();
    assert!(matches!(
        unseal_file(&src, &dst, &beacon().pulse(12), CAP),
        Err(Error::Truncated { .. })
    ));
    std::fs::write(&src, b"").unwrap();
    assert!(matches!(
        unseal_file(&src, &dst, &beacon().pulse(12), CAP),
        Err(Error::Truncated { .. })
    ));
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 4, "{names:?}");
}

#[test]
fn bad_chunk_sizes_are_refused_when_sealing() {
    for chunk_size in [0, 100, 1 << 25] {
        let options = SealOptions {
            content_key: [0; 32],
            rng_seed: [0; 32],
            chunk_size,
        };
        assert!(matches!(
            seal_with_options(b"x", &beacon().key(), 1, &options),
            Err(Error::InvalidArgument(_))
        ));
    }
}

#[test]
fn quicknet_sealed_envelope_opens_with_the_published_pulse() {
    // Real drand: round 1000 of quicknet.
    let pulse = Pulse::from_hex(
        1000,
        "b44679b9a59af2ec876b1a6b1ad52ea9b1615fc3982b19576350f93447cb1125e342b73a8dd2bacbe47e4b6b63ed5e39",
    )
    .unwrap();
    let plain = data(5000);
    let sealed = seal(&plain, &crate::timelock::quicknet_key(), 1000).unwrap();
    assert_eq!(unseal(&sealed, &pulse, CAP).unwrap(), plain);
}

const SPEC: &str = include_str!("../../../docs/delta-format.md");

fn hex_lines(bytes: &[u8]) -> String {
    bytes
        .chunks(16)
        .map(|line| {
            line.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The hex between the first ```text fence after "### Example envelope" and its end.
fn spec_example() -> Option<&'static str> {
    let section = &SPEC[SPEC.find("### Example envelope")?..];
    let start = section.find("```text\n")? + 8;
    let end = start + section[start..].find("```")?;
    Some(section[start..end].trim())
}

#[test]
fn spec_example_envelope() {
    let pulse = Pulse::from_hex(
        1000,
        "b44679b9a59af2ec876b1a6b1ad52ea9b1615fc3982b19576350f93447cb1125e342b73a8dd2bacbe47e4b6b63ed5e39",
    )
    .unwrap();
    let sealed = seal_with_options(
        b"bistro sealed delta",
        &crate::timelock::quicknet_key(),
        1000,
        &SealOptions {
            content_key: [0x22; 32],
            rng_seed: [0x33; 32],
            chunk_size: MIN_CHUNK_SIZE,
        },
    )
    .unwrap();
    let hex = hex_lines(&sealed);
    assert_eq!(
        spec_example().expect("the spec has an example envelope"),
        hex,
        "docs/delta-format.md's example envelope differs from what seal makes:\n{hex}"
    );
    assert_eq!(
        unseal(&sealed, &pulse, 1024).unwrap(),
        b"bistro sealed delta"
    );
    let header = read_header(&sealed, 1024).unwrap();
    header
        .check_beacon(&crate::timelock::quicknet_key())
        .unwrap();
    assert_eq!(open_key(&header, &sealed, &pulse).unwrap(), [0x22; 32]);
}
