//! [`Subtensor`]: Bittensor's chain through `subxt` (feature `subtensor`).
//!
//! - **Connecting**: [`Subtensor::connect`] takes a [`Network`] (`finney`,
//!   `test`, `archive`, `local` or a `ws(s)://` URL), opens a WebSocket with
//!   `subxt`'s legacy RPC backend (the `chain_*`, `state_*` and `author_*`
//!   methods every subtensor node serves) and reads the node's runtime
//!   metadata. Everything below is built against that live metadata with
//!   `subxt`'s dynamic API, so runtime upgrades that keep the names bistro
//!   uses need no new release.
//! - **Synchronous**: a current-thread tokio runtime lives inside the struct;
//!   each method runs its request on it (`block_on`) under a time limit.
//!   Calling from inside another tokio runtime is refused with an error
//!   rather than a panic.
//! - **Blocks**: [`Chain::block`] is the latest *finalized* block;
//!   [`Chain::block_hash`] answers only for finalized blocks.
//! - **Metagraph**: the runtime API `SubnetInfoRuntimeApi.get_metagraph`.
//! - **Commitments**: storage `Commitments.CommitmentOf(netuid, hotkey)`;
//!   `Commitments.set_commitment` writes them (see [`calls`]).
//! - **Weights**: `SubtensorModule.set_weights`, after two storage reads: the
//!   hotkey must be registered (`Uids`) and `CommitRevealWeightsEnabled`
//!   decides the path. With commit-reveal (the runtime's default) and
//!   feature `timelock`, the weights are committed timelocked to drand
//!   quicknet (the `commit` module); without the feature that is refused
//!   with a clear error.
//! - **Beacon**: drand quicknet as the `Drand` pallet records it
//!   (`BeaconConfig`, `Pulses`, `LastStoredRound`; see `drand`).
//! - **Transactions** are signed by the hotkey (sr25519), mortal for 64
//!   blocks, with no tip, and watched until they are in a block (or
//!   finalized, see [`WaitFor`]); a failed dispatch is an [`Error::Chain`]
//!   naming the pallet error.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use subxt::OnlineClient;
use subxt::backend::LegacyBackend;
use subxt::config::{DefaultExtrinsicParamsBuilder, RpcConfigFor, SubstrateConfig};
use subxt::dynamic::Value;
use subxt::rpcs::LegacyRpcMethods;
use subxt::rpcs::methods::legacy::NumberOrHex;
use subxt::tx::TransactionStatus;

#[cfg(not(feature = "timelock"))]
use crate::chain::commit_reveal_error;
use crate::chain::network::Network;
use crate::chain::{BeaconKey, Block, Chain, Metagraph, Pulse, Signer};
use crate::error::{Error, Result};
use crate::identity::PublicKey;

pub mod calls;
#[cfg(feature = "timelock")]
mod commit;
mod drand;
mod errors;
mod metagraph;
mod sign;

#[cfg(test)]
mod tests;

use errors::from_subxt;
use sign::SubxtSigner;

/// How long to wait for a transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitFor {
    /// Until it is in a block of the best chain and its events show success
    /// (about one block, 12 s).
    Inclusion,
    /// Until that block is finalized (a few blocks more).
    Finalization,
}

/// Settings of a [`Subtensor`] connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubtensorConfig {
    /// Limit for one read (a block, the metagraph, a storage value).
    pub request_timeout: Duration,
    /// Limit for submitting a transaction and seeing it through [`WaitFor`].
    pub transaction_timeout: Duration,
    /// How far transactions are followed.
    pub wait_for: WaitFor,
    /// Blocks a transaction stays valid for (its mortality).
    pub mortal_blocks: u64,
}

impl Default for SubtensorConfig {
    /// 60 s per read, 120 s per transaction, wait for inclusion, 64-block mortality.
    fn default() -> Self {
        SubtensorConfig {
            request_timeout: Duration::from_secs(60),
            transaction_timeout: Duration::from_secs(120),
            wait_for: WaitFor::Inclusion,
            mortal_blocks: 64,
        }
    }
}

/// A connection to a subtensor node. When the connection drops, the next
/// read reconnects once by itself and is retried; a transaction is not
/// resubmitted (the error says the connection failed), but the next call
/// finds a fresh connection.
pub struct Subtensor {
    runtime: tokio::runtime::Runtime,
    conn: Mutex<Conn>,
    endpoint: String,
    config: SubtensorConfig,
    /// The last weights commit made through this connection, per
    /// (netuid, hotkey), to check its reveal.
    #[cfg(feature = "timelock")]
    commits: Mutex<std::collections::HashMap<(u16, [u8; 32]), commit::Tracked>>,
}

/// The `subxt` client and raw RPC methods of one WebSocket connection.
#[derive(Clone)]
struct Conn {
    client: OnlineClient<SubstrateConfig>,
    rpc: LegacyRpcMethods<RpcConfigFor<SubstrateConfig>>,
}

impl Conn {
    /// Opens a connection: the WebSocket, the genesis hash, and the latest
    /// runtime metadata (so that a node that cannot serve it fails here).
    async fn open(endpoint: &str) -> Result<Conn> {
        let rpc_client = subxt::rpcs::RpcClient::from_insecure_url(endpoint)
            .await
            .map_err(|e| from_subxt(endpoint, "connecting", e))?;
        let backend = LegacyBackend::<SubstrateConfig>::builder().build(rpc_client.clone());
        let client =
            OnlineClient::from_backend_with_config(SubstrateConfig::new(), Arc::new(backend))
                .await
                .map_err(|e| from_subxt(endpoint, "reading the genesis hash", e))?;
        client
            .at_current_block()
            .await
            .map_err(|e| from_subxt(endpoint, "reading the runtime metadata", e))?;
        Ok(Conn {
            client,
            rpc: LegacyRpcMethods::new(rpc_client),
        })
    }
}

impl std::fmt::Debug for Subtensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subtensor")
            .field("endpoint", &self.endpoint)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Seconds per block on subtensor.
const BLOCK_TIME: Duration = Duration::from_secs(12);

impl Subtensor {
    /// Connects to `network` with the default [`SubtensorConfig`].
    pub fn connect(network: &Network) -> Result<Self> {
        Subtensor::connect_with(network, SubtensorConfig::default())
    }

    /// Connects to `network`: opens the WebSocket, reads the genesis hash
    /// and the latest runtime metadata.
    pub fn connect_with(network: &Network, config: SubtensorConfig) -> Result<Self> {
        let endpoint = network.endpoint();
        crate::chain::network::check_ws_url(&endpoint)?;
        refuse_inside_async()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Unavailable(format!("cannot start the async runtime: {e}")))?;
        let limit = config.request_timeout;
        let conn = runtime
            .block_on(async { tokio::time::timeout(limit, Conn::open(&endpoint)).await })
            .map_err(|_| errors::timeout(&endpoint, "connecting", limit))??;
        Ok(Subtensor {
            runtime,
            conn: Mutex::new(conn),
            endpoint,
            config,
            #[cfg(feature = "timelock")]
            commits: Mutex::default(),
        })
    }

    /// The endpoint this connection talks to.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The runtime's spec version at the latest finalized block.
    pub fn spec_version(&self) -> Result<u32> {
        self.run(
            "reading the runtime version",
            self.config.request_timeout,
            true,
            |c| async move { Ok(c.client.at_current_block().await?.spec_version()) },
        )
    }

    /// Whether subnet `netuid` requires commit-reveal for weights.
    pub fn commit_reveal_enabled(&self, netuid: u16) -> Result<bool> {
        self.run(
            "reading CommitRevealWeightsEnabled",
            self.config.request_timeout,
            true,
            |c| async move {
                let at = c.client.at_current_block().await?;
                let addr = subxt::dynamic::storage::<(u16,), bool>(
                    "SubtensorModule",
                    "CommitRevealWeightsEnabled",
                );
                Ok(at.storage().fetch(addr, (netuid,)).await?.decode()?)
            },
        )
    }

    /// The uid `hotkey` holds on subnet `netuid`, if it is registered.
    pub fn uid_of(&self, netuid: u16, hotkey: &PublicKey) -> Result<Option<u16>> {
        let key = hotkey.0;
        self.run(
            "reading Uids",
            self.config.request_timeout,
            true,
            |c| async move {
                let at = c.client.at_current_block().await?;
                let addr =
                    subxt::dynamic::storage::<(u16, [u8; 32]), u16>("SubtensorModule", "Uids");
                Ok(match at.storage().try_fetch(addr, (netuid, key)).await? {
                    Some(v) => Some(v.decode()?),
                    None => None,
                })
            },
        )
    }

    /// The current connection.
    fn conn(&self) -> Conn {
        self.conn.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Replaces the connection with a new one.
    fn reconnect(&self) -> Result<()> {
        let limit = self.config.request_timeout;
        let conn = self
            .runtime
            .block_on(async { tokio::time::timeout(limit, Conn::open(&self.endpoint)).await })
            .map_err(|_| errors::timeout(&self.endpoint, "reconnecting", limit))??;
        *self.conn.lock().unwrap_or_else(|p| p.into_inner()) = conn;
        Ok(())
    }

    /// Runs `op` on the internal runtime under `limit`, mapping errors. A
    /// read (`retry`) that fails because the connection failed is retried
    /// once on a new connection; otherwise the connection is renewed for the
    /// next call and the error returned.
    fn run<T, F, Fut>(&self, what: &str, limit: Duration, retry: bool, op: F) -> Result<T>
    where
        F: Fn(Conn) -> Fut,
        Fut: Future<Output = std::result::Result<T, subxt::Error>>,
    {
        refuse_inside_async()?;
        // Ok(result), or Err(timeout error).
        let attempt = |conn: Conn| -> std::result::Result<Result<T>, Error> {
            match self
                .runtime
                .block_on(async { tokio::time::timeout(limit, op(conn)).await })
            {
                Ok(result) => Ok(result.map_err(|e| from_subxt(&self.endpoint, what, e))),
                Err(_) => Err(errors::timeout(&self.endpoint, what, limit)),
            }
        };
        match attempt(self.conn()) {
            Ok(Err(e @ Error::Network { .. })) => {
                if retry {
                    self.reconnect()?;
                    attempt(self.conn())?
                } else {
                    // Best effort: a failed reconnect shows on the next call.
                    let _ = self.reconnect();
                    Err(e)
                }
            }
            Ok(result) => result,
            Err(timeout) => {
                // A silent connection may be a dead one: renew it for the
                // next call (best effort; a failure shows on that call).
                let _ = self.reconnect();
                Err(timeout)
            }
        }
    }

    /// Signs `call` with `signer`, submits it and follows it as configured.
    fn submit(&self, what: &str, call: calls::Call, signer: &dyn Signer) -> Result<()> {
        let wait_for = self.config.wait_for;
        let mortal = self.config.mortal_blocks;
        let endpoint = self.endpoint.clone();
        let op = |c: Conn| {
            let adapter = SubxtSigner(signer);
            let call = call.clone();
            let endpoint = endpoint.clone();
            async move {
                let at = c.client.at_current_block().await?;
                let params = calls::tx_params(
                    at.metadata_ref(),
                    DefaultExtrinsicParamsBuilder::new().mortal(mortal),
                );
                let account = subxt::tx::Signer::account_id(&adapter);
                let tx = at.tx();
                let mut signable = tx.create_signable(&call, &account, params).await?;
                let signed = signable.sign(&adapter)?;
                let mut progress = signed.submit_and_watch().await?;
                while let Some(status) = progress.next().await {
                    let in_block = match status? {
                        TransactionStatus::InBestBlock(b) if wait_for == WaitFor::Inclusion => b,
                        TransactionStatus::InFinalizedBlock(b) => b,
                        TransactionStatus::Error { message } => {
                            return Ok(Err(format!("the node reported an error: {message}")));
                        }
                        TransactionStatus::Invalid { message } => {
                            return Ok(Err(format!("the transaction is invalid: {message}")));
                        }
                        TransactionStatus::Dropped { message } => {
                            return Ok(Err(format!("the transaction was dropped: {message}")));
                        }
                        _ => continue,
                    };
                    return Ok(match in_block.wait_for_success().await {
                        Ok(_) => Ok(()),
                        Err(subxt::error::TransactionEventsError::ExtrinsicFailed(e)) => {
                            Err(format!("the transaction failed: {e}"))
                        }
                        Err(e) => return Err(e.into()),
                    });
                }
                Ok(Err(format!(
                    "{endpoint} stopped reporting on the transaction"
                )))
            }
        };
        // Not retried: the transaction may have reached the node.
        match self.run(what, self.config.transaction_timeout, false, op)? {
            Ok(()) => Ok(()),
            Err(message) => Err(Error::Chain(format!("{what}: {message}"))),
        }
    }
}

impl Chain for Subtensor {
    fn block(&self) -> Result<Block> {
        let (number, hash) = self.run(
            "reading the finalized head",
            self.config.request_timeout,
            true,
            |c| async move {
                let hash = c.rpc.chain_get_finalized_head().await?;
                let header = c.rpc.chain_get_header(Some(hash)).await?.ok_or_else(|| {
                    subxt::Error::other_str("the node has no header for its finalized head")
                })?;
                Ok((header.number, hash))
            },
        )?;
        Ok(Block {
            number,
            hash: hash.0,
        })
    }

    fn block_hash(&self, number: u64) -> Result<Option<[u8; 32]>> {
        if number > self.block()?.number {
            return Ok(None);
        }
        let hash = self.run(
            "reading a block hash",
            self.config.request_timeout,
            true,
            |c| async move {
                Ok(c.rpc
                    .chain_get_block_hash(Some(NumberOrHex::Number(number)))
                    .await?)
            },
        )?;
        Ok(hash.map(|h| h.0))
    }

    fn metagraph(&self, netuid: u16) -> Result<Metagraph> {
        let raw = self.run(
            "reading the metagraph",
            self.config.request_timeout,
            true,
            |c| async move {
                let at = c.client.at_current_block().await?;
                let call = subxt::dynamic::runtime_api_call::<_, Option<metagraph::RawMetagraph>>(
                    metagraph::API.0,
                    metagraph::API.1,
                    (netuid,),
                );
                Ok(at.runtime_apis().call(call).await?)
            },
        )?;
        raw.ok_or_else(|| {
            Error::NotFound(format!(
                "subnet {netuid} does not exist on {}",
                self.endpoint
            ))
        })?
        .into_metagraph(netuid)
    }

    fn commitment(&self, netuid: u16, hotkey: &PublicKey) -> Result<Option<Vec<u8>>> {
        let key = hotkey.0;
        let record = self.run(
            "reading a commitment",
            self.config.request_timeout,
            true,
            |c| async move {
                let at = c.client.at_current_block().await?;
                let addr = subxt::dynamic::storage::<(u16, [u8; 32]), Value>(
                    "Commitments",
                    "CommitmentOf",
                );
                Ok(match at.storage().try_fetch(addr, (netuid, key)).await? {
                    Some(v) => Some(v.decode()?),
                    None => None,
                })
            },
        )?;
        record.map(|r| calls::commitment_bytes(&r)).transpose()
    }

    fn set_commitment(&self, netuid: u16, signer: &dyn Signer, data: &[u8]) -> Result<()> {
        let call = calls::set_commitment(netuid, data)?;
        self.submit("set_commitment", call, signer)
    }

    fn set_weights(
        &self,
        netuid: u16,
        signer: &dyn Signer,
        uids: &[u16],
        weights: &[u16],
        version_key: u64,
    ) -> Result<()> {
        if uids.len() != weights.len() {
            return Err(Error::InvalidArgument(format!(
                "{} uids but {} weights",
                uids.len(),
                weights.len()
            )));
        }
        if self.uid_of(netuid, &signer.public_key())?.is_none() {
            return Err(Error::Chain(format!(
                "hotkey {} is not registered on subnet {netuid}",
                signer.public_key()
            )));
        }
        if self.commit_reveal_enabled(netuid)? {
            #[cfg(feature = "timelock")]
            return self.commit_weights(netuid, signer, uids, weights, version_key);
            #[cfg(not(feature = "timelock"))]
            return Err(commit_reveal_error(netuid));
        }
        let call = calls::set_weights(netuid, uids, weights, version_key);
        self.submit("set_weights", call, signer)
    }

    fn block_time(&self) -> Duration {
        BLOCK_TIME
    }

    #[cfg(feature = "timelock")]
    fn weights_commit(
        &self,
        netuid: u16,
        hotkey: &PublicKey,
    ) -> Result<Option<crate::chain::commit_reveal::CommitReport>> {
        self.commit_status(netuid, hotkey)
    }

    #[cfg(feature = "timelock")]
    fn weights_of(
        &self,
        netuid: u16,
        hotkey: &PublicKey,
    ) -> Result<Option<crate::chain::weights::ChainWeights>> {
        let metagraph = self.metagraph(netuid)?;
        let Some(uid) = metagraph
            .neurons
            .iter()
            .find(|n| n.hotkey == *hotkey)
            .map(|n| n.uid)
        else {
            return Ok(None);
        };
        Ok(self
            .weights_row(netuid, uid)?
            .filter(|(row, _)| !row.is_empty())
            .map(|(row, block)| crate::chain::weights::ChainWeights {
                uids: row.iter().map(|p| p.0).collect(),
                values: row.iter().map(|p| p.1).collect(),
                block,
            }))
    }

    fn beacon(&self) -> Result<Option<BeaconKey>> {
        self.drand_beacon()
    }

    fn pulse(&self, round: u64) -> Result<Option<Pulse>> {
        self.drand_pulse(round)
    }

    fn beacon_round_at(&self, block: u64) -> Result<Option<u64>> {
        self.drand_round_at(block)
    }
}

/// `block_on` inside another tokio runtime would panic: refuse instead.
fn refuse_inside_async() -> Result<()> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(Error::Unavailable(
            "Subtensor's methods block; call them outside any async runtime (for example \
             with tokio::task::spawn_blocking)"
                .into(),
        ));
    }
    Ok(())
}
