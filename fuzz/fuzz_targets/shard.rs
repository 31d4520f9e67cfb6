//! Arbitrary bytes into the token-shard reader (`docs/shards.md`): it must
//! return a typed error or a view whose header re-encodes to the same bytes
//! and whose pages hold only in-vocabulary tokens with consistent offsets.
//! Each input is tried as given and again with its index digest recomputed,
//! so that the table checks behind the digest are reached too.
#![no_main]

use bistro_core::Digest;
use bistro_core::data::shard::{HEADER_LEN, Header, ShardView};
use libfuzzer_sys::fuzz_target;

/// Pages read per input (the rest behave the same; this bounds run time).
const MAX_PAGES_READ: u64 = 256;

fn check(data: &[u8]) {
    let Ok(view) = ShardView::parse(data) else {
        return;
    };
    let header = view.header();
    assert_eq!(&header.encode()[..], &data[..HEADER_LEN]);
    for p in 0..view.page_count().min(MAX_PAGES_READ) {
        if let Ok(page) = view.page(p) {
            assert!(page.tokens.iter().all(|&t| t < header.tokenizer.vocab_size));
            assert_eq!(page.offsets.first(), Some(&0));
            assert_eq!(page.offsets.last(), Some(&page.tokens.len()));
            assert!(page.offsets.windows(2).all(|w| w[0] <= w[1]));
        }
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    let Ok(header) = Header::parse(data) else {
        return;
    };
    let layout = header.layout();
    if data.len() as u64 != layout.end {
        return;
    }
    let mut fixed = data.to_vec();
    let digest = Digest::of(&fixed[HEADER_LEN..layout.tokens as usize]);
    fixed[80..112].copy_from_slice(&digest.0);
    check(&fixed);
});
