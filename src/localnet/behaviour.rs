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
    /// Uploads, in turn: a truncated delta (sealed), an oversized file, a
    /// sealed delta with a flipped byte, one with a NaN (re-digested,
    /// signed and sealed), one signed by another key, an unsealed delta.
    Corrupt,
    /// Uploads the sum of the honest miners' newest deltas it can read as
    /// its own (sealed deltas of this round cannot be read, so those of
    /// earlier rounds). One that also trains honestly and adds them is paid
    /// what its own work earns: the stacked part is general improvement,
    /// which the rule does not pay (`docs/incentive.md`).
    FreeRider,
    /// Re-uploads the first honest miner's newest readable delta with every
    /// value times `1 + 1e-3`, re-signed against the current master.
    NearCopy,
    /// Trains on another uid's window instead of its own.
    OtherWindow,
    /// Trains on random pages of the whole dataset instead of its window.
    RandomPages,
    /// Re-uploads the first honest miner's newest readable delta times 2.
    ScaleUp,
    /// Re-uploads the first honest miner's newest readable delta times 0.5.
    ScaleDown,
    /// Waits until the reveal block exists, trains on the local pages it
    /// chose, uploads then (after the deadline), and has its own storage
    /// server date the object an hour before the deadline.
    Backdater,
    /// Trains and uploads as the honest dense miner does, but its bucket
    /// is its own S3 server, which answers listings and then drips the
    /// delta a byte at a time: it costs the validator its download budget
    /// every round and is never judged.
    Staller,
    /// Trains once, on its window of its first round (a fresh copy of the
    /// master, two random pages of the window per step, as the other-window
    /// miner trains), and from the next round on uploads that same work
    /// every round, re-signed against the current master: paid, if at all,
    /// for work done once. Windows change every round, so the replay never
    /// meets the window it was trained for (`docs/incentive.md`).
    Replayer,
    /// Trains on its window (a fresh copy of the master, as the
    /// other-window miner trains) and adds to that work the sum of the
    /// honest miners' newest readable deltas (earlier rounds'): improvement
    /// that is not its own, stacked on work that is. The rule pays what the
    /// stacked part still improves on the round's fresh pages: it does not
    /// stop this miner, which out-earned the honest one it trains like
    /// (`BENCHMARKS.md`, an open hole named in `docs/incentive.md`). Not in
    /// the default cast, whose acceptance test it would fail; `--cast`
    /// names it, so the hole stays measurable until it is closed.
    Stacker,
}

impl Behaviour {
    /// The default cast: two honest miners and one of each adversary.
    pub const CAST: [Behaviour; 17] = [
        Behaviour::HonestDense,
        Behaviour::HonestTopK,
        Behaviour::Lazy,
        Behaviour::Noise,
        Behaviour::Copier,
        Behaviour::Poisoner,
        Behaviour::Stale,
        Behaviour::Corrupt,
        Behaviour::FreeRider,
        Behaviour::NearCopy,
        Behaviour::OtherWindow,
        Behaviour::RandomPages,
        Behaviour::ScaleUp,
        Behaviour::ScaleDown,
        Behaviour::Backdater,
        Behaviour::Staller,
        Behaviour::Replayer,
    ];

    /// Behaviours outside the default cast, which `--cast` can name: what
    /// the rule knowingly leaves open, run to be measured.
    pub const OPT_IN: [Behaviour; 1] = [Behaviour::Stacker];

    /// Every behaviour `--cast` can name: the default cast, then the opt-in ones.
    pub fn known() -> impl Iterator<Item = Behaviour> {
        Behaviour::CAST.into_iter().chain(Behaviour::OPT_IN)
    }

    /// The behaviour called `name` (as [`name`](Self::name) spells it).
    pub fn parse(name: &str) -> Option<Behaviour> {
        Behaviour::known().find(|b| b.name() == name)
    }

    /// Whether this is an honest miner.
    pub fn is_honest(self) -> bool {
        matches!(self, Behaviour::HonestDense | Behaviour::HonestTopK)
    }

    /// Whether this miner acts only after the reveal block exists.
    pub fn acts_after_reveal(self) -> bool {
        self == Behaviour::Backdater
    }

    /// Whether this miner runs the SDK's [`Miner`](bistro_core::node::miner::Miner)
    /// each round (the others craft their uploads from public pieces).
    pub fn trains(self) -> bool {
        matches!(
            self,
            Behaviour::HonestDense
                | Behaviour::HonestTopK
                | Behaviour::Poisoner
                | Behaviour::Stale
                | Behaviour::Staller
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
            Behaviour::FreeRider => "free-rider",
            Behaviour::NearCopy => "near-copy",
            Behaviour::OtherWindow => "other-window",
            Behaviour::RandomPages => "random-pages",
            Behaviour::ScaleUp => "scale-2x",
            Behaviour::ScaleDown => "scale-0.5x",
            Behaviour::Backdater => "backdater",
            Behaviour::Staller => "staller",
            Behaviour::Replayer => "replayer",
            Behaviour::Stacker => "stacker",
        }
    }
}

impl fmt::Display for Behaviour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_behaviour_parses_back_from_its_name() {
        for b in Behaviour::known() {
            assert_eq!(Behaviour::parse(b.name()), Some(b), "{b}");
        }
        assert_eq!(Behaviour::parse("stacker"), Some(Behaviour::Stacker));
        assert_eq!(Behaviour::parse("nobody"), None);
        assert!(!Behaviour::CAST.contains(&Behaviour::Stacker));
    }
}
