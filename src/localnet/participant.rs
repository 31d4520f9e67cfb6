//! The simulated miners: honest ones run the SDK's [`Miner`]; adversaries
//! build their uploads with the same public pieces an attacker would use.

use std::path::PathBuf;

use bistro_core::chain::Chain;
use bistro_core::codec::{
    DType, DeltaHeader, DeltaReader, DeltaWriter, Encoding, Limits, UNDIGESTED_LEN, write_signature,
};
use bistro_core::digest::Digest;
use bistro_core::error::{Error, Result};
use bistro_core::identity::Keypair;
use bistro_core::model::Config;
use bistro_core::node::master::LocalMaster;
use bistro_core::node::miner::Miner;
use bistro_core::node::upload::upload_delta;
use bistro_core::storage::keys::{delta_key, latest_delta};
use bistro_core::storage::{Bucket, BucketCommitment, open_bucket};

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
    /// The hotkey of the miner the copier copies.
    pub copy_from: Option<bistro_core::PublicKey>,
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
    scratch: PathBuf,
    miner: Option<Miner>,
}

impl Participant {
    /// A participant; `miner` is set for the behaviours that train.
    pub fn new(
        behaviour: Behaviour,
        uid: u16,
        keypair: Keypair,
        bucket: Box<dyn Bucket>,
        scratch: PathBuf,
        miner: Option<Miner>,
    ) -> Participant {
        Participant {
            behaviour,
            uid,
            keypair,
            bucket,
            scratch,
            miner,
        }
    }

    /// Does this round's work: train and upload, or craft an upload.
    /// Returns a one-line summary.
    pub fn act(&mut self, ctx: &RoundContext<'_>) -> Result<String> {
        match self.behaviour {
            Behaviour::HonestDense
            | Behaviour::HonestTopK
            | Behaviour::Stale
            | Behaviour::Poisoner => {
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
            Behaviour::Copier => self.copy(ctx),
            Behaviour::Corrupt => self.corrupt(ctx),
        }
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
        let header = self.header(ctx, ctx.master.revision());
        let params = ctx.master.checkpoint.parameters();
        let up = upload_delta(
            self.bucket.as_ref(),
            &self.scratch,
            &self.keypair,
            header,
            &Self::limits(ctx),
            |w| write_values(w, &params, &mut value),
        )?;
        Ok(format!("uploaded {} bytes", up.size))
    }

    /// Downloads the first honest miner's newest delta and re-uploads its
    /// content under this hotkey.
    fn copy(&mut self, ctx: &RoundContext<'_>) -> Result<String> {
        let Some(victim) = ctx.copy_from else {
            return Ok("nobody to copy".into());
        };
        let Some(raw) = ctx.chain.commitment(ctx.netuid, &victim)? else {
            return Ok("the victim published no bucket".into());
        };
        let theirs = open_bucket(&BucketCommitment::parse(&raw)?)?;
        let window = ctx.master.pointer.block..=ctx.deadline;
        let Some(found) = latest_delta(theirs.as_ref(), &victim, window)? else {
            return Ok("the victim uploaded nothing yet".into());
        };
        let limits = Self::limits(ctx);
        let bytes = theirs.get(&found.info.key, limits.max_file_size)?;
        let reader = DeltaReader::open(&bytes, &limits)?;
        let header = self.header(ctx, reader.header().base_revision);
        let up = upload_delta(
            self.bucket.as_ref(),
            &self.scratch,
            &self.keypair,
            header,
            &limits,
            |w| {
                for t in reader.tensors() {
                    w.add_tensor(t.name(), t.shape(), &t.decode()?, t.encoding(), None)?;
                }
                Ok(())
            },
        )?;
        Ok(format!(
            "re-uploaded {} as its own ({} bytes)",
            found.info.key, up.size
        ))
    }

    /// Uploads a broken file, a different kind each round.
    fn corrupt(&mut self, ctx: &RoundContext<'_>) -> Result<String> {
        let limits = Self::limits(ctx);
        let key = delta_key(&self.keypair.public(), ctx.block);
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
        let (what, bytes) = match ctx.round % 5 {
            0 => {
                let mut b = valid(&self.keypair, false)?;
                b.truncate(b.len() / 2);
                ("a truncated delta", b)
            }
            1 => (
                "an oversized file",
                vec![0x42; limits.max_file_size as usize + 1],
            ),
            2 => {
                let mut b = valid(&self.keypair, false)?;
                let mid = b.len() / 2;
                b[mid] ^= 0x10;
                ("a delta with a flipped byte", b)
            }
            3 => ("a delta holding NaN", valid(&self.keypair, true)?),
            _ => {
                let stranger = Keypair::from_seed([0xee; 32])?;
                ("a delta signed by another key", valid(&stranger, false)?)
            }
        };
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
