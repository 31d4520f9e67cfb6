//! Arbitrary bytes as a master pointer (`master.json` in a validator's
//! bucket): a typed error, or a pointer whose JSON parses back to itself.
#![no_main]

use bistro_core::storage::keys::{MasterPointer, master_key};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(pointer) = MasterPointer::from_json(data) else {
        return;
    };
    assert_eq!(pointer.key, master_key(&pointer.revision));
    let again = MasterPointer::from_json(&pointer.to_json()).expect("its JSON parses");
    assert_eq!(again, pointer);
});
