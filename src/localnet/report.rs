//! The local network's result, as its integration test checks it.

use bistro_core::node::audit::{AuditReport, Finding, WeightsCheck};

/// The network's result, as the integration test checks it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Summary {
    /// Final weight share per uid (from the final lead's last weights), with behaviour.
    pub final_weights: Vec<(u16, String, f64)>,
    /// Sum of the adversaries' shares.
    pub adversary_share: f64,
    /// Held-out loss of the master before the first round.
    pub heldout_loss_start: f64,
    /// Held-out loss of the master after the last round.
    pub heldout_loss_end: f64,
    /// Evaluated deltas whose undo did not restore the master exactly.
    pub inexact_restores: usize,
    /// Rounds whose master changed without a merge (any validator's).
    pub unexplained_master_changes: usize,
    /// The validator the miners follow at the end.
    pub final_lead: String,
    /// Each validator's rounds, in stake order.
    pub validators: Vec<ValidatorSummary>,
    /// The audit of the final lead from public data, when one ran.
    pub audit: Option<AuditSummary>,
}

/// What the network's audit of its final lead found (`node::audit`).
#[derive(Clone, Debug, serde::Serialize)]
pub struct AuditSummary {
    /// The audited validator (by name).
    pub validator: String,
    /// The audited rounds' deadlines.
    pub rounds: Vec<u64>,
    /// Evaluations whose losses were re-measured.
    pub remeasured: usize,
    /// Rejections re-checked from the object.
    pub rechecked: usize,
    /// Merges recomputed bit for bit from their lineage records.
    pub merges_verified: usize,
    /// Whether the chain's weights for it are its replayed averages.
    pub weights_match: bool,
    /// Everything that did not reproduce (empty for an honest validator).
    pub findings: Vec<Finding>,
}

impl AuditSummary {
    /// The summary of `report`, an audit of the validator `name`.
    pub fn of(name: String, report: &AuditReport) -> Self {
        AuditSummary {
            validator: name,
            rounds: report.rounds.iter().map(|r| r.deadline).collect(),
            remeasured: report.rounds.iter().map(|r| r.remeasured).sum(),
            rechecked: report.rounds.iter().map(|r| r.rechecked).sum(),
            merges_verified: report.rounds.iter().filter(|r| r.merge.is_some()).count(),
            weights_match: matches!(report.weights, WeightsCheck::Matches { .. }),
            findings: report.findings.clone(),
        }
    }
}

/// One validator's rounds in the local network.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ValidatorSummary {
    /// Its name (bucket and work folder).
    pub name: String,
    /// Its share of the validators' stake.
    pub stake_share: f64,
    /// Per round, the lead it saw (by name).
    pub leads: Vec<String>,
    /// Per round, its verdict on the lead's master (`LeadView::verdict`).
    pub verdicts: Vec<String>,
    /// Per round, the master it judged against (hex revision).
    pub judged_against: Vec<String>,
    /// Per round, its vtrust from the weights every validator that judged
    /// the round committed (`None` when it was silent or none set weights).
    pub vtrust: Vec<Option<f64>>,
}

impl Summary {
    /// Whether every honest miner ends with more weight than every adversary.
    pub fn honest_beat_adversaries(&self) -> bool {
        let honest = |name: &str| name.starts_with("honest");
        let min_honest = self
            .final_weights
            .iter()
            .filter(|w| honest(&w.1))
            .map(|w| w.2)
            .fold(f64::INFINITY, f64::min);
        let max_adversary = self
            .final_weights
            .iter()
            .filter(|w| !honest(&w.1))
            .map(|w| w.2)
            .fold(0.0, f64::max);
        min_honest.is_finite() && min_honest > max_adversary
    }
}
