//! The simulated miners: honest ones run the SDK's [`Miner`]; adversaries
//! build their uploads with the same public pieces an attacker would use.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use bistro_core::chain::Chain;
use bistro_core::codec::{
    DType, DeltaHeader, DeltaReader, DeltaWriter, Encoding, Limits, UNDIGESTED_LEN, write_signature,
};
use bistro_core::data::PageSource;
use bistro_core::digest::Digest;
use bistro_core::error::{Error, Result};
use bistro_core::identity::Keypair;
use bistro_core::model::{Config, Device, TrainConfig, Trainer};
use bistro_core::node::SubnetParams;
use bistro_core::node::master::LocalMaster;
use bistro_core::node::miner::Miner;
use bistro_core::node::sealing::{SealTarget, open_if_public, seal_target};
use bistro_core::node::upload::{DeltaFileWriter, Uploaded, upload_delta};
use bistro_core::pages::{local_pages, window};
use bistro_core::seal::{max_sealed_len, seal};
use bistro_core::storage::keys::{delta_key, latest_delta};
use bistro_core::storage::{Bucket, BucketCommitment, EndpointPolicy, LocalBucket, open_bucket};

use super::behaviour::Behaviour;

/// What a participant needs to know to act in a round.
pub struct RoundContext<'a> {
    /// The round index (0-based).
    pub round: u64,
    /// The round's deadline block.
    pub deadline: u64,
    /// The block uploads are made at.
    pub block: u64,
    /// The current master, as published.
    pub master: &'a LocalMaster,
    /// The model shape.
    pub model: &'a Config,
    /// Training steps per round.
    pub steps: u64,
    /// The chain.
    pub chain: &'a dyn Chain,
    /// The subnet.
    pub netuid: u16,
    /// The hotkey of the miner the copiers copy (the first honest one).
    pub copy_from: Option<bistro_core::PublicKey>,
    /// The honest miners' hotkeys (whose work the free-rider adds).
    pub honest: &'a [bistro_core::PublicKey],
    /// The protocol parameters.
    pub params: &'a SubnetParams,
    /// The training data.
    pub data: &'a dyn PageSource,
    /// How the honest miners train (the adversaries that train use it too).
    pub train: &'a TrainConfig,
    /// The reveal block's hash, once it exists (for those that act after it).
    pub reveal_hash: Option<[u8; 32]>,
}

/// One tensor's values, as an adversary crafts them.
struct Values {
    name: String,
    shape: Vec<u64>,
    values: Vec<f32>,
}

/// One simulated miner.
pub struct Participant {
    /// What it does.
    pub behaviour: Behaviour,
    /// Its uid.
    pub uid: u16,
    /// Its hotkey.
    pub keypair: Keypair,
    bucket: Box<dyn Bucket>,
    /// The folder of its local bucket (its own storage server's files).
    bucket_root: PathBuf,
    scratch: PathBuf,
    miner: Option<Miner>,
    /// The replayer's one piece of work, once done.
    kept: Option<Vec<Values>>,
}

impl Participant {
    /// A participant; `miner` is set for the behaviours that train.
    pub fn new(
        behaviour: Behaviour,
        uid: u16,
        keypair: Keypair,
        bucket: LocalBucket,
        scratch: PathBuf,
        miner: Option<Miner>,
    ) -> Participant {
        Participant {
            behaviour,
            uid,
            keypair,
            bucket_root: bucket.root().to_path_buf(),
            bucket: Box::new(bucket),
            scratch,
            miner,
            kept: None,
        }
    }

    /// Does this round's work: train and upload, or craft an upload.
    /// Returns a one-line summary.
    pub fn act(&mut self, ctx: &RoundContext<'_>) -> Result<String> {
        match self.behaviour {
            Behaviour::HonestDense
            | Behaviour::HonestTopK
            | Behaviour::Stale
            | Behaviour::Poisoner
            | Behaviour::Staller => {
                let miner = self.trainer()?;
                miner.sync_master()?;
                let report = miner.train(ctx.deadline, ctx.steps)?;
                let up = miner.upload(ctx.block)?;
                Ok(format!(
                    "trained {} steps (loss {:.3}), uploaded {} bytes",
                    report.steps, report.mean_loss, up.size
                ))
            }
            Behaviour::Lazy => self.upload_values(ctx, |_, _| 0.0),
            Behaviour::Noise => {
                let mut rng = SplitMix(ctx.round.wrapping_mul(0x9e37) ^ u64::from(self.uid));
                self.upload_values(ctx, move |_, _| rng.normal() * 3e-3)
            }
            Behaviour::Copier => self.copy_scaled(ctx, 1.0),
            Behaviour::NearCopy => self.copy_scaled(ctx, 1.0 + 1e-3),
            Behaviour::ScaleUp => self.copy_scaled(ctx, 2.0),
            Behaviour::ScaleDown => self.copy_scaled(ctx, 0.5),
            Behaviour::Corrupt => self.corrupt(ctx),
            Behaviour::FreeRider => self.free_ride(ctx),
            Behaviour::Stacker => {
                let mut delta = self.train_on_window(ctx, self.uid)?;
                let (stolen, count) = self.sum_of_honest_readable(ctx)?;
                if let Some(stolen) = &stolen {
                    add_into(&mut delta, stolen);
                }
                let up = self.upload_tensors(ctx, &delta)?;
                Ok(format!(
                    "trained on its window and added {count} honest deltas of earlier rounds \
                     ({} bytes)",
                    up.size
                ))
            }
            Behaviour::OtherWindow => {
                // The next uid's window.
                let other = self.uid.wrapping_add(1);
                let delta = self.train_on_window(ctx, other)?;
                let up = self.upload_tensors(ctx, &delta)?;
                Ok(format!(
                    "trained on uid {other}'s window, uploaded {} bytes",
                    up.size
                ))
            }
            Behaviour::RandomPages => {
                let n = ctx.params.pages.num_pages;
                let mut rng = SplitMix(ctx.round ^ u64::from(self.uid) << 32);
                let delta =
                    self.train_delta(ctx, |_| (0..2).map(|_| rng.next_u64() % n).collect())?;
                let up = self.upload_tensors(ctx, &delta)?;
                Ok(format!(
                    "trained on random pages, uploaded {} bytes",
                    up.size
                ))
            }
            Behaviour::Replayer => {
                let Some(kept) = self.kept.take() else {
                    self.kept = Some(self.train_on_window(ctx, self.uid)?);
                    return Ok("trained on its window; uploads that work from now on".into());
                };
                let up = self.upload_tensors(ctx, &kept);
                self.kept = Some(kept);
                Ok(format!(
                    "re-uploaded its first round's work against the current master ({} bytes)",
                    up?.size
                ))
            }
            Behaviour::Backdater => {
                let Some(hash) = ctx.reveal_hash else {
                    return Ok("waits for the reveal block".into());
                };
                let pages = local_pages(
                    &ctx.params.pages,
                    self.uid,
                    ctx.deadline,
                    &hash,
                    ctx.params.local_pages,
                )?;
                let delta = self.train_delta(ctx, |step| {
                    let i = (2 * step) as usize % pages.len();
                    vec![pages[i], pages[(i + 1) % pages.len()]]
                })?;
                let up = self.upload_tensors(ctx, &delta)?;
                // Its server says the object was stored an hour ago.
                let path = self.bucket_root.join(&up.key);
                std::fs::File::options()
                    .write(true)
                    .open(&path)
                    .and_then(|f| f.set_modified(SystemTime::now() - Duration::from_secs(3600)))
                    .map_err(|e| Error::io(&path, e))?;
                Ok(format!(
                    "trained on the revealed local pages, uploaded {} bytes after the reveal, \
                     dated an hour earlier",
                    up.size
                ))
            }
        }
    }

    /// Trains a fresh copy of the master `ctx.steps` steps on the pages
    /// `pages(step)` gives, as the honest miners train; returns
    /// `trained - master` per parameter.
    fn train_delta(
        &self,
        ctx: &RoundContext<'_>,
        mut pages: impl FnMut(u64) -> Vec<u64>,
    ) -> Result<Vec<Values>> {
        let model = ctx.master.load(ctx.model, Device::Cpu)?;
        let mut trainer = Trainer::new(model, ctx.train.clone())?;
        for step in 0..ctx.steps {
            let batch = ctx.data.batch(&pages(step), ctx.params.seq_len)?;
            trainer.train_step(&batch)?;
        }
        let mut out = Vec::new();
        for p in ctx.master.checkpoint.parameters() {
            let mut values = trainer.model().parameter_values(&p.name)?;
            let mut base = vec![0.0f32; values.len()];
            ctx.master.checkpoint.read_parameter(&p.name, &mut base)?;
            values.iter_mut().zip(&base).for_each(|(v, b)| *v -= b);
            out.push(Values {
                name: p.name.clone(),
                shape: p.shape.iter().map(|&d| d as u64).collect(),
                values,
            });
        }
        Ok(out)
    }

    /// Trains as [`train_delta`](Self::train_delta) on random pages of
    /// `uid`'s window for the round's deadline, two pages per step.
    fn train_on_window(&self, ctx: &RoundContext<'_>, uid: u16) -> Result<Vec<Values>> {
        let epoch = ctx.params.pages.epoch_of(ctx.deadline);
        let pages = window(&ctx.params.pages, uid, epoch)?.to_vec();
        let mut rng = SplitMix(ctx.round ^ u64::from(self.uid) << 32);
        self.train_delta(ctx, |_| {
            (0..2)
                .map(|_| pages[(rng.next_u64() % pages.len() as u64) as usize])
                .collect()
        })
    }

    /// The newest delta of `victim` whose content can be read now: one from
    /// an earlier round (this round's deltas are sealed until its deadline).
    fn newest_readable(
        &self,
        ctx: &RoundContext<'_>,
        victim: &bistro_core::PublicKey,
    ) -> Result<Option<Vec<Values>>> {
        let Some(raw) = ctx.chain.commitment(ctx.netuid, victim)? else {
            return Ok(None);
        };
        let theirs = open_bucket(&BucketCommitment::parse(&raw)?, EndpointPolicy::Any)?;
        let before = ctx.deadline.saturating_sub(ctx.params.round_blocks);
        let Some(found) = latest_delta(theirs.as_ref(), victim, 0..=before)? else {
            return Ok(None);
        };
        let limits = Self::limits(ctx);
        let sealed = theirs.get(&found.info.key, max_sealed_len(limits.max_file_size))?;
        let Some(bytes) = open_if_public(ctx.chain, &sealed, limits.max_file_size)? else {
            return Ok(None);
        };
        let reader = DeltaReader::open(&bytes, &limits)?;
        reader
            .tensors()
            .map(|t| {
                Ok(Values {
                    name: t.name().to_string(),
                    shape: t.shape().to_vec(),
                    values: t.decode()?,
                })
            })
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }

    /// Re-uploads the first honest miner's newest readable delta times
    /// `scale`, as its own work against the current master.
    fn copy_scaled(&mut self, ctx: &RoundContext<'_>, scale: f32) -> Result<String> {
        let Some(victim) = ctx.copy_from else {
            return Ok("nobody to copy".into());
        };
        let Some(mut delta) = self.newest_readable(ctx, &victim)? else {
            return Ok("nothing readable to copy yet".into());
        };
        for t in delta.iter_mut() {
            t.values.iter_mut().for_each(|v| *v *= scale);
        }
        let up = self.upload_tensors(ctx, &delta)?;
        Ok(format!(
            "re-uploaded the honest miner's newest readable delta x{scale} ({} bytes)",
            up.size
        ))
    }

    /// The sum of every honest miner's newest readable delta (earlier
    /// rounds': this round's are sealed), and how many there were.
    fn sum_of_honest_readable(
        &self,
        ctx: &RoundContext<'_>,
    ) -> Result<(Option<Vec<Values>>, usize)> {
        let mut stolen: Option<Vec<Values>> = None;
        let mut count = 0;
        for victim in ctx.honest {
            let Some(other) = self.newest_readable(ctx, victim)? else {
                continue;
            };
            count += 1;
            match stolen.as_mut() {
                None => stolen = Some(other),
                Some(sum) => add_into(sum, &other),
            }
        }
        Ok((stolen, count))
    }

    /// Uploads the sum of every honest miner's newest readable delta as its own.
    fn free_ride(&mut self, ctx: &RoundContext<'_>) -> Result<String> {
        let (stolen, count) = self.sum_of_honest_readable(ctx)?;
        let Some(delta) = stolen else {
            return Ok("nothing readable to add yet: uploads nothing".into());
        };
        let up = self.upload_tensors(ctx, &delta)?;
        Ok(format!(
            "uploaded the sum of {count} honest deltas as its own ({} bytes)",
            up.size
        ))
    }

    /// The seal of this round's uploads: the round the honest miners aim at,
    /// or, for one that acts after the reveal, the first accepted round
    /// (its pulse is public by then, which costs such a miner nothing).
    fn seal_for(ctx: &RoundContext<'_>) -> Result<SealTarget> {
        let mut target = seal_target(ctx.chain, ctx.params, ctx.params.deadline_after(ctx.block))?;
        if ctx.reveal_hash.is_some() {
            target.round = ctx.deadline + 1;
        }
        Ok(target)
    }

    /// Uploads a delta against the current master, its tensors written by
    /// `fill`, signed and sealed as a miner does.
    fn upload_filled(
        &self,
        ctx: &RoundContext<'_>,
        fill: impl FnOnce(&mut DeltaFileWriter) -> Result<()>,
    ) -> Result<Uploaded> {
        upload_delta(
            self.bucket.as_ref(),
            &self.scratch,
            &self.keypair,
            self.header(ctx, ctx.master.revision()),
            &Self::limits(ctx),
            &Self::seal_for(ctx)?,
            fill,
        )
    }

    /// Uploads crafted tensors (dense bf16) as its delta against the current master.
    fn upload_tensors(&mut self, ctx: &RoundContext<'_>, tensors: &[Values]) -> Result<Uploaded> {
        self.upload_filled(ctx, |w| {
            for t in tensors {
                w.add_tensor(
                    &t.name,
                    &t.shape,
                    &t.values,
                    Encoding::Dense(DType::BF16),
                    None,
                )?;
            }
            Ok(())
        })
    }

    fn trainer(&mut self) -> Result<&mut Miner> {
        self.miner
            .as_mut()
            .ok_or_else(|| Error::InvalidArgument(format!("{} has no model", self.behaviour)))
    }

    fn header(&self, ctx: &RoundContext<'_>, base: Digest) -> DeltaHeader {
        DeltaHeader {
            base_revision: base,
            block: ctx.block,
            uid: self.uid,
            hotkey: self.keypair.public(),
        }
    }

    fn limits(ctx: &RoundContext<'_>) -> Limits {
        Limits::for_model(ctx.model.parameter_count())
    }

    /// Uploads a dense delta whose values come from `value(tensor, index)`.
    fn upload_values(
        &mut self,
        ctx: &RoundContext<'_>,
        mut value: impl FnMut(&str, usize) -> f32,
    ) -> Result<String> {
        let params = ctx.master.checkpoint.parameters();
        let up = self.upload_filled(ctx, |w| write_values(w, &params, &mut value))?;
        Ok(format!("uploaded {} bytes", up.size))
    }

    /// Uploads a broken file, a different kind each round.
    fn corrupt(&mut self, ctx: &RoundContext<'_>) -> Result<String> {
        let limits = Self::limits(ctx);
        let params = ctx.master.checkpoint.parameters();
        let header = self.header(ctx, ctx.master.revision());
        let valid = |signer: &Keypair, nan: bool| -> Result<Vec<u8>> {
            let mut w = DeltaWriter::new(Vec::new(), &header, &limits)?;
            let mut rng = SplitMix(ctx.round);
            write_values(&mut w, &params, &mut |_, _| rng.normal() * 1e-3)?;
            let (mut bytes, _) = w.finish()?;
            if nan {
                // Overwrite the first value with NaN and re-digest, as a
                // careful attacker would: only the finiteness check catches it.
                let reader = DeltaReader::open(&bytes, &limits)?;
                let offset = reader
                    .tensors()
                    .next()
                    .map(|t| t.payload_offset())
                    .unwrap_or(0) as usize;
                // bf16 quiet NaN, little-endian.
                bytes[offset..offset + 2].copy_from_slice(&[0xc0, 0x7f]);
                let end = bytes.len() - UNDIGESTED_LEN;
                let digest = Digest::of(&bytes[..end]);
                bytes[end..end + 32].copy_from_slice(&digest.0);
            }
            let end = bytes.len() - UNDIGESTED_LEN;
            let digest = Digest(
                bytes[end..end + 32]
                    .try_into()
                    .map_err(|_| Error::InvalidArgument("digest".into()))?,
            );
            write_signature(&mut bytes, &signer.sign(&digest.0))?;
            Ok(bytes)
        };
        let target = Self::seal_for(ctx)?;
        let sealed = |plain: &[u8]| seal(plain, &target.beacon, target.round);
        // The key names the digest of the bytes, except where the case is
        // a key that lies about them.
        let mut named = None;
        let (what, bytes) = match ctx.round % 6 {
            0 => {
                let whole = sealed(&valid(&self.keypair, false)?)?;
                named = Some(Digest::of(&whole));
                let mut b = whole;
                b.truncate(b.len() / 2);
                ("a truncated envelope under the whole one's key", b)
            }
            1 => (
                "an oversized file",
                vec![0x42; max_sealed_len(limits.max_file_size) as usize + 1],
            ),
            2 => {
                let mut b = sealed(&valid(&self.keypair, false)?)?;
                let mid = b.len() / 2;
                b[mid] ^= 0x10;
                ("a sealed delta with a flipped byte", b)
            }
            3 => ("a delta holding NaN", sealed(&valid(&self.keypair, true)?)?),
            4 => {
                let stranger = Keypair::from_seed([0xee; 32])?;
                (
                    "a delta signed by another key",
                    sealed(&valid(&stranger, false)?)?,
                )
            }
            _ => ("an unsealed delta", valid(&self.keypair, false)?),
        };
        let digest = named.unwrap_or_else(|| Digest::of(&bytes));
        let key = delta_key(&self.keypair.public(), ctx.block, &digest);
        self.bucket.put(&key, &bytes)?;
        Ok(format!("uploaded {what} ({} bytes)", bytes.len()))
    }
}

fn write_values<W: std::io::Write>(
    w: &mut DeltaWriter<W>,
    params: &[bistro_core::model::ParamInfo],
    value: &mut dyn FnMut(&str, usize) -> f32,
) -> Result<()> {
    for p in params {
        let n = p.numel() as usize;
        let data: Vec<f32> = (0..n).map(|i| value(&p.name, i)).collect();
        let shape: Vec<u64> = p.shape.iter().map(|&d| d as u64).collect();
        w.add_tensor(&p.name, &shape, &data, Encoding::Dense(DType::BF16), None)?;
    }
    Ok(())
}

/// A splitmix64 generator with Box–Muller normals: reproducible noise
/// without a dependency.
struct SplitMix(u64);

impl SplitMix {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    fn normal(&mut self) -> f32 {
        let (u, v) = (self.uniform(), self.uniform());
        ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
    }
}

/// Adds `other` to `sum`, tensor by tensor (tensors of another name or size
/// are left as they are).
fn add_into(sum: &mut [Values], other: &[Values]) {
    for (t, o) in sum.iter_mut().zip(other) {
        if t.name == o.name && t.values.len() == o.values.len() {
            t.values
                .iter_mut()
                .zip(&o.values)
                .for_each(|(v, x)| *v += x);
        }
    }
}
