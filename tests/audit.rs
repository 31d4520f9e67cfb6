//! The auditor (`node::audit`) against a real validator's published rounds:
//! an honest run reproduces, every doctored value is found, missing and
//! malformed files are findings, and a copied network audits after its
//! `file://` commitments are re-rooted.
#![cfg(feature = "full")]

use bistro::chain::{Chain, LocalChain};
use bistro::model::outer::MergeConfig;
use bistro::node::audit::{AuditConfig, AuditReport, FindingKind, Rounds, WeightsCheck, audit};
use bistro::node::run_params::run_params_key;
use bistro::storage::keys::eval_log_key;
use bistro::storage::{Bucket, EndpointPolicy};
use serde_json::Value;

mod common;
use common::{Net, bucket, copy_dir};

/// Two miners, one validator, two rounds judged and merged.
fn judged_network() -> (Net, Vec<u64>) {
    // Any positive specific gain is paid and merged: two training steps
    // are enough to have deltas to merge.
    let net = common::net(|p| p.rule.confidence_z = 0.0);
    let mut validator = net.validator_with(0, MergeConfig::default());
    net.register(1);
    net.register(2);
    let mut miners = vec![net.training_miner(1), net.training_miner(2)];
    let mut deadlines = Vec::new();
    for _ in 0..2 {
        let (deadline, _) = net.work(&mut miners, &mut [&mut validator]);
        let report = validator.run_round(deadline).unwrap();
        assert_ne!(report.master_after, report.master_before, "{report:?}");
        deadlines.push(deadline);
    }
    net.chain.advance_past_reveals().unwrap();
    (net, deadlines)
}

fn run_audit(net: &Net, chain: &dyn Chain, config: &AuditConfig) -> AuditReport {
    let started = std::time::Instant::now();
    let mut heard = Vec::new();
    let report = audit(
        chain,
        1,
        &net.validator_key.public(),
        net.data.as_ref(),
        Rounds::Last(2),
        config,
        &mut |line| heard.push(line.to_string()),
    )
    .unwrap();
    eprintln!("audit: {:.1} s", started.elapsed().as_secs_f64());
    // Progress names each re-measured or re-checked uid.
    let checked: usize = report
        .rounds
        .iter()
        .map(|r| r.remeasured + r.rechecked)
        .sum();
    assert!(heard.len() >= checked, "{heard:?}");
    report
}

/// The round log's records as JSON values, one per line.
fn log_lines(bucket: &dyn Bucket, key: &str) -> Vec<Value> {
    let bytes = bucket.get(key, u64::MAX).unwrap();
    bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect()
}

fn put_lines(bucket: &dyn Bucket, key: &str, lines: &[Value]) {
    let mut bytes = Vec::new();
    for line in lines {
        bytes.extend(serde_json::to_vec(line).unwrap());
        bytes.push(b'\n');
    }
    bucket.put(key, &bytes).unwrap();
}

/// The findings' (kind, uid, field) triples.
fn found(report: &AuditReport) -> Vec<(FindingKind, Option<u16>, String)> {
    report
        .findings
        .iter()
        .map(|f| (f.kind, f.uid, f.field.clone()))
        .collect()
}

#[test]
fn an_honest_run_reproduces_and_each_doctored_value_is_a_finding() {
    let (net, deadlines) = judged_network();
    let config = AuditConfig {
        policy: EndpointPolicy::Any,
        ..AuditConfig::new(net.root.join("audit"))
    };

    // Honest: every loss, score, average, the merges and the weights.
    let clean = run_audit(&net, net.chain.as_ref(), &config);
    assert!(clean.is_clean(), "{clean}");
    assert_eq!(clean.rounds.len(), 2);
    for round in &clean.rounds {
        assert_eq!((round.records, round.remeasured), (2, 2), "{clean}");
        assert!(round.merge.is_some(), "{clean}");
    }
    assert!(
        matches!(clean.weights, WeightsCheck::Matches { deadline, .. } if deadline == deadlines[1]),
        "{clean}"
    );
    assert!(
        clean
            .to_string()
            .contains("every published value reproduced")
    );

    let (vb, _) = bucket(&net.root, "validator");
    let keys: Vec<String> = deadlines
        .iter()
        .map(|&d| eval_log_key(&net.validator_key.public(), d))
        .collect();
    let originals: Vec<Vec<u8>> = keys.iter().map(|k| vb.get(k, u64::MAX).unwrap()).collect();
    let first = log_lines(vb.as_ref(), &keys[0]);
    let lines = log_lines(vb.as_ref(), &keys[1]);
    let uid = |line: &Value| Some(line["uid"].as_u64().unwrap() as u16);

    // Doctored, all at once: in the second round one loss moved, and a
    // score raised (its average with it, consistently); in the first an
    // evaluated delta logged as rejected, and a line that does not parse.
    let mut doctored = lines.clone();
    let loss = &mut doctored[0]["evaluation"]["local"]["with_delta"][1];
    *loss = Value::from(loss.as_f64().unwrap() - 0.01);
    let score = doctored[1]["score"].as_f64().unwrap();
    doctored[1]["score"] = Value::from(score + 0.01);
    put_lines(vb.as_ref(), &keys[1], &doctored);
    let mut doctored_first = first.clone();
    let line = &mut doctored_first[0];
    line["rejection"] = serde_json::json!({"code": "bad_signature", "detail": "forged"});
    for field in [
        "evaluation",
        "verdict",
        "local_gain",
        "global_gain",
        "specific_gain",
        "specific_se",
    ] {
        line[field] = Value::Null;
    }
    line["score"] = Value::from(0.0);
    line["mergeable"] = Value::from(false);
    put_lines(vb.as_ref(), &keys[0], &doctored_first);
    let mut bytes = vb.get(&keys[0], u64::MAX).unwrap();
    bytes.extend_from_slice(b"{\"validator\": \"not a key\"}\n");
    vb.put(&keys[0], &bytes).unwrap();

    let report = run_audit(&net, net.chain.as_ref(), &config);
    assert!(!report.is_clean());
    let fields = found(&report);
    let (d0, d1) = (Some(deadlines[0]), Some(deadlines[1]));
    let at = |deadline: Option<u64>, uid: Option<u16>, field: &str| {
        report
            .findings
            .iter()
            .find(|f| f.deadline == deadline && f.uid == uid && f.field == field)
            .unwrap_or_else(|| {
                panic!("no finding {field} for uid {uid:?} at {deadline:?}:\n{report}")
            })
    };
    let moved = at(d1, uid(&lines[0]), "evaluation.local.with_delta[1]");
    assert_eq!(moved.kind, FindingKind::Differs);
    at(d1, uid(&lines[1]), "score");
    at(d1, uid(&lines[1]), "average");
    let rejection = at(d0, uid(&first[0]), "rejection");
    assert!(
        rejection.recomputed.contains("passes every check"),
        "{report}"
    );
    assert!(
        fields.contains(&(FindingKind::Unreadable, None, "log line 3".to_string())),
        "{report}"
    );
    for (key, original) in keys.iter().zip(&originals) {
        vb.put(key, original).unwrap();
    }

    // What the miners and the bucket did since cannot make the validator
    // look dishonest: a delta deleted, another replaced under its key, and
    // the lineage record of the master the second round was judged on
    // gone — unavailable, never a difference.
    let delta_of = |line: &Value| {
        let key = line["delta_key"].as_str().unwrap().to_string();
        let (mb, _) = bucket(&net.root, &format!("miner-{}", line["uid"]));
        let bytes = mb.get(&key, u64::MAX).unwrap();
        (mb, key, bytes)
    };
    let (deleted_bucket, deleted_key, deleted) = delta_of(&lines[0]);
    let (swapped_bucket, swapped_key, swapped) = delta_of(&lines[1]);
    deleted_bucket.delete(&deleted_key).unwrap();
    swapped_bucket.put(&swapped_key, b"other bytes").unwrap();
    let judged_on = lines[0]["master_revision"].as_str().unwrap().to_string();
    let record_key = format!("master/{judged_on}.lineage.json");
    let record = vb.get(&record_key, u64::MAX).unwrap();
    vb.delete(&record_key).unwrap();
    let report = run_audit(&net, net.chain.as_ref(), &config);
    assert!(
        report
            .findings
            .iter()
            .all(|f| f.kind == FindingKind::Unavailable),
        "{report}"
    );
    let fields = found(&report);
    for line in &lines[..2] {
        let delta = (FindingKind::Unavailable, uid(line), "delta".to_string());
        assert!(fields.contains(&delta), "{report}");
    }
    let short = &judged_on[..12];
    assert!(
        fields.contains(&(FindingKind::Unavailable, None, format!("master {short}"))),
        "{report}"
    );
    deleted_bucket.put(&deleted_key, &deleted).unwrap();
    swapped_bucket.put(&swapped_key, &swapped).unwrap();
    vb.put(&record_key, &record).unwrap();

    // Tampered run parameters: a finding, and nothing else can be derived.
    let params_key = run_params_key(&net.validator_key.public());
    let params = vb.get(&params_key, u64::MAX).unwrap();
    vb.put(&params_key, b"{\"version\": 1, \"subnet\": {}}")
        .unwrap();
    let report = run_audit(&net, net.chain.as_ref(), &config);
    assert_eq!(
        found(&report),
        vec![(FindingKind::Unreadable, None, params_key.clone())],
        "{report}"
    );
    assert!(report.rounds.is_empty());
    vb.put(&params_key, &params).unwrap();

    // The whole network copied elsewhere: its commitments name the old
    // folders; re-rooted, the copy audits clean.
    let copy = tempfile::tempdir().unwrap();
    let copy_root = copy.path().canonicalize().unwrap();
    copy_dir(&net.root, &copy_root);
    std::fs::remove_dir_all(net.root.join("buckets")).unwrap();
    let chain = LocalChain::open(copy_root.join("chain")).unwrap();
    let moved = AuditConfig {
        file_root: Some((net.root.clone(), copy_root.clone())),
        work_dir: copy_root.join("audit-2"),
        ..config.clone()
    };
    let report = run_audit(&net, &chain, &moved);
    assert!(report.is_clean(), "{report}");
    assert!(
        report
            .rounds
            .iter()
            .all(|r| r.remeasured == 2 && r.merge.is_some())
    );
}
