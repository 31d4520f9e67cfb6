//! What a validator publishes: its genesis master, run parameters and
//! commitment (before the first round), its weights, and each round's log,
//! state and lead status.

use super::Validator;
use crate::error::{Error, Result};
use crate::identity::PublicKey;
use crate::node::lead::{LEAD_STATUS_VERSION, LeadStatus, lead_status_key};
use crate::node::master::publish_saved;
use crate::node::run_params::RunParams;
use crate::storage::keys::{eval_log_key, validator_state_key};

impl Validator {
    /// Publishes what miners and other validators need to find and check
    /// this validator: the genesis master when the bucket had none, its run
    /// parameters (`validators/<hotkey>/params.json`, whose digest every log
    /// record names) and its bucket commitment on the chain (when it is not
    /// that already). Call it once before the first round; calling it again
    /// rewrites the same objects.
    pub fn publish(&mut self) -> Result<()> {
        let bucket = self.bucket.as_ref();
        if self.genesis_unpublished {
            self.master = publish_saved(&self.master, bucket, &self.config.model)?;
            self.genesis_unpublished = false;
        }
        let published = RunParams::new(self.config.params.clone(), self.config.model.clone())
            .publish(bucket, &self.hotkey())?;
        if published != self.run_params {
            return Err(Error::InvalidArgument(
                "the published run parameters are not the ones the records name".into(),
            ));
        }
        let netuid = self.config.params.netuid;
        let encoded = self.commitment.encode()?;
        let me = self.hotkey();
        if self.chain.commitment(netuid, &me)?.as_deref() != Some(encoded.as_bytes()) {
            self.chain
                .set_commitment(netuid, &self.keypair, encoded.as_bytes())?;
        }
        self.published = true;
        Ok(())
    }

    pub(super) fn maybe_set_weights(
        &mut self,
        deadline: u64,
    ) -> (Option<Vec<(u16, f64)>>, Option<String>) {
        let interval = self.config.params.weights_interval_blocks;
        let due = self
            .state
            .last_weights_block
            .is_none_or(|last| deadline >= last.saturating_add(interval));
        let weights = self.state.averages.weights();
        if !due || weights.is_empty() {
            return (None, None);
        }
        let uids: Vec<u16> = weights.iter().map(|w| w.0).collect();
        let values: Vec<f32> = weights.iter().map(|w| w.1 as f32).collect();
        let p = &self.config.params;
        match self
            .chain
            .set_float_weights(p.netuid, &self.keypair, &uids, &values, p.version_key)
        {
            Ok(()) => {
                self.state.last_weights_block = Some(deadline);
                let _ = self.state.save(&self.config.work_dir.join("state.json"));
                (Some(weights), None)
            }
            Err(e) => (None, Some(e.to_string())),
        }
    }

    /// Publishes the round's log, the state and the lead status (`lead`:
    /// whom it took as lead this round), so anyone can recompute its scores.
    pub(super) fn publish_round_log(&self, deadline: u64, lead: PublicKey) -> Result<()> {
        self.bucket.put(
            &eval_log_key(&self.hotkey(), deadline),
            &self.log.round_bytes(deadline)?,
        )?;
        self.bucket
            .put(&validator_state_key(&self.hotkey()), &self.state.to_json()?)?;
        let status = LeadStatus {
            version: LEAD_STATUS_VERSION,
            deadline,
            lead: Some(lead),
            master: self.master.revision(),
            refused: self.state.refused.clone(),
        };
        self.bucket
            .put(&lead_status_key(&self.hotkey()), &status.to_json()?)
    }
}
