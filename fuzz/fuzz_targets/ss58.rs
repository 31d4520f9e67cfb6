//! Arbitrary strings as hotkeys: SS58 addresses (base58 with a BLAKE2b
//! checksum) and hex. A typed error, or a key whose SS58 form parses back to
//! the same key.
#![no_main]

use bistro_core::PublicKey;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    for key in [PublicKey::from_ss58(s).ok(), s.parse::<PublicKey>().ok()]
        .into_iter()
        .flatten()
    {
        let address = key.to_ss58();
        assert_eq!(PublicKey::from_ss58(&address).unwrap(), key);
        assert_eq!(address.parse::<PublicKey>().unwrap(), key);
    }
});
