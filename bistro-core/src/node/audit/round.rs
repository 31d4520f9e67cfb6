//! Auditing one round of a validator's log: the pages from the reveal hash,
//! every loss re-measured on the published master with the published
//! deltas, the rule on the published losses, the rejections that depend
//! only on the object re-checked, and the round's merge recomputed from its
//! lineage record.

use std::path::PathBuf;
use std::sync::Mutex;

use super::findings::{FindingKind, Findings};
use super::{AuditConfig, RoundAudit};
use crate::chain::Chain;
use crate::codec::Limits;
use crate::data::{PageSource, PagedBatch};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::identity::PublicKey;
use crate::model::Model;
use crate::node::lineage::{Lineage, MAX_LINEAGE_BYTES, lineage_key, verify_with};
use crate::node::log::EvalRecord;
use crate::node::master::{LocalMaster, fetch_pointed};
use crate::node::rejection::Rejection;
use crate::node::run_params::RunParams;
use crate::node::sealing::accepted_rounds;
use crate::node::validator::measure::{measure_delta, page_losses};
use crate::node::validator::{
    BucketCache, Candidate, DOWNLOAD_BASE_BUDGET, Expectation, Pin, VALIDATOR_LOGITS_BUDGET,
    fetch_and_check, round_blocks,
};
use crate::pages::{global_pages, local_pages};
use crate::score::{Evaluation, ScoreRule};
use crate::storage::keys::{MasterPointer, parse_delta_key};
use crate::storage::{Bucket, get_if_present};

/// What every round of one audit shares.
pub(super) struct Context<'a> {
    /// The chain (reveal hashes, beacon pulses, miners' commitments).
    pub chain: &'a dyn Chain,
    /// The audited validator.
    pub validator: PublicKey,
    /// Its earliest published round (whose master may be a genesis: the
    /// only master without a lineage record).
    pub first_deadline: u64,
    /// Its bucket.
    pub bucket: &'a dyn Bucket,
    /// The miners' buckets, opened once each.
    pub buckets: &'a Mutex<BucketCache>,
    /// Its published run parameters.
    pub run: &'a RunParams,
    /// The digest of their published bytes.
    pub run_digest: Digest,
    /// The dataset.
    pub data: &'a dyn PageSource,
    /// How to audit.
    pub config: &'a AuditConfig,
}

/// The master a round was judged on, loaded, with the round's global pages.
struct Measuring {
    master: LocalMaster,
    model: Model,
    global: PagedBatch,
    master_global: Vec<f64>,
}

/// Audits the round at `deadline` from its published `records`;
/// `later_masters` are revisions the validator named after it (where the
/// round's merge, if any, is found).
pub(super) fn audit_round(
    ctx: &Context<'_>,
    deadline: u64,
    records: &[EvalRecord],
    later_masters: &[Digest],
    verified: &mut Vec<Digest>,
    findings: &mut Findings,
    progress: &mut dyn FnMut(&str),
) -> Result<RoundAudit> {
    let params = &ctx.run.subnet;
    let mut summary = RoundAudit {
        deadline,
        records: records.len(),
        remeasured: 0,
        rechecked: 0,
        not_rechecked: 0,
        merge: None,
    };
    let round = (Some(deadline), None);
    let reveal_block = params.reveal_block(deadline);
    let Some(reveal_hash) = ctx.chain.block_hash(reveal_block)? else {
        findings.push(
            FindingKind::Unavailable,
            round,
            "reveal_hash",
            "-",
            format!("the chain has no block {reveal_block}"),
        );
        return Ok(summary);
    };
    let global_ids = global_pages(&params.pages, deadline, &reveal_hash, params.global_pages)?;
    let mut local_ids = Vec::with_capacity(records.len());
    for r in records {
        let at = (Some(deadline), Some(r.uid));
        findings.expect_eq(at, "reveal_block", &r.reveal_block, &reveal_block);
        let hex = Digest(reveal_hash).to_hex();
        findings.expect_eq(at, "reveal_hash", &r.reveal_hash, &hex);
        findings.expect_eq(at, "params", &r.params, &Some(ctx.run_digest));
        findings.expect_eq(at, "rule", &r.rule, &params.rule);
        findings.expect_eq(at, "global_pages", &r.global_pages, &global_ids);
        let local = local_pages(
            &params.pages,
            r.uid,
            deadline,
            &reveal_hash,
            params.local_pages,
        )?;
        findings.expect_eq(at, "local_pages", &r.local_pages, &local);
        local_ids.push(local);
        check_key(r, findings);
        check_verdict(r, &params.rule, findings);
    }
    let Some(first) = records.first() else {
        return Ok(summary);
    };
    let master_revision = first.master_revision;
    for r in records {
        let at = (Some(deadline), Some(r.uid));
        findings.expect_eq(at, "master_revision", &r.master_revision, &master_revision);
        findings.expect_eq(at, "master_block", &r.master_block, &first.master_block);
    }
    check_master_origin(ctx, first, verified, findings)?;

    let Some(seal_rounds) = accepted_rounds(ctx.chain, params, deadline)? else {
        findings.push(
            FindingKind::Unavailable,
            round,
            "deltas",
            "-",
            format!(
                "the chain has no beacon round at block {reveal_block}: uploads cannot be opened"
            ),
        );
        return Ok(summary);
    };
    let mut measuring = None;
    let limits = Limits::for_model(ctx.run.model.parameter_count());
    let downloads = ctx.config.work_dir.join("deltas");
    std::fs::create_dir_all(&downloads).map_err(|e| Error::io(&downloads, e))?;
    let checked: Vec<(usize, &EvalRecord)> = records
        .iter()
        .enumerate()
        .filter(|(_, r)| r.evaluation.is_some() || rechecks(r.rejection.as_ref()))
        .collect();
    summary.not_rechecked = records.len() - checked.len();
    for (n, &(i, r)) in checked.iter().enumerate() {
        let at = (Some(deadline), Some(r.uid));
        progress(&format!(
            "round {deadline}: uid {} ({}/{})",
            r.uid,
            n + 1,
            checked.len()
        ));
        let Some(pin) = pin_of(r) else {
            // A record with an evaluation or a re-checkable rejection names its object.
            findings.push(
                FindingKind::Differs,
                at,
                "delta_key",
                "none",
                "the judged object's key",
            );
            continue;
        };
        let dest: PathBuf = downloads.join(format!("uid-{}.delta", r.uid));
        let expect = Expectation {
            netuid: params.netuid,
            uid: r.uid,
            hotkey: r.hotkey,
            master: r.master_revision,
            blocks: round_blocks(params, r.master_block, deadline),
            pinned: Some(&pin),
            unlisted: None,
            seal_rounds: &seal_rounds,
            limits: &limits,
            dest: &dest,
            budget_base: DOWNLOAD_BASE_BUDGET,
        };
        let mut pinned_bytes = false;
        let fetched = fetch_and_check(
            ctx.chain,
            ctx.buckets,
            &expect,
            &mut None,
            &mut pinned_bytes,
        );
        if measuring.is_none() {
            match load_master(ctx, first, &global_ids, findings)? {
                Some(loaded) => measuring = Some(loaded),
                None => return Ok(summary),
            }
        }
        let Some(m) = measuring.as_mut() else {
            return Ok(summary);
        };
        let measured = match fetched {
            Ok(candidate) => {
                findings.expect_eq(at, "delta_digest", &r.delta_digest, &Some(candidate.digest));
                Ok(measure(ctx, m, &candidate, &local_ids[i])?)
            }
            Err(rejection) => Err(rejection),
        };
        let _ = std::fs::remove_file(&dest);
        let found = Found {
            outcome: measured,
            pinned_bytes,
        };
        compare_outcome(r, found, ctx.config.tolerance, findings, &mut summary);
    }
    summary.merge = audit_merge(
        ctx,
        deadline,
        records,
        master_revision,
        later_masters,
        findings,
    )?;
    if let Some(merged) = summary.merge {
        verified.push(merged);
    }
    Ok(summary)
}

/// Rejections that depend only on the pinned object, so the auditor can
/// re-check them from the object itself. The others depend on the bucket at
/// the deadline (`no_delta`, `late`, `unreachable`), earlier rounds'
/// uploads (`copy`) or the validator's own failures.
fn rechecks(rejection: Option<&Rejection>) -> bool {
    matches!(
        rejection,
        Some(
            Rejection::TooLarge(_)
                | Rejection::Corrupt(_)
                | Rejection::Stale(_)
                | Rejection::WrongAuthor(_)
                | Rejection::BadSignature(_)
                | Rejection::NonFinite(_)
                | Rejection::Mismatch(_)
                | Rejection::Unsealed
                | Rejection::BadSeal(_)
        )
    )
}

/// The pin a record's key, size and object digest describe.
fn pin_of(r: &EvalRecord) -> Option<Pin> {
    let key = r.delta_key.as_ref()?;
    let parsed = parse_delta_key(key)?;
    Some(Pin {
        hotkey: r.hotkey,
        key: key.clone(),
        block: parsed.block,
        digest: parsed.digest,
        size: r.delta_size?,
    })
}

/// The key names the uid's hotkey and the object digest the record gives.
fn check_key(r: &EvalRecord, findings: &mut Findings) {
    let at = (Some(r.deadline), Some(r.uid));
    let Some(key) = &r.delta_key else {
        return;
    };
    match parse_delta_key(key) {
        None => findings.push(FindingKind::Differs, at, "delta_key", key, "a delta key"),
        Some(parsed) => {
            findings.expect_eq(at, "delta_key hotkey", &parsed.hotkey, &r.hotkey);
            findings.expect_eq(at, "object_digest", &r.object_digest, &Some(parsed.digest));
        }
    }
}

/// The verdict, gains, score and mergeability are the rule's on the
/// published losses; a rejection scores 0 and is not mergeable.
fn check_verdict(r: &EvalRecord, rule: &ScoreRule, findings: &mut Findings) {
    let at = (Some(r.deadline), Some(r.uid));
    match (&r.evaluation, &r.rejection) {
        (Some(evaluation), None) => {
            let v = rule.judge(evaluation);
            let finite = |x: f64| x.is_finite().then_some(x);
            findings.expect_eq(at, "verdict", &r.verdict, &Some(v.reason));
            findings.expect_eq(at, "local_gain", &r.local_gain, &finite(v.local_gain));
            findings.expect_eq(at, "global_gain", &r.global_gain, &finite(v.global_gain));
            findings.expect_eq(
                at,
                "specific_gain",
                &r.specific_gain,
                &finite(v.specific_gain),
            );
            findings.expect_eq(at, "specific_se", &r.specific_se, &finite(v.specific_se));
            findings.expect_eq(at, "score", &r.score, &v.score);
            findings.expect_eq(at, "mergeable", &r.mergeable, &v.mergeable);
        }
        (None, Some(_)) => {
            findings.expect_eq(at, "score", &r.score, &0.0);
            findings.expect_eq(at, "mergeable", &r.mergeable, &false);
            findings.expect_eq(at, "verdict", &r.verdict, &None);
        }
        (Some(_), Some(_)) => findings.push(
            FindingKind::Differs,
            at,
            "evaluation and rejection",
            "both",
            "one of them",
        ),
        (None, None) => findings.push(
            FindingKind::Differs,
            at,
            "evaluation and rejection",
            "neither",
            "one of them",
        ),
    }
}

/// The round's master must come from public data: its lineage record is
/// recomputed bit for bit (once per audit) and gives the block the records
/// name. Only the master of the validator's earliest published round may
/// have no record (a genesis); any other without one is a finding.
fn check_master_origin(
    ctx: &Context<'_>,
    r: &EvalRecord,
    verified: &mut Vec<Digest>,
    findings: &mut Findings,
) -> Result<()> {
    let round = (Some(r.deadline), None);
    let key = lineage_key(&r.master_revision);
    let Some(bytes) = get_if_present(ctx.bucket, &key, MAX_LINEAGE_BYTES)? else {
        if r.deadline != ctx.first_deadline {
            findings.push(
                FindingKind::Unavailable,
                round,
                format!("master {}", r.master_revision.short()),
                "judged on, with no lineage record",
                "cannot be derived from public data (only a genesis master has no record)",
            );
        }
        return Ok(());
    };
    let lineage = match Lineage::from_json(&bytes) {
        Ok(lineage) => lineage,
        Err(e) => {
            findings.push(FindingKind::Unreadable, round, key, e, "-");
            return Ok(());
        }
    };
    findings.expect_eq(round, "master_block", &r.master_block, &lineage.block);
    if lineage.revision != r.master_revision {
        findings.push(
            FindingKind::Differs,
            round,
            key,
            format!("a record of {}", lineage.revision.short()),
            format!("the record of {}", r.master_revision.short()),
        );
        return Ok(());
    }
    if verified.contains(&r.master_revision) {
        return Ok(());
    }
    match verify_lineage(ctx, &lineage)? {
        Ok(()) => verified.push(r.master_revision),
        Err(e) => findings.push(
            missing_or_differs(&e),
            round,
            format!("master {}", r.master_revision.short()),
            "merged as its lineage record says",
            e,
        ),
    }
    Ok(())
}

/// Recomputes `lineage`'s master from its parent and deltas
/// ([`verify_with`]): the inner result says whether it reproduced.
fn verify_lineage(ctx: &Context<'_>, lineage: &Lineage) -> Result<std::result::Result<(), Error>> {
    let work = ctx.config.work_dir.join("lineage");
    let mut buckets = ctx
        .buckets
        .lock()
        .map_err(|_| Error::InvalidArgument("bucket cache".into()))?;
    Ok(verify_with(
        ctx.chain,
        ctx.bucket,
        lineage,
        &ctx.run.model,
        ctx.config.device,
        &mut buckets,
        &work,
    ))
}

/// Loads the round's master from the validator's bucket (checking its
/// revision) and measures the global pages on it; `None` and a finding when
/// it cannot.
fn load_master(
    ctx: &Context<'_>,
    r: &EvalRecord,
    global_ids: &[u64],
    findings: &mut Findings,
) -> Result<Option<Measuring>> {
    let cache = ctx.config.work_dir.join("masters");
    let pointer = MasterPointer::new(r.master_revision, r.master_block, 0);
    let master = match fetch_pointed(ctx.bucket, &cache, &ctx.run.model, pointer) {
        Ok(master) => master,
        Err(e) => {
            findings.push(
                missing_or_differs(&e),
                (Some(r.deadline), None),
                "master",
                r.master_revision.to_hex(),
                format!("the validator's bucket does not serve it: {e}"),
            );
            return Ok(None);
        }
    };
    let global = ctx.data.paged_batch(global_ids, ctx.run.subnet.seq_len)?;
    // A published master that loads or measures badly is the validator's
    // finding, not the auditor's failure.
    let measured = master
        .load(&ctx.run.model, ctx.config.device)
        .and_then(|mut model| {
            model.set_logits_budget(VALIDATOR_LOGITS_BUDGET);
            let losses = page_losses(&model, &global)?;
            Ok((model, losses))
        });
    let (model, master_global) = match measured {
        Ok(measured) => measured,
        Err(e) => {
            findings.push(
                FindingKind::Differs,
                (Some(r.deadline), None),
                "master",
                r.master_revision.to_hex(),
                format!("cannot be loaded and measured: {e}"),
            );
            return Ok(None);
        }
    };
    Ok(Some(Measuring {
        master,
        model,
        global,
        master_global,
    }))
}

/// Measures `candidate` on the round's master, as the validator did.
fn measure(
    ctx: &Context<'_>,
    m: &mut Measuring,
    candidate: &Candidate,
    local_ids: &[u64],
) -> Result<std::result::Result<Evaluation, Rejection>> {
    let local = ctx.data.paged_batch(local_ids, ctx.run.subnet.seq_len)?;
    let master_local = page_losses(&m.model, &local)?;
    let measured = measure_delta(
        &mut m.model,
        &m.master.checkpoint,
        m.master.revision(),
        &candidate.delta.reader(),
        (&local, master_local),
        (&m.global, m.master_global.clone()),
    );
    Ok(match measured {
        Ok(measured) => {
            if !measured.restored_exact {
                m.model = m.master.load(&ctx.run.model, ctx.config.device)?;
                m.model.set_logits_budget(VALIDATOR_LOGITS_BUDGET);
            }
            Ok(measured.evaluation)
        }
        Err(rejection) => Err(rejection),
    })
}

/// What the auditor found for a record's object.
struct Found {
    /// Its measurement, or why it was refused (before or after measuring).
    outcome: std::result::Result<std::result::Result<Evaluation, Rejection>, Rejection>,
    /// Whether the miner's bucket served the pinned bytes (size and digest):
    /// a refusal before that is about the bucket now, which the miner
    /// controls, not about what the validator judged.
    pinned_bytes: bool,
}

/// Compares what the auditor found for a record's object with what the
/// record says. Only a verdict on the pinned bytes can contradict the
/// validator: when the bucket no longer serves them (the miner removed,
/// replaced or moved them) the record is `unavailable`, never `differs`, so
/// a miner cannot make an honest validator look dishonest.
fn compare_outcome(
    r: &EvalRecord,
    found: Found,
    tolerance: f64,
    findings: &mut Findings,
    summary: &mut RoundAudit,
) {
    let at = (Some(r.deadline), Some(r.uid));
    let key = r.delta_key.as_deref().unwrap_or("-");
    let gone = |findings: &mut Findings, why: String| {
        findings.push(FindingKind::Unavailable, at, "delta", key, why)
    };
    let outcome = found.outcome.and_then(|measured| measured);
    match (&r.evaluation, &r.rejection, outcome) {
        (Some(published), _, Ok(recomputed)) => {
            summary.remeasured += 1;
            let pairs = [
                (
                    "evaluation.local.master",
                    &published.local.master,
                    &recomputed.local.master,
                ),
                (
                    "evaluation.local.with_delta",
                    &published.local.with_delta,
                    &recomputed.local.with_delta,
                ),
                (
                    "evaluation.global.master",
                    &published.global.master,
                    &recomputed.global.master,
                ),
                (
                    "evaluation.global.with_delta",
                    &published.global.with_delta,
                    &recomputed.global.with_delta,
                ),
            ];
            for (field, p, c) in pairs {
                findings.expect_close(at, field, p, c, tolerance);
            }
        }
        (_, _, Err(Rejection::ValidatorError(why))) => {
            gone(findings, format!("the auditor failed: {why}"))
        }
        (Some(_), _, Err(rejection)) if !found.pinned_bytes => gone(
            findings,
            format!("the bucket no longer serves the judged bytes: {rejection}"),
        ),
        (Some(_), _, Err(rejection)) => findings.push(
            FindingKind::Differs,
            at,
            "evaluation",
            "evaluated",
            format!("the judged bytes are refused: {rejection}"),
        ),
        (None, Some(published), Err(recomputed)) => {
            if published.code() == recomputed.code() {
                summary.rechecked += 1;
            } else if !found.pinned_bytes {
                gone(
                    findings,
                    format!(
                        "rejected as {}; the bucket now answers: {recomputed}",
                        published.code()
                    ),
                );
            } else {
                summary.rechecked += 1;
                findings.push(FindingKind::Differs, at, "rejection", published, recomputed);
            }
        }
        // The bucket serves the pinned bytes now, but may not have at the
        // download (content swapped after the listing): the word of the
        // validator against the bucket's, undecidable.
        (None, Some(published @ Rejection::Corrupt(_)), Ok(_)) => gone(
            findings,
            format!(
                "rejected as {}; the bucket now serves the pinned bytes, which pass: \
                 undecidable (they may have been swapped back)",
                published.code()
            ),
        ),
        (None, published, Ok(_)) => {
            summary.rechecked += 1;
            findings.push(
                FindingKind::Differs,
                at,
                "rejection",
                published
                    .as_ref()
                    .map_or("-".to_string(), |p| p.to_string()),
                "the object passes every check and applies",
            );
        }
        (None, None, Err(recomputed)) => {
            findings.push(FindingKind::Differs, at, "rejection", "-", recomputed)
        }
    }
}

/// Finds the master merged at `deadline` among `later_masters` (a lineage
/// record of that deadline on `master`), recomputes it bit for bit, and
/// checks that every merged delta is one this round's log found mergeable,
/// under the same key and digests. The merged revision, when verified.
fn audit_merge(
    ctx: &Context<'_>,
    deadline: u64,
    records: &[EvalRecord],
    master: Digest,
    later_masters: &[Digest],
    findings: &mut Findings,
) -> Result<Option<Digest>> {
    let round = (Some(deadline), None);
    for revision in later_masters.iter().filter(|r| **r != master) {
        let key = lineage_key(revision);
        let Some(bytes) = get_if_present(ctx.bucket, &key, MAX_LINEAGE_BYTES)? else {
            continue;
        };
        let lineage = match Lineage::from_json(&bytes) {
            Ok(lineage) => lineage,
            Err(e) => {
                findings.push(FindingKind::Unreadable, round, key, e, "-");
                continue;
            }
        };
        if lineage.deadline != deadline || lineage.parent != master {
            continue;
        }
        // The merged deltas are this log's only when this validator led the
        // round (a follower mirrors the lead's merge, judged by the lead's
        // own log: audit that validator for it).
        let led = records.iter().all(|r| r.lead == Some(ctx.validator));
        for d in lineage.deltas.iter().filter(|_| led) {
            let at = (Some(deadline), Some(d.uid));
            let field = format!("merged into {}", revision.short());
            match records.iter().find(|r| r.uid == d.uid) {
                Some(r) if r.mergeable => {
                    findings.expect_eq(
                        at,
                        &format!("{field}: key"),
                        &r.delta_key,
                        &Some(d.key.clone()),
                    );
                    findings.expect_eq(
                        at,
                        &format!("{field}: object digest"),
                        &r.object_digest,
                        &Some(d.object_digest),
                    );
                    findings.expect_eq(
                        at,
                        &format!("{field}: digest"),
                        &r.delta_digest,
                        &Some(d.digest),
                    );
                }
                Some(_) => findings.push(
                    FindingKind::Differs,
                    at,
                    field,
                    "merged",
                    "not mergeable in the round's log",
                ),
                None => findings.push(
                    FindingKind::Differs,
                    at,
                    field,
                    "merged",
                    "not in the round's log",
                ),
            }
        }
        let verified = verify_lineage(ctx, &lineage)?;
        return Ok(match verified {
            Ok(()) => Some(*revision),
            Err(e) => {
                findings.push(
                    missing_or_differs(&e),
                    round,
                    format!("master {}", revision.short()),
                    "merged as its lineage record says",
                    e,
                );
                None
            }
        });
    }
    Ok(None)
}

/// A published object the auditor could not use: gone (`unavailable`), or
/// there and not what the record says (`differs`).
fn missing_or_differs(e: &Error) -> FindingKind {
    match e {
        Error::NotFound(_) => FindingKind::Unavailable,
        _ => FindingKind::Differs,
    }
}
