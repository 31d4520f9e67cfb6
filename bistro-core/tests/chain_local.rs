//! The embedded LocalChain: semantics, errors, and several writers (threads
//! and processes) sharing one directory.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // not library code: a failure here should stop loudly

use std::collections::HashSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use bistro_core::Error;
use bistro_core::chain::local::{SubnetConfig, WeightsSet};
use bistro_core::chain::{Chain, LocalChain, LocalChainConfig, MAX_COMMITMENT_BYTES, Signer};
use bistro_core::identity::{PublicKey, Signature};

/// A signer that only names its hotkey (the local chain checks no signatures).
struct Hotkey(PublicKey);

impl Signer for Hotkey {
    fn public_key(&self) -> PublicKey {
        self.0
    }
    fn sign(&self, _message: &[u8]) -> Signature {
        Signature::NONE
    }
}

fn key(n: u32) -> PublicKey {
    let mut k = [0u8; 32];
    k[..4].copy_from_slice(&n.to_le_bytes());
    k[31] = 0xb1;
    PublicKey(k)
}

fn manual_chain(dir: &Path) -> LocalChain {
    let chain = LocalChain::open_or_create(dir, &LocalChainConfig::manual([7; 32])).unwrap();
    chain.add_subnet(1, SubnetConfig::default()).unwrap();
    chain
}

#[test]
fn blocks_advance_by_hand_and_hashes_are_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let chain = manual_chain(dir.path());
    let b0 = chain.block().unwrap();
    assert_eq!(b0.number, 0);
    assert_eq!(chain.block_hash(1).unwrap(), None);
    let b5 = chain.advance(5).unwrap();
    assert_eq!(b5.number, 5);
    assert_eq!(chain.block().unwrap(), b5);
    assert_eq!(chain.block_hash(5).unwrap(), Some(b5.hash));
    assert_eq!(chain.block_hash(0).unwrap(), Some(b0.hash));
    assert_eq!(chain.block_hash(6).unwrap(), None);
    let hashes: HashSet<_> = (0..=5)
        .map(|n| chain.block_hash(n).unwrap().unwrap())
        .collect();
    assert_eq!(hashes.len(), 6);

    // Another chain with the same seed has the same hashes; another seed, others.
    let other = tempfile::tempdir().unwrap();
    let same =
        LocalChain::open_or_create(other.path(), &LocalChainConfig::manual([7; 32])).unwrap();
    same.advance(5).unwrap();
    assert_eq!(same.block_hash(3).unwrap(), chain.block_hash(3).unwrap());
    let third = tempfile::tempdir().unwrap();
    let different =
        LocalChain::open_or_create(third.path(), &LocalChainConfig::manual([8; 32])).unwrap();
    different.advance(5).unwrap();
    assert_ne!(
        different.block_hash(3).unwrap(),
        chain.block_hash(3).unwrap()
    );

    // Shared and boxed chains are chains too.
    let shared: Arc<dyn Chain> = Arc::new(chain.clone());
    assert_eq!(shared.block().unwrap(), b5);
    let boxed: Box<dyn Chain> = Box::new(chain.clone());
    assert_eq!(boxed.block_hash(5).unwrap(), Some(b5.hash));

    // A reopened chain keeps its state.
    let reopened = LocalChain::open(dir.path()).unwrap();
    assert_eq!(reopened.block().unwrap(), b5);
    assert_eq!(reopened.block_time(), Duration::ZERO);
}

#[test]
fn a_clock_chain_reaches_a_block_and_wait_times_out_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let config = LocalChainConfig {
        block_time: Duration::from_millis(20),
        genesis_seed: Some([1; 32]),
    };
    let chain = LocalChain::open_or_create(dir.path(), &config).unwrap();
    let start = chain.block().unwrap().number;
    let reached = chain
        .wait_for_block(start + 2, Duration::from_secs(30))
        .unwrap();
    assert!(reached.number >= start + 2);
    assert_eq!(
        chain.block_hash(reached.number).unwrap(),
        Some(reached.hash)
    );
    // A block far away is not reached within a short wait.
    let err = chain
        .wait_for_block(u64::MAX / 2, Duration::from_millis(30))
        .unwrap_err();
    assert!(matches!(err, Error::Unavailable(_)), "{err}");
}

#[test]
fn registration_permits_and_the_metagraph() {
    let dir = tempfile::tempdir().unwrap();
    let chain = LocalChain::open_or_create(dir.path(), &LocalChainConfig::manual([2; 32])).unwrap();
    assert!(
        chain
            .add_subnet(
                3,
                SubnetConfig {
                    max_uids: 4,
                    max_validators: 2,
                    commit_reveal: false
                }
            )
            .unwrap()
    );
    assert!(!chain.add_subnet(3, SubnetConfig::default()).unwrap());
    let cold = key(999);
    assert_eq!(chain.register(3, &key(0), &cold, 10).unwrap(), 0);
    chain.advance(2).unwrap();
    assert_eq!(chain.register(3, &key(1), &cold, 500).unwrap(), 1);
    assert_eq!(chain.register(3, &key(2), &cold, 0).unwrap(), 2);
    assert_eq!(chain.register(3, &key(3), &cold, 300).unwrap(), 3);
    // Registering again keeps the uid; a full subnet refuses newcomers.
    assert_eq!(chain.register(3, &key(1), &cold, 1).unwrap(), 1);
    assert!(matches!(
        chain.register(3, &key(4), &cold, 1),
        Err(Error::LimitExceeded { .. })
    ));
    assert!(matches!(
        chain.register(9, &key(4), &cold, 1),
        Err(Error::NotFound(_))
    ));

    let mg = chain.metagraph(3).unwrap();
    assert_eq!(mg.netuid, 3);
    assert_eq!(mg.block, 2);
    assert_eq!(mg.uids(), [0, 1, 2, 3]);
    assert_eq!(mg.uid_of(&key(3)), Some(3));
    assert_eq!(mg.hotkey_of(2), Some(key(2)));
    assert_eq!(mg.neuron(1).unwrap().registered_at, 2);
    assert_eq!(mg.neuron(0).unwrap().coldkey, cold);
    // The two largest stakes hold the permits.
    let permits: Vec<u16> = mg.validators().map(|n| n.uid).collect();
    assert_eq!(permits, [1, 3]);
    chain.set_stake(3, &key(0), 1000).unwrap();
    let permits: Vec<u16> = chain
        .metagraph(3)
        .unwrap()
        .validators()
        .map(|n| n.uid)
        .collect();
    assert_eq!(permits, [0, 1]);
    assert!(matches!(chain.metagraph(4), Err(Error::NotFound(_))));
}

#[test]
fn weights_follow_subtensors_rules() {
    let dir = tempfile::tempdir().unwrap();
    let chain = manual_chain(dir.path());
    // Weights set directly (commit-reveal is tested below).
    chain.set_commit_reveal(1, false).unwrap();
    let cold = key(500);
    chain.register(1, &key(0), &cold, 1000).unwrap(); // validator
    chain.register(1, &key(1), &cold, 0).unwrap(); // miner
    chain.register(1, &key(2), &cold, 0).unwrap(); // miner
    chain.advance(10).unwrap();

    let validator = Hotkey(key(0));
    chain
        .set_weights(1, &validator, &[1, 2], &[65535, 100], 7)
        .unwrap();
    let rows = chain.weights(1).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].uid, 0);
    assert_eq!(rows[0].hotkey, key(0));
    assert_eq!(
        rows[0].weights,
        WeightsSet {
            uids: vec![1, 2],
            values: vec![65535, 100],
            version_key: 7,
            block: 10
        }
    );
    assert_eq!(
        chain.metagraph(1).unwrap().neuron(0).unwrap().last_update,
        10
    );

    // Float weights go through the Python SDK's conversion.
    chain
        .set_float_weights(1, &validator, &[2, 1], &[1.0, 0.5], 8)
        .unwrap();
    let w = &chain.weights(1).unwrap()[0].weights;
    assert_eq!(
        (w.uids.clone(), w.values.clone()),
        (vec![2, 1], vec![65535, 32768])
    );
    assert!(matches!(
        chain.set_float_weights(1, &validator, &[1], &[0.0], 8),
        Err(Error::InvalidArgument(_))
    ));

    let refused = |r: bistro_core::Result<()>, name: &str| {
        let err = r.unwrap_err();
        assert!(matches!(err, Error::Chain(_)), "{err}");
        assert!(err.to_string().contains(name), "{err} should name {name}");
    };
    refused(
        chain.set_weights(1, &validator, &[1, 1], &[1, 2], 0),
        "DuplicateUids",
    );
    refused(
        chain.set_weights(1, &validator, &[1, 7], &[1, 2], 0),
        "UidVecContainInvalidOne",
    );
    refused(
        chain.set_weights(1, &validator, &[1, 2], &[1], 0),
        "WeightVecNotEqualSize",
    );
    refused(
        chain.set_weights(1, &validator, &[0, 1, 2, 0], &[1, 1, 1, 1], 0),
        "UidsLengthExceedUidsInSubNet",
    );
    refused(
        chain.set_weights(1, &Hotkey(key(1)), &[2], &[1], 0),
        "NeuronNoValidatorPermit",
    );
    // A miner may set a weight on itself alone.
    chain
        .set_weights(1, &Hotkey(key(1)), &[1], &[65535], 0)
        .unwrap();
    refused(
        chain.set_weights(1, &Hotkey(key(77)), &[1], &[1], 0),
        "HotKeyNotRegisteredInSubNet",
    );

    // With commit-reveal on, weights are committed, not set at once.
    chain.set_commit_reveal(1, true).unwrap();
    chain.set_weights(1, &validator, &[1], &[1], 9).unwrap();
    assert_eq!(chain.weights(1).unwrap()[0].weights.version_key, 8);
    chain.advance_past_reveals().unwrap();
    assert_eq!(chain.weights(1).unwrap()[0].weights.version_key, 9);
}

#[test]
fn commit_reveal_hides_weights_until_the_reveal_block() {
    use bistro_core::chain::commit_reveal::CommitStatus;
    use bistro_core::chain::local::{LOCAL_TEMPO, local_reveal_round};

    let dir = tempfile::tempdir().unwrap();
    let chain = manual_chain(dir.path()); // commit-reveal is on by default
    let cold = key(500);
    chain.register(1, &key(0), &cold, 1000).unwrap();
    chain.register(1, &key(1), &cold, 0).unwrap();
    chain.register(1, &key(2), &cold, 0).unwrap();
    chain.advance(10).unwrap();
    let validator = Hotkey(key(0));
    assert_eq!(chain.weights_commit(1, &key(0)).unwrap(), None);

    chain
        .set_weights(1, &validator, &[1, 2], &[65535, 100], 7)
        .unwrap();
    // Epoch (10 + 1 + 1) / (4 + 1) = 2; epoch 3 starts at 3 * 5 - 2 = 13.
    assert_eq!(LOCAL_TEMPO, 4);
    let round = local_reveal_round(10, 1);
    assert_eq!(round, 13);
    let report = chain.weights_commit(1, &key(0)).unwrap().unwrap();
    assert_eq!(
        (report.block, report.reveal_round, report.status.clone()),
        (10, 13, CommitStatus::Pending)
    );
    assert!(chain.weights(1).unwrap().is_empty());
    assert_eq!(
        chain.metagraph(1).unwrap().neuron(0).unwrap().last_update,
        0
    );
    chain.advance(2).unwrap();
    assert!(chain.weights(1).unwrap().is_empty(), "block 12: not yet");

    chain.advance(1).unwrap();
    let rows = chain.weights(1).unwrap();
    assert_eq!(
        rows[0].weights,
        WeightsSet {
            uids: vec![1, 2],
            values: vec![65535, 100],
            version_key: 7,
            block: 13
        }
    );
    assert_eq!(
        chain.metagraph(1).unwrap().neuron(0).unwrap().last_update,
        13
    );
    assert_eq!(
        chain.weights_commit(1, &key(0)).unwrap().unwrap().status,
        CommitStatus::Revealed { block: 13 }
    );

    // Weights that set_weights would refuse are refused at commit time.
    let err = chain
        .set_weights(1, &validator, &[1, 1], &[1, 2], 0)
        .unwrap_err();
    assert!(err.to_string().contains("DuplicateUids"), "{err}");

    // A commit whose checks fail at the reveal is dropped, as subtensor
    // drops it, and the report says why; the old weights stay.
    chain.set_weights(1, &validator, &[2], &[65535], 8).unwrap();
    chain.set_stake(1, &key(0), 0).unwrap(); // loses its permit
    chain.advance_past_reveals().unwrap();
    let report = chain.weights_commit(1, &key(0)).unwrap().unwrap();
    assert!(report.status.is_dropped(), "{report:?}");
    assert!(format!("{:?}", report.status).contains("NeuronNoValidatorPermit"));
    assert_eq!(chain.weights(1).unwrap()[0].weights.version_key, 7);

    // At most MAX_UNREVEALED_COMMITS pending commits per hotkey.
    chain.set_stake(1, &key(0), 1000).unwrap();
    for i in 0..bistro_core::chain::local::MAX_UNREVEALED_COMMITS {
        chain
            .set_weights(1, &validator, &[1], &[1], i as u64)
            .unwrap();
    }
    let err = chain
        .set_weights(1, &validator, &[1], &[1], 99)
        .unwrap_err();
    assert!(
        err.to_string().contains("TooManyUnrevealedCommits"),
        "{err}"
    );
    chain.advance_past_reveals().unwrap();
    assert_eq!(chain.weights(1).unwrap()[0].weights.version_key, 9);

    // Another process sees the same reveals (they are derived from the state).
    let other = LocalChain::open(dir.path()).unwrap();
    assert_eq!(other.weights(1).unwrap(), chain.weights(1).unwrap());

    // With feature `timelock` the commit on disk is a ciphertext to the
    // chain's beacon: the weights are not in the state file.
    #[cfg(feature = "timelock")]
    {
        chain.set_weights(1, &validator, &[2], &[4242], 77).unwrap();
        let state = std::fs::read_to_string(dir.path().join("chain.json")).unwrap();
        assert!(state.contains("\"sealed\":true"), "{state}");
        let payload = bistro_core::chain::commit_reveal::WeightsTlockPayload {
            hotkey: key(0).0.to_vec(),
            uids: vec![2],
            values: vec![4242],
            version_key: 77,
        }
        .encode();
        let hex: String = payload.iter().map(|b| format!("{b:02x}")).collect();
        assert!(!state.contains(&hex));
        chain.advance_past_reveals().unwrap();
        assert_eq!(chain.weights(1).unwrap()[0].weights.version_key, 77);
    }
}

#[test]
fn commitments_are_per_hotkey_and_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let chain = manual_chain(dir.path());
    chain.register(1, &key(0), &key(9), 0).unwrap();
    let miner = Hotkey(key(0));
    assert_eq!(chain.commitment(1, &key(0)).unwrap(), None);
    chain
        .set_commitment(1, &miner, b"bistro1|file:///tmp/b|bucket||")
        .unwrap();
    assert_eq!(
        chain.commitment(1, &key(0)).unwrap().as_deref(),
        Some(&b"bistro1|file:///tmp/b|bucket||"[..])
    );
    let max = vec![0xffu8; MAX_COMMITMENT_BYTES];
    chain.set_commitment(1, &miner, &max).unwrap();
    assert_eq!(chain.commitment(1, &key(0)).unwrap(), Some(max));
    assert!(matches!(
        chain.set_commitment(1, &miner, &vec![0u8; MAX_COMMITMENT_BYTES + 1]),
        Err(Error::LimitExceeded { .. })
    ));
    let err = chain.set_commitment(1, &Hotkey(key(5)), b"x").unwrap_err();
    assert!(err.to_string().contains("AccountNotAllowedCommit"), "{err}");
    assert_eq!(chain.commitment(1, &key(5)).unwrap(), None);
}

#[test]
fn damaged_or_foreign_state_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        LocalChain::open(dir.path()),
        Err(Error::NotFound(_))
    ));
    let chain = manual_chain(dir.path());
    chain.register(1, &key(0), &key(1), 5).unwrap();
    let state = dir.path().join("chain.json");
    let good = std::fs::read(&state).unwrap();

    let cases: Vec<(Vec<u8>, &str)> = vec![
        (good[..good.len() / 2].to_vec(), "corrupt"),
        (b"{}".to_vec(), "corrupt"),
        (
            String::from_utf8(good.clone())
                .unwrap()
                .replace("\"version\":1", "\"version\":9")
                .into_bytes(),
            "version",
        ),
        (
            String::from_utf8(good.clone())
                .unwrap()
                .replace("bistro-local-chain", "other")
                .into_bytes(),
            "corrupt",
        ),
        // A subnet setting out of range.
        (
            String::from_utf8(good.clone())
                .unwrap()
                .replace("\"max_uids\":256", "\"max_uids\":0")
                .into_bytes(),
            "corrupt",
        ),
    ];
    for (bytes, want) in cases {
        std::fs::write(&state, &bytes).unwrap();
        let err = chain.metagraph(1).unwrap_err();
        assert!(
            err.to_string().to_lowercase().contains(want),
            "{want}: {err}"
        );
        // A writer refuses too, and leaves the file as it was.
        assert!(chain.register(1, &key(3), &key(1), 0).is_err());
        assert_eq!(std::fs::read(&state).unwrap(), bytes);
    }
    std::fs::write(&state, &good).unwrap();
    assert_eq!(chain.metagraph(1).unwrap().len(), 1);
}

#[test]
fn concurrent_writers_in_threads_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let chain = LocalChain::open_or_create(dir.path(), &LocalChainConfig::manual([3; 32])).unwrap();
    chain
        .add_subnet(
            1,
            SubnetConfig {
                max_uids: 1024,
                ..SubnetConfig::default()
            },
        )
        .unwrap();
    let chain = Arc::new(chain);
    let threads: Vec<_> = (0..4u32)
        .map(|t| {
            let chain = Arc::clone(&chain);
            std::thread::spawn(move || {
                for i in 0..25u32 {
                    let hotkey = key(t * 1000 + i);
                    chain.register(1, &hotkey, &key(9), u64::from(i)).unwrap();
                    chain
                        .set_commitment(1, &Hotkey(hotkey), format!("t{t}-{i}").as_bytes())
                        .unwrap();
                    chain.advance(1).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    check_all_writes(&chain, 4, 25, "t");
}

/// Every writer `w < writers` registered `per_writer` hotkeys with distinct
/// uids, committed `{tag}{w}-{i}`, and advanced one block each time.
fn check_all_writes(chain: &LocalChain, writers: u32, per_writer: u32, tag: &str) {
    let mg = chain.metagraph(1).unwrap();
    assert_eq!(mg.len() as u32, writers * per_writer);
    assert_eq!(
        chain.block().unwrap().number,
        u64::from(writers * per_writer)
    );
    for w in 0..writers {
        for i in 0..per_writer {
            let hotkey = key(w * 1000 + i);
            assert!(mg.uid_of(&hotkey).is_some());
            assert_eq!(
                chain.commitment(1, &hotkey).unwrap().unwrap(),
                format!("{tag}{w}-{i}").into_bytes()
            );
        }
    }
}

const CHILD_DIR: &str = "BISTRO_TEST_LOCALCHAIN_DIR";
const CHILD_ID: &str = "BISTRO_TEST_LOCALCHAIN_WRITER";

/// Run by `concurrent_writer_processes_lose_nothing` in child processes.
#[test]
#[ignore = "a helper that other tests run in child processes"]
fn child_writer() {
    let (Ok(dir), Ok(id)) = (std::env::var(CHILD_DIR), std::env::var(CHILD_ID)) else {
        return;
    };
    let w: u32 = id.parse().unwrap();
    let chain = LocalChain::open(dir).unwrap();
    for i in 0..15u32 {
        let hotkey = key(w * 1000 + i);
        chain.register(1, &hotkey, &key(9), 1).unwrap();
        chain
            .set_commitment(1, &Hotkey(hotkey), format!("p{w}-{i}").as_bytes())
            .unwrap();
        chain.advance(1).unwrap();
    }
}

#[test]
fn concurrent_writer_processes_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let chain = LocalChain::open_or_create(dir.path(), &LocalChainConfig::manual([4; 32])).unwrap();
    chain.add_subnet(1, SubnetConfig::default()).unwrap();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..3u32)
        .map(|w| {
            Command::new(&exe)
                .args(["--exact", "child_writer", "--ignored", "--test-threads=1"])
                .env(CHILD_DIR, dir.path())
                .env(CHILD_ID, w.to_string())
                // The child's own test report must not mix with this one's.
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    check_all_writes(&chain, 3, 15, "p");
}
