//! The parameters every participant of a subnet agrees on.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::node::similarity::SimilarityRule;
use crate::pages::DatasetParams;
use crate::score::ScoreRule;

/// A subnet's protocol parameters: page selection, the round schedule, what
/// is evaluated, the scoring rule. Miners and validators must use the same
/// values (see `docs/protocol.md`); validators write them into their logs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SubnetParams {
    /// The subnet.
    pub netuid: u16,
    /// Page selection (dataset identity and size, windows, epochs, reveal delay).
    pub pages: DatasetParams,
    /// Blocks per round: deltas are judged at every block that is a multiple
    /// of this (the round's *deadline*).
    pub round_blocks: u64,
    /// Pages drawn from a miner's window per evaluation.
    pub local_pages: usize,
    /// Pages drawn from the whole dataset per evaluation.
    pub global_pages: usize,
    /// Tokens per row when pages are packed for the model.
    pub seq_len: usize,
    /// The scoring rule.
    pub rule: ScoreRule,
    /// When a delta is a copy of earlier rounds' deltas.
    pub similarity: SimilarityRule,
    /// Smoothing factor of the per-uid moving averages.
    pub ema_alpha: f64,
    /// Validators set weights at most once per this many blocks.
    pub weights_interval_blocks: u64,
    /// The version key sent with weights (the subnet's protocol version).
    pub version_key: u64,
    /// Rounds a lead may stay silent (no lead status) before the next
    /// validator by stake takes over ([`crate::node::lead`]).
    #[serde(default = "default_failover_rounds")]
    pub failover_rounds: u64,
}

fn default_failover_rounds() -> u64 {
    3
}

impl SubnetParams {
    /// The round length [`new`](Self::new) sets, in blocks.
    pub const DEFAULT_ROUND_BLOCKS: u64 = 10;

    /// Parameters for the dataset `pages`, with the defaults of the embedded
    /// local network for the rest.
    pub fn new(netuid: u16, pages: DatasetParams) -> Self {
        SubnetParams {
            netuid,
            pages,
            round_blocks: Self::DEFAULT_ROUND_BLOCKS,
            local_pages: 8,
            global_pages: 8,
            seq_len: 128,
            rule: ScoreRule::default(),
            similarity: SimilarityRule::default(),
            ema_alpha: 0.3,
            weights_interval_blocks: 10,
            version_key: 2,
            failover_rounds: default_failover_rounds(),
        }
    }

    /// The round length of [`bittensor`](Self::bittensor), in blocks (5
    /// minutes at 12 s a block).
    pub const BITTENSOR_ROUND_BLOCKS: u64 = 25;

    /// The preset for a subnet on Bittensor: rounds of
    /// [`BITTENSOR_ROUND_BLOCKS`](Self::BITTENSOR_ROUND_BLOCKS), weights at
    /// most every 100 blocks (the chain's usual rate limit), rows of 1024
    /// tokens; `pages` should have epochs as long as a round (a new window
    /// every round). The rest as [`new`](Self::new).
    pub fn bittensor(netuid: u16, pages: DatasetParams) -> Self {
        SubnetParams {
            round_blocks: Self::BITTENSOR_ROUND_BLOCKS,
            weights_interval_blocks: 100,
            seq_len: 1024,
            ..Self::new(netuid, pages)
        }
    }

    /// Checks every field is usable.
    pub fn validate(&self) -> Result<()> {
        self.pages.validate()?;
        let bad = |what: String| Err(Error::InvalidArgument(format!("subnet params: {what}")));
        if self.round_blocks == 0 {
            return bad("round_blocks must be at least 1".into());
        }
        if self.pages.epoch_blocks > self.round_blocks {
            // Each deadline must have a window of its own: with longer
            // epochs a delta trained once keeps its specific gain for
            // several rounds and is paid again when re-uploaded.
            return bad(format!(
                "epoch_blocks {} is longer than a round ({} blocks): windows must change \
                 every round, or one round's work can be re-uploaded and paid again",
                self.pages.epoch_blocks, self.round_blocks
            ));
        }
        if self.failover_rounds == 0 {
            return bad("failover_rounds must be at least 1".into());
        }
        if self.local_pages < 2 || self.global_pages < 2 {
            // The rule needs each side's spread: one page has none.
            return bad("local_pages and global_pages must be at least 2".into());
        }
        if self.local_pages as u64 > self.pages.window_pages {
            return bad(format!(
                "local_pages {} is more than a window holds ({})",
                self.local_pages, self.pages.window_pages
            ));
        }
        self.rule.validate()?;
        self.similarity.validate()?;
        if self.seq_len < 2 {
            return bad(format!("seq_len must be at least 2, got {}", self.seq_len));
        }
        if !(self.ema_alpha > 0.0 && self.ema_alpha <= 1.0) {
            return bad(format!(
                "ema_alpha must be in (0, 1], got {}",
                self.ema_alpha
            ));
        }
        Ok(())
    }

    /// The first deadline strictly after `block`: the next multiple of
    /// [`round_blocks`](Self::round_blocks). An upload under `block` counts
    /// for this deadline.
    pub fn deadline_after(&self, block: u64) -> u64 {
        let r = self.round_blocks.max(1);
        (block / r).saturating_add(1).saturating_mul(r)
    }

    /// The block whose hash selects the pages judged at `deadline`.
    pub fn reveal_block(&self, deadline: u64) -> u64 {
        deadline.saturating_add(self.pages.reveal_delay_blocks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;

    fn params() -> SubnetParams {
        SubnetParams::new(
            1,
            DatasetParams {
                dataset_id: Digest::of(b"d"),
                num_pages: 100,
                window_pages: 10,
                epoch_blocks: 10,
                reveal_delay_blocks: 2,
            },
        )
    }

    #[test]
    fn deadlines_are_the_next_multiple_of_the_round() {
        let p = params();
        assert_eq!(p.deadline_after(0), 10);
        assert_eq!(p.deadline_after(9), 10);
        assert_eq!(p.deadline_after(10), 20);
        assert_eq!(p.reveal_block(20), 22);
        assert_eq!(p.deadline_after(u64::MAX), u64::MAX);
    }

    #[test]
    fn validation_catches_unusable_values() {
        params().validate().unwrap();
        let mut p = params();
        p.local_pages = 11;
        assert!(p.validate().is_err());
        let mut p = params();
        p.round_blocks = 0;
        assert!(p.validate().is_err());
        let mut p = params();
        p.ema_alpha = 0.0;
        assert!(p.validate().is_err());
        // A window that outlives a round would let one round's work be paid
        // again in the next.
        let mut p = params();
        p.pages.epoch_blocks = p.round_blocks + 1;
        assert!(p.validate().is_err());
        p.pages.epoch_blocks = p.round_blocks;
        p.validate().unwrap();
    }

    #[test]
    fn every_deadline_has_a_window_of_its_own() {
        // With E <= R, consecutive deadlines fall in different epochs.
        for (round, epoch) in [(10, 10), (10, 3), (25, 25), (7, 1)] {
            let mut p = params();
            p.round_blocks = round;
            p.pages.epoch_blocks = epoch;
            p.validate().unwrap();
            let deadlines: Vec<u64> = (1..50).map(|k| k * round).collect();
            for pair in deadlines.windows(2) {
                assert_ne!(p.pages.epoch_of(pair[0]), p.pages.epoch_of(pair[1]));
            }
        }
    }
}
