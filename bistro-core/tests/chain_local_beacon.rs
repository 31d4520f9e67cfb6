//! The local chain's timelock beacon: a key derived from the genesis seed
//! (every process sharing the directory agrees), rounds that are blocks.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // not library code: a failure here should stop loudly

use std::sync::Arc;

use bistro_core::chain::{Chain, LocalChain, LocalChainConfig};

#[cfg(feature = "timelock")]
#[test]
fn rounds_are_blocks_and_pulses_open_what_was_sealed() {
    use bistro_core::seal;
    use bistro_core::timelock;

    let dir = tempfile::tempdir().unwrap();
    let chain = LocalChain::open_or_create(dir.path(), &LocalChainConfig::manual([7; 32])).unwrap();
    let key = chain.beacon().unwrap().unwrap();
    // Another handle on the same directory, and the same chain through an Arc,
    // agree on the key.
    assert_eq!(
        LocalChain::open(dir.path()).unwrap().beacon().unwrap(),
        Some(key)
    );
    let shared: Arc<dyn Chain> = Arc::new(chain.clone());
    assert_eq!(shared.beacon().unwrap(), Some(key));
    // Another genesis, another key.
    let other_dir = tempfile::tempdir().unwrap();
    let other =
        LocalChain::open_or_create(other_dir.path(), &LocalChainConfig::manual([8; 32])).unwrap();
    assert_ne!(other.beacon().unwrap(), Some(key));

    let now = chain.block().unwrap().number;
    assert_eq!(chain.beacon_round_at(now).unwrap(), Some(now));
    assert_eq!(chain.beacon_round_at(now + 3).unwrap(), None);
    let deadline = now + 3;
    assert_eq!(chain.pulse(deadline).unwrap(), None);

    let delta = b"BSTRDLTA and the rest of a delta".repeat(100);
    let sealed = seal::seal(&delta, &key, deadline).unwrap();
    chain.advance(3).unwrap();
    assert_eq!(shared.beacon_round_at(deadline).unwrap(), Some(deadline));
    let pulse = shared.pulse(deadline).unwrap().unwrap();
    timelock::verify_pulse(&key, &pulse).unwrap();
    assert_eq!(seal::unseal(&sealed, &pulse, 1 << 20).unwrap(), delta);
    // Earlier rounds have pulses too; they do not open it.
    let early = chain.pulse(deadline - 1).unwrap().unwrap();
    assert!(seal::unseal(&sealed, &early, 1 << 20).is_err());
}

#[cfg(not(feature = "timelock"))]
#[test]
fn without_the_timelock_feature_there_is_no_beacon() {
    let dir = tempfile::tempdir().unwrap();
    let chain = LocalChain::open_or_create(dir.path(), &LocalChainConfig::manual([7; 32])).unwrap();
    let shared: Arc<dyn Chain> = Arc::new(chain);
    assert_eq!(shared.beacon().unwrap(), None);
    assert_eq!(shared.pulse(0).unwrap(), None);
    assert_eq!(shared.beacon_round_at(0).unwrap(), None);
}
