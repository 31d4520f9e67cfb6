//! A validator's rounds for people: the table printed after each round, the
//! history kept across restarts, and the charts drawn from it (weights over
//! time, the master's loss). Used by `examples/validator.rs` and the local
//! network.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use bistro_core::error::{Error, Result};
use bistro_core::node::validator::RoundReport;
use bistro_core::util::jsonl::JsonLines;

use crate::chart::LineChart;

fn gain(g: Option<f64>) -> String {
    g.map_or_else(|| "-".into(), |g| format!("{:+.4}", g))
}

/// Prints one round as a table: uid, who, outcome, gains, score, average,
/// weight.
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
            let rule = report
                .merged_with
                .map_or(String::new(), |r| format!(" ({r})"));
            format!(" -> new master {}{rule}", report.master_after.short())
        } else {
            " (master kept)".into()
        }
    );
    if let Some(lead) = &report.lead {
        println!("  lead {}: {}", lead.lead.to_ss58(), lead.verdict);
    }
    println!(
        "  {:>3}  {:<13} {:<14} {:>8} {:>8} {:>8} {:>7} {:>6} {:>7} {:>7} {:>7}",
        "uid",
        "who",
        "outcome",
        "local",
        "global",
        "specific",
        "±se",
        "copy%",
        "score",
        "avg",
        "weight"
    );
    for row in &report.rows {
        let who = label_of(row.uid);
        let weight = weights
            .get(&row.uid)
            .map_or("-".into(), |w| format!("{w:.3}"));
        println!(
            "  {:>3}  {:<13} {:<14} {:>8} {:>8} {:>8} {:>7} {:>6} {:>7.4} {:>7.4} {:>7}{}",
            row.uid,
            who,
            row.outcome,
            gain(row.local_gain),
            gain(row.global_gain),
            gain(row.specific_gain),
            gain(row.specific_se),
            row.explained
                .map_or("-".into(), |e| format!("{:.1}", 100.0 * e)),
            row.score,
            row.average,
            weight,
            if row.merged { "  merged" } else { "" }
        );
    }
    let mut ses: Vec<f64> = report.rows.iter().filter_map(|r| r.specific_se).collect();
    if !ses.is_empty() {
        ses.sort_by(f64::total_cmp);
        println!(
            "  standard error of the specific gain: median {:.4}, max {:.4} ({} evaluations)",
            ses[ses.len() / 2],
            ses[ses.len() - 1],
            ses.len()
        );
    }
    if let Some(loss) = report.heldout_loss {
        println!("  held-out loss of the master: {loss:.4}");
    }
    if let Some(e) = &report.weights_error {
        println!("  setting weights failed: {e}");
    }
}

/// Each uid's weight on the chain after every round, as `(deadline, weight)`
/// points: a round that set no weights left the chain's weights as they were,
/// so it repeats the last weights set.
pub fn weight_series(reports: &[RoundReport]) -> BTreeMap<u16, Vec<(f64, f64)>> {
    let mut per_uid: BTreeMap<u16, Vec<(f64, f64)>> = BTreeMap::new();
    let mut on_chain: BTreeMap<u16, f64> = BTreeMap::new();
    for r in reports {
        if let Some(set) = &r.weights {
            on_chain = set.iter().copied().collect();
        }
        for row in &r.rows {
            let w = on_chain.get(&row.uid).copied().unwrap_or(0.0);
            per_uid
                .entry(row.uid)
                .or_default()
                .push((r.deadline as f64, w));
        }
    }
    per_uid
}

/// Writes `weights.svg` (each uid's share of the weights on the chain, over
/// rounds; see [`weight_series`]) and `loss.svg` (the master's held-out and
/// global loss) into `dir`, atomically. `heldout_start` is the held-out loss
/// before the first round, drawn one round earlier, when known.
pub fn write_charts(
    dir: &Path,
    reports: &[RoundReport],
    heldout_start: Option<f64>,
    label_of: impl Fn(u16) -> String,
) -> Result<()> {
    let mut chart = LineChart::new("Weight share per miner", "block", "weight");
    for (uid, points) in weight_series(reports) {
        chart.add(&label_of(uid), points);
    }
    write_chart(&chart, &dir.join("weights.svg"))?;

    let mut loss = LineChart::new("Master loss", "block", "cross entropy (nats/token)");
    let round = match reports {
        [first, second, ..] => second.deadline.saturating_sub(first.deadline) as f64,
        _ => 1.0,
    };
    let start = reports
        .first()
        .zip(heldout_start)
        .map(|(r, l)| (r.deadline as f64 - round, l));
    let heldout: Vec<(f64, f64)> = start
        .into_iter()
        .chain(
            reports
                .iter()
                .filter_map(|r| r.heldout_loss.map(|l| (r.deadline as f64, l))),
        )
        .collect();
    if !heldout.is_empty() {
        loss.add("held-out pages", heldout);
    }
    loss.add(
        "master before each round, on its global pages",
        reports
            .iter()
            .map(|r| (r.deadline as f64, r.master_global_loss))
            .collect(),
    );
    write_chart(&loss, &dir.join("loss.svg"))
}

fn write_chart(chart: &LineChart, path: &Path) -> Result<()> {
    chart.write(path)
}

/// The rounds a validator has run, one JSON line each, appended after every
/// round so that charts cover the validator's whole life, across restarts.
///
/// A process killed mid-append leaves at most a torn last line; reading
/// skips it (and the next append starts on a fresh line), so the history
/// stays readable. The history is for people: the validator's own state
/// lives in its state file, not here.
pub struct RoundHistory {
    path: PathBuf,
    file: JsonLines,
}

impl RoundHistory {
    /// Opens (or creates) the history at `path` and reads the rounds it holds.
    pub fn open(path: impl Into<PathBuf>) -> Result<(RoundHistory, Vec<RoundReport>)> {
        let path = path.into();
        let mut reports = Vec::new();
        match File::open(&path) {
            Ok(file) => {
                for line in BufReader::new(file).split(b'\n') {
                    let line = line.map_err(|e| Error::io(&path, e))?;
                    if line.is_empty() {
                        continue;
                    }
                    // Skips a torn last line, or a line of a newer version.
                    if let Ok(report) = serde_json::from_slice::<RoundReport>(&line) {
                        reports.push(report);
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&path, e)),
        }
        // Cuts off a torn last line, so the next append starts a fresh one.
        let file = JsonLines::open(&path)?;
        Ok((RoundHistory { path, file }, reports))
    }

    /// Appends one round.
    pub fn append(&mut self, report: &RoundReport) -> Result<()> {
        self.file.append(report)
    }

    /// Where the history is kept.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bistro_core::digest::Digest;
    use bistro_core::identity::PublicKey;
    use bistro_core::node::validator::RoundRow;

    fn report(deadline: u64, weights: Option<Vec<(u16, f64)>>) -> RoundReport {
        let row = |uid| RoundRow {
            uid,
            hotkey: PublicKey([uid as u8; 32]),
            outcome: "scored".into(),
            local_gain: Some(0.1),
            global_gain: Some(0.05),
            specific_gain: Some(0.05),
            specific_se: Some(0.01),
            explained: Some(0.02),
            score: 0.1,
            average: 0.05,
            merged: false,
        };
        RoundReport {
            deadline,
            reveal_block: deadline + 2,
            master_before: Digest([1; 32]),
            master_after: Digest([1; 32]),
            master_global_loss: 10.0 - deadline as f64 / 10.0,
            merged_global_loss: None,
            merged_with: None,
            heldout_loss: Some(9.0),
            rows: vec![row(1), row(2)],
            weights,
            weights_error: None,
            lead: None,
            pruned_masters: 0,
            pruning_error: None,
        }
    }

    #[test]
    fn history_survives_reopening_and_a_torn_last_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rounds.jsonl");
        let (mut history, old) = RoundHistory::open(&path).unwrap();
        assert!(old.is_empty());
        history.append(&report(10, Some(vec![(1, 1.0)]))).unwrap();
        history.append(&report(20, None)).unwrap();
        drop(history);

        // A process killed mid-append: half a line at the end.
        let mut torn = std::fs::read(&path).unwrap();
        torn.extend_from_slice(&serde_json::to_vec(&report(30, None)).unwrap()[..40]);
        std::fs::write(&path, &torn).unwrap();

        let (mut history, rounds) = RoundHistory::open(&path).unwrap();
        assert_eq!(
            rounds,
            vec![report(10, Some(vec![(1, 1.0)])), report(20, None)]
        );
        history.append(&report(30, None)).unwrap();
        drop(history);
        let (_, rounds) = RoundHistory::open(&path).unwrap();
        let deadlines: Vec<u64> = rounds.iter().map(|r| r.deadline).collect();
        assert_eq!(deadlines, vec![10, 20, 30]);
    }

    #[test]
    fn weights_carry_over_rounds_that_set_none() {
        let reports = vec![
            report(10, Some(vec![(1, 0.75), (2, 0.25)])),
            report(20, None),
            report(30, Some(vec![(2, 1.0)])),
        ];
        let series = weight_series(&reports);
        assert_eq!(series[&1], vec![(10.0, 0.75), (20.0, 0.75), (30.0, 0.0)]);
        assert_eq!(series[&2], vec![(10.0, 0.25), (20.0, 0.25), (30.0, 1.0)]);

        let dir = tempfile::tempdir().unwrap();
        write_charts(dir.path(), &reports, Some(10.8), |uid| format!("uid {uid}")).unwrap();
        let weights = std::fs::read_to_string(dir.path().join("weights.svg")).unwrap();
        assert!(weights.contains("uid 1") && weights.contains("uid 2"));
        let loss = std::fs::read_to_string(dir.path().join("loss.svg")).unwrap();
        assert!(loss.contains("held-out pages"));
    }
}
