//! A validator killed (`kill -9`) at random points of a round and started
//! again ends the round as one that was never stopped: the same averages, the
//! same log records (one per uid: none judged twice), the same next master.
#![cfg(all(feature = "full", unix))]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use bistro::node::SubnetParams;
use bistro::node::log::read_log;
use bistro::node::validator::ValidatorState;
use bistro::storage::keys::read_master_pointer;

mod common;
use common::{bucket, copy_dir};

/// Where the child process finds its network and deadline (`<root>:<deadline>`).
const CHILD_ENV: &str = "BISTRO_RESTART_CHILD";
/// Kills before the last start is left to finish.
const KILLS: usize = 6;

/// Any positive specific gain is paid and merged: two training steps give
/// deltas to merge, so the merge is among what may be interrupted.
fn adjust(p: &mut SubnetParams) {
    p.rule.confidence_z = 0.0;
}

/// The child process of the test below: the validator of the network under
/// the given folder judges one deadline, then the process exits.
#[test]
#[ignore = "the child process of a_validator_killed_at_random_points_ends_the_round_as_one_never_stopped"]
fn child_judges_one_round() {
    let spec = std::env::var(CHILD_ENV).expect("started by the restart test");
    let (root, deadline) = spec.rsplit_once(':').unwrap();
    let net = common::reopen(Path::new(root), adjust);
    let mut validator = net.validator_with(0, Default::default());
    validator.run_round(deadline.parse().unwrap()).unwrap();
}

fn start(root: &Path, deadline: u64) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "child_judges_one_round"])
        .env(CHILD_ENV, format!("{}:{deadline}", root.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// A record as JSON without its timings (the only field a stop may change).
fn comparable(record: &bistro::node::log::EvalRecord) -> serde_json::Value {
    let mut v = serde_json::to_value(record).unwrap();
    v.as_object_mut().unwrap().remove("timings_ms");
    v
}

#[test]
fn a_validator_killed_at_random_points_ends_the_round_as_one_never_stopped() {
    let net = common::net(adjust);
    for i in 1..=4 {
        net.register(i);
    }
    let mut miners: Vec<_> = (1..=4).map(|i| net.training_miner(i)).collect();
    let mut validator = net.validator_with(0, Default::default());
    let (deadline, _) = net.work(&mut miners, &mut [&mut validator]);
    drop((validator, miners));

    // The same network, copied, judged by a validator nobody stops.
    let copy = tempfile::tempdir().unwrap();
    let reference = copy.path().canonicalize().unwrap();
    copy_dir(&net.root, &reference);
    let started = Instant::now();
    let status = start(&reference, deadline).wait().unwrap();
    let whole = started.elapsed();
    assert!(status.success(), "the uninterrupted run failed: {status}");

    // This one is killed at random points of the round, then started again.
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("uninterrupted round: {whole:?}; kill points from seed {seed}");
    let mut state = seed | 1;
    let mut kills = 0;
    loop {
        let mut child = start(&net.root, deadline);
        if kills == KILLS {
            let status = child.wait().unwrap();
            assert!(status.success(), "the last run failed: {status}");
            break;
        }
        // xorshift: a point of the uninterrupted run's time, in a window
        // that shrinks with each kill (a resumed run has less left to do).
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let at = whole.mul_f64((state % 1000) as f64 / 1000.0 / (kills + 1) as f64);
        std::thread::sleep(at);
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "a run failed: {status}");
            break;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        kills += 1;
        eprintln!("killed after {at:?}");
    }

    let load = |root: &Path| {
        ValidatorState::load(&root.join("validator/state.json"))
            .unwrap()
            .unwrap()
    };
    assert_eq!(load(&net.root).averages, load(&reference).averages);
    let logs = |root: &Path| -> Vec<serde_json::Value> {
        let mut records: Vec<_> = read_log(root.join("validator/evals"))
            .unwrap()
            .iter()
            .filter(|r| r.deadline == deadline)
            .map(comparable)
            .collect();
        records.sort_by_key(|r| r["uid"].as_u64());
        records
    };
    let (killed, whole_log) = (logs(&net.root), logs(&reference));
    assert_eq!(killed.len(), 4, "a uid judged twice or not at all");
    assert_eq!(killed, whole_log);
    let master = |root: &Path| {
        let (b, _) = bucket(root, "validator");
        read_master_pointer(b.as_ref()).unwrap().unwrap().revision
    };
    assert_eq!(master(&net.root), master(&reference), "another master");
    assert!(
        whole_log.iter().any(|r| r["mergeable"] == true),
        "nothing was merged: the merge was not exercised"
    );
}
