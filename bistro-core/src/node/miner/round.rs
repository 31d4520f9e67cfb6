//! A miner's whole round in one call ([`Miner::run_round`]): find the
//! master, train for the round the upload will count for, re-check the
//! master, upload, wait for the deadline — what every miner program would
//! otherwise write around the lower-level calls.

use crate::digest::Digest;
use crate::error::{Error, Result};

use super::{MasterStatus, Miner, TrainReport};
use crate::node::upload::Uploaded;

/// What [`Miner::run_round`] tells its caller, as it happens.
#[derive(Debug)]
pub enum MinerEvent<'a> {
    /// No master is published yet (the round waits one block and ends).
    NoMaster,
    /// The master could not be fetched (the round waits one block and ends).
    MasterUnavailable(&'a Error),
    /// A new master to train on. `fresh_optimizer`, the first time only:
    /// why the optimizer state saved in the work folder could not be used.
    NewMaster {
        /// Its revision.
        revision: Digest,
        /// Why training starts with a fresh optimizer, if it does.
        fresh_optimizer: Option<&'a Error>,
    },
    /// One training step for the round judged at `deadline`.
    Step {
        /// The round's deadline.
        deadline: u64,
        /// Steps taken so far this round.
        step: u64,
        /// Steps this round ([`MinerConfig::steps_per_upload`](super::MinerConfig::steps_per_upload)).
        steps: u64,
        /// The step's training loss.
        loss: f64,
    },
    /// Training for the round judged at `deadline` ended.
    Trained {
        /// The round's deadline.
        deadline: u64,
        /// What training did.
        report: &'a TrainReport,
    },
    /// The master changed while it trained: the delta would be `stale`, so
    /// it is not uploaded (the round ends; the next one trains on the new
    /// master).
    Stale {
        /// The new master.
        revision: Digest,
    },
    /// Training ran past `deadline`: the upload counts for the next round.
    Late {
        /// The deadline it missed.
        deadline: u64,
    },
    /// The delta was uploaded.
    Uploaded(&'a Uploaded),
    /// The upload failed (the next round uploads again).
    UploadFailed(&'a Error),
}

/// How a round of [`Miner::run_round`] ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoundOutcome {
    /// No master (none published, or it could not be fetched).
    NoMaster,
    /// The master changed during training; nothing uploaded.
    Stale,
    /// Uploaded (and, when on time, waited for the deadline).
    Uploaded(Uploaded),
    /// The upload failed.
    UploadFailed,
}

/// What [`Miner::run_round`] carries from one round to the next.
#[derive(Debug, Default)]
pub(super) struct RoundState {
    /// Blocks the last round's training and upload took: the next round
    /// trains for the deadline its upload will actually make.
    training_blocks: u64,
    /// Whether a master was reported yet (the optimizer note is given once).
    reported_master: bool,
}

impl Miner {
    /// One round: syncs the master ([`sync_master`](Self::sync_master);
    /// without one, waits a block and returns
    /// [`RoundOutcome::NoMaster`]), trains
    /// [`steps_per_upload`](super::MinerConfig::steps_per_upload) steps on
    /// the window of the round its upload will count for (from how long the
    /// last round took), checks the master again — a delta against a
    /// replaced master would be `stale`, so it is not uploaded — uploads, and
    /// when on time waits for the deadline (a late upload counts for the
    /// next round, and the next round starts at once). `on_event` hears each
    /// step. Errors of the chain and of training are returned; a failed
    /// fetch of the master or upload is an event, not an error.
    pub fn run_round(&mut self, mut on_event: impl FnMut(MinerEvent<'_>)) -> Result<RoundOutcome> {
        let chain = std::sync::Arc::clone(&self.chain);
        match self.sync_master() {
            Ok(MasterStatus::Updated(revision)) => {
                let first = !std::mem::replace(&mut self.rounds.reported_master, true);
                on_event(MinerEvent::NewMaster {
                    revision,
                    fresh_optimizer: self.fresh_optimizer.as_ref().filter(|_| first),
                });
            }
            Ok(MasterStatus::Unchanged(_)) => {}
            Ok(MasterStatus::Missing) => {
                on_event(MinerEvent::NoMaster);
                std::thread::sleep(chain.block_time());
                return Ok(RoundOutcome::NoMaster);
            }
            // Another validator's parameters are not a passing failure.
            Err(e @ Error::ParamsMismatch { .. }) => return Err(e),
            Err(e) => {
                on_event(MinerEvent::MasterUnavailable(&e));
                std::thread::sleep(chain.block_time());
                return Ok(RoundOutcome::NoMaster);
            }
        }
        let params = self.config.params.clone();
        let steps = self.config.steps_per_upload;
        let started = chain.block()?.number;
        let deadline = params.deadline_after(started.saturating_add(self.rounds.training_blocks));
        let report = self.train_with_progress(deadline, steps, |step, loss| {
            on_event(MinerEvent::Step {
                deadline,
                step,
                steps,
                loss,
            });
        })?;
        on_event(MinerEvent::Trained {
            deadline,
            report: &report,
        });
        // The lead publishes a new master some blocks after a deadline.
        match self.sync_master() {
            Ok(MasterStatus::Updated(revision)) => {
                on_event(MinerEvent::Stale { revision });
                return Ok(RoundOutcome::Stale);
            }
            Err(e @ Error::ParamsMismatch { .. }) => return Err(e),
            // Otherwise the delta stands against the master it trained on.
            _ => {}
        }
        let block = chain.block()?.number;
        let late = block >= deadline;
        if late {
            on_event(MinerEvent::Late { deadline });
        }
        let outcome = match self.upload(block) {
            Ok(uploaded) => {
                on_event(MinerEvent::Uploaded(&uploaded));
                RoundOutcome::Uploaded(uploaded)
            }
            Err(e) => {
                on_event(MinerEvent::UploadFailed(&e));
                RoundOutcome::UploadFailed
            }
        };
        self.rounds.training_blocks = chain.block()?.number.saturating_sub(started);
        if !late {
            // Four times the blocks left (at least a minute): blocks can be
            // slow, and a chain without a clock moves when others move it.
            let blocks = u32::try_from(params.round_blocks.saturating_add(2)).unwrap_or(u32::MAX);
            let patience = chain
                .block_time()
                .saturating_mul(blocks.saturating_mul(4))
                .max(std::time::Duration::from_secs(60));
            chain.wait_for_block(deadline, patience)?;
        }
        Ok(outcome)
    }
}
