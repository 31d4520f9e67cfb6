//! The committed sample corpus (`data/sample/`): it opens, every page passes
//! its digest, it matches its manifest, and it is usable end to end with
//! page selection and batching.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // not library code: a failure here should stop loudly

use bistro_core::data::{PageSource, ShardSource, TokenizerInfo, sample};
use bistro_core::pages::{global_pages, local_pages, window};
use serde_json::Value;

fn manifest() -> Value {
    let text = std::fs::read_to_string(sample::dir().join("manifest.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn check_split(source: &ShardSource, entry: &Value) {
    source.verify().unwrap();
    assert_eq!(
        source.dataset_id().to_hex(),
        entry["dataset_id"].as_str().unwrap()
    );
    assert_eq!(source.num_pages(), entry["pages"].as_u64().unwrap());
    let tokens: usize = (0..source.num_pages())
        .map(|id| source.page(id).unwrap().num_tokens())
        .sum();
    assert_eq!(tokens as u64, entry["tokens"].as_u64().unwrap());
    assert_eq!(source.tokenizer(), TokenizerInfo::gpt2());
}

#[test]
fn sample_splits_match_their_manifest() {
    let m = manifest();
    let train = sample::train().unwrap();
    let heldout = sample::heldout().unwrap();
    check_split(&train, &m["train"]);
    check_split(&heldout, &m["heldout"]);
    assert!(train.num_pages() >= 500, "a few MB of text");
    assert_ne!(train.dataset_id(), heldout.dataset_id());
}

#[test]
fn sample_pages_feed_page_selection_and_batches() {
    let train = sample::train().unwrap();
    let params = train.params(8, 100, 2).unwrap();
    let hash = [3u8; 32];
    let local = local_pages(&params, 12, 1234, &hash, 2).unwrap();
    let w = window(&params, 12, params.epoch_of(1234)).unwrap();
    assert!(local.iter().all(|&p| w.contains(p)));
    let mut ids = local;
    ids.extend(global_pages(&params, 1234, &hash, 2).unwrap());
    let batch = train.batch(&ids, 256).unwrap();
    // Full 1024-token pages make 4 full rows of 256 each.
    assert_eq!(batch.rows, 16);
    assert!(batch.tokens.iter().all(|&t| t < 50_257));
    assert_eq!(batch.mask.iter().filter(|&&m| m == 0).count(), 0);
}

#[cfg(feature = "tokenizer")]
#[test]
fn sample_text_is_austen_and_heldout_is_unseen() {
    use bistro_core::data::tokenizer::Gpt2Tokenizer;
    let t = Gpt2Tokenizer::new().unwrap();
    let train = sample::train().unwrap();
    let heldout = sample::heldout().unwrap();
    let first = t.decode(&train.page(0).unwrap().tokens).unwrap();
    assert!(first.starts_with("EMMA"), "{first:.80}");
    assert!(first.contains("Emma Woodhouse, handsome, clever, and rich"));
    let train_text: String = (0..train.num_pages())
        .map(|id| t.decode(&train.page(id).unwrap().tokens).unwrap())
        .collect();
    // Sentences from the held-out chapters never occur in the training split.
    for id in (0..heldout.num_pages()).step_by(10) {
        let text = t.decode(&heldout.page(id).unwrap().tokens).unwrap();
        let line = text
            .split('\n')
            .map(str::trim)
            .find(|l| l.len() > 120)
            .expect("a long paragraph in the page");
        assert!(
            !train_text.contains(line),
            "held-out page {id} occurs in training"
        );
    }
}
