//! Arbitrary bytes into the sealed envelope's header parser
//! (`seal::read_header`, no cryptography: the fuzz build has no `timelock`
//! feature). For every envelope it accepts, the layout it reports must add
//! up to the input exactly, and the prefix parser must agree.
#![no_main]

use bistro_core::seal::{self, HEADER_LEN, TAG_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let max_plain = 1 << 20;
    let Ok(header) = seal::read_header(data, max_plain) else {
        return;
    };
    assert!(seal::is_sealed(data));
    assert_eq!(
        seal::read_fixed_header(data, max_plain).expect("the prefix parser accepts it too"),
        header
    );
    assert_eq!(header.sealed_len(), Some(data.len() as u64));
    assert!(header.plain_len <= max_plain);
    let chunks = header.chunk_count();
    let total: u64 = (0..chunks).map(|i| header.chunk_plain_len(i)).sum();
    assert_eq!(total, header.plain_len);
    assert_eq!(
        header.payload_offset() + header.plain_len + chunks * TAG_LEN as u64,
        data.len() as u64
    );
    assert_eq!(&header.to_bytes()[..], &data[..HEADER_LEN]);
    // Any other limit below the plaintext is refused, never a panic.
    let _ = seal::read_header(data, header.plain_len.saturating_sub(1));
});
