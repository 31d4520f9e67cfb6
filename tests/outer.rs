//! The outer optimizer and the miners' optimizer state through the real
//! miner and validator: a merge reproduced bit for bit from what the
//! validator publishes, a corrupt outer state refused, a miner's AdamW state
//! kept across masters and restarts.
#![cfg(feature = "full")]

use bistro::Error;
use bistro::chain::Chain;
use bistro::codec::{Limits, open_file};
use bistro::model::outer::{MergeConfig, MergeRule, OuterState, merge_into};
use bistro::model::{Device, Model};
use bistro::node::lineage::{Lineage, lineage_key, verify};
use bistro::node::miner::OPTIMIZER_FILE;
use bistro::node::sealing::open_if_public;
use bistro::node::validator::Validator;
use bistro::storage::keys::{master_key, outer_state_key};
use bistro::storage::{Bucket, EndpointPolicy};

mod common;
use common::{Net, bucket};

fn net() -> Net {
    // Any positive specific gain is paid and merged: two training steps
    // are enough to have deltas to merge.
    common::net(|p| p.rule.confidence_z = 0.0)
}

impl Net {
    fn validator(&self, merge: MergeConfig) -> Validator {
        self.validator_with(0, merge)
    }
}

/// Verifies the lineage record `l` of the validator's bucket `vb` from
/// public data, downloading into a folder of its own (`name`).
fn verify_record(net: &Net, vb: &dyn Bucket, l: &Lineage, name: &str) -> bistro::Result<()> {
    verify(
        net.chain.as_ref(),
        vb,
        l,
        &net.model,
        Device::Cpu,
        EndpointPolicy::Any,
        &net.root.join("verify").join(name),
    )
}

#[test]
fn a_nesterov_merge_is_reproduced_bit_for_bit_from_what_the_validator_publishes() {
    let net = net();
    let merge = MergeConfig {
        rule: MergeRule::DILOCO,
        ..MergeConfig::default()
    };
    let mut validator = net.validator(merge);
    net.register(1);
    net.register(2);
    let mut miners = vec![net.training_miner(1), net.training_miner(2)];

    // Two rounds, each merging both deltas: the second starts with momentum.
    let mut reports = Vec::new();
    let mut keys = Vec::new();
    for _ in 0..2 {
        let (deadline, k) = net.work(&mut miners, &mut [&mut validator]);
        let report = validator.run_round(deadline).unwrap();
        assert_ne!(report.master_after, report.master_before, "{report:?}");
        reports.push(report);
        keys.push(k);
    }
    // The miners kept their optimizer across the master change.
    assert_eq!(miners[0].optimizer_steps(), Some(4));

    // An auditor: the parent master, its outer state and the deltas, all
    // from the buckets.
    let (vb, _) = bucket(&net.root, "validator");
    let audit = net.root.join("audit");
    std::fs::create_dir_all(&audit).unwrap();
    let parent = reports[1].master_before;
    let parent_path = audit.join("parent.ckpt");
    vb.get_to_file(&master_key(&parent), &parent_path, u64::MAX)
        .unwrap();
    let state_path = audit.join("parent.outer");
    vb.get_to_file(&outer_state_key(&parent), &state_path, u64::MAX)
        .unwrap();
    let mut state = OuterState::load(&state_path, &net.model, parent).unwrap();
    assert_eq!(state.steps(), 1);
    let limits = Limits::for_model(net.model.parameter_count());
    // The deltas that went in, in uid order (miner i has uid i), 1/n each.
    let merged: Vec<u16> = reports[1]
        .rows
        .iter()
        .filter(|r| r.merged)
        .map(|r| r.uid)
        .collect();
    let files: Vec<_> = merged
        .iter()
        .map(|&uid| {
            let (b, _) = bucket(&net.root, &format!("miner-{uid}"));
            let path = audit.join(format!("{uid}.delta"));
            // Sealed to the round's deadline, public once its pulse exists.
            let sealed = b.get(&keys[1][usize::from(uid) - 1], u64::MAX).unwrap();
            let plain = open_if_public(net.chain.as_ref(), &sealed, u64::MAX >> 8)
                .unwrap()
                .expect("the deadline's pulse exists");
            std::fs::write(&path, plain).unwrap();
            open_file(&path, &limits).unwrap()
        })
        .collect();
    let weight = (1.0 / merged.len() as f64) as f32;
    let deltas: Vec<_> = files.iter().map(|f| (f.reader(), weight)).collect();
    let mut model = Model::load(&parent_path, net.model.clone(), Device::Cpu).unwrap();
    merge_into(&mut model, &deltas, merge.rule, &mut state).unwrap();
    let next = model.revision().unwrap();
    assert_eq!(next, reports[1].master_after);
    state.set_master(next);
    let replay = audit.join("replay.outer");
    state.save(&replay).unwrap();
    let published = vb.get(&outer_state_key(&next), u64::MAX).unwrap();
    assert_eq!(std::fs::read(&replay).unwrap(), published);
    // The same deltas merged as a plain mean give another master.
    let mut mean = Model::load(&parent_path, net.model.clone(), Device::Cpu).unwrap();
    let mut s = OuterState::start(parent);
    merge_into(&mut mean, &deltas, MergeRule::Mean, &mut s).unwrap();
    assert_ne!(mean.revision().unwrap(), next);

    // The lineage record beside the master says the same, and anyone can
    // verify it from public data; a tampered record does not verify.
    let record = vb.get(&lineage_key(&next), 1 << 20).unwrap();
    let lineage = Lineage::from_json(&record).unwrap();
    assert_eq!(lineage.parent, parent);
    assert_eq!(
        lineage.deltas.iter().map(|d| d.uid).collect::<Vec<_>>(),
        merged
    );
    let check = |l: &Lineage, name: &str| verify_record(&net, vb.as_ref(), l, name);
    check(&lineage, "honest").unwrap();
    let mut heavier = lineage.clone();
    heavier.deltas[0].weight *= 2.0;
    assert!(check(&heavier, "weight").is_err());
    let mut twice = lineage.clone();
    twice.deltas.push(twice.deltas[0].clone());
    assert!(check(&twice, "twice").is_err());
    let mut missing = lineage.clone();
    missing.deltas[0].key = missing.deltas[0].key.replace(".delta", "0.delta");
    assert!(check(&missing, "missing").is_err());
    let mut other = lineage.clone();
    other.deltas[0].object_digest = bistro::digest::Digest::of(b"other");
    assert!(check(&other, "other").is_err());

    // A corrupt outer state of the current master (in the validator's cache
    // and in its bucket): the validator refuses to merge and publish.
    let mut bytes = published.clone();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x10;
    vb.put(&outer_state_key(&next), &bytes).unwrap();
    let cached = net
        .root
        .join("validator/masters")
        .join(format!("master-{}.outer", next.to_hex()));
    assert!(cached.exists());
    std::fs::write(&cached, &bytes).unwrap();
    let (deadline, _) = net.work(&mut miners, &mut [&mut validator]);
    let refused = validator.run_round(deadline);
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(validator.master().revision(), next);
}

#[test]
fn a_refused_momentum_step_restarts_the_momentum_with_a_plain_mean() {
    let net = net();
    // An outer step far too long (from zero momentum it moves the master by
    // 1000 · 1.9 · u): its candidate is worse than the master.
    let merge = MergeConfig {
        rule: MergeRule::Nesterov {
            lr: 1000.0,
            momentum: 0.9,
        },
        ..MergeConfig::default()
    };
    let mut validator = net.validator(merge);
    net.register(1);
    net.register(2);
    let mut miners = vec![net.training_miner(1), net.training_miner(2)];
    let (deadline, _) = net.work(&mut miners, &mut [&mut validator]);
    let report = validator.run_round(deadline).unwrap();

    // The plain mean of the same deltas went in instead.
    assert_ne!(report.master_after, report.master_before, "{report:?}");
    assert_eq!(report.merged_with, Some(MergeRule::Mean), "{report:?}");
    assert!(report.merged_global_loss.unwrap() < report.master_global_loss);
    assert_eq!(report.rows.iter().filter(|r| r.merged).count(), 2);

    // Its record names `mean` and verifies from public data; a record that
    // claims the configured rule does not.
    let (vb, _) = bucket(&net.root, "validator");
    let next = report.master_after;
    let record = vb.get(&lineage_key(&next), 1 << 20).unwrap();
    let lineage = Lineage::from_json(&record).unwrap();
    assert_eq!(lineage.rule, "mean");
    verify_record(&net, vb.as_ref(), &lineage, "mean").unwrap();
    let mut claimed = lineage.clone();
    claimed.rule = merge.rule.to_string();
    assert!(verify_record(&net, vb.as_ref(), &claimed, "claimed").is_err());

    // Its outer state holds no momentum: the next step starts from zero.
    let path = net.root.join("restarted.outer");
    vb.get_to_file(&outer_state_key(&next), &path, u64::MAX)
        .unwrap();
    let state = OuterState::load(&path, &net.model, next).unwrap();
    assert_eq!(state.rule(), MergeRule::Mean);
    assert_eq!(state.steps(), 1);
    let names = Model::new(net.model.clone(), 0, Device::Cpu)
        .unwrap()
        .parameters();
    assert!(!names.is_empty());
    for info in &names {
        assert!(state.momentum(&info.name).is_none(), "{}", info.name);
    }
}

#[test]
fn a_miner_keeps_its_optimizer_across_restarts_and_starts_fresh_from_a_bad_file() {
    let net = net();
    let _validator = net.validator(MergeConfig::default());
    net.register(1);
    let mut miner = net.training_miner(1);
    miner.sync_master().unwrap();
    let deadline = net.params.deadline_after(net.chain.block().unwrap().number);
    miner.train(deadline, 3).unwrap();
    let state = net.root.join("miner-1").join(OPTIMIZER_FILE);
    assert!(state.exists());
    let saved = std::fs::read(&state).unwrap();
    drop(miner);

    // A restart restores the moments and the step count.
    let mut restarted = net.training_miner(1);
    restarted.sync_master().unwrap();
    assert_eq!(restarted.optimizer_steps(), Some(3));
    assert!(restarted.fresh_optimizer_reason().is_none());
    restarted.train(deadline, 1).unwrap();
    assert_eq!(restarted.optimizer_steps(), Some(4));
    drop(restarted);

    // A corrupt file: a typed error reported, training goes on from scratch.
    let mut bad = saved.clone();
    let at = bad.len() / 3;
    bad[at] ^= 1;
    std::fs::write(&state, &bad).unwrap();
    let mut fresh = net.training_miner(1);
    fresh.sync_master().unwrap();
    assert_eq!(fresh.optimizer_steps(), Some(0));
    let reason = fresh
        .fresh_optimizer_reason()
        .expect("the bad file is reported");
    assert!(!matches!(reason, Error::Io { .. }), "{reason}");
    fresh.train(deadline, 1).unwrap();
    assert_eq!(fresh.optimizer_steps(), Some(1));
    // The next save replaced the bad file with a good one.
    let mut again = net.training_miner(1);
    again.sync_master().unwrap();
    assert_eq!(again.optimizer_steps(), Some(1));
    assert!(again.fresh_optimizer_reason().is_none());
}
