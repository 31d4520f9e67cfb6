//! The local network's validators: set up with their stakes, printed per
//! round (lead, verdict on its master, vtrust) and charted.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bistro_core::chain::{Chain, LocalChain};
use bistro_core::data::PageSource;
use bistro_core::error::{Error, Result};
use bistro_core::model::{Config, Device};
use bistro_core::node::SubnetParams;
use bistro_core::node::validator::{FetchBudget, RoundReport, Validator, ValidatorConfig};
use bistro_core::score::yuma::{DEFAULT_KAPPA, clip_to_consensus};
use bistro_core::storage::EndpointPolicy;

use super::{LocalnetConfig, NETUID, Reports, keypair, local_bucket};
use crate::chart::LineChart;

/// Registered stake per unit of [`LocalnetConfig::validator_stakes`].
const STAKE_UNIT: u64 = 10_000_000_000;

/// The name of validator `i`: its key's seed name, bucket and work folder.
fn name(i: usize) -> String {
    if i == 0 {
        "validator".into()
    } else {
        format!("validator-{i}")
    }
}

/// Registers one validator per configured stake and builds it (each also
/// measures the master on held-out pages, for the table and the loss chart
/// of whichever leads). Returns them in stake order with their names.
pub(super) fn setup(
    config: &LocalnetConfig,
    dir: &Path,
    chain: &Arc<LocalChain>,
    params: &SubnetParams,
    model: &Config,
    data: &Arc<dyn PageSource>,
    heldout: &Arc<dyn PageSource>,
) -> Result<(Vec<Validator>, Vec<String>)> {
    let stakes = &config.validator_stakes;
    let coldkey = keypair(config.seed, "coldkey")?.public();
    let chain_dyn: Arc<dyn Chain> = chain.clone();
    let mut validators = Vec::new();
    let mut names = Vec::new();
    for (i, &stake) in stakes.iter().enumerate() {
        let name = name(i);
        let key = keypair(config.seed, &name)?;
        let stake = stake.checked_mul(STAKE_UNIT).ok_or_else(|| {
            Error::InvalidArgument(format!("validator stake {stake} is too large"))
        })?;
        chain.register(NETUID, &key.public(), &coldkey, stake)?;
        let (bucket, commitment) = local_bucket(dir, &name)?;
        let validator_config = ValidatorConfig {
            params: params.clone(),
            model: model.clone(),
            device: Device::Cpu,
            work_dir: dir.join(&name),
            uids_per_round: 0,
            genesis_seed: config.seed,
            heldout_pages: 16,
            merge: Default::default(),
        };
        let mut validator = Validator::new(
            chain_dyn.clone(),
            Box::new(bucket),
            commitment,
            key,
            data.clone(),
            validator_config,
        )?
        // Local buckets are file:// folders (and the staller's server is on
        // 127.0.0.1).
        .with_endpoint_policy(EndpointPolicy::Any)
        // Deltas here are small and local: 5 s is ample for an honest one.
        .with_fetch_budget(FetchBudget {
            per_uid_base: Duration::from_secs(5),
            ..FetchBudget::default()
        })
        .with_heldout(heldout.clone());
        validator.publish()?;
        validators.push(validator);
        names.push(name);
    }
    Ok((validators, names))
}

/// Each validator's vtrust (Yuma consensus clipping, `score::yuma`) from
/// the weights the `reports` of one round committed, with `stakes` in the
/// same order; `None` when none of them set weights. A validator that set
/// none has a zero row (vtrust 0).
pub fn round_vtrust(stakes: &[f64], reports: &[&RoundReport]) -> Result<Option<Vec<f64>>> {
    if reports.iter().all(|r| r.weights.is_none()) {
        return Ok(None);
    }
    let columns = reports
        .iter()
        .flat_map(|r| r.weights.iter().flatten())
        .map(|&(uid, _)| usize::from(uid) + 1)
        .max()
        .unwrap_or(0);
    let rows: Vec<Vec<f64>> = reports
        .iter()
        .map(|r| {
            let mut row = vec![0.0; columns];
            for &(uid, w) in r.weights.iter().flatten() {
                row[usize::from(uid)] = w;
            }
            row
        })
        .collect();
    Ok(Some(
        clip_to_consensus(stakes, &rows, DEFAULT_KAPPA)?.vtrust,
    ))
}

/// The name of the validator with `hotkey` (`?` if none is).
pub(super) fn name_of<'a>(
    validators: &[Validator],
    names: &'a [String],
    hotkey: &bistro_core::PublicKey,
) -> &'a str {
    validators
        .iter()
        .position(|v| v.hotkey() == *hotkey)
        .map_or("?", |i| names[i].as_str())
}

/// Checks what [`setup`] and the rounds will use of `config`: one or more
/// positive stakes, most first; a forgery or a silence needs another
/// validator to notice and rounds to happen in.
pub(super) fn check_config(config: &LocalnetConfig) -> Result<()> {
    let bad = |why: String| Err(Error::InvalidArgument(format!("local network: {why}")));
    let stakes = &config.validator_stakes;
    if stakes.is_empty() || stakes.contains(&0) {
        return bad(format!(
            "validator stakes must be one or more positive numbers, got {stakes:?}"
        ));
    }
    if stakes.windows(2).any(|w| w[0] < w[1]) {
        return bad(format!(
            "validator stakes must be in decreasing order (the first leads), got {stakes:?}"
        ));
    }
    let in_run = |round: u64| (1..config.rounds).contains(&round);
    if let Some(after) = config.tamper_after_round
        && (stakes.len() < 2 || !in_run(after))
    {
        return bad(format!(
            "a forgery after round {after} needs two or more validators and a round after it \
             (rounds: {})",
            config.rounds
        ));
    }
    if let Some((after, rounds)) = config.silence_lead
        && (stakes.len() < 2 || !in_run(after) || rounds == 0)
    {
        return bad(format!(
            "silencing the lead after round {after} for {rounds} rounds needs two or more \
             validators, a round after it and at least one silent round (rounds: {})",
            config.rounds
        ));
    }
    Ok(())
}

/// Each validator's vtrust in one round ([`round_vtrust`] among those
/// that judged it; `None` for a silent one, or for all when none set
/// weights).
pub(super) fn vtrust_of_round(stakes: &[f64], reports: &Reports) -> Result<Vec<Option<f64>>> {
    let (present, present_stakes): (Vec<&RoundReport>, Vec<f64>) = reports
        .iter()
        .zip(stakes)
        .filter_map(|(r, &s)| r.as_ref().map(|r| (r, s)))
        .unzip();
    let mut values = round_vtrust(&present_stakes, &present)?
        .unwrap_or_default()
        .into_iter();
    Ok(reports
        .iter()
        .map(|r| r.as_ref().and_then(|_| values.next()))
        .collect())
}

/// Prints one line per validator: stake share, the master it judged
/// against, the lead it saw and its verdict on the lead's master, vtrust.
pub(super) fn print_validators(
    names: &[String],
    validators: &[Validator],
    stakes: &[f64],
    reports: &Reports,
    vtrust: &[Option<f64>],
) {
    let total: f64 = stakes.iter().sum();
    println!(
        "  {:<12} {:>5}  {:<14} {:<12} {:<24} {:>6}",
        "validator", "stake", "judged against", "lead", "verdict", "vtrust"
    );
    for (i, report) in reports.iter().enumerate() {
        let Some(report) = report else {
            println!(
                "  {:<12} {:>4.0}%  silent",
                names[i],
                100.0 * stakes[i] / total
            );
            continue;
        };
        let (lead, verdict) = report.lead.as_ref().map_or(("-", "-"), |l| {
            (name_of(validators, names, &l.lead), l.verdict.as_str())
        });
        let verdict: String = verdict.chars().take(24).collect();
        println!(
            "  {:<12} {:>4.0}%  {:<14} {:<12} {:<24} {:>6}",
            names[i],
            100.0 * stakes[i] / total,
            report.master_before.short(),
            lead,
            verdict,
            vtrust[i].map_or("-".into(), |v| format!("{v:.3}"))
        );
    }
}

/// Writes `vtrust.svg` into `dir`: each validator's vtrust per round.
pub(super) fn write_vtrust_chart(
    dir: &Path,
    names: &[String],
    per_round: &[Vec<Option<f64>>],
) -> Result<()> {
    let mut chart = LineChart::new("vtrust per validator", "round", "vtrust");
    for (i, name) in names.iter().enumerate() {
        let points = per_round
            .iter()
            .enumerate()
            .filter_map(|(round, v)| v[i].map(|v| ((round + 1) as f64, v)))
            .collect();
        chart.add(name, points);
    }
    chart.write(&dir.join("vtrust.svg"))
}
