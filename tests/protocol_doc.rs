//! The docs are the code: the parameters table of `docs/protocol.md` is the
//! local network's configuration (every field of `SubnetParams` is in it,
//! with the value the local network uses: an auditor who follows the docs
//! reproduces the run), and the README's complete miner is
//! `examples/minimal_miner.rs`, which CI compiles.
#![cfg(feature = "full")]

use std::collections::BTreeMap;

use bistro::data::{PageSource, sample};
use bistro::localnet::LocalnetConfig;
use bistro::score::ScoreRule;

/// The table's rows: every backquoted field name of the first column, with
/// the last column's text.
fn table() -> BTreeMap<String, String> {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/protocol.md")).unwrap();
    let section = doc
        .split("## Parameters")
        .nth(1)
        .expect("a Parameters section")
        .split("\n## ")
        .next()
        .unwrap();
    let mut rows = BTreeMap::new();
    for line in section.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        let value = cells.last().unwrap().to_string();
        for (i, name) in cells[0].split('`').enumerate() {
            // Odd pieces are inside backquotes; skip symbols like `R`.
            if i % 2 == 1 && name.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                rows.insert(name.to_string(), value.clone());
            }
        }
    }
    rows
}

#[test]
fn the_parameters_table_is_the_local_networks_configuration() {
    let data = sample::train().unwrap();
    let params = LocalnetConfig::default().params(&data).unwrap();
    let rows = table();

    // Every field, and nothing else.
    let json = serde_json::to_value(&params).unwrap();
    let fields: Vec<&String> = json.as_object().unwrap().keys().collect();
    let documented: Vec<&String> = rows.keys().collect();
    assert_eq!(
        documented, fields,
        "the table's fields are not SubnetParams' fields"
    );

    let number = |s: &str| -> f64 { s.trim().parse().unwrap_or_else(|_| panic!("{s:?}")) };
    let list = |field: &str| -> Vec<String> {
        rows[field]
            .split(',')
            .map(|s| s.trim().to_string())
            .collect()
    };
    assert_eq!(number(&rows["netuid"]), f64::from(params.netuid));
    let pages = list("pages");
    assert_eq!(pages[0], "sample corpus");
    assert_eq!(
        data.params(1, 1, 1).unwrap().dataset_id,
        params.pages.dataset_id
    );
    assert_eq!(number(&pages[1]), params.pages.window_pages as f64, "W");
    assert_eq!(number(&pages[2]), params.pages.epoch_blocks as f64, "E");
    assert_eq!(
        number(&pages[3]),
        params.pages.reveal_delay_blocks as f64,
        "D"
    );
    assert_eq!(number(&rows["round_blocks"]), params.round_blocks as f64);
    let sides = list("local_pages");
    assert_eq!(number(&sides[0]), params.local_pages as f64);
    assert_eq!(number(&sides[1]), params.global_pages as f64);
    assert_eq!(number(&rows["seq_len"]), params.seq_len as f64);
    assert!(rows["rule"].contains("defaults"), "{}", rows["rule"]);
    assert_eq!(params.rule, ScoreRule::default());
    let similarity = list("similarity");
    assert_eq!(number(&similarity[0]), params.similarity.max_explained);
    assert_eq!(
        number(&similarity[1]),
        params.similarity.window_rounds as f64
    );
    assert_eq!(number(&rows["ema_alpha"]), params.ema_alpha);
    assert_eq!(
        number(&rows["weights_interval_blocks"]),
        params.weights_interval_blocks as f64
    );
    assert_eq!(number(&rows["version_key"]), params.version_key as f64);
    assert_eq!(
        number(&rows["failover_rounds"]),
        params.failover_rounds as f64
    );
}

#[test]
fn the_readmes_complete_miner_is_the_compiled_example_and_both_are_short() {
    let root = env!("CARGO_MANIFEST_DIR");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    let example = std::fs::read_to_string(format!("{root}/examples/minimal_miner.rs")).unwrap();
    let code = |text: &str| -> String {
        let start = text
            .find("use bistro::cli::Args;")
            .expect("the miner's first line");
        let end = start + text[start..].find("\n}\n").expect("the end of main") + 3;
        text[start..end].to_string()
    };
    assert_eq!(code(&readme), code(&example));
    let lines = code(&example).lines().count();
    assert!(lines <= 30, "the complete miner has {lines} lines");
    let validator =
        std::fs::read_to_string(format!("{root}/examples/minimal_validator.rs")).unwrap();
    let lines = validator.lines().filter(|l| !l.starts_with("//!")).count();
    assert!(lines <= 30, "the complete validator has {lines} lines");
}
