//! Tests against drand quicknet's published pulse for round 1000 (the one
//! subtensor's own tests decrypt with), and the local beacon.

use super::*;

/// drand quicknet's signature of round 1000, as its HTTP API publishes it.
const QUICKNET_1000: &str = "b44679b9a59af2ec876b1a6b1ad52ea9b1615fc3982b19576350f93447cb1125e342b73a8dd2bacbe47e4b6b63ed5e39";

fn quicknet_1000() -> Pulse {
    Pulse::from_hex(1000, QUICKNET_1000).unwrap()
}

fn timelock_error(result: Result<impl std::fmt::Debug>) -> TimelockError {
    match result {
        Err(Error::Timelock(e)) => e,
        other => panic!("expected a timelock error, got {other:?}"),
    }
}

#[test]
fn quicknet_round_1000_opens_a_ciphertext_made_here() {
    let message = b"weights for round 1000";
    let ct = encrypt(&quicknet_key(), 1000, message, [7; 32]).unwrap();
    assert_eq!(ct.len(), message.len() + CIPHERTEXT_OVERHEAD);
    assert_eq!(decrypt(&ct, &quicknet_1000()).unwrap(), message);
    // Same seed, same bytes; another seed, other bytes.
    assert_eq!(
        encrypt(&quicknet_key(), 1000, message, [7; 32]).unwrap(),
        ct
    );
    assert_ne!(
        encrypt(&quicknet_key(), 1000, message, [8; 32]).unwrap(),
        ct
    );
    // Empty messages work too.
    let empty = encrypt(&quicknet_key(), 1000, b"", [1; 32]).unwrap();
    assert_eq!(empty.len(), CIPHERTEXT_OVERHEAD);
    assert_eq!(decrypt(&empty, &quicknet_1000()).unwrap(), b"");
}

#[test]
fn quicknet_pulse_verifies_and_altered_ones_do_not() {
    verify_pulse(&quicknet_key(), &quicknet_1000()).unwrap();
    // Another round with the same signature.
    let wrong_round = Pulse {
        round: 1001,
        ..quicknet_1000()
    };
    assert_eq!(
        timelock_error(verify_pulse(&quicknet_key(), &wrong_round)),
        TimelockError::BadPulse { round: 1001 }
    );
    // Every single-bit flip of the signature is refused (as a bad point or a bad signature).
    for bit in 0..SIGNATURE_LEN * 8 {
        let mut pulse = quicknet_1000();
        pulse.signature[bit / 8] ^= 1 << (bit % 8);
        match timelock_error(verify_pulse(&quicknet_key(), &pulse)) {
            TimelockError::BadPulse { .. } | TimelockError::Malformed { .. } => {}
            other => panic!("bit {bit}: {other:?}"),
        }
    }
    // The local beacon's key does not verify quicknet's pulse.
    let local = LocalBeacon::from_seed([3; 32]);
    assert!(verify_pulse(&local.key(), &quicknet_1000()).is_err());
}

#[test]
fn wrong_round_and_altered_ciphertexts_fail_cleanly() {
    let beacon = LocalBeacon::from_seed([9; 32]);
    let message = [0x5au8; 40];
    let ct = encrypt(&beacon.key(), 77, &message, [2; 32]).unwrap();
    assert_eq!(decrypt(&ct, &beacon.pulse(77)).unwrap(), message);
    assert_eq!(
        timelock_error(decrypt(&ct, &beacon.pulse(78))),
        TimelockError::DecryptFailed { round: 78 }
    );
    // Another beacon's pulse of the right round.
    let other = LocalBeacon::from_seed([10; 32]);
    assert!(matches!(
        timelock_error(decrypt(&ct, &other.pulse(77))),
        TimelockError::DecryptFailed { .. }
    ));
    // A flipped bit anywhere: a typed error, never the message.
    for i in 0..ct.len() {
        let mut bad = ct.clone();
        bad[i] ^= 0x10;
        match decrypt(&bad, &beacon.pulse(77)) {
            Err(Error::Timelock(_)) => {}
            other => panic!("byte {i}: {other:?}"),
        }
    }
    // Every truncation and an extension.
    for len in 0..ct.len() {
        assert!(matches!(
            decrypt(&ct[..len], &beacon.pulse(77)),
            Err(Error::Timelock(TimelockError::Malformed { .. }))
        ));
    }
    let mut longer = ct.clone();
    longer.push(0);
    assert!(matches!(
        timelock_error(decrypt(&longer, &beacon.pulse(77))),
        TimelockError::Malformed { .. }
    ));
}

#[test]
fn hostile_ciphertexts_get_typed_errors() {
    let pulse = quicknet_1000();
    let good = encrypt(&quicknet_key(), 1000, b"abc", [4; 32]).unwrap();
    // V of 33 bytes (the crate would index past its 32-byte hash) and W of 31.
    let mut long_v = good[..96].to_vec();
    long_v.extend(33u64.to_le_bytes());
    long_v.extend([0u8; 33]);
    long_v.extend_from_slice(&good[96 + 40..]);
    assert!(matches!(
        timelock_error(decrypt(&long_v, &pulse)),
        TimelockError::Malformed { .. }
    ));
    let mut short_w = good[..96 + 40].to_vec();
    short_w.extend(31u64.to_le_bytes());
    short_w.extend([0u8; 31]);
    short_w.extend_from_slice(&good[96 + 80..]);
    assert!(matches!(
        timelock_error(decrypt(&short_w, &pulse)),
        TimelockError::Malformed { .. }
    ));
    // A huge declared length with little behind it.
    let mut huge = good[..96].to_vec();
    huge.extend(u64::MAX.to_le_bytes());
    assert!(matches!(
        timelock_error(decrypt(&huge, &pulse)),
        TimelockError::Malformed { .. }
    ));
    // Over the cap.
    assert!(matches!(
        timelock_error(decrypt(&vec![0u8; MAX_CIPHERTEXT_LEN + 1], &pulse)),
        TimelockError::Malformed { .. }
    ));
    // Garbage and an invalid signature.
    assert!(decrypt(&[0xff; 300], &pulse).is_err());
    let bad_sig = Pulse {
        round: 1000,
        signature: [0xff; SIGNATURE_LEN],
    };
    assert!(matches!(
        timelock_error(decrypt(&good, &bad_sig)),
        TimelockError::Malformed { .. }
    ));
    // A bad key, and the point at infinity as a key.
    assert!(encrypt(&BeaconKey([0x11; BEACON_KEY_LEN]), 1, b"x", [0; 32]).is_err());
    let mut infinity = [0u8; BEACON_KEY_LEN];
    infinity[0] = 0xc0;
    assert!(matches!(
        timelock_error(encrypt(&BeaconKey(infinity), 1, b"x", [0; 32])),
        TimelockError::Malformed { .. }
    ));
    // A message that would make a ciphertext over the cap.
    assert!(matches!(
        encrypt(&quicknet_key(), 1, &vec![0u8; MAX_CIPHERTEXT_LEN], [0; 32]),
        Err(Error::LimitExceeded { .. })
    ));
}

#[test]
fn local_beacon_pulses_verify_and_open() {
    let beacon = LocalBeacon::from_seed([1; 32]);
    assert_eq!(LocalBeacon::from_seed([1; 32]).key(), beacon.key());
    assert_ne!(LocalBeacon::from_seed([2; 32]).key(), beacon.key());
    for round in [0, 1, 2, 1000, u64::MAX] {
        let pulse = beacon.pulse(round);
        assert_eq!(pulse.round, round);
        verify_pulse(&beacon.key(), &pulse).unwrap();
        let ct = encrypt(&beacon.key(), round, b"sealed", [5; 32]).unwrap();
        assert_eq!(decrypt(&ct, &pulse).unwrap(), b"sealed");
    }
    assert_ne!(beacon.pulse(1), beacon.pulse(2));
    assert!(
        verify_pulse(
            &beacon.key(),
            &Pulse {
                round: 2,
                ..beacon.pulse(1)
            }
        )
        .is_err()
    );
}

#[test]
fn random_seeds_differ() {
    assert_ne!(random_seed().unwrap(), random_seed().unwrap());
}
