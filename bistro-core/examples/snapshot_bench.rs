//! How long the deadline snapshot takes: every uid's bucket listed on a real
//! S3-compatible server (`moto_server` on 127.0.0.1), concurrently as
//! `Snapshotter::take` does it, against the same listings one after another
//! (the baseline, measured in the same run).
//!
//! ```text
//! cargo run -p bistro-core --features full --example snapshot_bench -- [UIDS] [DELTAS_PER_UID]
//! ```
//!
//! Defaults: 256 uids, 3 delta objects each (plus one older round's). Needs
//! `moto_server` (`scripts/setup-test-tools.sh`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // not library code: a failure here should stop loudly

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::Instant;

use bistro_core::chain::{Chain, LocalChain, LocalChainConfig, local::SubnetConfig};
use bistro_core::digest::Digest;
use bistro_core::identity::Keypair;
use bistro_core::node::SubnetParams;
use bistro_core::node::validator::Snapshotter;
use bistro_core::pages::DatasetParams;
use bistro_core::storage::keys::{delta_key, latest_delta};
use bistro_core::storage::{Bucket, BucketCommitment, EndpointPolicy, open_bucket};
use support::moto::Moto;

fn main() -> bistro_core::Result<()> {
    let mut args = std::env::args().skip(1);
    let uids: u16 = args.next().and_then(|a| a.parse().ok()).unwrap_or(256);
    let per_uid: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);
    let moto = Moto::start();
    let dir = tempfile::tempdir().map_err(|e| bistro_core::Error::io("tempdir", e))?;
    let chain = Arc::new(LocalChain::open_or_create(
        dir.path().join("chain"),
        &LocalChainConfig::manual([1; 32]),
    )?);
    chain.add_subnet(1, SubnetConfig::default())?;
    let dataset = DatasetParams {
        dataset_id: Digest::of(b"bench"),
        num_pages: 1 << 20,
        window_pages: 8,
        // A new window every round (`SubnetParams::validate` wants E <= R).
        epoch_blocks: 10,
        reveal_delay_blocks: 2,
    };
    let params = SubnetParams::new(1, dataset);
    let deadline = params.deadline_after(params.round_blocks);
    print!("setting up {uids} uids with {per_uid} deltas each on moto: ");
    let started = Instant::now();
    let mut keys = Vec::new();
    for uid in 0..uids {
        let mut seed = [0u8; 32];
        seed[..2].copy_from_slice(&uid.to_le_bytes());
        seed[31] = 7;
        let key = Keypair::from_seed(seed)?;
        let name = format!("miner-{uid:04}");
        let bucket = moto.bucket(&name);
        // One older round's delta and `per_uid` of this round's.
        let blocks = std::iter::once(deadline - params.round_blocks - 1)
            .chain((0..per_uid).map(|i| deadline - 1 - i));
        for block in blocks {
            let bytes = block.to_le_bytes();
            bucket.put(
                &delta_key(&key.public(), block, &Digest::of(&bytes)),
                &bytes,
            )?;
        }
        chain.register(1, &key.public(), &key.public(), 0)?;
        let commitment = BucketCommitment::public(moto.endpoint.clone(), name);
        chain.set_commitment(1, &key, commitment.encode()?.as_bytes())?;
        keys.push((key.public(), commitment));
    }
    println!("{:.1} s", started.elapsed().as_secs_f64());
    chain.advance(deadline - chain.block()?.number)?;
    let blocks = deadline - params.round_blocks..=deadline - 1;

    // Baseline: the same listings one after another.
    let started = Instant::now();
    let mut found = 0;
    for (hotkey, commitment) in &keys {
        let bucket = open_bucket(commitment, EndpointPolicy::Any)?;
        if latest_delta(bucket.as_ref(), hotkey, blocks.clone())?.is_some() {
            found += 1;
        }
    }
    let sequential = started.elapsed();

    let me = Keypair::from_seed([9; 32])?.public();
    let chain_dyn: Arc<dyn Chain> = chain.clone();
    let snapshotter = Snapshotter::new(chain_dyn, params.clone(), EndpointPolicy::Any, me);
    let started = Instant::now();
    let snapshot = snapshotter.take(deadline)?;
    let concurrent = started.elapsed();
    if snapshot.pins.len() != found || !snapshot.unlisted.is_empty() {
        return Err(bistro_core::Error::InvalidArgument(format!(
            "the snapshot pinned {} of {found} uids ({} unlisted)",
            snapshot.pins.len(),
            snapshot.unlisted.len()
        )));
    }
    println!(
        "{uids} uids: snapshot {:.2} s ({} at a time), sequential listings {:.2} s: \
         {:.1}x faster; {:.1} ms per uid",
        concurrent.as_secs_f64(),
        bistro_core::node::validator::LIST_PARALLELISM,
        sequential.as_secs_f64(),
        sequential.as_secs_f64() / concurrent.as_secs_f64(),
        concurrent.as_secs_f64() * 1e3 / f64::from(uids)
    );
    Ok(())
}
