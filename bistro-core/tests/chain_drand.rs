//! The beacon as `Subtensor` reads it from the `Drand` pallet, against the
//! mock node (tests/chain_node) serving the recorded main-network metadata:
//! storage values are encoded with the metadata's own types, so a shape
//! that differs from the live runtime's fails here.
#![cfg(all(feature = "subtensor", feature = "timelock"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // not library code: a failure here should stop loudly

mod chain_node;

use bistro_core::Error;
use bistro_core::chain::Chain;
use bistro_core::timelock::{self, Pulse};
use chain_node::{MockNode, connect};
use subxt::dynamic::Value;

const SIG_1000: &str = "b44679b9a59af2ec876b1a6b1ad52ea9b1615fc3982b19576350f93447cb1125e342b73a8dd2bacbe47e4b6b63ed5e39";

fn bytes(b: &[u8]) -> Value {
    Value::from_bytes(b)
}

/// A `Drand.Pulses` record.
fn pulse_record(round: u64, signature: &[u8]) -> Value {
    Value::named_composite([
        ("round", Value::u128(u128::from(round))),
        ("randomness", bytes(&[0x33; 32])),
        ("signature", bytes(signature)),
    ])
}

/// A `Drand.BeaconConfig` value with `public_key`.
fn beacon_config(public_key: &[u8]) -> Value {
    Value::named_composite([
        ("public_key", bytes(public_key)),
        ("period", Value::u128(3)),
        ("genesis_time", Value::u128(1_692_803_367)),
        ("hash", bytes(&[0x52; 32])),
        ("group_hash", bytes(&[0xf4; 32])),
        ("scheme_id", bytes(b"bls-unchained-g1-rfc9380")),
        (
            "metadata",
            Value::named_composite([("beacon_id", bytes(b"quicknet"))]),
        ),
    ])
}

#[test]
fn the_beacon_key_is_quicknets_by_default_and_as_stored() {
    // Nothing stored: the runtime's default BeaconConfig (from the metadata) is quicknet.
    let node = MockNode::start(1000);
    let chain = connect(&node);
    assert_eq!(chain.beacon().unwrap(), Some(timelock::quicknet_key()));

    let local = timelock::LocalBeacon::from_seed([5; 32]);
    node.put("Drand", "BeaconConfig", (), &beacon_config(&local.key().0));
    assert_eq!(chain.beacon().unwrap(), Some(local.key()));

    node.put("Drand", "BeaconConfig", (), &beacon_config(&[]));
    assert_eq!(chain.beacon().unwrap(), None);

    // A 48-byte (G1) key, as drand's mainnet would have: refused, not truncated.
    node.put("Drand", "BeaconConfig", (), &beacon_config(&[1; 48]));
    assert!(matches!(chain.beacon(), Err(Error::Chain(_))));
}

#[test]
fn pulses_are_read_verified_and_open_ciphertexts() {
    let node = MockNode::start(1000);
    let real = Pulse::from_hex(1000, SIG_1000).unwrap();
    node.put(
        "Drand",
        "Pulses",
        (1000u64,),
        &pulse_record(1000, &real.signature),
    );
    let chain = connect(&node);
    let pulse = chain.pulse(1000).unwrap().unwrap();
    assert_eq!(pulse, real);
    let key = chain.beacon().unwrap().unwrap();
    timelock::verify_pulse(&key, &pulse).unwrap();
    let ct = timelock::encrypt(&key, 1000, b"revealed", [1; 32]).unwrap();
    assert_eq!(timelock::decrypt(&ct, &pulse).unwrap(), b"revealed");
    // Not recorded (yet).
    assert_eq!(chain.pulse(1001).unwrap(), None);

    // Records that are not what a pulse must be: chain errors.
    node.put("Drand", "Pulses", (7u64,), &pulse_record(7, &[1; 47]));
    assert!(matches!(chain.pulse(7), Err(Error::Chain(_))));
    node.put("Drand", "Pulses", (8u64,), &pulse_record(9, &[1; 48]));
    assert!(matches!(chain.pulse(8), Err(Error::Chain(_))));
}

#[test]
fn the_last_stored_round_is_read_at_the_given_block() {
    let node = MockNode::start(1000);
    node.put("Drand", "LastStoredRound", (), &Value::u128(5000));
    node.put_at(990, "Drand", "LastStoredRound", (), &Value::u128(4960));
    let chain = connect(&node);
    assert_eq!(chain.beacon_round_at(1000).unwrap(), Some(5000));
    assert_eq!(chain.beacon_round_at(990).unwrap(), Some(4960));
    // Not finalized yet.
    assert_eq!(chain.beacon_round_at(1001).unwrap(), None);
}
