//! Several validators on one subnet (stakes 50 %, 30 %, 20 %), judging one
//! after another: one lead publishes masters, the followers verify each
//! before judging against it and agree with the lead (Yuma vtrust); a
//! forged master is refused and its lead replaced within the round by a
//! follower that sees one refusal of more than half of the others' stake;
//! a silent lead is replaced and, back, continues the lineage without a
//! fork. (`tests/localnet.rs` has validators judging at once.)
#![cfg(feature = "full")]

use bistro::Keypair;
use bistro::digest::Digest;
use bistro::localnet::{forge_newest_lineage, round_vtrust};
use bistro::node::lineage::{Lineage, lineage_key};
use bistro::node::miner::Miner;
use bistro::node::validator::{RoundReport, Validator};
use bistro::storage::Bucket;
use bistro::storage::keys::read_master_pointer;

mod common;
use common::{Net, bucket, key};

/// The whole stake of the first validator (`common::net` registers it).
const STAKE: u64 = 1 << 40;

struct Subnet {
    net: Net,
    keys: Vec<Keypair>,
    names: Vec<String>,
    validators: Vec<Validator>,
    miners: Vec<Miner>,
}

/// Three validators with 50/30/20 % of the stake, three training miners;
/// a lead silent for more than one round is replaced.
fn subnet() -> Subnet {
    let net = common::net(|p| {
        p.local_pages = 2;
        p.global_pages = 2;
        p.rule.confidence_z = 0.0;
        p.failover_rounds = 1;
        p.weights_interval_blocks = p.round_blocks;
    });
    let keys = vec![net.validator_key.clone(), key(101), key(102)];
    for (k, stake) in keys[1..].iter().zip([STAKE * 3 / 5, STAKE * 2 / 5]) {
        net.chain
            .register(1, &k.public(), &k.public(), stake)
            .unwrap();
    }
    let names: Vec<String> = vec![
        "validator".into(),
        "validator-101".into(),
        "validator-102".into(),
    ];
    for i in 1..=3 {
        net.register(i);
    }
    let validators = keys
        .iter()
        .zip(&names)
        .map(|(k, n)| net.validator_named(k, n, 0, Default::default()))
        .collect();
    let miners = (1..=3).map(|i| net.training_miner(i)).collect();
    Subnet {
        net,
        keys,
        names,
        validators,
        miners,
    }
}

impl Subnet {
    /// One round: the miners work, the validators in `running` (indices)
    /// snapshot and judge, in stake order. Returns each one's report.
    fn round(&mut self, running: &[usize]) -> Vec<(usize, RoundReport)> {
        let mut vs: Vec<&mut Validator> = self
            .validators
            .iter_mut()
            .enumerate()
            .filter(|(i, _)| running.contains(i))
            .map(|(_, v)| v)
            .collect();
        let (deadline, _) = self.net.work(&mut self.miners, &mut vs);
        let reports: Vec<(usize, RoundReport)> = running
            .iter()
            .map(|&i| (i, self.validators[i].run_round(deadline).unwrap()))
            .collect();
        for (i, r) in &reports {
            let lead = r.lead.as_ref().unwrap();
            let who = self
                .keys
                .iter()
                .position(|k| k.public() == lead.lead)
                .unwrap();
            eprintln!(
                "deadline {deadline}: validator {i} judged against {} (lead {who}: {}), master after {}",
                r.master_before.short(),
                lead.verdict,
                r.master_after.short()
            );
        }
        reports
    }

    /// Fails when a validator found any miner's delta `stale`: the miners
    /// train on the master the lead's rule points them to, so every
    /// validator that judges must judge against that master.
    fn assert_none_stale(reports: &[(usize, RoundReport)]) {
        for (i, r) in reports {
            let stale: Vec<u16> = r
                .rows
                .iter()
                .filter(|row| row.outcome == "stale")
                .map(|row| row.uid)
                .collect();
            assert!(
                stale.is_empty(),
                "deadline {}: validator {i} judged against {} and found uids {stale:?} stale",
                r.deadline,
                r.master_before.short()
            );
        }
    }

    fn bucket(&self, i: usize) -> Box<dyn Bucket> {
        bucket(&self.net.root, &self.names[i]).0
    }

    /// The head of validator `i`'s published lineage.
    fn head(&self, i: usize) -> Digest {
        read_master_pointer(self.bucket(i).as_ref())
            .unwrap()
            .unwrap()
            .revision
    }
}

#[test]
fn followers_verify_the_lead_agree_with_it_and_replace_a_forger() {
    let mut s = subnet();
    let all = [0, 1, 2];
    let mut judged_against = Digest::ZERO;
    for round in 0..3 {
        let reports = s.round(&all);
        judged_against = reports[0].1.master_before;
        // Every validator judged against the same master, the lead's.
        let before: Vec<Digest> = reports.iter().map(|(_, r)| r.master_before).collect();
        assert!(
            before.iter().all(|m| *m == before[0]),
            "round {round}: {before:?}"
        );
        for (i, r) in &reports {
            let lead = r.lead.as_ref().unwrap();
            assert_eq!(lead.lead, s.keys[0].public(), "validator {i}");
            let ok = ["leads", "same", "verified"];
            assert!(
                ok.contains(&lead.verdict.as_str()),
                "validator {i}: {}",
                lead.verdict
            );
            if *i > 0 {
                assert_eq!(r.master_before, r.master_after, "a follower published");
            }
        }
        if round >= 1 {
            let refs: Vec<&RoundReport> = reports.iter().map(|(_, r)| r).collect();
            for v in round_vtrust(&[5.0, 3.0, 2.0], &refs).unwrap().unwrap() {
                assert!(v >= 0.95, "vtrust {v}");
            }
        }
    }
    // The followers mirror what they verified and judged against.
    assert_eq!(s.head(1), judged_against);
    assert_eq!(s.head(2), judged_against);

    // The lead forges its newest master's record: one delta's weight
    // doubled, so the record no longer reproduces the master.
    let forged = forge_newest_lineage(s.bucket(0).as_ref()).unwrap();
    assert_eq!(forged, s.head(0));

    // The next round the first follower checks it and refuses it; the
    // second, judging after it, finds the forger refused by more than half
    // of the others' stake already (30 of the 50 the others hold) and
    // follows the next validator in the same round. (The local network's
    // test has the followers judge at once, so both refuse.)
    let reports = s.round(&all);
    let verdict = |i: usize| reports[i].1.lead.as_ref().unwrap().verdict.clone();
    assert!(verdict(1).starts_with("refused"), "{}", verdict(1));
    assert_eq!(reports[2].1.lead.as_ref().unwrap().lead, s.keys[1].public());
    for (i, r) in reports.iter().filter(|(i, _)| *i > 0) {
        assert_ne!(
            r.master_before, forged,
            "validator {i} judged against the forgery"
        );
    }
    // From then on the next validator by stake leads, for everyone (the
    // forger included), and the lineage goes on from the last verified
    // master, not the forged one.
    for _ in 0..2 {
        let reports = s.round(&all);
        for (i, r) in &reports {
            let lead = r.lead.as_ref().unwrap();
            assert_eq!(
                lead.lead,
                s.keys[1].public(),
                "validator {i}: {}",
                lead.verdict
            );
        }
    }
    let new_head = s.head(1);
    let record =
        Lineage::from_json(&s.bucket(1).get(&lineage_key(&new_head), 1 << 20).unwrap()).unwrap();
    assert_ne!(record.parent, forged);
}

#[test]
fn a_silent_lead_is_replaced_and_comes_back_without_a_fork() {
    let mut s = subnet();
    let all = [0, 1, 2];
    Subnet::assert_none_stale(&s.round(&all));
    let left_at = s.head(0);
    // The lead stops; after its silence outlasts `failover_rounds`, the
    // next validator by stake leads and publishes.
    let mut led_by_1 = false;
    for _ in 0..3 {
        let reports = s.round(&[1, 2]);
        Subnet::assert_none_stale(&reports);
        led_by_1 |= reports
            .iter()
            .all(|(_, r)| r.lead.as_ref().unwrap().lead == s.keys[1].public());
        // Both judge against the same master, whoever leads.
        assert_eq!(reports[0].1.master_before, reports[1].1.master_before);
    }
    assert!(led_by_1, "validator 1 never took over");
    let interim = s.head(1);
    assert_ne!(interim, left_at, "the new lead published nothing");
    // The old lead comes back: it follows first (its status is old), then
    // leads again, from the newest verified master. It judges last, as when
    // validators judge at once: the interim lead does not see it yet and
    // merges once more, so the lineage goes on from that master.
    let reports = s.round(&[1, 2, 0]);
    Subnet::assert_none_stale(&reports);
    let (_, back) = reports.iter().find(|(i, _)| *i == 0).unwrap();
    assert_eq!(back.lead.as_ref().unwrap().lead, s.keys[1].public());
    for _ in 0..2 {
        let reports = s.round(&all);
        Subnet::assert_none_stale(&reports);
        let before: Vec<Digest> = reports.iter().map(|(_, r)| r.master_before).collect();
        assert!(before.iter().all(|m| *m == before[0]), "{before:?}");
        for (i, r) in &reports {
            let lead = r.lead.as_ref().unwrap();
            assert_eq!(
                lead.lead,
                s.keys[0].public(),
                "validator {i}: {}",
                lead.verdict
            );
        }
    }
    let head = s.head(0);
    let mut revision = head;
    let mut chain = vec![head];
    // Walk the returned lead's lineage back: it passes through the interim
    // lead's masters (no fork).
    let b = s.bucket(0);
    while let Ok(bytes) = b.get(&lineage_key(&revision), 1 << 20) {
        revision = Lineage::from_json(&bytes).unwrap().parent;
        chain.push(revision);
    }
    assert!(
        chain.contains(&interim),
        "{chain:?} does not pass through {interim:?}"
    );
    assert!(chain.contains(&s.validators[1].master().revision()));
}
