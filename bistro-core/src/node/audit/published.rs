//! Reading what a validator published, leniently: a file or a log line that
//! does not parse is a finding, and the rest is still read.

use std::collections::BTreeMap;

use super::findings::{FindingKind, Findings};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::identity::PublicKey;
use crate::node::log::{EvalRecord, parse_lines};
use crate::node::run_params::{MAX_RUN_PARAMS_BYTES, RunParams, run_params_key};
use crate::node::validator::ValidatorState;
use crate::storage::keys::{
    eval_log_key, eval_log_prefix, parse_eval_log_key, validator_state_key,
};
use crate::storage::{Bucket, get_if_present};

/// The most bytes one round's published log may have.
pub const MAX_ROUND_LOG_BYTES: u64 = 64 << 20;

/// Unreadable lines of one log reported one by one; the rest are counted.
pub const MAX_UNREADABLE_LINES: usize = 16;

/// The most bytes a published validator state may have.
pub const MAX_STATE_BYTES: u64 = 64 << 20;

/// The validator's published run parameters and the digest of their bytes;
/// `None` (and a finding) when they are missing or do not parse.
pub(super) fn run_params(
    bucket: &dyn Bucket,
    validator: &PublicKey,
    findings: &mut Findings,
) -> Result<Option<(RunParams, Digest)>> {
    let key = run_params_key(validator);
    let Some(bytes) = get_if_present(bucket, &key, MAX_RUN_PARAMS_BYTES)? else {
        findings.push(
            FindingKind::Unavailable,
            (None, None),
            key,
            "missing",
            "cannot re-derive pages or losses without the run parameters",
        );
        return Ok(None);
    };
    match RunParams::from_json(&bytes) {
        Ok(params) => Ok(Some((params, Digest::of(&bytes)))),
        Err(e) => {
            findings.push(FindingKind::Unreadable, (None, None), key, e, "-");
            Ok(None)
        }
    }
}

/// The deadlines of every round log the validator published, oldest first.
pub(super) fn log_deadlines(bucket: &dyn Bucket, validator: &PublicKey) -> Result<Vec<u64>> {
    let mut deadlines: Vec<u64> = bucket
        .list(&eval_log_prefix(validator))?
        .iter()
        .filter_map(|o| parse_eval_log_key(validator, &o.key))
        .collect();
    deadlines.sort_unstable();
    deadlines.dedup();
    Ok(deadlines)
}

/// Every round's published records, by deadline: each line that does not
/// parse, or names another deadline or validator, is a finding and left out.
pub(super) fn round_logs(
    bucket: &dyn Bucket,
    validator: &PublicKey,
    deadlines: &[u64],
    findings: &mut Findings,
) -> Result<BTreeMap<u64, Vec<EvalRecord>>> {
    let mut logs = BTreeMap::new();
    for &deadline in deadlines {
        let key = eval_log_key(validator, deadline);
        let bytes = match bucket.get(&key, MAX_ROUND_LOG_BYTES) {
            Ok(bytes) => bytes,
            Err(e @ (Error::NotFound(_) | Error::LimitExceeded { .. })) => {
                findings.push(FindingKind::Unreadable, (Some(deadline), None), key, e, "-");
                continue;
            }
            Err(e) => return Err(e),
        };
        logs.insert(deadline, parse_log(&bytes, validator, deadline, findings));
    }
    Ok(logs)
}

/// The records of one published log; every line that is not a record of
/// `validator` at `deadline` is a finding.
pub(super) fn parse_log(
    bytes: &[u8],
    validator: &PublicKey,
    deadline: u64,
    findings: &mut Findings,
) -> Vec<EvalRecord> {
    let mut records = Vec::new();
    let mut uids = std::collections::HashSet::new();
    let mut unreadable = 0usize;
    for (line, parsed) in parse_lines(bytes) {
        let field = format!("log line {line}");
        match parsed {
            // A hostile log of many bad lines gives a bounded report.
            Err(_) if unreadable >= MAX_UNREADABLE_LINES => unreadable += 1,
            Err(e) => {
                unreadable += 1;
                findings.push(
                    FindingKind::Unreadable,
                    (Some(deadline), None),
                    field,
                    format!("does not parse: {e}"),
                    "-",
                )
            }
            Ok(r) if r.deadline != deadline || r.validator != *validator => findings.push(
                FindingKind::Differs,
                (Some(deadline), Some(r.uid)),
                format!("{field}: deadline and validator"),
                format!("{} by {}", r.deadline, r.validator.to_ss58()),
                format!("{deadline} by {}", validator.to_ss58()),
            ),
            Ok(r) if uids.contains(&r.uid) => findings.push(
                FindingKind::Differs,
                (Some(deadline), Some(r.uid)),
                format!("{field}: uid"),
                "a second record of the uid in one round",
                "one record per uid and round",
            ),
            Ok(r) => {
                uids.insert(r.uid);
                records.push(r);
            }
        }
    }
    if unreadable > MAX_UNREADABLE_LINES {
        findings.push(
            FindingKind::Unreadable,
            (Some(deadline), None),
            "log lines",
            format!(
                "{} more lines do not parse",
                unreadable - MAX_UNREADABLE_LINES
            ),
            "-",
        );
    }
    records
}

/// The validator's published state (its averages after its last round);
/// `None` (and a finding when it exists) if it cannot be read.
pub(super) fn state(
    bucket: &dyn Bucket,
    validator: &PublicKey,
    findings: &mut Findings,
) -> Result<Option<ValidatorState>> {
    let key = validator_state_key(validator);
    let Some(bytes) = get_if_present(bucket, &key, MAX_STATE_BYTES)? else {
        return Ok(None);
    };
    match ValidatorState::from_json(&bytes) {
        Ok(state) => Ok(Some(state)),
        Err(e) => {
            findings.push(FindingKind::Unreadable, (None, None), key, e, "-");
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_that_are_not_records_of_the_round_are_findings() {
        let me = PublicKey([7; 32]);
        let mut findings = Findings::default();
        let bytes = b"{\"validator\": 1}\n\n   \nnot json\n";
        let records = parse_log(bytes, &me, 20, &mut findings);
        assert!(records.is_empty());
        let fields: Vec<&str> = findings.0.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["log line 1", "log line 4"]);
        assert!(findings.0.iter().all(|f| f.kind == FindingKind::Unreadable));
    }
}
