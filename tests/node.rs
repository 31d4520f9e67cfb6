//! The miner and validator against a local chain and local buckets: restart,
//! rotation, and the rejections that need a real round to show.
#![cfg(feature = "full")]

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bistro::Error;
use bistro::chain::Chain;
use bistro::codec::{DType, DeltaHeader, Encoding, Limits};
use bistro::model::{Device, TrainConfig};
use bistro::node::DeltaEncoding;
use bistro::node::miner::{MasterStatus, Miner, MinerConfig, MinerEvent, RoundOutcome};
use bistro::node::run_params::{RunParams, run_params_key};
use bistro::node::sealing::{SealTarget, seal_target};
use bistro::node::upload::upload_delta;
use bistro::node::validator::{FetchBudget, Validator};
use bistro::storage::{Bucket, BucketCommitment};

mod common;
use common::{Net, bucket, key};

fn net() -> Net {
    common::net(|p| {
        p.local_pages = 2;
        p.global_pages = 2;
    })
}

impl Net {
    fn validator(&self, uids_per_round: usize) -> Validator {
        self.validator_with(uids_per_round, Default::default())
    }

    /// Registers miner `i` with a bucket commitment; returns uid and bucket.
    fn miner(&self, i: u8) -> (u16, Box<dyn Bucket>) {
        let uid = self.register(i);
        (uid, bucket(&self.root, &format!("miner-{i}")).0)
    }

    /// Uploads a dense delta of `value`s for miner `i`, claiming `uid`, at
    /// the current block, sealed as a miner seals.
    fn upload(&self, validator: &Validator, i: u8, uid: u16, value: f32) -> String {
        let block = self.chain.block().unwrap().number;
        self.upload_with(validator, i, uid, block, None, |_, _| value)
    }

    /// Uploads a dense delta for miner `i` claiming `uid` under `block`,
    /// element `j` of tensor `t` being `value(t, j)`, sealed to `seal` (or
    /// where a miner seals).
    fn upload_with(
        &self,
        validator: &Validator,
        i: u8,
        uid: u16,
        block: u64,
        seal: Option<SealTarget>,
        value: impl Fn(usize, usize) -> f32,
    ) -> String {
        let (b, _) = bucket(&self.root, &format!("miner-{i}"));
        let master = validator.master();
        let header = DeltaHeader {
            base_revision: master.revision(),
            block,
            uid,
            hotkey: key(i).public(),
        };
        let params = master.checkpoint.parameters();
        let limits = Limits::for_model(self.model.parameter_count());
        let seal = seal.unwrap_or_else(|| {
            seal_target(
                self.chain.as_ref(),
                &self.params,
                self.params.deadline_after(block),
            )
            .unwrap()
        });
        upload_delta(
            b.as_ref(),
            &self.root.join("scratch"),
            &key(i),
            header,
            &limits,
            &seal,
            |w| {
                for (t, p) in params.iter().enumerate() {
                    let shape: Vec<u64> = p.shape.iter().map(|&d| d as u64).collect();
                    let values: Vec<f32> = (0..p.numel() as usize).map(|j| value(t, j)).collect();
                    w.add_tensor(&p.name, &shape, &values, Encoding::Dense(DType::BF16), None)?;
                }
                Ok(())
            },
        )
        .unwrap()
        .key
    }

    /// The next deadline.
    fn next_deadline(&self) -> u64 {
        self.params
            .deadline_after(self.chain.block().unwrap().number)
    }

    /// Moves the chain to `block`.
    fn advance_to(&self, block: u64) {
        let now = self.chain.block().unwrap().number;
        self.chain.advance(block.saturating_sub(now)).unwrap();
    }

    /// Moves the chain to the next deadline, lets `validator` take its
    /// deadline snapshot there, then moves to the reveal block; returns the
    /// deadline.
    fn close_round(&self, validator: &mut Validator) -> u64 {
        let deadline = self.next_deadline();
        self.advance_to(deadline);
        assert!(validator.snapshot(deadline).unwrap().before_reveal);
        self.advance_to(self.params.reveal_block(deadline));
        deadline
    }
}

/// A reproducible pattern of small values (±1e-3), different per `seed`.
fn pattern(seed: u64) -> impl Fn(usize, usize) -> f32 {
    move |t, j| {
        let mut h = bistro::digest::Hasher::new();
        h.update(&seed.to_le_bytes())
            .update(&(t as u64).to_le_bytes())
            .update(&(j as u64).to_le_bytes());
        if h.finalize().0[0] & 1 == 0 {
            1e-3
        } else {
            -1e-3
        }
    }
}

#[test]
fn a_restarted_validator_keeps_its_averages_and_does_not_judge_a_uid_twice() {
    let net = net();
    let mut validator = net.validator(0);
    let (uid, _) = net.miner(1);
    net.upload(&validator, 1, uid, 0.0);
    let deadline = net.close_round(&mut validator);
    let report = validator.run_round(deadline).unwrap();
    assert_eq!(report.rows.len(), 1);
    assert_eq!(report.rows[0].outcome, "no_local_gain");
    let state = validator.state().clone();
    let master = validator.master().revision();
    assert_eq!(state.averages.get(uid).unwrap().evaluations, 1);
    drop(validator);

    // A new process over the same folder and bucket.
    let mut again = net.validator(0);
    assert_eq!(again.state(), &state);
    assert_eq!(again.master().revision(), master);
    let repeat = again.run_round(deadline).unwrap();
    assert!(repeat.rows.is_empty(), "judged again: {:?}", repeat.rows);
    assert_eq!(again.state().averages.get(uid).unwrap().evaluations, 1);
    // An older deadline is refused.
    assert!(matches!(
        again.run_round(deadline - 1),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn with_a_cap_per_round_every_uid_is_judged_in_turn() {
    let net = net();
    let mut validator = net.validator(1);
    let (a, _) = net.miner(1);
    let (b, _) = net.miner(2);
    let mut judged = Vec::new();
    for _ in 0..4 {
        let deadline = net.close_round(&mut validator);
        let report = validator.run_round(deadline).unwrap();
        assert_eq!(report.rows.len(), 1);
        assert_eq!(report.rows[0].outcome, "no_delta");
        judged.push(report.rows[0].uid);
    }
    assert_eq!(judged, vec![a, b, a, b]);
}

#[test]
fn a_delta_that_blows_the_model_up_scores_non_finite_loss_and_its_log_reads_back() {
    let net = net();
    let mut validator = net.validator(0);
    let (uid, _) = net.miner(1);
    // Finite values (bf16 holds them) on the final norm's scale only: the
    // normalized activations overflow, every loss with the delta is
    // infinite or NaN.
    let names: Vec<String> = validator
        .master()
        .checkpoint
        .parameters()
        .iter()
        .map(|p| p.name.clone())
        .collect();
    let head = names
        .iter()
        .position(|n| n == "model.norm.weight")
        .unwrap_or_else(|| panic!("no final norm in {names:?}"));
    let block = net.chain.block().unwrap().number;
    net.upload_with(&validator, 1, uid, block, None, |t, _| {
        if t == head { 3e38 } else { 0.0 }
    });
    let deadline = net.close_round(&mut validator);
    // Before, the log held `null` for those losses and the round failed
    // reading its own log back.
    let report = validator.run_round(deadline).unwrap();
    assert_eq!(report.row(uid).unwrap().outcome, "non_finite_loss");
    assert_eq!(report.master_after, report.master_before);
    let records = bistro::node::log::read_log(validator.log_dir()).unwrap();
    let evaluation = records[0].evaluation.as_ref().unwrap();
    assert!(evaluation.local.with_delta.iter().all(|x| !x.is_finite()));
    assert!(evaluation.local.master.iter().all(|x| x.is_finite()));
    // The restarted validator reads it too.
    drop(validator);
    let again = net.validator(0);
    assert_eq!(again.state().averages.get(uid).unwrap().evaluations, 1);
}

#[test]
fn wrong_authors_and_late_uploads_are_rejected_before_evaluation() {
    let net = net();
    let mut validator = net.validator(0);
    let (honest_uid, _) = net.miner(1);
    let (liar, _) = net.miner(2);
    let (late, late_bucket) = net.miner(3);
    // Miner 2 claims miner 1's uid in its header.
    let block = net.chain.block().unwrap().number;
    net.upload(&validator, 2, honest_uid, 1e-4);
    let deadline = net.next_deadline();
    net.advance_to(deadline);
    validator.snapshot(deadline).unwrap();
    // Miner 3 uploads under a block of the round after the snapshot, with a
    // storage time from an hour before (its own server's clock).
    let key = net.upload_with(&validator, 3, late, block, None, |_, _| 1e-4);
    let path = net.root.join("buckets/miner-3").join(&key);
    let file = std::fs::File::options().write(true).open(&path).unwrap();
    file.set_modified(SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
    assert!(late_bucket.head(&key).unwrap().is_some());
    net.advance_to(net.params.reveal_block(deadline));
    let report = validator.run_round(deadline).unwrap();
    assert_eq!(report.row(liar).unwrap().outcome, "wrong_author");
    assert_eq!(report.row(late).unwrap().outcome, "late");
    assert_eq!(report.row(honest_uid).unwrap().outcome, "no_delta");
    assert_eq!(report.master_after, report.master_before);
}

#[test]
fn a_miner_waits_for_a_missing_master_and_survives_a_failed_upload() {
    let net = net();
    let (uid, _) = net.miner(1);
    let (own, commitment) = bucket(&net.root, "miner-1");
    let config = MinerConfig {
        params: net.params.clone(),
        model: net.model.clone(),
        train: TrainConfig {
            learning_rate: 1e-3,
            warmup_steps: 1,
            ..TrainConfig::default()
        },
        device: Device::Cpu,
        steps_per_upload: 1,
        pages_per_step: 1,
        encoding: DeltaEncoding::parse("topk-0.1-bf16").unwrap(),
        work_dir: net.root.join("miner-1"),
    };
    let chain: Arc<dyn Chain> = net.chain.clone();
    let mut miner = Miner::new(chain, own, commitment, key(1), net.data.clone(), config).unwrap();
    assert!(
        !miner.publish_commitment().unwrap(),
        "the commitment was already there"
    );
    // No validator yet: no master anywhere.
    assert_eq!(miner.sync_master().unwrap(), MasterStatus::Missing);
    assert!(matches!(miner.upload(1), Err(Error::Unavailable(_))));

    let validator = net.validator(0);
    let status = miner.sync_master().unwrap();
    assert_eq!(status, MasterStatus::Updated(validator.master().revision()));
    assert_eq!(miner.uid().unwrap(), uid);
    let deadline = net.params.deadline_after(net.chain.block().unwrap().number);
    let report = miner.train(deadline, 1).unwrap();
    assert!(report.mean_loss.is_finite());

    // The bucket's folder disappears: the upload fails with an error, and
    // works again once the folder is back.
    let folder = net.root.join("buckets/miner-1");
    let moved = net.root.join("buckets/miner-1.away");
    std::fs::rename(&folder, &moved).unwrap();
    std::fs::write(&folder, b"not a folder").unwrap();
    assert!(miner.upload(2).is_err());
    std::fs::remove_file(&folder).unwrap();
    std::fs::rename(&moved, &folder).unwrap();
    let uploaded = miner.upload(3).unwrap();
    assert!(folder.join(&uploaded.key).exists());

    // What top-k left out survives a restart: a new miner over the same work
    // folder carries it into its first delta.
    let left_out = miner.last_left_out().unwrap().clone();
    assert!(left_out.bytes() > 0);
    assert!(net.root.join("miner-1/residuals.delta").exists());
    let config = miner.config().clone();
    drop(miner);
    let (own, commitment) = bucket(&net.root, "miner-1");
    let chain: Arc<dyn Chain> = net.chain.clone();
    let mut restarted =
        Miner::new(chain, own, commitment, key(1), net.data.clone(), config).unwrap();
    assert_eq!(restarted.carried_residuals(), None);
    restarted.sync_master().unwrap();
    assert_eq!(restarted.carried_residuals(), Some(&left_out));
}

#[test]
fn the_deadline_snapshot_decides_lateness_not_the_storage_clock() {
    let net = net();
    let mut validator = net.validator(0);
    let (on_time, _) = net.miner(1);
    let (after, _) = net.miner(2);
    net.upload(&validator, 1, on_time, 0.0);
    let block = net.chain.block().unwrap().number;
    let deadline = net.next_deadline();
    net.advance_to(deadline);
    let snapshot = validator.snapshot(deadline).unwrap().clone();
    assert!(snapshot.before_reveal);
    assert!(snapshot.pins.contains_key(&on_time));
    assert!(!snapshot.pins.contains_key(&after));
    // After the snapshot, before the reveal: miner 2 uploads under a block
    // of the round and its storage server backdates the object by an hour.
    let key = net.upload_with(&validator, 2, after, block, None, pattern(2));
    let path = net.root.join("buckets/miner-2").join(&key);
    let file = std::fs::File::options().write(true).open(&path).unwrap();
    file.set_modified(SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
    net.advance_to(net.params.reveal_block(deadline));
    let report = validator.run_round(deadline).unwrap();
    assert_eq!(report.row(after).unwrap().outcome, "late");
    assert_eq!(report.row(on_time).unwrap().outcome, "no_local_gain");
}

#[test]
fn unsealed_and_wrongly_sealed_uploads_are_rejected() {
    let net = net();
    let mut validator = net.validator(0);
    let (plain, plain_bucket) = net.miner(1);
    let (far, _) = net.miner(2);
    let (foreign, _) = net.miner(3);
    let (early, _) = net.miner(4);
    let block = net.chain.block().unwrap().number;
    let deadline = net.next_deadline();
    // A sealed delta cannot be opened before its round's pulse exists.
    let sealed_key = net.upload(&validator, 1, plain, 1e-4);
    let envelope = plain_bucket.get(&sealed_key, 1 << 30).unwrap();
    let pulse_chain: &dyn Chain = net.chain.as_ref();
    let inner = bistro::node::sealing::open_if_public(pulse_chain, &envelope, 1 << 30).unwrap();
    assert!(inner.is_none(), "a sealed delta opened before its round");
    plain_bucket.delete(&sealed_key).unwrap();
    // An unsealed delta: the signed plain file a miner would seal, under
    // its own digest.
    let header = DeltaHeader {
        base_revision: validator.master().revision(),
        block,
        uid: plain,
        hotkey: key(1).public(),
    };
    let limits = Limits::for_model(net.model.parameter_count());
    let mut w = bistro::codec::DeltaWriter::new(Vec::new(), &header, &limits).unwrap();
    for p in validator.master().checkpoint.parameters() {
        let shape: Vec<u64> = p.shape.iter().map(|&d| d as u64).collect();
        let values = vec![1e-4f32; p.numel() as usize];
        w.add_tensor(&p.name, &shape, &values, Encoding::Dense(DType::BF16), None)
            .unwrap();
    }
    let (inner, _) = w.finish_signed(&key(1)).unwrap();
    let plain_key = bistro::storage::keys::delta_key(
        &key(1).public(),
        block,
        &bistro::digest::Digest::of(&inner),
    );
    plain_bucket.put(&plain_key, &inner).unwrap();
    let beacon = net.chain.beacon().unwrap().unwrap();
    // Sealed past the window, to another beacon, and to a round that was
    // public before the deadline.
    let target = |round| SealTarget { beacon, round };
    net.upload_with(
        &validator,
        2,
        far,
        block,
        Some(target(deadline + 50)),
        pattern(2),
    );
    let stranger = bistro::timelock::LocalBeacon::from_seed([7; 32]).key();
    net.upload_with(
        &validator,
        3,
        foreign,
        block,
        Some(SealTarget {
            beacon: stranger,
            round: deadline + 1,
        }),
        pattern(3),
    );
    net.upload_with(
        &validator,
        4,
        early,
        block,
        Some(target(deadline)),
        pattern(4),
    );
    let deadline = net.close_round(&mut validator);
    let report = validator.run_round(deadline).unwrap();
    assert_eq!(report.row(plain).unwrap().outcome, "unsealed");
    for uid in [far, foreign, early] {
        assert_eq!(report.row(uid).unwrap().outcome, "bad_seal", "uid {uid}");
    }
}

#[test]
fn a_scaled_or_perturbed_copy_of_an_earlier_round_is_a_copy() {
    let net = net();
    let mut validator = net.validator(0);
    let (original, _) = net.miner(1);
    let (doubler, _) = net.miner(2);
    let (nudger, _) = net.miner(3);
    let (independent, _) = net.miner(4);
    let block = net.chain.block().unwrap().number;
    net.upload_with(&validator, 1, original, block, None, pattern(1));
    let first = net.close_round(&mut validator);
    let report = validator.run_round(first).unwrap();
    assert_ne!(report.row(original).unwrap().outcome, "copy");
    // Next round: the original's delta (public now) twice over, and nudged.
    let block = net.chain.block().unwrap().number;
    let twice = pattern(1);
    net.upload_with(&validator, 2, doubler, block, None, move |t, j| {
        2.0 * twice(t, j)
    });
    let nudged = pattern(1);
    let noise = pattern(99);
    net.upload_with(&validator, 3, nudger, block, None, move |t, j| {
        nudged(t, j) * (1.0 + 1e-3) + 0.03 * noise(t, j)
    });
    net.upload_with(&validator, 4, independent, block, None, pattern(4));
    let second = net.close_round(&mut validator);
    let report = validator.run_round(second).unwrap();
    for uid in [doubler, nudger] {
        let row = report.row(uid).unwrap();
        assert_eq!(row.outcome, "copy", "uid {uid}: {row:?}");
    }
    let row = report.row(independent).unwrap();
    assert_ne!(row.outcome, "copy", "{row:?}");
    assert!(row.explained.unwrap() < 0.05, "{row:?}");
}

#[test]
fn content_swapped_after_the_snapshot_or_a_lying_key_is_corrupt() {
    let net = net();
    let mut validator = net.validator(0);
    let (swapper, swapper_bucket) = net.miner(1);
    let (liar, liar_bucket) = net.miner(2);
    let block = net.chain.block().unwrap().number;
    let swapped_key = net.upload_with(&validator, 1, swapper, block, None, pattern(1));
    // Miner 2's key names the digest of other bytes than it holds.
    let honest_key = net.upload_with(&validator, 2, liar, block, None, pattern(2));
    let bytes = liar_bucket.get(&honest_key, 1 << 30).unwrap();
    liar_bucket.delete(&honest_key).unwrap();
    let lying_key = bistro::storage::keys::delta_key(
        &key(2).public(),
        block,
        &bistro::digest::Digest::of(b"other bytes"),
    );
    liar_bucket.put(&lying_key, &bytes).unwrap();
    let deadline = net.next_deadline();
    net.advance_to(deadline);
    let snapshot = validator.snapshot(deadline).unwrap().clone();
    assert_eq!(snapshot.pins[&swapper].key, swapped_key);
    assert_eq!(snapshot.pins[&liar].key, lying_key);
    // After the snapshot, miner 1 puts other bytes of the same size under
    // its pinned key (trained, say, on pages it learnt of since).
    let other = net.upload_with(&validator, 1, swapper, block + 1, None, pattern(3));
    let replacement = swapper_bucket.get(&other, 1 << 30).unwrap();
    swapper_bucket.delete(&other).unwrap();
    assert_eq!(
        replacement.len() as u64,
        snapshot.pins[&swapper].size,
        "same size"
    );
    swapper_bucket.put(&swapped_key, &replacement).unwrap();
    net.advance_to(net.params.reveal_block(deadline));
    let report = validator.run_round(deadline).unwrap();
    for uid in [swapper, liar] {
        let row = report.row(uid).unwrap();
        assert_eq!(row.outcome, "corrupt", "uid {uid}: {row:?}");
    }
    // The records name what was pinned.
    let log = bistro::node::log::read_log(validator.log_dir()).unwrap();
    let record = log.iter().find(|r| r.uid == swapper).unwrap();
    assert_eq!(record.delta_key.as_deref(), Some(swapped_key.as_str()));
    assert_eq!(record.delta_size, Some(snapshot.pins[&swapper].size));
    assert_eq!(record.object_digest, Some(snapshot.pins[&swapper].digest));
    assert_eq!(record.master_block, validator.master().pointer.block);
    // Every record names the run parameters the validator published.
    let (vb, _) = bucket(&net.root, "validator");
    let published = RunParams::read(vb.as_ref(), &net.validator_key.public())
        .unwrap()
        .unwrap();
    let digest = published.digest().unwrap();
    assert!(log.iter().all(|r| r.params == Some(digest)));
}

#[test]
fn a_miner_with_other_run_parameters_refuses_to_train() {
    let net = net();
    net.miner(1);
    let validator = net.validator(0);
    // The validator published what it runs.
    let (vb, _) = bucket(&net.root, "validator");
    let hotkey = net.validator_key.public();
    let published = RunParams::read(vb.as_ref(), &hotkey).unwrap().unwrap();
    assert_eq!(
        published,
        RunParams::new(net.params.clone(), net.model.clone())
    );
    let config = || MinerConfig {
        params: net.params.clone(),
        model: net.model.clone(),
        train: TrainConfig::default(),
        device: Device::Cpu,
        steps_per_upload: 1,
        pages_per_step: 1,
        encoding: DeltaEncoding::parse("dense-bf16").unwrap(),
        work_dir: net.root.join("miner-1"),
    };
    let miner = |adjust: &dyn Fn(&mut MinerConfig)| {
        let (own, commitment) = bucket(&net.root, "miner-1");
        let mut config = config();
        adjust(&mut config);
        let chain: Arc<dyn Chain> = net.chain.clone();
        Miner::new(chain, own, commitment, key(1), net.data.clone(), config).unwrap()
    };
    // Other pages per evaluation and another model width: refused, naming
    // both fields, before any master is loaded.
    let mut other = miner(&|c| {
        c.params.local_pages += 1;
        c.model.intermediate_size += 8;
    });
    match other.sync_master() {
        Err(Error::ParamsMismatch {
            publisher,
            differences,
        }) => {
            assert_eq!(publisher, hotkey.to_ss58());
            let fields: Vec<&str> = differences
                .iter()
                .map(|d| d.split(':').next().unwrap())
                .collect();
            assert_eq!(fields, ["model.intermediate_size", "subnet.local_pages"]);
        }
        other => panic!("{other:?}"),
    }
    assert!(other.master().is_none());
    // A miner that adopts what the source publishes, instead of its
    // compiled-in parameters, runs with the validator's and trains.
    let mut adopted = config();
    adopted.params.local_pages += 1;
    adopted.model.intermediate_size += 8;
    assert_eq!(
        adopted.adopt_published(net.chain.as_ref()).unwrap(),
        Some(hotkey)
    );
    assert_eq!((&adopted.params, &adopted.model), (&net.params, &net.model));
    let mut adopting = miner(&|c| {
        c.params = adopted.params.clone();
        c.model = adopted.model.clone();
    });
    assert_eq!(
        adopting.sync_master().unwrap(),
        MasterStatus::Updated(validator.master().revision())
    );
    // The same parameters: it trains on the validator's master.
    let mut same = miner(&|_| {});
    assert_eq!(
        same.sync_master().unwrap(),
        MasterStatus::Updated(validator.master().revision())
    );
    // Tampered parameters are a typed error, not a guess.
    vb.put(&run_params_key(&hotkey), b"{\"version\": 1, \"subnet\": 7}")
        .unwrap();
    assert!(matches!(
        miner(&|_| {}).sync_master(),
        Err(Error::Corrupt { .. })
    ));
    let before = adopted.clone();
    assert!(matches!(
        adopted.adopt_published(net.chain.as_ref()),
        Err(Error::Corrupt { .. })
    ));
    assert_eq!(
        (&adopted.params, &adopted.model),
        (&before.params, &before.model)
    );
}

#[test]
fn a_snapshot_taken_after_the_reveal_judges_nobody_and_changes_no_average() {
    let net = net();
    let mut validator = net.validator(0);
    let (uid, _) = net.miner(1);
    // A first round on time: the uid gets an average.
    net.upload(&validator, 1, uid, 1e-4);
    let first = net.close_round(&mut validator);
    validator.run_round(first).unwrap();
    let before = validator.state().averages.get(uid).unwrap().clone();
    // The validator notices the next deadline only after the reveal block.
    net.upload(&validator, 1, uid, 1e-4);
    let deadline = net.next_deadline();
    net.advance_to(net.params.reveal_block(deadline));
    let report = validator.run_round(deadline).unwrap();
    assert_eq!(report.row(uid).unwrap().outcome, "validator_error");
    assert_eq!(validator.state().averages.get(uid), Some(&before));
    // Judged again the next round, on time.
    net.upload(&validator, 1, uid, 1e-4);
    let next = net.close_round(&mut validator);
    let report = validator.run_round(next).unwrap();
    assert_ne!(report.row(uid).unwrap().outcome, "validator_error");
    assert_eq!(
        validator.state().averages.get(uid).unwrap().evaluations,
        before.evaluations + 1
    );
}

/// Miners' own S3 servers that backdate, swap bytes, drip, stall, list
/// forever or redirect to the validator's machine: each costs at most its
/// budget (nothing but a budget ends a drip of one byte per 200 ms, a stall
/// of a minute or an endless listing) and is judged by what it did, and an
/// honest server in the same round is judged as usual.
#[test]
fn hostile_bucket_servers_cost_their_budget_and_are_judged_for_what_they_did() {
    use bistro::localnet::s3_server::{Fault, Trap, serve};
    let net = net();
    let mut validator = net.validator(0).with_fetch_budget(FetchBudget {
        per_uid_base: Duration::from_secs(3),
        ..FetchBudget::default()
    });
    let trap = Trap::start().unwrap();
    let faults = [
        (1, Fault::Honest),
        (2, Fault::Backdate),
        (3, Fault::SwapAfterListing),
        (4, Fault::Drip),
        (5, Fault::StallListing),
        (6, Fault::EndlessListing),
        (7, Fault::RedirectTo(trap.port)),
        (8, Fault::RedirectToMetadata),
    ];
    let mut servers = Vec::new();
    let mut uids = Vec::new();
    for (i, fault) in faults {
        let (uid, _) = net.miner(i);
        let name = format!("miner-{i}");
        let server = serve(net.root.join("buckets").join(&name), &name, fault).unwrap();
        let commitment = BucketCommitment::public(server.endpoint.clone(), name);
        net.chain
            .set_commitment(1, &key(i), commitment.encode().unwrap().as_bytes())
            .unwrap();
        servers.push(server);
        uids.push(uid);
    }
    let block = net.chain.block().unwrap().number;
    for (n, (i, fault)) in faults.iter().enumerate() {
        match fault {
            Fault::Honest => drop(net.upload(&validator, *i, uids[n], 0.0)),
            Fault::Backdate => {} // uploads after the snapshot
            _ => drop(net.upload_with(&validator, *i, uids[n], block, None, pattern(*i as u64))),
        }
    }
    let deadline = net.next_deadline();
    net.advance_to(deadline);
    let started = std::time::Instant::now();
    let snapshot = validator.snapshot(deadline).unwrap().clone();
    eprintln!(
        "snapshot: {:?}, {} pins",
        started.elapsed(),
        snapshot.pins.len()
    );
    assert!(snapshot.before_reveal);
    // The backdater uploads now, under a block of the round; its server
    // dates the object an hour back.
    net.upload_with(&validator, 2, uids[1], block, None, pattern(2));
    net.advance_to(net.params.reveal_block(deadline));
    let started = std::time::Instant::now();
    let report = validator.run_round(deadline).unwrap();
    eprintln!("round: {:?}", started.elapsed());
    let outcome = |n: usize| {
        let row = report.row(uids[n]).unwrap();
        eprintln!("{:?}: {} ({:?})", faults[n].1, row.outcome, row);
        row.outcome.clone()
    };
    assert_eq!(outcome(0), "no_local_gain", "the honest server");
    assert_eq!(outcome(1), "late", "the backdater");
    assert_eq!(outcome(2), "corrupt", "the swapper");
    assert_eq!(outcome(3), "unreachable", "the drip");
    assert_eq!(outcome(4), "unreachable", "the stalled listing");
    assert_eq!(outcome(5), "unreachable", "the endless listing");
    assert_eq!(outcome(6), "bad_commitment", "the redirect to loopback");
    assert_eq!(outcome(7), "bad_commitment", "the redirect to metadata");
    assert_eq!(
        trap.connections.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "a redirect was followed"
    );
    // The endless listing was cut off by the page cap, not followed forever.
    let pages = servers[5]
        .listings
        .load(std::sync::atomic::Ordering::SeqCst);
    assert!(pages > 1 && pages <= 2 * 420, "{pages} listing pages");
    // The log records what was pinned for the swapper and the drip.
    let log = bistro::node::log::read_log(validator.log_dir()).unwrap();
    for n in [2, 3] {
        let record = log.iter().find(|r| r.uid == uids[n]).unwrap();
        assert_eq!(
            record.object_digest,
            Some(snapshot.pins[&uids[n]].digest),
            "{:?}",
            faults[n].1
        );
    }
}

/// Moves the manual chain one block every 400 ms while `f` runs.
fn with_moving_chain<T>(net: &Net, f: impl FnOnce() -> T) -> T {
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                net.chain.advance(1).unwrap();
                std::thread::sleep(Duration::from_millis(400));
            }
        });
        let out = f();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        out
    })
}

#[test]
fn a_miner_round_trains_checks_the_master_again_uploads_and_waits_for_the_deadline() {
    // The validator never runs a round here, so it is live only while its
    // pointer is recent; the chain moves with the clock, and on a loaded
    // machine two rounds of training outlast the usual window (the miner
    // then finds no master). A window longer than any run keeps it live.
    let net = common::net(|p| {
        p.local_pages = 2;
        p.global_pages = 2;
        p.failover_rounds = 1_000_000;
    });
    net.miner(1);
    let validator = net.validator(0);
    let mut miner = net.training_miner(1);
    let steps = miner.config().steps_per_upload;
    // A first round: the master, every step, the upload, then the deadline
    // (or, when training ran past it, no wait: the upload counts for the
    // next round).
    let mut events = Vec::new();
    let mut trained_for = 0;
    let outcome = with_moving_chain(&net, || {
        miner
            .run_round(|e| {
                if let MinerEvent::Trained { deadline, .. } = e {
                    trained_for = deadline;
                }
                events.push(format!("{e:?}"));
            })
            .unwrap()
    });
    let names: Vec<&str> = events
        .iter()
        .map(|e| e.split([' ', '(', '{']).next().unwrap())
        .collect();
    let late = names.contains(&"Late");
    let mut expected = vec!["NewMaster"];
    expected.extend(std::iter::repeat_n("Step", steps as usize));
    expected.extend(["Trained", "Late", "Uploaded"]);
    expected.retain(|n| late || *n != "Late");
    assert_eq!(names, expected, "{events:#?}");
    assert!(events[0].contains(&format!("{:?}", validator.master().revision())));
    let RoundOutcome::Uploaded(up) = outcome else {
        panic!("{outcome:?}")
    };
    let block: u64 = up.key.rsplit('/').next().unwrap()[..20].parse().unwrap();
    if late {
        assert!(block >= trained_for, "late, yet uploaded at {block}");
    } else {
        assert!(block < trained_for);
        let now = net.chain.block().unwrap().number;
        assert!(
            now >= trained_for,
            "it did not wait for {trained_for} ({now})"
        );
    }

    // A new master while it trains: the delta would be stale, so nothing
    // is uploaded; the next round trains on the new master.
    let (vb, _) = bucket(&net.root, "validator");
    let replacement = bistro::model::Model::new(net.model.clone(), 99, Device::Cpu).unwrap();
    let mut stale = Vec::new();
    let outcome = with_moving_chain(&net, || {
        miner
            .run_round(|e| {
                if let MinerEvent::Trained { .. } = e {
                    let block = net.chain.block().unwrap().number;
                    let cache = net.root.join("replacement");
                    bistro::node::master::publish_model(&replacement, vb.as_ref(), &cache, block)
                        .unwrap();
                }
                stale.push(format!("{e:?}"));
            })
            .unwrap()
    });
    assert_eq!(outcome, RoundOutcome::Stale, "{stale:#?}");
    assert!(stale.last().unwrap().starts_with("Stale"), "{stale:#?}");
    let outcome = with_moving_chain(&net, || miner.run_round(|_| {}).unwrap());
    assert!(matches!(outcome, RoundOutcome::Uploaded(_)), "{outcome:?}");
    assert_eq!(
        miner.master().unwrap().revision(),
        replacement.revision().unwrap()
    );
}
