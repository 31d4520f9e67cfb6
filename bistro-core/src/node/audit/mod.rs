//! Auditing a validator from public data alone: what `docs/protocol.md`
//! promises anyone can do, done by [`audit`].
//!
//! Given the chain, the validator's hotkey and the dataset, the auditor
//! reads the validator's published files (its run parameters, its round
//! logs, its state, its masters and their lineage records) and the miners'
//! buckets, and for each audited round:
//! - re-derives the reveal block, its hash and every page set;
//! - loads the round's master (its revision checked) and re-measures every
//!   page's loss, with and without each evaluated delta, the way the
//!   validator does (the same code: `validator::measure`);
//! - re-applies the scoring rule to the published losses (verdict, gains,
//!   score, mergeability);
//! - re-checks each rejection that depends only on the judged object (its
//!   digest, seal, signature, author, master, finiteness, shape);
//! - recomputes the round's merge bit for bit from its lineage record
//!   ([`crate::node::lineage::verify_with`]) and checks that every merged
//!   delta is one the log found mergeable, under the same key and digests.
//!
//! Over all published rounds it replays the moving averages from the
//! scores and checks every record's average, the published state, and the
//! weights the chain holds for the validator (their `u16` form).
//!
//! Every difference is a [`Finding`]; a file or a line that does not parse,
//! or something that is gone (a pruned master, a deleted delta), is one too,
//! and the audit goes on. It never trusts a field it can recompute. What it
//! cannot recompute, it says: copy verdicts (they depend on earlier rounds'
//! uploads), `no_delta`/`late`/`unreachable` (on the buckets at the
//! deadline), and registrations between rounds (the current metagraph is
//! used for the weights).

mod averages;
mod findings;
mod published;
mod round;

use std::fmt;
use std::ops::Bound;
use std::path::PathBuf;
use std::sync::Mutex;

use crate::chain::Chain;
use crate::data::PageSource;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::identity::PublicKey;
use crate::model::Device;
use crate::node::validator::BucketCache;
use crate::storage::EndpointPolicy;
use crate::storage::keys::read_master_pointer;

pub use findings::{Finding, FindingKind, close};
pub use published::{MAX_ROUND_LOG_BYTES, MAX_STATE_BYTES, MAX_UNREADABLE_LINES};

/// The default tolerance on re-measured losses (relative above 1, absolute
/// below): the same code on the same device gives the same bits; another
/// device or thread count may change the last digits.
pub const DEFAULT_LOSS_TOLERANCE: f64 = 1e-5;

/// How to audit.
#[derive(Clone, Debug)]
pub struct AuditConfig {
    /// Where to re-measure.
    pub device: Device,
    /// A folder for downloads (masters, deltas); created if missing.
    pub work_dir: PathBuf,
    /// Tolerance on re-measured losses ([`close`]).
    pub tolerance: f64,
    /// Which bucket endpoints may be contacted.
    pub policy: EndpointPolicy,
    /// `file://` commitments under the first folder are read from the
    /// second instead: a copied local network ([`BucketCache::with_file_root`]).
    pub file_root: Option<(PathBuf, PathBuf)>,
}

impl AuditConfig {
    /// Audits on the CPU, downloading into `work_dir`, with
    /// [`DEFAULT_LOSS_TOLERANCE`], contacting only public endpoints.
    pub fn new(work_dir: impl Into<PathBuf>) -> Self {
        AuditConfig {
            device: Device::Cpu,
            work_dir: work_dir.into(),
            tolerance: DEFAULT_LOSS_TOLERANCE,
            policy: EndpointPolicy::Public,
            file_root: None,
        }
    }
}

/// Which rounds to audit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rounds {
    /// The round with this deadline.
    Deadline(u64),
    /// The last this many published rounds.
    Last(usize),
}

impl Rounds {
    /// The deadlines among `published` (sorted) this selects.
    fn select(self, published: &[u64]) -> Result<Vec<u64>> {
        match self {
            Rounds::Deadline(d) if published.contains(&d) => Ok(vec![d]),
            Rounds::Deadline(d) => Err(Error::NotFound(format!(
                "the validator published no log for deadline {d} (it has {})",
                list_deadlines(published)
            ))),
            Rounds::Last(0) => Err(Error::InvalidArgument("--last must be at least 1".into())),
            Rounds::Last(k) => Ok(published[published.len().saturating_sub(k)..].to_vec()),
        }
    }
}

fn list_deadlines(published: &[u64]) -> String {
    match (published.first(), published.last()) {
        (Some(first), Some(last)) => format!("{} rounds, {first} to {last}", published.len()),
        _ => "none".into(),
    }
}

/// What an audit of one round did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoundAudit {
    /// The round's deadline.
    pub deadline: u64,
    /// Records in its published log.
    pub records: usize,
    /// Evaluations whose losses were re-measured.
    pub remeasured: usize,
    /// Rejections re-checked from the object.
    pub rechecked: usize,
    /// Records whose outcome cannot be recomputed from public data now
    /// (see the module docs); their score still enters the averages check.
    pub not_rechecked: usize,
    /// The master merged in the round, recomputed bit for bit.
    pub merge: Option<Digest>,
}

/// What the chain's weights for the validator were found to be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WeightsCheck {
    /// The chain shows none (none set, or the chain cannot tell).
    NotShown,
    /// They are the `u16` form of the replayed averages after `deadline`.
    Matches {
        /// The round whose averages they are.
        deadline: u64,
        /// The block the chain says they were set at.
        block: u64,
    },
    /// They are no published round's averages (a finding says more).
    Differs {
        /// The block the chain says they were set at.
        block: u64,
    },
}

/// The result of an audit.
#[derive(Clone, Debug)]
pub struct AuditReport {
    /// The audited validator.
    pub validator: PublicKey,
    /// The digest of its published run parameters, when they were read.
    pub params: Option<Digest>,
    /// Each audited round.
    pub rounds: Vec<RoundAudit>,
    /// The weights check.
    pub weights: WeightsCheck,
    /// Everything that did not reproduce.
    pub findings: Vec<Finding>,
}

impl AuditReport {
    /// Whether everything reproduced: no findings.
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }
}

impl fmt::Display for AuditReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "audit of validator {}", self.validator.to_ss58())?;
        match &self.params {
            Some(p) => writeln!(f, "run parameters: {}", p.short())?,
            None => writeln!(f, "run parameters: not readable")?,
        }
        for r in &self.rounds {
            let merge = match &r.merge {
                Some(m) => format!("; merged master {} recomputed bit for bit", m.short()),
                None => String::new(),
            };
            writeln!(
                f,
                "round {}: {} records, {} re-measured, {} rejections re-checked, {} not \
                 re-checkable{merge}",
                r.deadline, r.records, r.remeasured, r.rechecked, r.not_rechecked
            )?;
        }
        match &self.weights {
            WeightsCheck::NotShown => {
                writeln!(f, "weights: the chain shows none for it (or cannot tell)")?
            }
            WeightsCheck::Matches { deadline, block } => writeln!(
                f,
                "weights: the chain's (block {block}) are the averages after round {deadline}"
            )?,
            WeightsCheck::Differs { block } => writeln!(
                f,
                "weights: the chain's (block {block}) are no round's averages"
            )?,
        }
        if self.findings.is_empty() {
            return writeln!(f, "findings: none — every published value reproduced");
        }
        writeln!(f, "findings: {}", self.findings.len())?;
        writeln!(
            f,
            "{:<12} {:>10} {:>5}  {:<40} {:<24} recomputed",
            "kind", "round", "uid", "field", "published"
        )?;
        for x in &self.findings {
            let round = x.deadline.map_or("-".into(), |d| d.to_string());
            let uid = x.uid.map_or("-".into(), |u| u.to_string());
            writeln!(
                f,
                "{:<12} {:>10} {:>5}  {:<40} {:<24} {}",
                x.kind.to_string(),
                round,
                uid,
                x.field,
                x.published,
                x.recomputed
            )?;
        }
        Ok(())
    }
}

/// Audits `validator` on subnet `netuid` from the chain, the public buckets
/// and `data` (the dataset its run parameters name). `progress` hears of
/// each re-measured uid. An `Err` is the auditor's own failure (the chain,
/// its disk, its model, a validator that published nothing); everything
/// about the validator's data is a finding in the report.
pub fn audit(
    chain: &dyn Chain,
    netuid: u16,
    validator: &PublicKey,
    data: &dyn PageSource,
    rounds: Rounds,
    config: &AuditConfig,
    progress: &mut dyn FnMut(&str),
) -> Result<AuditReport> {
    let mut findings = findings::Findings::default();
    let mut buckets = BucketCache::new(config.policy);
    if let Some((from, to)) = &config.file_root {
        buckets = buckets.with_file_root(from, to);
    }
    let raw = chain.commitment(netuid, validator)?.ok_or_else(|| {
        Error::NotFound(format!(
            "validator {} has no bucket commitment on subnet {netuid}",
            validator.to_ss58()
        ))
    })?;
    let bucket = buckets
        .get(raw)
        .map_err(|r| Error::Refused(format!("the validator's bucket: {r}")))?;
    let deadlines = published::log_deadlines(bucket.as_ref(), validator)?;
    if deadlines.is_empty() {
        return Err(Error::NotFound(format!(
            "validator {} has published no round log",
            validator.to_ss58()
        )));
    }
    let selected = rounds.select(&deadlines)?;
    let mut report = AuditReport {
        validator: *validator,
        params: None,
        rounds: Vec::new(),
        weights: WeightsCheck::NotShown,
        findings: Vec::new(),
    };
    let Some((run, run_digest)) = published::run_params(bucket.as_ref(), validator, &mut findings)?
    else {
        report.findings = findings.0;
        return Ok(report);
    };
    report.params = Some(run_digest);
    let pages = &run.subnet.pages;
    if data.dataset_id() != pages.dataset_id || data.num_pages() != pages.num_pages {
        return Err(Error::InvalidArgument(format!(
            "the dataset given ({} pages, id {}) is not the one the validator's run parameters \
             name ({} pages, id {})",
            data.num_pages(),
            data.dataset_id().short(),
            pages.num_pages,
            pages.dataset_id.short()
        )));
    }
    findings.expect_eq(
        (None, None),
        "params.json netuid",
        &run.subnet.netuid,
        &netuid,
    );
    let logs = published::round_logs(bucket.as_ref(), validator, &deadlines, &mut findings)?;
    let pointer = match read_master_pointer(bucket.as_ref()) {
        Ok(p) => p.map(|p| p.revision),
        Err(e) => {
            findings.push(
                FindingKind::Unreadable,
                (None, None),
                "master pointer",
                e,
                "-",
            );
            None
        }
    };
    let buckets = Mutex::new(buckets);
    let ctx = round::Context {
        chain,
        validator: *validator,
        first_deadline: deadlines[0],
        bucket: bucket.as_ref(),
        buckets: &buckets,
        run: &run,
        run_digest,
        data,
        config,
    };
    // Masters recomputed from their lineage records so far.
    let mut verified = Vec::new();
    for &deadline in &selected {
        // One master per later round (a round's records share it), then the
        // pointer: where the round's merge, if any, shows up.
        let mut later: Vec<Digest> = Vec::new();
        let named = logs
            .range((Bound::Excluded(deadline), Bound::Unbounded))
            .filter_map(|(_, records)| records.first().map(|r| r.master_revision));
        for revision in named.chain(pointer) {
            if !later.contains(&revision) {
                later.push(revision);
            }
        }
        let records = logs.get(&deadline).map(Vec::as_slice).unwrap_or_default();
        let audited = round::audit_round(
            &ctx,
            deadline,
            records,
            &later,
            &mut verified,
            &mut findings,
            progress,
        )?;
        report.rounds.push(audited);
    }
    let history = averages::replay(&logs, run.subnet.ema_alpha, &mut findings)?;
    let registered: Vec<(u16, PublicKey)> = chain
        .metagraph(netuid)?
        .neurons
        .iter()
        .map(|n| (n.uid, n.hotkey))
        .collect();
    report.weights = averages::check_weights(
        chain,
        netuid,
        validator,
        &history,
        &registered,
        &mut findings,
    )?;
    if let Some(state) = published::state(bucket.as_ref(), validator, &mut findings)? {
        averages::check_state(&state, &history, &mut findings);
    }
    report.findings = findings.0;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_select_published_deadlines() {
        let published = [10, 20, 30];
        assert_eq!(Rounds::Last(2).select(&published).unwrap(), vec![20, 30]);
        assert_eq!(
            Rounds::Last(9).select(&published).unwrap(),
            vec![10, 20, 30]
        );
        assert_eq!(Rounds::Deadline(20).select(&published).unwrap(), vec![20]);
        assert!(matches!(
            Rounds::Deadline(25).select(&published),
            Err(Error::NotFound(_))
        ));
        assert!(Rounds::Last(0).select(&published).is_err());
        assert!(Rounds::Last(1).select(&[]).unwrap().is_empty());
    }
}
