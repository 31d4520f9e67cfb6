//! The outer optimizer: how the round's merged deltas become the next master.
//!
//! Each accepted delta `Δᵢ = trainedᵢ − master` is a miner's proposal; their
//! weighted sum `u = Σ wᵢ Δᵢ` (the negative of DiLoCo's *pseudo-gradient*) is
//! the direction the network moved. [`MergeRule`] says what the master does
//! with it:
//!
//! - [`MergeRule::Mean`]: `θ ← θ + u` (the plain weighted mean of the
//!   trained models; no state);
//! - [`MergeRule::Nesterov`]: Nesterov momentum on the pseudo-gradient, as
//!   DiLoCo's outer SGD (`torch.optim.SGD(nesterov=True)` with `g = −u`):
//!   `m ← μ·m + u`, `θ ← θ + lr·(u + μ·m)`.
//!
//! All arithmetic is f32, element by element, one rounding per operation and
//! no fused multiply-add, in a fixed order (deltas in the order given — the
//! validator sorts them by uid — then the rule), so anyone holding the parent
//! master, the deltas, their weights and the parent's [`OuterState`]
//! recomputes the next master and its state bit for bit.
//!
//! The state (the momentum buffer, the rule that produced it, the step count)
//! is saved as a delta container (`docs/delta-format.md`: versioned, with a
//! BLAKE3 digest over its bytes) whose header names the master it goes with;
//! a file that is corrupt, of another version, for another master or another
//! model shape is a typed error.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::config::Config;
use super::host;
use super::params::layout;
use super::transformer::Model;
use crate::codec::{DType, DeltaHeader, DeltaReader, DeltaWriter, Encoding, Limits, open_file};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::util::atomic::write_atomic_with;

pub use crate::node::merge_rule::MergeRule;

/// The rule as three numbers for the state file: kind (0 mean, 1
/// Nesterov), lr, momentum.
fn rule_to_meta(rule: MergeRule) -> [f32; 3] {
    match rule {
        MergeRule::Mean => [0.0, 0.0, 0.0],
        MergeRule::Nesterov { lr, momentum } => [1.0, lr, momentum],
    }
}

/// The rule [`rule_to_meta`] wrote, if `meta` is one (and valid).
fn rule_from_meta(meta: &[f32]) -> Option<MergeRule> {
    let rule = match meta {
        [k, _, _] if *k == 0.0 => MergeRule::Mean,
        [k, lr, momentum] if *k == 1.0 => MergeRule::Nesterov {
            lr: *lr,
            momentum: *momentum,
        },
        _ => return None,
    };
    rule.validate().ok().map(|_| rule)
}

/// How much each accepted delta counts in the merged sum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MergeWeighting {
    /// Every delta `1/n`.
    Uniform,
    /// Each delta its round score over the sum of the scores (uniform when
    /// the scores do not sum to a positive number).
    Score,
}

/// The validator's merge: which deltas, how weighted, which outer rule.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MergeConfig {
    /// The outer optimizer.
    pub rule: MergeRule,
    /// The weights of the deltas.
    pub weighting: MergeWeighting,
    /// Merge only the best `top` deltas by score (Gauntlet's top-G); `None`
    /// merges every mergeable delta.
    pub top: Option<usize>,
}

impl Default for MergeConfig {
    /// The plain mean of every mergeable delta (the protocol's original
    /// merge).
    fn default() -> Self {
        MergeConfig {
            rule: MergeRule::Mean,
            weighting: MergeWeighting::Uniform,
            top: None,
        }
    }
}

impl MergeConfig {
    /// Checks the rule and that `top`, when set, is positive.
    pub fn validate(&self) -> Result<()> {
        self.rule.validate()?;
        if self.top == Some(0) {
            return Err(Error::InvalidArgument(
                "merge config: top must be positive (None merges all)".into(),
            ));
        }
        Ok(())
    }

    /// The weights of the deltas to merge, from `(uid, score)` of every
    /// mergeable delta: the best `top` by score (ties to the lower uid),
    /// weighted as configured, sorted by uid (the merge order). Weights are
    /// computed in f64 and rounded to f32 once.
    pub fn weights(&self, scored: &[(u16, f64)]) -> Vec<(u16, f32)> {
        let mut chosen: Vec<(u16, f64)> = scored.to_vec();
        chosen.sort_by_key(|c| c.0);
        chosen.dedup_by_key(|c| c.0);
        chosen.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        if let Some(top) = self.top {
            chosen.truncate(top);
        }
        chosen.sort_by_key(|c| c.0);
        let total: f64 = chosen.iter().map(|c| c.1).sum();
        let by_score = self.weighting == MergeWeighting::Score
            && total.is_finite()
            && total > 0.0
            && chosen.iter().all(|c| c.1 >= 0.0);
        let n = chosen.len() as f64;
        chosen
            .iter()
            .map(|&(uid, score)| {
                let w = if by_score { score / total } else { 1.0 / n };
                (uid, w as f32)
            })
            .collect()
    }
}

/// One outer step on one parameter, in place: `theta` the master's values,
/// `update` the merged delta `u`, `momentum` the rule's buffer (required by
/// [`MergeRule::Nesterov`], ignored by [`MergeRule::Mean`]). All slices have
/// the same length. Element by element, in f32:
///
/// - Mean: `θ = θ + u`;
/// - Nesterov: `m = μ·m + u`, then `θ = θ + lr·(u + μ·m)`.
pub fn outer_step(
    rule: MergeRule,
    theta: &mut [f32],
    momentum: Option<&mut [f32]>,
    update: &[f32],
) -> Result<()> {
    if theta.len() != update.len() {
        return Err(Error::InvalidArgument(format!(
            "outer step: {} parameter values but {} update values",
            theta.len(),
            update.len()
        )));
    }
    match rule {
        MergeRule::Mean => {
            for (t, &u) in theta.iter_mut().zip(update) {
                *t += u;
            }
        }
        MergeRule::Nesterov { lr, momentum: mu } => {
            let m = momentum.ok_or_else(|| {
                Error::InvalidArgument("outer step: Nesterov needs a momentum buffer".into())
            })?;
            if m.len() != theta.len() {
                return Err(Error::InvalidArgument(format!(
                    "outer step: momentum has {} values, the parameter {}",
                    m.len(),
                    theta.len()
                )));
            }
            for ((t, m), &u) in theta.iter_mut().zip(m.iter_mut()).zip(update) {
                *m = mu * *m + u;
                let step = u + mu * *m;
                *t += lr * step;
            }
        }
    }
    Ok(())
}

/// The outer optimizer's state after the step that produced a master: that
/// master's revision, the rule used, how many outer steps led to it, and the
/// momentum buffer (one flat f32 vector per parameter; absent = zero).
#[derive(Clone, Debug, PartialEq)]
pub struct OuterState {
    master: Digest,
    rule: MergeRule,
    steps: u64,
    momentum: BTreeMap<String, Vec<f32>>,
}

/// Version of the state file's layout (inside the container's own version).
pub const OUTER_STATE_VERSION: u32 = 1;
/// The tensor of the state file that holds `[layout version, kind, lr, momentum]`.
const META: &str = "outer.meta";

impl OuterState {
    /// The state of a master no outer step produced (genesis, or a master
    /// published without one): zero momentum, zero steps.
    pub fn start(master: Digest) -> OuterState {
        OuterState {
            master,
            rule: MergeRule::Mean,
            steps: 0,
            momentum: BTreeMap::new(),
        }
    }

    /// The master this state goes with.
    pub fn master(&self) -> Digest {
        self.master
    }

    /// The rule of the step that produced the master.
    pub fn rule(&self) -> MergeRule {
        self.rule
    }

    /// Outer steps so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// The momentum of parameter `name`, if any.
    pub fn momentum(&self, name: &str) -> Option<&[f32]> {
        self.momentum.get(name).map(Vec::as_slice)
    }

    /// Names the master this state goes with (once the merged model's
    /// revision is known).
    pub fn set_master(&mut self, master: Digest) {
        self.master = master;
    }

    /// Writes the state to `path` atomically: a delta container with header
    /// `base_revision` = the master, `block` = the step count, a tensor
    /// `outer.meta` = `[layout version, kind, lr, momentum]` and one flat
    /// dense f32 tensor per parameter's momentum, names sorted.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let header = DeltaHeader {
            base_revision: self.master,
            block: self.steps,
            ..DeltaHeader::default()
        };
        let elements: u64 = self.momentum.values().map(|b| b.len() as u64).sum();
        let limits = Limits::for_model(elements + 4);
        let [kind, lr, mu] = rule_to_meta(self.rule);
        let meta = [OUTER_STATE_VERSION as f32, kind, lr, mu];
        write_atomic_with(path, |w| {
            let mut writer = DeltaWriter::new(w, &header, &limits)?;
            writer.add_tensor(META, &[4], &meta, Encoding::Dense(DType::F32), None)?;
            for (name, values) in &self.momentum {
                let shape = [values.len() as u64];
                writer.add_tensor(name, &shape, values, Encoding::Dense(DType::F32), None)?;
            }
            writer.finish().map(|_| ())
        })
    }

    /// Reads a state written by [`save`](Self::save) for the model `config`
    /// and checks it goes with `master`. A file that fails the container's
    /// checks, has another layout version, names a parameter `config` does
    /// not have or the wrong size, holds a non-finite value, or goes with
    /// another master is an error (never a silently different merge).
    pub fn load(path: impl AsRef<Path>, config: &Config, master: Digest) -> Result<OuterState> {
        let specs = layout(config);
        let params: u64 = specs.iter().map(|s| s.info.numel()).sum();
        let mapped = open_file(path, &Limits::for_model(params + 4))?;
        let reader = mapped.reader();
        let state = Self::from_reader(&reader, &specs)?;
        if state.master != master {
            return Err(Error::DigestMismatch {
                what: "outer state: the master it goes with".into(),
                expected: master,
                computed: state.master,
            });
        }
        Ok(state)
    }

    fn from_reader(
        reader: &DeltaReader<'_>,
        specs: &[super::params::ParamSpec],
    ) -> Result<OuterState> {
        let corrupt = |what: &str, detail: String| Error::corrupt("outer state", what, detail);
        let meta = reader
            .get(META)
            .ok_or_else(|| corrupt("meta", format!("no {META} tensor")))?;
        if meta.encoding() != Encoding::Dense(DType::F32) || meta.element_count() != 4 {
            return Err(corrupt("meta", format!("{META} is not 4 dense f32 values")));
        }
        let meta = meta.decode()?;
        if meta[0] != OUTER_STATE_VERSION as f32 {
            return Err(Error::UnsupportedVersion {
                input: "outer state",
                found: if meta[0].is_finite() && meta[0] >= 0.0 {
                    meta[0] as u32
                } else {
                    u32::MAX
                },
                supported: OUTER_STATE_VERSION.to_string(),
            });
        }
        let rule = rule_from_meta(&meta[1..])
            .ok_or_else(|| corrupt("meta", format!("{:?} is not a merge rule", &meta[1..])))?;
        let mut momentum = BTreeMap::new();
        for tensor in reader.tensors() {
            if tensor.name() == META {
                continue;
            }
            let spec = specs
                .iter()
                .find(|s| s.info.name == tensor.name())
                .ok_or_else(|| {
                    corrupt(
                        "tensor",
                        format!("{:?} is not a parameter of the model", tensor.name()),
                    )
                })?;
            if tensor.encoding() != Encoding::Dense(DType::F32)
                || tensor.shape().len() != 1
                || tensor.element_count() != spec.info.numel()
            {
                return Err(corrupt(
                    "tensor",
                    format!(
                        "momentum of {} is not a flat dense f32 tensor of {} values",
                        tensor.name(),
                        spec.info.numel()
                    ),
                ));
            }
            tensor.check_finite()?;
            momentum.insert(tensor.name().to_string(), tensor.decode()?);
        }
        if !rule.has_momentum() && !momentum.is_empty() {
            return Err(corrupt(
                "meta",
                "a mean merge with a momentum buffer".into(),
            ));
        }
        Ok(OuterState {
            master: reader.header().base_revision,
            rule,
            steps: reader.header().block,
            momentum,
        })
    }
}

/// One outer step on the whole model: `u = Σ wᵢ Δᵢ` over `deltas` in the
/// order given (each `Δᵢ` added as `u += wᵢ·Δᵢ`, two roundings), then
/// [`outer_step`] with `rule` on every parameter the deltas touch, updating
/// `state` (rule, step count, momentum; call
/// [`OuterState::set_master`] once the new master's revision is known).
///
/// Every delta is checked first — each tensor names a parameter of the model
/// with its element count, all values finite, every weight finite — and any
/// failure is returned with the model and the state unchanged. An error
/// while writing a parameter (a GPU copy failing) may leave the model partly
/// changed: reload it then.
pub fn merge_into(
    model: &mut Model,
    deltas: &[(DeltaReader<'_>, f32)],
    rule: MergeRule,
    state: &mut OuterState,
) -> Result<()> {
    rule.validate()?;
    for (delta, weight) in deltas {
        if !weight.is_finite() {
            return Err(Error::InvalidArgument(format!(
                "merge weight must be finite, got {weight}"
            )));
        }
        for tensor in delta.tensors() {
            let index = model.index_of(tensor.name()).ok_or_else(|| {
                Error::corrupt(
                    "delta",
                    "tensor",
                    format!("{:?} is not a parameter of the model", tensor.name()),
                )
            })?;
            let numel = model.specs[index].info.numel();
            if tensor.element_count() != numel {
                return Err(Error::corrupt(
                    "delta",
                    "tensor",
                    format!(
                        "{} has {} elements, the parameter {numel}",
                        tensor.name(),
                        tensor.element_count()
                    ),
                ));
            }
        }
        delta.check_all_finite()?;
    }
    // A rule without momentum drops any earlier buffer.
    let mut momentum = if rule.has_momentum() {
        state.momentum.clone()
    } else {
        BTreeMap::new()
    };
    for index in 0..model.specs.len() {
        let name = model.specs[index].info.name.clone();
        let views: Vec<_> = deltas
            .iter()
            .filter_map(|(d, w)| d.get(&name).map(|v| (v, *w)))
            .collect();
        if views.is_empty() {
            continue;
        }
        let numel = usize::try_from(model.specs[index].info.numel())
            .map_err(|_| Error::limit("parameter elements", usize::MAX as u64, u64::MAX))?;
        let mut update = vec![0f32; numel];
        for (view, weight) in views {
            view.apply(&mut update, weight)?;
        }
        let buffer = if rule.has_momentum() {
            Some(
                momentum
                    .entry(name.clone())
                    .or_insert_with(|| vec![0f32; numel])
                    .as_mut_slice(),
            )
        } else {
            None
        };
        host::write(&mut model.tensors[index], |theta| {
            outer_step(rule, theta, buffer, &update)
        })??;
    }
    state.rule = rule;
    state.steps += 1;
    state.momentum = momentum;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Device;

    #[test]
    fn nesterov_matches_a_hand_computed_step() {
        // lr 0.5, μ 0.5 (exact in binary, so every product is exact too).
        let rule = MergeRule::Nesterov {
            lr: 0.5,
            momentum: 0.5,
        };
        let mut theta = [1.0f32, -2.0, 0.25];
        let mut m = [0.5f32, 0.0, -1.0];
        let u = [2.0f32, -1.0, 0.5];
        outer_step(rule, &mut theta, Some(&mut m), &u).unwrap();
        // m = 0.5·m + u = [2.25, -1, 0]; step = u + 0.5·m = [3.125, -1.5, 0.5];
        // θ = θ + 0.5·step = [2.5625, -2.75, 0.5].
        assert_eq!(m, [2.25, -1.0, 0.0]);
        assert_eq!(theta, [2.5625, -2.75, 0.5]);
        // A second step from there.
        outer_step(rule, &mut theta, Some(&mut m), &[0.0, 1.0, 0.0]).unwrap();
        // m = [1.125, 0.5, 0]; step = [0.5625, 1.25, 0]; θ += 0.5·step.
        assert_eq!(m, [1.125, 0.5, 0.0]);
        assert_eq!(theta, [2.84375, -2.125, 0.5]);
    }

    #[test]
    fn mean_adds_the_update_and_the_first_nesterov_step_scales_it() {
        let mut theta = [1.0f32, 2.0];
        outer_step(MergeRule::Mean, &mut theta, None, &[0.5, -0.5]).unwrap();
        assert_eq!(theta, [1.5, 1.5]);
        // From zero momentum the first step is lr·(1 + μ)·u.
        let rule = MergeRule::Nesterov {
            lr: 0.25,
            momentum: 0.5,
        };
        let mut m = [0.0f32; 2];
        outer_step(rule, &mut theta, Some(&mut m), &[1.0, -2.0]).unwrap();
        assert_eq!(theta, [1.875, 0.75]);
        assert!(outer_step(rule, &mut theta, None, &[1.0, 1.0]).is_err());
        assert!(outer_step(MergeRule::Mean, &mut theta, None, &[1.0]).is_err());
    }

    #[test]
    fn a_top_of_zero_is_refused() {
        let bad = MergeConfig {
            top: Some(0),
            ..MergeConfig::default()
        };
        assert!(bad.validate().is_err());
    }

    #[test]
    fn weights_pick_the_top_and_follow_the_scores() {
        let scored = [(7u16, 1.0), (2, 3.0), (5, 0.0), (9, 3.0)];
        let uniform = MergeConfig::default().weights(&scored);
        assert_eq!(uniform, vec![(2, 0.25), (5, 0.25), (7, 0.25), (9, 0.25)]);
        let top = MergeConfig {
            top: Some(2),
            weighting: MergeWeighting::Score,
            ..MergeConfig::default()
        };
        assert_eq!(top.weights(&scored), vec![(2, 0.5), (9, 0.5)]);
        let by_score = MergeConfig {
            weighting: MergeWeighting::Score,
            ..MergeConfig::default()
        };
        assert_eq!(
            by_score.weights(&scored),
            vec![
                (2, (3.0f64 / 7.0) as f32),
                (5, 0.0),
                (7, (1.0f64 / 7.0) as f32),
                (9, (3.0f64 / 7.0) as f32)
            ]
        );
        // Scores that do not sum to a positive number: uniform.
        assert_eq!(
            by_score.weights(&[(1, 0.0), (2, 0.0)]),
            vec![(1, 0.5), (2, 0.5)]
        );
    }

    fn tiny() -> Config {
        Config::preset("tiny").unwrap()
    }

    /// A delta of `model − base` as a dense f32 file.
    fn delta_file(dir: &Path, name: &str, model: &Model, base: &Model) -> std::path::PathBuf {
        let path = dir.join(name);
        let base_path = dir.join(format!("{name}.base.safetensors"));
        base.save(&base_path).unwrap();
        let checkpoint = crate::model::Checkpoint::open(&base_path, base.config()).unwrap();
        let limits = Limits::for_model(base.config().parameter_count());
        write_atomic_with(&path, |w| {
            let mut writer = DeltaWriter::new(w, &DeltaHeader::default(), &limits)?;
            crate::model::delta::build(
                &mut writer,
                model,
                &checkpoint,
                |_| Encoding::Dense(DType::F32),
                None,
            )?;
            writer.finish().map(|_| ())
        })
        .unwrap();
        path
    }

    #[test]
    fn a_merge_is_reproduced_bit_for_bit_from_parent_deltas_and_state() {
        let dir = tempfile::tempdir().unwrap();
        let config = tiny();
        let parent = Model::new(config.clone(), 1, Device::Cpu).unwrap();
        let a = Model::new(config.clone(), 2, Device::Cpu).unwrap();
        let b = Model::new(config.clone(), 3, Device::Cpu).unwrap();
        let da = delta_file(dir.path(), "a.delta", &a, &parent);
        let db = delta_file(dir.path(), "b.delta", &b, &parent);
        let parent_path = dir.path().join("parent.safetensors");
        parent.save(&parent_path).unwrap();
        let limits = Limits::for_model(config.parameter_count());
        let (fa, fb) = (
            open_file(&da, &limits).unwrap(),
            open_file(&db, &limits).unwrap(),
        );
        let rule = MergeRule::DILOCO;

        // Two outer steps; the state after the first is saved and reloaded.
        let run = |state: &mut OuterState, model: &mut Model| {
            let deltas = [(fa.reader(), 0.25f32), (fb.reader(), 0.75f32)];
            merge_into(model, &deltas, rule, state).unwrap();
            state.set_master(model.revision().unwrap());
        };
        let mut model = Model::load(&parent_path, config.clone(), Device::Cpu).unwrap();
        let mut state = OuterState::start(parent.revision().unwrap());
        run(&mut state, &mut model);
        let first = dir.path().join("first.outer");
        state.save(&first).unwrap();
        let first_master = dir.path().join("first.safetensors");
        model.save(&first_master).unwrap();
        run(&mut state, &mut model);
        let second = dir.path().join("second.outer");
        state.save(&second).unwrap();

        // An auditor with the first master and its state file.
        let mut again = Model::load(&first_master, config.clone(), Device::Cpu).unwrap();
        let mut loaded = OuterState::load(&first, &config, again.revision().unwrap()).unwrap();
        assert_eq!(loaded.steps(), 1);
        assert_eq!(loaded.rule(), rule);
        run(&mut loaded, &mut again);
        assert_eq!(again.revision().unwrap(), model.revision().unwrap());
        let replay = dir.path().join("replay.outer");
        loaded.save(&replay).unwrap();
        assert_eq!(
            std::fs::read(&replay).unwrap(),
            std::fs::read(&second).unwrap()
        );
        // Momentum changed the master: it differs from a plain second mean step.
        let mut mean = Model::load(&first_master, config.clone(), Device::Cpu).unwrap();
        let mut s = OuterState::start(mean.revision().unwrap());
        let deltas = [(fa.reader(), 0.25f32), (fb.reader(), 0.75f32)];
        merge_into(&mut mean, &deltas, MergeRule::Mean, &mut s).unwrap();
        assert_ne!(mean.revision().unwrap(), model.revision().unwrap());
    }

    #[test]
    fn bad_state_files_are_typed_errors() {
        let dir = tempfile::tempdir().unwrap();
        let config = tiny();
        let mut state = OuterState::start(Digest([1; 32]));
        state.rule = MergeRule::DILOCO;
        state.steps = 3;
        let embed = layout(&config)
            .into_iter()
            .find(|s| s.info.name.contains("embed_tokens"))
            .unwrap();
        let name = embed.info.name.clone();
        let numel = embed.info.numel() as usize;
        state.momentum.insert(name.clone(), vec![0.5; numel]);
        let path = dir.path().join("s.outer");
        state.save(&path).unwrap();
        assert_eq!(
            OuterState::load(&path, &config, Digest([1; 32])).unwrap(),
            state
        );
        // Another master.
        assert!(matches!(
            OuterState::load(&path, &config, Digest([2; 32])),
            Err(Error::DigestMismatch { .. })
        ));
        // A flipped byte, a truncated file.
        let good = std::fs::read(&path).unwrap();
        let mut flipped = good.clone();
        let at = good.len() / 2;
        flipped[at] ^= 0x40;
        std::fs::write(&path, &flipped).unwrap();
        assert!(OuterState::load(&path, &config, Digest([1; 32])).is_err());
        std::fs::write(&path, &good[..good.len() - 9]).unwrap();
        assert!(OuterState::load(&path, &config, Digest([1; 32])).is_err());
        // Another model shape: the momentum does not fit.
        let mut other = config.clone();
        other.vocab_size += 1;
        std::fs::write(&path, &good).unwrap();
        assert!(matches!(
            OuterState::load(&path, &other, Digest([1; 32])),
            Err(Error::Corrupt { .. })
        ));
        // A wrong-sized buffer and a parameter the model lacks.
        let mut wrong = state.clone();
        wrong.momentum.insert(name, vec![0.5; 3]);
        wrong.save(&path).unwrap();
        assert!(matches!(
            OuterState::load(&path, &config, Digest([1; 32])),
            Err(Error::Corrupt { .. })
        ));
        let mut unknown = state.clone();
        unknown.momentum.insert("not.a.parameter".into(), vec![1.0]);
        unknown.save(&path).unwrap();
        assert!(matches!(
            OuterState::load(&path, &config, Digest([1; 32])),
            Err(Error::Corrupt { .. })
        ));
    }
}
