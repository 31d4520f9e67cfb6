//! The local network's output: a table per round, a summary, charts.

use std::collections::BTreeMap;
use std::path::Path;

use bistro_core::error::{Error, Result};
use bistro_core::node::validator::RoundReport;

use super::behaviour::Behaviour;
use crate::chart::LineChart;

fn gain(g: Option<f64>) -> String {
    g.map_or_else(|| "-".into(), |g| format!("{:+.4}", g))
}

/// Prints one round as a table: uid, behaviour, outcome, gains, score,
/// average, weight.
pub fn print_round(report: &RoundReport, label_of: impl Fn(u16) -> String) {
    let weights: BTreeMap<u16, f64> = report.weights.iter().flatten().copied().collect();
    println!(
        "round at block {} (pages from block {}): master {} global loss {:.4}{}{}",
        report.deadline,
        report.reveal_block,
        report.master_before.short(),
        report.master_global_loss,
        report
            .merged_global_loss
            .map_or(String::new(), |l| format!(", merged candidate {l:.4}")),
        if report.master_after != report.master_before {
            format!(" -> new master {}", report.master_after.short())
        } else {
            " (master kept)".into()
        }
    );
    println!(
        "  {:>3}  {:<13} {:<14} {:>8} {:>8} {:>7} {:>7} {:>7}",
        "uid", "who", "outcome", "local", "global", "score", "avg", "weight"
    );
    for row in &report.rows {
        let who = label_of(row.uid);
        let weight = weights
            .get(&row.uid)
            .map_or("-".into(), |w| format!("{w:.3}"));
        println!(
            "  {:>3}  {:<13} {:<14} {:>8} {:>8} {:>7.4} {:>7.4} {:>7}{}",
            row.uid,
            who,
            row.outcome,
            gain(row.local_gain),
            gain(row.global_gain),
            row.score,
            row.average,
            weight,
            if row.merged { "  merged" } else { "" }
        );
    }
    if let Some(loss) = report.heldout_loss {
        println!("  held-out loss of the master: {loss:.4}");
    }
    if let Some(e) = &report.weights_error {
        println!("  setting weights failed: {e}");
    }
}

/// The network's result, as the integration test checks it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Summary {
    /// Final weight share per uid (from the last weights set), with behaviour.
    pub final_weights: Vec<(u16, String, f64)>,
    /// Sum of the adversaries' shares.
    pub adversary_share: f64,
    /// Held-out loss of the master before the first round.
    pub heldout_loss_start: f64,
    /// Held-out loss of the master after the last round.
    pub heldout_loss_end: f64,
    /// Evaluated deltas whose undo did not restore the master exactly.
    pub inexact_restores: usize,
    /// Rounds whose master changed without a merge.
    pub unexplained_master_changes: usize,
}

impl Summary {
    /// Whether every honest miner ends with more weight than every adversary.
    pub fn honest_beat_adversaries(&self) -> bool {
        let honest = |name: &str| name.starts_with("honest");
        let min_honest = self
            .final_weights
            .iter()
            .filter(|w| honest(&w.1))
            .map(|w| w.2)
            .fold(f64::INFINITY, f64::min);
        let max_adversary = self
            .final_weights
            .iter()
            .filter(|w| !honest(&w.1))
            .map(|w| w.2)
            .fold(0.0, f64::max);
        min_honest.is_finite() && min_honest > max_adversary
    }
}

/// Writes `weights.svg` (weight share per uid over rounds) and `loss.svg`
/// (the master's held-out and global loss) into `dir`.
pub fn write_charts(
    dir: &Path,
    reports: &[RoundReport],
    heldout_start: f64,
    behaviour_of: impl Fn(u16) -> Option<Behaviour>,
) -> Result<()> {
    let mut per_uid: BTreeMap<u16, Vec<(f64, f64)>> = BTreeMap::new();
    for r in reports {
        let weights: BTreeMap<u16, f64> = r.weights.iter().flatten().copied().collect();
        for row in &r.rows {
            let w = weights.get(&row.uid).copied().unwrap_or(0.0);
            per_uid
                .entry(row.uid)
                .or_default()
                .push((r.deadline as f64, w));
        }
    }
    let mut chart = LineChart::new("Weight share per miner", "block", "weight");
    for (uid, points) in per_uid {
        let name = behaviour_of(uid).map_or("?".to_string(), |b| b.name().to_string());
        chart.add(&format!("uid {uid} {name}"), points);
    }
    chart
        .write(&dir.join("weights.svg"))
        .map_err(|e| Error::io(dir.join("weights.svg"), e))?;

    let mut loss = LineChart::new("Master loss", "block", "cross entropy (nats/token)");
    let start = reports.first().map_or(0.0, |r| r.deadline as f64 - 10.0);
    let heldout: Vec<(f64, f64)> = std::iter::once((start, heldout_start))
        .chain(
            reports
                .iter()
                .filter_map(|r| r.heldout_loss.map(|l| (r.deadline as f64, l))),
        )
        .collect();
    loss.add("held-out pages", heldout);
    loss.add(
        "master before each round, on its global pages",
        reports
            .iter()
            .map(|r| (r.deadline as f64, r.master_global_loss))
            .collect(),
    );
    loss.write(&dir.join("loss.svg"))
        .map_err(|e| Error::io(dir.join("loss.svg"), e))
}
