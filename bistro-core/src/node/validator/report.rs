//! What one round of a validator did, for people and for the demo's table.

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::identity::PublicKey;

/// One uid's line in a round.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoundRow {
    /// The uid.
    pub uid: u16,
    /// Its hotkey.
    pub hotkey: PublicKey,
    /// `scored`, a rule verdict (`not_specific`, ...) or a rejection code.
    pub outcome: String,
    /// Relative gain on the uid's own pages, when evaluated.
    pub local_gain: Option<f64>,
    /// Relative gain on global pages, when evaluated.
    pub global_gain: Option<f64>,
    /// `local_gain - global_gain` (what is paid when it is confidently
    /// positive), when evaluated.
    pub specific_gain: Option<f64>,
    /// Its standard error, measured from the per-page spreads.
    pub specific_se: Option<f64>,
    /// Share of the delta explained by earlier rounds' deltas, when read.
    pub explained: Option<f64>,
    /// This round's score.
    pub score: f64,
    /// The moving average after this round.
    pub average: f64,
    /// Whether the delta went into the new master.
    pub merged: bool,
}

/// What [`Validator::run_round`](super::Validator::run_round) did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoundReport {
    /// The round's deadline block.
    pub deadline: u64,
    /// The block whose hash chose the pages.
    pub reveal_block: u64,
    /// The master the round judged against.
    pub master_before: Digest,
    /// The master after the round (the same when nothing was merged).
    pub master_after: Digest,
    /// Loss of `master_before` on the round's global pages.
    pub master_global_loss: f64,
    /// Loss of the merged candidate on the same pages, when one was tried.
    pub merged_global_loss: Option<f64>,
    /// The outer rule of the master this round published: the configured
    /// one, or `mean` when a candidate of a rule with momentum was refused
    /// and the plain mean of the same deltas was not (the momentum
    /// restarts); `None` when this run published none.
    #[serde(default)]
    pub merged_with: Option<crate::model::outer::MergeRule>,
    /// Loss of `master_after` on the held-out pages, when configured.
    pub heldout_loss: Option<f64>,
    /// One row per uid judged.
    pub rows: Vec<RoundRow>,
    /// The weights set on the chain this round (normalised), if any.
    pub weights: Option<Vec<(u16, f64)>>,
    /// Why setting weights failed, if it did.
    pub weights_error: Option<String>,
    /// Who led the round and what this validator made of its master.
    #[serde(default)]
    pub lead: Option<super::LeadView>,
    /// Objects of masters older than the audit window removed from the
    /// validator's bucket after the round ([`crate::node::retention`]).
    #[serde(default)]
    pub pruned_masters: usize,
    /// Why removing old masters failed, if it did (the round itself stands).
    #[serde(default)]
    pub pruning_error: Option<String>,
}

impl RoundReport {
    /// The row of `uid`.
    pub fn row(&self, uid: u16) -> Option<&RoundRow> {
        self.rows.iter().find(|r| r.uid == uid)
    }
}
