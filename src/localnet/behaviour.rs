//! What each simulated miner of the local network does.

use std::fmt;

/// A miner's behaviour in the local network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// Trains on its window and uploads dense bf16 deltas.
    HonestDense,
    /// Trains on its window and uploads top-k deltas with error feedback.
    HonestTopK,
    /// Uploads deltas of zeros.
    Lazy,
    /// Uploads random values of a plausible size.
    Noise,
    /// Re-uploads the first honest miner's latest delta under its own hotkey.
    Copier,
    /// Trains on its window by gradient ascent: a delta made to raise the loss.
    Poisoner,
    /// Trains against a master one behind the current one (or one from an
    /// earlier network before the first new master).
    Stale,
    /// Uploads, in turn: a truncated file, an oversized one, one with a
    /// flipped byte, one with a NaN (re-digested and signed), one signed by
    /// another key.
    Corrupt,
}

impl Behaviour {
    /// The default cast: two honest miners and one of each adversary.
    pub const CAST: [Behaviour; 8] = [
        Behaviour::HonestDense,
        Behaviour::HonestTopK,
        Behaviour::Lazy,
        Behaviour::Noise,
        Behaviour::Copier,
        Behaviour::Poisoner,
        Behaviour::Stale,
        Behaviour::Corrupt,
    ];

    /// Whether this is an honest miner.
    pub fn is_honest(self) -> bool {
        matches!(self, Behaviour::HonestDense | Behaviour::HonestTopK)
    }

    /// Whether this miner trains a model each round.
    pub fn trains(self) -> bool {
        matches!(
            self,
            Behaviour::HonestDense | Behaviour::HonestTopK | Behaviour::Poisoner | Behaviour::Stale
        )
    }

    /// A short name for tables and charts.
    pub fn name(self) -> &'static str {
        match self {
            Behaviour::HonestDense => "honest-dense",
            Behaviour::HonestTopK => "honest-topk",
            Behaviour::Lazy => "lazy",
            Behaviour::Noise => "noise",
            Behaviour::Copier => "copier",
            Behaviour::Poisoner => "poisoner",
            Behaviour::Stale => "stale",
            Behaviour::Corrupt => "corrupt",
        }
    }
}

impl fmt::Display for Behaviour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
