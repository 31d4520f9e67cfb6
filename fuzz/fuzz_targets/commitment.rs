//! Arbitrary bytes as a bucket commitment (what a miner publishes on chain):
//! a typed error, or a commitment that encodes and parses back to itself.
#![no_main]

use bistro_core::storage::BucketCommitment;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(commitment) = BucketCommitment::parse(data) else {
        return;
    };
    let encoded = commitment.encode().expect("a parsed commitment encodes");
    let again = BucketCommitment::parse(encoded.as_bytes()).expect("its encoding parses");
    assert_eq!(again, commitment);
});
