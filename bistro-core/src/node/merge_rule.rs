//! The merge rule: what the master does with a round's merged deltas
//! (`docs/protocol.md`, "How the master is updated"). Plain data with its
//! text form, so the lineage record that names it parses without the model;
//! `model::outer` applies it.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// What the master does with the merged delta `u = Σ wᵢ Δᵢ`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum MergeRule {
    /// `θ ← θ + u`: the weighted mean of the trained models.
    Mean,
    /// DiLoCo's outer Nesterov momentum: `m ← μ·m + u`,
    /// `θ ← θ + lr·(u + μ·m)`.
    Nesterov {
        /// Outer learning rate (DiLoCo: 0.7).
        lr: f32,
        /// Momentum μ in `[0, 1)` (DiLoCo: 0.9).
        momentum: f32,
    },
}

impl MergeRule {
    /// DiLoCo's outer optimizer: Nesterov, lr 0.7, momentum 0.9.
    pub const DILOCO: MergeRule = MergeRule::Nesterov {
        lr: 0.7,
        momentum: 0.9,
    };

    /// Checks the numbers: `lr` finite and positive, `momentum` in `[0, 1)`.
    pub fn validate(&self) -> Result<()> {
        if let MergeRule::Nesterov { lr, momentum } = *self {
            if !(lr.is_finite() && lr > 0.0) {
                return Err(Error::InvalidArgument(format!(
                    "merge rule: the outer learning rate must be finite and positive, got {lr}"
                )));
            }
            if !(0.0..1.0).contains(&momentum) {
                return Err(Error::InvalidArgument(format!(
                    "merge rule: the momentum must be in [0, 1), got {momentum}"
                )));
            }
        }
        Ok(())
    }

    /// Whether the rule keeps a momentum buffer.
    pub fn has_momentum(&self) -> bool {
        matches!(self, MergeRule::Nesterov { .. })
    }

    /// Parses `mean` or `nesterov-LR-MOMENTUM` (e.g. `nesterov-0.7-0.9`).
    pub fn parse(s: &str) -> Option<MergeRule> {
        if s == "mean" {
            return Some(MergeRule::Mean);
        }
        let rest = s.strip_prefix("nesterov-")?;
        let (lr, momentum) = rest.split_once('-')?;
        let rule = MergeRule::Nesterov {
            lr: lr.parse().ok()?,
            momentum: momentum.parse().ok()?,
        };
        rule.validate().ok().map(|_| rule)
    }
}

impl std::fmt::Display for MergeRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MergeRule::Mean => f.write_str("mean"),
            MergeRule::Nesterov { lr, momentum } => write!(f, "nesterov-{lr}-{momentum}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse_validate_and_print() {
        assert_eq!(MergeRule::parse("mean"), Some(MergeRule::Mean));
        assert_eq!(
            MergeRule::parse("nesterov-0.7-0.9"),
            Some(MergeRule::DILOCO)
        );
        assert_eq!(MergeRule::DILOCO.to_string(), "nesterov-0.7-0.9");
        for bad in [
            "nesterov-0-0.9",
            "nesterov-0.7-1",
            "nesterov-x-0.9",
            "adam",
            "",
        ] {
            assert_eq!(MergeRule::parse(bad), None, "{bad}");
        }
        let json = serde_json::to_string(&MergeRule::DILOCO).unwrap();
        assert_eq!(json, r#"{"rule":"nesterov","lr":0.7,"momentum":0.9}"#);
        assert_eq!(
            serde_json::from_str::<MergeRule>(&json).unwrap(),
            MergeRule::DILOCO
        );
    }
}
