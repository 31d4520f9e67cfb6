//! A whole bistro network on one machine: a local chain with commit-reveal
//! weights, validators with different stakes (by default three: 50 %, 30 %,
//! 20 %) and a cast of miners — honest ones and every adversary the
//! incentive must withstand — each in its own thread, with local buckets and
//! the sample corpus. `examples/localnet.rs` runs it; `tests/localnet.rs`
//! checks what it shows.
//!
//! Rounds run in lock step so the result barely depends on how fast the
//! machine is: the miners work (in parallel), then the chain is advanced to
//! the round's deadline and reveal block, then the validators judge the
//! round, each in its own thread (as on a subnet, where which validator
//! reads another's status first is a matter of timing). The lead publishes
//! masters; the followers verify each before judging against it
//! ([`bistro_core::node::lead`]). The miner
//! and validator are the SDK's own [`Miner`] and [`Validator`]; the examples
//! run the same types against a real clock.

mod behaviour;
mod participant;
mod report;
pub mod s3_server;
mod tamper;
mod validators;

use s3_server::Fault;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use crate::rounds::{print_round, write_charts};
pub use behaviour::Behaviour;
pub use participant::{Participant, RoundContext};
pub use report::{AuditSummary, Summary, ValidatorSummary};
pub use tamper::forge_newest_lineage;
pub use validators::round_vtrust;

use bistro_core::chain::{Chain, LocalChain, LocalChainConfig, local::SubnetConfig};
use bistro_core::data::{PageSource, sample};
use bistro_core::digest::Digest;
use bistro_core::error::{Error, Result};
use bistro_core::identity::Keypair;
use bistro_core::model::{self, Config, Device, TrainConfig};
use bistro_core::node::audit::{AuditConfig, Rounds, audit};
use bistro_core::node::master::{LocalMaster, publish_model};
use bistro_core::node::miner::{Miner, MinerConfig};
use bistro_core::node::validator::{RoundReport, Validator};
use bistro_core::node::{DeltaEncoding, SubnetParams};
use bistro_core::storage::keys::publish_master;
use bistro_core::storage::{Bucket, BucketCommitment, EndpointPolicy, LocalBucket};

/// Each miner's one-line account of a round (or why it failed), by uid.
pub type Accounts = Vec<(u16, Result<String>)>;

/// Each validator's report of a round, in stake order (`None`: it was silent).
pub type Reports = Vec<Option<RoundReport>>;

/// The subnet the local network runs.
pub const NETUID: u16 = 1;

/// How the local network is set up.
#[derive(Clone, Debug)]
pub struct LocalnetConfig {
    /// Folder for the chain, buckets, work folders, logs and charts.
    pub dir: PathBuf,
    /// Rounds to run.
    pub rounds: u64,
    /// The miners.
    pub cast: Vec<Behaviour>,
    /// Model preset.
    pub preset: String,
    /// Training steps per miner per round.
    pub steps_per_round: u64,
    /// Pages per training step.
    pub pages_per_step: usize,
    /// Pages per miner window.
    pub window_pages: u64,
    /// Peak learning rate of the miners.
    pub learning_rate: f64,
    /// Seeds keys, the chain and the genesis master.
    pub seed: u64,
    /// The validators' stakes, in any unit (shares of their sum count):
    /// one validator per entry, the first named `validator`.
    pub validator_stakes: Vec<u64>,
    /// After this round (1-based), the lead forges the lineage record of
    /// its newest master ([`forge_newest_lineage`]): its followers must
    /// refuse that master and the next validator by stake must take over.
    pub tamper_after_round: Option<u64>,
    /// `(after, rounds)`: after round `after` (1-based) the validator that
    /// leads then stops (no snapshot, no judging, nothing published) for
    /// `rounds` rounds, then comes back. The next validator by stake takes
    /// over once the silence outlasts `failover_rounds`.
    pub silence_lead: Option<(u64, u64)>,
    /// After the last round the network audits the final lead's last this
    /// many rounds from public data alone (`node::audit`); 0: no audit.
    pub audit_rounds: usize,
}

impl Default for LocalnetConfig {
    fn default() -> Self {
        LocalnetConfig {
            dir: PathBuf::from("out/localnet"),
            rounds: 6,
            cast: Behaviour::CAST.to_vec(),
            preset: "tiny".into(),
            steps_per_round: 8,
            pages_per_step: 2,
            window_pages: 8,
            learning_rate: 3e-3,
            seed: 7,
            validator_stakes: vec![50, 30, 20],
            tamper_after_round: None,
            silence_lead: None,
            audit_rounds: 2,
        }
    }
}

/// A running local network.
pub struct Localnet {
    config: LocalnetConfig,
    chain: Arc<LocalChain>,
    params: SubnetParams,
    model: Config,
    /// In stake order (the first has the most).
    validators: Vec<Validator>,
    /// Their names (bucket and work folder).
    validator_names: Vec<String>,
    /// The validator whose masters the miners follow (index).
    lead: usize,
    /// The silenced validator and the last round (1-based) it is silent.
    silenced: Option<(usize, u64)>,
    /// Whether the lead forged a master (`tamper_after_round`).
    tampered: bool,
    /// What the network did to its validators in the last round, for the
    /// round's printout.
    events: Vec<String>,
    participants: Vec<Participant>,
    data: Arc<dyn PageSource>,
    /// How the honest miners train (adversaries that train use it too).
    train: TrainConfig,
    /// The master the stale miner trains on lags one behind, through this bucket.
    stale_mirror: Box<dyn Bucket>,
    last_seen_master: Option<LocalMaster>,
    round: u64,
    /// Per round, every validator's report (in stake order; `None`: silent).
    reports: Vec<Reports>,
    /// The storage servers miners run themselves (the staller's).
    _servers: Vec<s3_server::FaultServer>,
}

fn keypair(seed: u64, name: &str) -> Result<Keypair> {
    let mut h = bistro_core::digest::Hasher::new();
    h.update(b"bistro.localnet.key")
        .update(&seed.to_le_bytes())
        .update(name.as_bytes());
    Keypair::from_seed(h.finalize().0)
}

fn local_bucket(dir: &Path, name: &str) -> Result<(LocalBucket, BucketCommitment)> {
    let parent = dir.join("buckets");
    std::fs::create_dir_all(&parent).map_err(|e| Error::io(&parent, e))?;
    let parent = parent.canonicalize().map_err(|e| Error::io(&parent, e))?;
    let bucket = LocalBucket::create(parent.join(name))?;
    Ok((bucket, BucketCommitment::local(&parent, name)?))
}

impl LocalnetConfig {
    /// The subnet's protocol parameters on the pages of `data` (the table
    /// of `docs/protocol.md`, which `tests/protocol_doc.rs` compares with
    /// this): windows of `window_pages`, a new window every round (epochs
    /// as long as a round), `D = 2`,
    /// weights every round, the rest [`SubnetParams::new`]'s defaults.
    pub fn params(&self, data: &dyn PageSource) -> Result<SubnetParams> {
        let round_blocks = SubnetParams::DEFAULT_ROUND_BLOCKS;
        let mut params =
            SubnetParams::new(NETUID, data.params(self.window_pages, round_blocks, 2)?);
        params.weights_interval_blocks = params.round_blocks;
        params.validate()?;
        Ok(params)
    }
}

impl Localnet {
    /// Builds the network in `config.dir` (which must not hold an earlier
    /// network: remove it first), registers everyone and publishes the
    /// genesis master.
    pub fn setup(config: LocalnetConfig) -> Result<Localnet> {
        validators::check_config(&config)?;
        let dir = config.dir.clone();
        if dir.join("chain").exists() {
            return Err(Error::InvalidArgument(format!(
                "{} already holds a local network; remove it or choose another --dir",
                dir.display()
            )));
        }
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        model::set_threads(1);
        let mut genesis = [0u8; 32];
        genesis[..8].copy_from_slice(&config.seed.to_le_bytes());
        let chain = Arc::new(LocalChain::open_or_create(
            dir.join("chain"),
            &LocalChainConfig::manual(genesis),
        )?);
        chain.add_subnet(NETUID, SubnetConfig::default())?;
        let data: Arc<dyn PageSource> = Arc::new(sample::train()?);
        let heldout: Arc<dyn PageSource> = Arc::new(sample::heldout()?);
        let model = Config::preset(&config.preset)?;
        let params = config.params(data.as_ref())?;

        let coldkey = keypair(config.seed, "coldkey")?.public();
        let chain_dyn: Arc<dyn Chain> = chain.clone();
        let (validators, validator_names) =
            validators::setup(&config, &dir, &chain, &params, &model, &data, &heldout)?;

        let (stale_mirror, _) = local_bucket(&dir, "stale-mirror")?;
        let stale_mirror: Box<dyn Bucket> = Box::new(stale_mirror);
        // The stale miner's first master comes from "an earlier network".
        let ghost = model::Model::new(model.clone(), config.seed ^ 0x5eed, Device::Cpu)?;
        publish_model(&ghost, stale_mirror.as_ref(), &dir.join("ghost"), 0)?;

        // Warmup, then a constant rate: miners keep their optimizer (and
        // its step count) across masters, and a network has no known end
        // to decay towards.
        let train = TrainConfig {
            learning_rate: config.learning_rate,
            min_learning_rate: config.learning_rate,
            warmup_steps: 4,
            total_steps: config.steps_per_round * config.rounds.max(1),
            ..TrainConfig::default()
        };
        let mut participants = Vec::new();
        let mut servers = Vec::new();
        for (i, &behaviour) in config.cast.iter().enumerate() {
            let name = format!("miner-{i}-{behaviour}");
            let key = keypair(config.seed, &name)?;
            let uid = chain.register(NETUID, &key.public(), &coldkey, 0)?;
            let (bucket, mut commitment) = local_bucket(&dir, &name)?;
            if behaviour == Behaviour::Staller {
                let server = s3_server::serve(bucket.root().to_path_buf(), &name, Fault::Drip)?;
                commitment = BucketCommitment::public(server.endpoint.clone(), name.clone());
                servers.push(server);
            }
            chain.set_commitment(NETUID, &key, commitment.encode()?.as_bytes())?;
            let miner = if behaviour.trains() {
                let encoding = match behaviour {
                    Behaviour::HonestTopK => DeltaEncoding::parse("topk-0.1-bf16"),
                    _ => DeltaEncoding::parse("dense-bf16"),
                }
                .ok_or_else(|| Error::InvalidArgument("encoding".into()))?;
                let miner_config = MinerConfig {
                    params: params.clone(),
                    model: model.clone(),
                    train: TrainConfig {
                        maximize: behaviour == Behaviour::Poisoner,
                        ..train.clone()
                    },
                    device: Device::Cpu,
                    steps_per_upload: config.steps_per_round,
                    pages_per_step: config.pages_per_step,
                    encoding,
                    work_dir: dir.join(&name),
                };
                let (own_bucket, _) = local_bucket(&dir, &name)?;
                let miner = Miner::new(
                    chain_dyn.clone(),
                    Box::new(own_bucket),
                    commitment,
                    key.clone(),
                    data.clone(),
                    miner_config,
                )?;
                Some(if behaviour == Behaviour::Stale {
                    let (mirror, _) = local_bucket(&dir, "stale-mirror")?;
                    miner.with_master_bucket(Box::new(mirror))
                } else {
                    miner
                })
            } else {
                None
            };
            participants.push(Participant::new(
                behaviour,
                uid,
                key,
                bucket,
                dir.join(&name).join("scratch"),
                miner,
            ));
        }
        Ok(Localnet {
            config,
            chain,
            params,
            model,
            validators,
            validator_names,
            lead: 0,
            silenced: None,
            tampered: false,
            events: Vec::new(),
            participants,
            data,
            train,
            stale_mirror,
            last_seen_master: None,
            round: 0,
            reports: Vec::new(),
            _servers: servers,
        })
    }

    /// The participants.
    pub fn participants(&self) -> &[Participant] {
        &self.participants
    }

    /// The validator whose masters the miners follow: the lead of the last
    /// round (the first validator before any round).
    pub fn validator(&self) -> &Validator {
        &self.validators[self.lead]
    }

    /// Every validator, in stake order.
    pub fn validators(&self) -> &[Validator] {
        &self.validators
    }

    /// The name of validator `i` (its bucket and work folder).
    pub fn validator_name(&self, i: usize) -> Option<&str> {
        self.validator_names.get(i).map(String::as_str)
    }

    /// The chain.
    pub fn chain(&self) -> &LocalChain {
        &self.chain
    }

    /// Per round run so far, every validator's report (in stake order;
    /// `None` for a validator that was silent).
    pub fn reports(&self) -> &[Reports] {
        &self.reports
    }

    /// Whether validator `i` is silent in round `round` (1-based).
    fn is_silent(&self, i: usize, round: u64) -> bool {
        self.silenced
            .is_some_and(|(j, until)| j == i && round <= until)
    }

    /// The configuration.
    pub fn config(&self) -> &LocalnetConfig {
        &self.config
    }

    /// The behaviour of `uid`, if it is a simulated miner.
    pub fn behaviour_of(&self, uid: u16) -> Option<Behaviour> {
        self.participants
            .iter()
            .find(|p| p.uid == uid)
            .map(|p| p.behaviour)
    }

    /// Runs one round: every miner works, the chain moves to the deadline
    /// and the reveal block, the validators judge (each in its own thread).
    /// Returns every validator's report (in stake order; `None` for a
    /// silent one) and each miner's one-line account.
    pub fn run_round(&mut self) -> Result<(Reports, Accounts)> {
        let active: Vec<bool> = (0..self.validators.len())
            .map(|i| !self.is_silent(i, self.round + 1))
            .collect();
        let master = self.validator().master().clone();
        self.update_stale_mirror(&master)?;
        let block = self.chain.block()?.number;
        let deadline = self.params.deadline_after(block);
        let honest: Vec<bistro_core::PublicKey> = self
            .participants
            .iter()
            .filter(|p| p.behaviour.is_honest())
            .map(|p| p.keypair.public())
            .collect();
        let mut ctx = RoundContext {
            round: self.round,
            deadline,
            block,
            master: &master,
            model: &self.model,
            steps: self.config.steps_per_round,
            chain: self.chain.as_ref(),
            netuid: NETUID,
            copy_from: honest.first().copied(),
            honest: &honest,
            params: &self.params,
            data: self.data.as_ref(),
            train: &self.train,
            reveal_hash: None,
        };
        // Everyone works at once, but those that act only after the reveal.
        let (late, now): (Vec<_>, Vec<_>) = self
            .participants
            .iter_mut()
            .partition(|p| p.behaviour.acts_after_reveal());
        let started = std::time::Instant::now();
        let mut accounts = run_all(now, &ctx);
        let miners_took = started.elapsed();

        // The deadline: the validator lists every bucket before the reveal
        // block exists; then the reveal block; then the late ones act.
        self.chain
            .advance(deadline.saturating_sub(self.chain.block()?.number))?;
        for (v, _) in self.validators.iter_mut().zip(&active).filter(|(_, a)| **a) {
            v.snapshot(deadline)?;
        }
        let reveal = self.params.reveal_block(deadline);
        self.chain
            .advance(reveal.saturating_sub(self.chain.block()?.number))?;
        ctx.reveal_hash = self.chain.block_hash(reveal)?;
        accounts.extend(run_all(late, &ctx));
        accounts.sort_by_key(|(uid, _)| *uid);

        let started = std::time::Instant::now();
        let reports = judge_all(&mut self.validators, &active, deadline)?;
        println!(
            "  (miners {:.1} s, validators {:.1} s)",
            miners_took.as_secs_f64(),
            started.elapsed().as_secs_f64()
        );
        self.lead = self.find_lead()?;
        self.reports.push(reports.clone());
        self.round += 1;
        if !self.tampered
            && self
                .config
                .tamper_after_round
                .is_some_and(|after| self.round >= after)
        {
            self.tamper();
        }
        if let Some((after, rounds)) = self.config.silence_lead
            && after == self.round
        {
            self.silenced = Some((self.lead, after.saturating_add(rounds)));
            self.events.push(format!(
                "{} stops for {rounds} rounds (no snapshot, no judging, nothing published)",
                self.validator_names[self.lead]
            ));
        }
        Ok((reports, accounts))
    }

    /// The lead forges the lineage record of its newest master; when it
    /// cannot (its newest master merged nothing), it tries after the next
    /// round. Says which in the round's events.
    fn tamper(&mut self) {
        let name = &self.validator_names[self.lead];
        let forged =
            local_bucket(&self.config.dir, name).and_then(|(b, _)| forge_newest_lineage(&b));
        self.events.push(match forged {
            Ok(revision) => {
                self.tampered = true;
                format!(
                    "{name} forged the lineage record of its newest master {}",
                    revision.short()
                )
            }
            Err(e) => format!("{name} could not forge its newest master ({e}); tries again"),
        });
    }

    /// The validator the miners follow now (the rule of
    /// [`bistro_core::node::lead`]); the last lead when none qualifies.
    fn find_lead(&self) -> Result<usize> {
        let metagraph = self.chain.metagraph(NETUID)?;
        let now = self.chain.block()?.number;
        let lead = bistro_core::node::lead::find_lead(
            self.chain.as_ref(),
            &metagraph,
            &self.params,
            now,
            EndpointPolicy::Any,
        )?;
        Ok(lead
            .and_then(|l| self.validators.iter().position(|v| v.hotkey() == l.hotkey))
            .unwrap_or(self.lead))
    }

    /// Publishes into the stale miner's mirror the master before `current`,
    /// once `current` has replaced it: the stale miner is always one behind.
    fn update_stale_mirror(&mut self, current: &LocalMaster) -> Result<()> {
        if let Some(previous) = &self.last_seen_master
            && previous.revision() != current.revision()
        {
            publish_master(
                self.stale_mirror.as_ref(),
                previous.checkpoint.path(),
                previous.revision(),
                previous.pointer.block,
            )?;
        }
        if self.last_seen_master.as_ref().map(|m| m.revision()) != Some(current.revision()) {
            self.last_seen_master = Some(current.clone());
        }
        Ok(())
    }

    /// The revision of the current master.
    pub fn master_revision(&self) -> Digest {
        self.validator().master().revision()
    }

    /// Runs the configured number of rounds, printing a table per round
    /// (the lead's judgement, then every validator's view), then writes
    /// `weights.svg`, `loss.svg`, `vtrust.svg` and `summary.json` into the
    /// network's folder.
    pub fn run(&mut self) -> Result<Summary> {
        let heldout_start = self.validators[0].heldout_loss()?.unwrap_or(f64::NAN);
        println!(
            "local network in {}: {} miners, {} validators (stakes {:?}), model {} ({} parameters), \
             held-out loss {heldout_start:.4}",
            self.config.dir.display(),
            self.participants.len(),
            self.validators.len(),
            self.config.validator_stakes,
            self.config.preset,
            self.model.parameter_count()
        );
        let stakes = self.stakes();
        let mut vtrust = Vec::new();
        // The report printed and charted per round: the lead's.
        let mut shown = Vec::new();
        for i in 0..self.config.rounds {
            let started = std::time::Instant::now();
            let lead_before = self.lead;
            let (reports, accounts) = self.run_round()?;
            println!(
                "\n== round {}/{} ({:.1} s)",
                i + 1,
                self.config.rounds,
                started.elapsed().as_secs_f64()
            );
            for (uid, account) in &accounts {
                let who = self.behaviour_of(*uid).map_or("?", |b| b.name());
                match account {
                    Ok(line) => println!("  uid {uid} {who}: {line}"),
                    Err(e) => println!("  uid {uid} {who}: failed: {e}"),
                }
            }
            let Some(report) = reports[lead_before]
                .as_ref()
                .or_else(|| reports.iter().flatten().next())
            else {
                println!("  every validator was silent");
                vtrust.push(vec![None; reports.len()]);
                self.events.clear();
                continue;
            };
            print_round(report, |u| {
                self.behaviour_of(u).map_or("?".into(), |b| b.name().into())
            });
            shown.push(report.clone());
            let round_vtrust = validators::vtrust_of_round(&stakes, &reports)?;
            validators::print_validators(
                &self.validator_names,
                &self.validators,
                &stakes,
                &reports,
                &round_vtrust,
            );
            vtrust.push(round_vtrust);
            for event in self.events.drain(..) {
                println!("  {event}");
            }
        }
        let mut summary = self.summary(heldout_start, vtrust.clone())?;
        summary.audit = self.audit_lead()?;
        write_charts(&self.config.dir, &shown, Some(heldout_start), |uid| {
            let name = self.behaviour_of(uid).map_or("?", |b| b.name());
            format!("uid {uid} {name}")
        })?;
        validators::write_vtrust_chart(&self.config.dir, &self.validator_names, &vtrust)?;
        let json = serde_json::to_vec_pretty(&summary)
            .map_err(|e| Error::InvalidArgument(format!("summary: {e}")))?;
        bistro_core::storage::write_file_atomic(&self.config.dir.join("summary.json"), &json)?;
        Ok(summary)
    }

    /// Audits the final lead's last `audit_rounds` rounds from what is
    /// public (the chain, the buckets, the dataset), as anyone could, and
    /// prints the report; `None` when `audit_rounds` is 0.
    fn audit_lead(&self) -> Result<Option<AuditSummary>> {
        if self.config.audit_rounds == 0 {
            return Ok(None);
        }
        let lead = &self.validators[self.lead];
        let name = self.validator_names[self.lead].clone();
        println!(
            "\n== auditing {name} from public data: its last {} rounds",
            self.config.audit_rounds
        );
        let config = AuditConfig {
            policy: EndpointPolicy::Any,
            ..AuditConfig::new(self.config.dir.join("audit"))
        };
        let started = std::time::Instant::now();
        let report = audit(
            self.chain.as_ref(),
            NETUID,
            &lead.hotkey(),
            self.data.as_ref(),
            Rounds::Last(self.config.audit_rounds),
            &config,
            &mut |line| {
                use std::io::Write as _;
                print!("\r  {line:<60}");
                let _ = std::io::stdout().flush();
            },
        )?;
        println!(
            "\r  audited in {:.1} s{:<40}",
            started.elapsed().as_secs_f64(),
            ""
        );
        print!("{report}");
        Ok(Some(AuditSummary::of(name, &report)))
    }

    /// The name of the validator with `hotkey` (`?` if none is).
    fn name_of(&self, hotkey: &bistro_core::PublicKey) -> &str {
        validators::name_of(&self.validators, &self.validator_names, hotkey)
    }

    /// The validators' configured stakes, as numbers.
    fn stakes(&self) -> Vec<f64> {
        self.config
            .validator_stakes
            .iter()
            .map(|&s| s as f64)
            .collect()
    }

    /// What the network shows: final weights (the lead's, as set on the
    /// chain, after advancing it past the reveal of the last commit), the
    /// adversaries' share, the master's held-out loss before and after, the
    /// checks that no rejected delta changed the master, and each
    /// validator's verdicts and vtrust (`vtrust`: per round, per validator).
    fn summary(&self, heldout_start: f64, vtrust: Vec<Vec<Option<f64>>>) -> Result<Summary> {
        let me = self.validator().hotkey();
        // The subnet uses commit-reveal: let the chain reveal the last
        // commit before reading what it shows.
        self.chain.advance_past_reveals()?;
        let rows = self.chain.weights(NETUID)?;
        let set = rows
            .iter()
            .find(|r| r.hotkey == me)
            .map(|r| r.weights.clone());
        let total: f64 = set
            .iter()
            .flat_map(|w| w.values.iter())
            .map(|&v| f64::from(v))
            .sum();
        let mut final_weights = Vec::new();
        for p in &self.participants {
            let value = set
                .as_ref()
                .and_then(|w| w.uids.iter().position(|&u| u == p.uid).map(|i| w.values[i]))
                .map_or(0.0, f64::from);
            let share = if total > 0.0 { value / total } else { 0.0 };
            final_weights.push((p.uid, p.behaviour.name().to_string(), share));
        }
        let adversary_share = final_weights
            .iter()
            .filter(|w| !w.1.starts_with("honest"))
            .map(|w| w.2)
            .sum();
        let mut inexact_restores = 0;
        for v in &self.validators {
            inexact_restores += bistro_core::node::log::read_log(v.log_dir())?
                .iter()
                .filter(|r| r.restored_exact == Some(false))
                .count();
        }
        let unexplained_master_changes = self
            .reports
            .iter()
            .flatten()
            .flatten()
            .filter(|r| r.master_after != r.master_before && !r.rows.iter().any(|row| row.merged))
            .count();
        let stakes = self.stakes();
        let total_stake: f64 = stakes.iter().sum();
        let validators = self
            .validator_names
            .iter()
            .enumerate()
            .map(|(i, name)| ValidatorSummary {
                name: name.clone(),
                stake_share: stakes[i] / total_stake,
                verdicts: self
                    .reports
                    .iter()
                    .map(|r| match &r[i] {
                        None => "silent".into(),
                        Some(r) => r.lead.as_ref().map_or("-".into(), |l| l.verdict.clone()),
                    })
                    .collect(),
                leads: self
                    .reports
                    .iter()
                    .map(|r| {
                        r[i].as_ref()
                            .and_then(|r| r.lead.as_ref())
                            .map_or("-".into(), |l| self.name_of(&l.lead).into())
                    })
                    .collect(),
                judged_against: self
                    .reports
                    .iter()
                    .map(|r| {
                        r[i].as_ref()
                            .map_or("-".into(), |r| r.master_before.to_hex())
                    })
                    .collect(),
                vtrust: vtrust.iter().map(|v| v.get(i).copied().flatten()).collect(),
            })
            .collect();
        Ok(Summary {
            final_weights,
            adversary_share,
            heldout_loss_start: heldout_start,
            heldout_loss_end: self.validator().heldout_loss()?.unwrap_or(f64::NAN),
            inexact_restores,
            unexplained_master_changes,
            final_lead: self.validator_names[self.lead].clone(),
            validators,
            audit: None,
        })
    }

    /// The folder everything is written to.
    pub fn dir(&self) -> &Path {
        &self.config.dir
    }
}

/// Every `active` validator judges the round at `deadline`, each in its
/// own thread (as validators on a subnet do, none waiting for another):
/// each checks the lead's master on its own, the machine's cores shared
/// among them. `None` for the others.
fn judge_all(validators: &mut [Validator], active: &[bool], deadline: u64) -> Result<Reports> {
    let working = active.iter().filter(|a| **a).count().max(1);
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let threads = (cores / working).max(1);
    let reports = std::thread::scope(|scope| {
        let handles: Vec<_> = validators
            .iter_mut()
            .zip(active)
            .map(|(v, &active)| {
                active.then(|| {
                    scope.spawn(move || {
                        model::set_threads(threads);
                        v.run_round(deadline)
                    })
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(Error::InvalidArgument("a validator panicked".into()))
                    })
                })
                .transpose()
            })
            .collect::<Result<Reports>>()
    });
    model::set_threads(1);
    reports
}

fn run_all(participants: Vec<&mut Participant>, ctx: &RoundContext<'_>) -> Accounts {
    std::thread::scope(|scope| {
        let handles: Vec<_> = participants
            .into_iter()
            .map(|p| {
                let uid = p.uid;
                (
                    uid,
                    scope.spawn(move || {
                        model::set_threads(1);
                        p.act(ctx)
                    }),
                )
            })
            .collect();
        handles
            .into_iter()
            .map(|(uid, h)| {
                let result = h.join().unwrap_or_else(|_| {
                    Err(Error::InvalidArgument(format!("miner uid {uid} panicked")))
                });
                (uid, result)
            })
            .collect()
    })
}
