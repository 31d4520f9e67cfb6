//! Arbitrary bytes as a validator's run parameters
//! (`validators/<hotkey>/params.json`, read by miners and auditors): a typed
//! error, or parameters whose JSON parses back to themselves, with no
//! difference from themselves.
#![no_main]

use bistro_core::node::run_params::RunParams;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(params) = RunParams::from_json(data) else {
        return;
    };
    let json = params.to_json().expect("it serialises");
    let again = RunParams::from_json(&json).expect("its JSON parses");
    assert_eq!(again, params);
    assert!(params.differences(&again).expect("it compares").is_empty());
});
