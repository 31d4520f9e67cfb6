//! The `Subtensor` client's request flow against a mock subtensor node
//! (tests/chain_node): a real WebSocket JSON-RPC server on 127.0.0.1 that
//! serves the recorded main-network metadata. Each test connects with
//! `Subtensor::connect`, reads or submits, and checks what the node got.
#![cfg(feature = "subtensor")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // not library code: a failure here should stop loudly

mod chain_node;

use std::time::Duration;

use bistro_core::Error;
use bistro_core::chain::subtensor::{Subtensor, SubtensorConfig};
use bistro_core::chain::{Chain, Network};
use bistro_core::identity::{Keypair, PublicKey, Signature};
use chain_node::{MockNode, Outcome, connect, hash_of, set_field};
use subxt::dynamic::Value;
use subxt::ext::codec::{Compact, Decode};

fn alice() -> Keypair {
    Keypair::from_seed(
        bistro_core::digest::parse_hex_32(
            "e5be9a5092b81bca64be81d212e7f2f9eba183bb7a90954f7b76361f6edb5c0a",
        )
        .unwrap(),
    )
    .unwrap()
}

/// A node at block 1000 where `hotkey` holds uid 0 on subnet 1 and
/// commit-reveal is off there, on on subnet 2.
fn node_with(hotkey: &PublicKey) -> MockNode {
    let node = MockNode::start(1000);
    node.put("SubtensorModule", "Uids", (1u16, hotkey.0), &Value::u128(0));
    node.put("SubtensorModule", "Uids", (2u16, hotkey.0), &Value::u128(0));
    node.put(
        "SubtensorModule",
        "CommitRevealWeightsEnabled",
        (1u16,),
        &Value::bool(false),
    );
    node.put(
        "SubtensorModule",
        "CommitRevealWeightsEnabled",
        (2u16,),
        &Value::bool(true),
    );
    node.state.lock().unwrap().nonce = 5;
    node
}

fn compact(n: u64) -> Vec<u8> {
    subxt::ext::codec::Encode::encode(&Compact(n))
}

/// Checks a submitted v4 extrinsic: signer, nonce, signature over the
/// payload (with the node's versions and hashes), and returns its call bytes.
fn check_signed(node: &MockNode, ext: &[u8], signer: &PublicKey, nonce: u64) -> Vec<u8> {
    let mut cursor = ext;
    let len = Compact::<u64>::decode(&mut cursor).unwrap().0 as usize;
    assert_eq!(len, cursor.len());
    assert_eq!(cursor[0], 0x84, "signed, version 4");
    assert_eq!((cursor[1], &cursor[2..34]), (0, &signer.0[..]));
    assert_eq!(cursor[34], 1, "sr25519");
    let signature = Signature(cursor[35..99].try_into().unwrap());
    // Extra: a mortal era (2 bytes), the nonce, a zero tip, metadata-hash off.
    let era = &cursor[99..101];
    let mut extra = era.to_vec();
    extra.extend(compact(nonce));
    extra.extend(compact(0));
    extra.push(0);
    assert_eq!(&cursor[99..99 + extra.len()], &extra[..]);
    let call = cursor[99 + extra.len()..].to_vec();
    // The era starts at the finalized head the client saw (block 1000).
    let period_bits = u16::from_le_bytes([era[0], era[1]]) & 0xf;
    assert_eq!(1u64 << (period_bits + 1), 64, "mortal for 64 blocks");
    let (spec, txv) = node.versions();
    let mut payload = call.clone();
    payload.extend(&extra);
    payload.extend(spec.to_le_bytes());
    payload.extend(txv.to_le_bytes());
    payload.extend(hash_of(0));
    payload.extend(hash_of(1000));
    payload.push(0);
    let payload = if payload.len() > 256 {
        use blake2::digest::{Update, VariableOutput};
        let mut h = blake2::Blake2bVar::new(32).unwrap();
        h.update(&payload);
        let mut out = vec![0u8; 32];
        h.finalize_variable(&mut out).unwrap();
        out
    } else {
        payload
    };
    signer.verify(&payload, &signature).unwrap();
    call
}

#[test]
fn blocks_and_hashes_come_from_the_finalized_chain() {
    let node = MockNode::start(1000);
    let chain = connect(&node);
    let block = chain.block().unwrap();
    assert_eq!(block.number, 1000);
    assert_eq!(block.hash, hash_of(1000));
    assert_eq!(chain.block_hash(999).unwrap(), Some(hash_of(999)));
    assert_eq!(chain.block_hash(1001).unwrap(), None);
    assert_eq!(chain.block_time(), Duration::from_secs(12));
    let (spec, _) = node.versions();
    assert_eq!(chain.spec_version().unwrap(), spec);
    // The client read the metadata once, through the runtime API.
    let calls = node.state.lock().unwrap().calls.clone();
    assert!(calls.iter().filter(|c| *c == "state_call").count() >= 2);
    assert!(calls.contains(&"chain_getFinalizedHead".to_string()));
}

#[test]
fn the_metagraph_decodes_from_the_runtime_api() {
    let node = MockNode::start(1000);
    let api = node
        .metadata
        .runtime_api_trait_by_name("SubnetInfoRuntimeApi")
        .unwrap();
    let output = api.method_by_name("get_metagraph").unwrap().output_ty();
    let some = {
        let scale_info::TypeDef::Variant(v) =
            &node.metadata.types().resolve(output).unwrap().type_def
        else {
            panic!("Option")
        };
        v.variants.iter().find(|x| x.name == "Some").unwrap().fields[0]
            .ty
            .id
    };
    let mut mg = node.zero(some);
    let keys =
        |seed: u8| Value::unnamed_composite((0..3u8).map(|i| Value::from_bytes([seed + i; 32])));
    let list = |v: Vec<Value>| Value::unnamed_composite(v);
    set_field(&mut mg, "netuid", Value::u128(1));
    set_field(&mut mg, "block", Value::u128(999));
    set_field(&mut mg, "hotkeys", keys(10));
    set_field(&mut mg, "coldkeys", keys(50));
    set_field(
        &mut mg,
        "active",
        list(vec![
            Value::bool(true),
            Value::bool(false),
            Value::bool(true),
        ]),
    );
    set_field(
        &mut mg,
        "validator_permit",
        list(vec![
            Value::bool(true),
            Value::bool(false),
            Value::bool(false),
        ]),
    );
    set_field(
        &mut mg,
        "last_update",
        list(vec![Value::u128(990), Value::u128(0), Value::u128(5)]),
    );
    set_field(
        &mut mg,
        "block_at_registration",
        list(vec![Value::u128(1), Value::u128(2), Value::u128(3)]),
    );
    set_field(
        &mut mg,
        "total_stake",
        list(vec![
            Value::u128(5_000_000_000_000),
            Value::u128(0),
            Value::u128(7),
        ]),
    );
    let answer = node.encode(&Value::unnamed_variant("Some", [mg.clone()]), output);
    let none = node.encode(&Value::unnamed_variant("None", []), output);
    {
        let mut st = node.state.lock().unwrap();
        st.runtime.insert(
            (
                "SubnetInfoRuntimeApi_get_metagraph".into(),
                1u16.to_le_bytes().to_vec(),
            ),
            answer,
        );
        st.runtime.insert(
            (
                "SubnetInfoRuntimeApi_get_metagraph".into(),
                2u16.to_le_bytes().to_vec(),
            ),
            none,
        );
    }
    let chain = connect(&node);
    let graph = chain.metagraph(1).unwrap();
    assert_eq!((graph.netuid, graph.block, graph.len()), (1, 999, 3));
    let n0 = graph.neuron(0).unwrap();
    assert_eq!(n0.hotkey, PublicKey([10; 32]));
    assert_eq!(n0.coldkey, PublicKey([50; 32]));
    assert_eq!(n0.stake, 5_000_000_000_000);
    assert_eq!(n0.stake_tao(), 5000.0);
    assert!(n0.validator_permit && n0.active);
    assert_eq!(n0.last_update, 990);
    let n1 = graph.neuron(1).unwrap();
    assert!(!n1.validator_permit && !n1.active);
    assert_eq!(graph.neuron(2).unwrap().registered_at, 3);
    assert_eq!(graph.uid_of(&PublicKey([12; 32])), Some(2));
    assert!(matches!(chain.metagraph(2), Err(Error::NotFound(_))));

    // A node whose columns disagree is refused, not trusted.
    set_field(&mut mg, "total_stake", list(vec![Value::u128(1)]));
    let bad = node.encode(&Value::unnamed_variant("Some", [mg]), output);
    node.state.lock().unwrap().runtime.insert(
        (
            "SubnetInfoRuntimeApi_get_metagraph".into(),
            1u16.to_le_bytes().to_vec(),
        ),
        bad,
    );
    let err = chain.metagraph(1).unwrap_err();
    assert!(matches!(err, Error::Chain(_)), "{err}");
}

#[test]
fn commitments_are_read_from_storage() {
    let node = MockNode::start(1000);
    let miner = PublicKey([3; 32]);
    let data = b"bistro1|https://s3.example.org|bucket-1||AKIA|secret";
    let fields = bistro_core::chain::subtensor::calls::commitment_fields(data).unwrap();
    let record = Value::named_composite([
        ("deposit", Value::u128(0)),
        ("block", Value::u128(900)),
        (
            "info",
            Value::named_composite([("fields", Value::unnamed_composite(fields))]),
        ),
    ]);
    node.put("Commitments", "CommitmentOf", (4u16, miner.0), &record);
    let chain = connect(&node);
    assert_eq!(
        chain.commitment(4, &miner).unwrap().as_deref(),
        Some(&data[..])
    );
    assert_eq!(chain.commitment(4, &PublicKey([4; 32])).unwrap(), None);
    assert_eq!(chain.commitment(5, &miner).unwrap(), None);
}

#[test]
fn set_weights_reaches_the_node_signed_and_succeeds() {
    let pair = alice();
    let node = node_with(&pair.public());
    let chain = connect(&node);
    chain
        .set_weights(1, &pair, &[0, 1, 300], &[65535, 32768, 1], 1_000_003)
        .unwrap();
    let submitted = node.state.lock().unwrap().submitted.clone();
    assert_eq!(submitted.len(), 1);
    let call = check_signed(&node, &submitted[0], &pair.public(), 5);
    let mut want = vec![7u8, 0];
    want.extend(1u16.to_le_bytes());
    want.extend(compact(3));
    for u in [0u16, 1, 300] {
        want.extend(u.to_le_bytes());
    }
    want.extend(compact(3));
    for w in [65535u16, 32768, 1] {
        want.extend(w.to_le_bytes());
    }
    want.extend(1_000_003u64.to_le_bytes());
    assert_eq!(call, want);
    // The client looked for the result in the block and its events.
    let calls = node.state.lock().unwrap().calls.clone();
    assert!(calls.contains(&"chain_getBlock".to_string()), "{calls:?}");
}

#[test]
fn set_commitment_reaches_the_node() {
    let pair = alice();
    let node = node_with(&pair.public());
    let chain = connect(&node);
    let data = vec![b'x'; 200];
    chain.set_commitment(1, &pair, &data).unwrap();
    let submitted = node.state.lock().unwrap().submitted.clone();
    let call = check_signed(&node, &submitted[0], &pair.public(), 5);
    // Commitments.set_commitment(1, { fields: [Raw128, Raw72] }).
    let mut want = vec![18u8, 0];
    want.extend(1u16.to_le_bytes());
    want.extend(compact(2));
    want.push(129);
    want.extend(&data[..128]);
    want.push(73);
    want.extend(&data[128..]);
    assert_eq!(call, want);
}

#[test]
fn refusals_are_clear_errors() {
    let pair = alice();
    let node = node_with(&pair.public());
    let chain = connect(&node);

    // Commit-reveal without feature `timelock`: refused before anything is
    // signed (with the feature it commits: `weights_are_committed_...`).
    #[cfg(not(feature = "timelock"))]
    {
        let err = chain.set_weights(2, &pair, &[0], &[1], 0).unwrap_err();
        assert!(matches!(err, Error::Chain(_)), "{err}");
        assert!(err.to_string().contains("commit-reveal"), "{err}");
    }
    // Not registered.
    let stranger = Keypair::from_seed([42; 32]).unwrap();
    let err = chain.set_weights(1, &stranger, &[0], &[1], 0).unwrap_err();
    assert!(err.to_string().contains("not registered"), "{err}");
    assert!(matches!(
        chain.set_weights(1, &pair, &[0, 1], &[1], 0),
        Err(Error::InvalidArgument(_))
    ));
    assert!(node.state.lock().unwrap().submitted.is_empty());

    // The chain's dispatch error comes back with the pallet error's name.
    node.state.lock().unwrap().outcome = Outcome::ModuleError {
        pallet: "SubtensorModule".into(),
        error: "SettingWeightsTooFast".into(),
    };
    let err = chain.set_weights(1, &pair, &[0], &[65535], 0).unwrap_err();
    assert!(matches!(err, Error::Chain(_)), "{err}");
    assert!(err.to_string().contains("SettingWeightsTooFast"), "{err}");

    // The pool refuses the transaction.
    node.state.lock().unwrap().outcome = Outcome::Invalid;
    let err = chain.set_weights(1, &pair, &[0], &[65535], 0).unwrap_err();
    assert!(err.to_string().contains("invalid"), "{err}");
    assert_eq!(node.state.lock().unwrap().submitted.len(), 2);
}

#[test]
fn unreachable_and_silent_nodes_are_transient_network_errors() {
    // Nothing listens on a port that was just freed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = Subtensor::connect(&Network::Url(format!("ws://127.0.0.1:{port}"))).unwrap_err();
    assert!(err.is_transient(), "{err}");

    let node = MockNode::start(1000);
    let config = SubtensorConfig {
        request_timeout: Duration::from_secs(2),
        ..SubtensorConfig::default()
    };
    let chain = Subtensor::connect_with(&Network::Url(node.url()), config).unwrap();
    node.state
        .lock()
        .unwrap()
        .silent
        .push("chain_getFinalizedHead".into());
    let err = chain.block().unwrap_err();
    assert!(
        matches!(
            err,
            Error::Network {
                transient: true,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_dropped_connection_is_renewed_and_the_read_retried() {
    let node = MockNode::start(1000);
    let chain = connect(&node);
    assert_eq!(chain.block().unwrap().number, 1000);
    assert_eq!(node.state.lock().unwrap().connections, 1);
    node.state.lock().unwrap().drop_next = true;
    assert_eq!(chain.block().unwrap().number, 1000);
    assert_eq!(node.state.lock().unwrap().connections, 2);
    assert_eq!(chain.block_hash(1000).unwrap(), Some(hash_of(1000)));

    // A transaction is not resubmitted after a dropped connection, but the
    // next call has a working connection again.
    let pair = alice();
    node.put(
        "SubtensorModule",
        "Uids",
        (1u16, pair.public().0),
        &Value::u128(0),
    );
    node.put(
        "SubtensorModule",
        "CommitRevealWeightsEnabled",
        (1u16,),
        &Value::bool(false),
    );
    node.state.lock().unwrap().nonce = 5;
    let before = node.state.lock().unwrap().calls.len();
    let submits = |node: &MockNode| {
        node.state.lock().unwrap().calls[before..]
            .iter()
            .filter(|c| *c == "author_submitAndWatchExtrinsic")
            .count()
    };
    {
        let mut st = node.state.lock().unwrap();
        st.silent.push("author_submitAndWatchExtrinsic".into());
    }
    let quick = SubtensorConfig {
        request_timeout: Duration::from_secs(20),
        transaction_timeout: Duration::from_secs(2),
        ..SubtensorConfig::default()
    };
    let chain = Subtensor::connect_with(&Network::Url(node.url()), quick).unwrap();
    let err = chain.set_weights(1, &pair, &[0], &[65535], 0).unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert_eq!(submits(&node), 1);
    node.state.lock().unwrap().silent.clear();
    chain.set_weights(1, &pair, &[0], &[65535], 0).unwrap();
    assert_eq!(submits(&node), 2);
}

#[test]
fn calls_from_inside_an_async_runtime_are_refused_not_panics() {
    let node = MockNode::start(1000);
    let chain = connect(&node);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let err = rt.block_on(async { chain.block() }).unwrap_err();
    assert!(matches!(err, Error::Unavailable(_)), "{err}");
    assert_eq!(chain.block().unwrap().number, 1000);
}

/// drand quicknet's published signature for round 1000.
#[cfg(feature = "timelock")]
const ROUND_1000_SIGNATURE: &str = "b44679b9a59af2ec876b1a6b1ad52ea9b1615fc3982b19576350f93447cb1125e342b73a8dd2bacbe47e4b6b63ed5e39";

/// On a commit-reveal subnet `set_weights` commits timelocked weights with
/// call 118; the ciphertext opens with quicknet's round-1000 pulse to the
/// committer's hotkey and weights; `weights_commit` follows the reveal.
///
/// The node's `Drand.BeaconConfig` is quicknet's key with a period of 10^6
/// seconds and a genesis 1000.5 periods ago, so that the reveal round bistro
/// computes from the wall clock is 1000 (the one round whose pulse the test
/// has) however long the test takes.
#[cfg(feature = "timelock")]
#[test]
fn weights_are_committed_timelocked_and_their_reveal_followed() {
    use bistro_core::chain::commit_reveal::{CommitStatus, WeightsTlockPayload};
    use bistro_core::chain::{Chain, Pulse};

    let pair = alice();
    let node = node_with(&pair.public());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let period: u64 = 1_000_000;
    let genesis = now - 1000 * period - period / 2;
    let ty = node.storage_type("Drand", "BeaconConfig");
    let mut config = node.zero(ty);
    set_field(
        &mut config,
        "public_key",
        Value::from_bytes(bistro_core::timelock::quicknet_key().0),
    );
    set_field(&mut config, "period", Value::u128(u128::from(period)));
    set_field(
        &mut config,
        "genesis_time",
        Value::u128(u128::from(genesis)),
    );
    node.put("Drand", "BeaconConfig", (), &config);
    node.put("SubtensorModule", "Tempo", (2u16,), &Value::u128(360));
    node.put(
        "SubtensorModule",
        "RevealPeriodEpochs",
        (2u16,),
        &Value::u128(1),
    );
    node.put(
        "SubtensorModule",
        "CommitRevealWeightsVersion",
        (),
        &Value::u128(4),
    );
    let chain = connect(&node);
    assert_eq!(chain.weights_commit(2, &pair.public()).unwrap(), None);
    chain
        .set_weights(2, &pair, &[0, 1, 300], &[65535, 32768, 1], 1_000_003)
        .unwrap();

    let submitted = node.state.lock().unwrap().submitted.clone();
    assert_eq!(submitted.len(), 1);
    let call = check_signed(&node, &submitted[0], &pair.public(), 5);
    // SubtensorModule (7).commit_timelocked_mechanism_weights (118):
    // netuid, mecid 0, commit, reveal_round, commit_reveal_version.
    assert_eq!(&call[..2], &[7, 118]);
    assert_eq!(&call[2..4], &2u16.to_le_bytes());
    assert_eq!(call[4], 0);
    let mut rest = &call[5..];
    let len = Compact::<u64>::decode(&mut rest).unwrap().0 as usize;
    let (commit, tail) = rest.split_at(len);
    assert_eq!(tail.len(), 10);
    assert_eq!(u64::from_le_bytes(tail[..8].try_into().unwrap()), 1000);
    assert_eq!(u16::from_le_bytes(tail[8..].try_into().unwrap()), 4);
    let pulse = Pulse::from_hex(1000, ROUND_1000_SIGNATURE).unwrap();
    let plain = bistro_core::timelock::decrypt(commit, &pulse).unwrap();
    let payload = WeightsTlockPayload::decode(&plain).unwrap();
    assert_eq!(
        payload,
        WeightsTlockPayload {
            hotkey: pair.public().0.to_vec(),
            uids: vec![0, 1, 300],
            values: vec![65535, 32768, 1],
            version_key: 1_000_003,
        }
    );
    // Another beacon's pulse for round 1000 does not open it.
    let other = bistro_core::timelock::LocalBeacon::from_seed([1; 32]).pulse(1000);
    assert!(bistro_core::timelock::decrypt(commit, &other).is_err());

    // Head 1000, netuid 2, tempo 360: epoch (1000 + 3) / 361 = 2, so the
    // reveal epoch 3 starts at 3 * 361 - 3 = 1080.
    let report = chain.weights_commit(2, &pair.public()).unwrap().unwrap();
    assert_eq!(
        (report.block, report.reveal_round, report.reveal_block),
        (1000, 1000, 1080)
    );
    assert_eq!(report.status, CommitStatus::Pending);

    // The chain reveals it: the hotkey's weights row and LastUpdate change.
    let row = Value::unnamed_composite([(0u16, 65535u16), (1, 32768), (300, 1)].map(|(u, w)| {
        Value::unnamed_composite([Value::u128(u128::from(u)), Value::u128(u128::from(w))])
    }));
    node.put("SubtensorModule", "Weights", (2u16, 0u16), &row);
    node.put(
        "SubtensorModule",
        "LastUpdate",
        (2u16,),
        &Value::unnamed_composite([Value::u128(1081)]),
    );
    node.state.lock().unwrap().finalized = 1085;
    assert_eq!(
        chain
            .weights_commit(2, &pair.public())
            .unwrap()
            .unwrap()
            .status,
        CommitStatus::Revealed { block: 1081 }
    );

    // A second commit that the chain never reveals is reported as dropped
    // once its reveal epoch is over.
    chain
        .set_weights(2, &pair, &[1], &[65535], 1_000_004)
        .unwrap();
    let report = chain.weights_commit(2, &pair.public()).unwrap().unwrap();
    assert_eq!(report.status, CommitStatus::Pending);
    node.state.lock().unwrap().finalized = report.reveal_block + 400;
    let report = chain.weights_commit(2, &pair.public()).unwrap().unwrap();
    assert!(report.status.is_dropped(), "{report:?}");
}
