//! Arbitrary bytes as a validator's published round log
//! (`validators/<hotkey>/evals/<deadline>.jsonl`, read by auditors) and as
//! its published moving averages: never a panic; every line either a
//! record or a reason; every record written back reads back to the same
//! bytes (non-finite losses survive as `null`).
#![no_main]

use bistro_core::node::log::{EvalRecord, parse_lines};
use bistro_core::score::MovingAverages;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let lines = parse_lines(data);
    assert!(lines.len() <= data.len() + 1);
    for (number, parsed) in lines {
        assert!(number >= 1);
        let Ok(record) = parsed else {
            continue;
        };
        let bytes = serde_json::to_vec(&record).expect("a record serialises");
        let again: EvalRecord = serde_json::from_slice(&bytes).expect("its JSON parses");
        assert_eq!(serde_json::to_vec(&again).expect("it serialises"), bytes);
    }
    if let Ok(averages) = MovingAverages::from_json(data) {
        let bytes = averages.to_json().expect("averages serialise");
        MovingAverages::from_json(&bytes).expect("their JSON parses");
    }
});
