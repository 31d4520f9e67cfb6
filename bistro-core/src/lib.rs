//! # bistro-core
//!
//! The SDK of **bistro**: incentivized, decentralized training of language
//! models on Bittensor. A shared *master* model is trained by *miners*, each on
//! its own window of dataset pages; a miner uploads the change it made (a
//! *delta*) to its bucket; *validators* apply each delta to the master, measure
//! the loss on the miner's pages and on random pages, merge what helps, and set
//! weights on the chain that pay the miners.
//!
//! The crate is synchronous and library-first. The default feature set is small
//! and holds what must agree bit-for-bit between every participant:
//!
//! - [`codec`]: the delta file format (encoder, zero-copy validating reader,
//!   in-place apply);
//! - [`pages`]: deterministic page selection from public inputs;
//! - [`score`]: the scoring rule, moving averages and chain weights;
//! - [`storage`]: buckets (a local directory by default; S3 with `s3`);
//! - [`chain`]: the chain interface (a local chain by default; Bittensor's
//!   subtensor with `subtensor`);
//! - [`data`]: page sources (memory-mapped token shards by default; HTTP
//!   shards and RefinedWeb rows with `http`);
//! - [`node`]: the protocol's parameters, rejections and evaluation log, and
//!   with `torch` the miner (`node::Miner`) and validator (`node::Validator`);
//! - `model` (feature `torch`): the LLaMA-family model on libtorch, its
//!   checkpoints, training and the bridge to the codec;
//! - [`seal`]: the sealed-delta envelope (its header parser always; sealing
//!   and opening with `timelock`);
//! - `timelock` (feature `timelock`): timelock encryption to drand quicknet
//!   or a local beacon (sealed deltas, commit-reveal weights).
//!
//! Heavier parts are features: `torch` (the model, miner and validator on
//! libtorch), `s3`, `http`, `tokenizer`, `subtensor`, `sr25519`, `timelock`. `full`
//! enables them all. The specifications are in `docs/` (protocol, incentive,
//! delta format, pages, shards, storage, chain, model, C ABI).
//!
//! ## Dependencies beyond the user's list, and why
//! - `half`: the standard f16/bf16 types for the codec's encodings.
//! - `blake3`: the content digest (several GB/s per core, parallel, with an XOF
//!   used as the page-selection PRNG); implemented in C, Python and Rust.
//! - `blake2`: the SS58 address checksum (BLAKE2b-512), as Substrate defines it.
//! - `serde`/`serde_json`: HF `config.json`, validator state, evaluation logs.
//! - `schnorrkel` (`sr25519`): Substrate's own sr25519 implementation.
//! - `tiktoken-rs` (`tokenizer`): the GPT-2 BPE with its ranks built in (offline).
//! - `tokio` (`subtensor`): the runtime `subxt` needs, kept inside the chain module.
//! - `scale-info` (`subtensor`): the runtime metadata's type registry (already
//!   in `subxt`'s tree, not re-exported by it).
//! - `argon2`, `crypto_secretbox` (`subtensor`): decrypting `$NACL` wallet key
//!   files (libsodium's argon2i and XSalsa20-Poly1305, from RustCrypto).
//! - `attohttpc`, `http`, `quick-xml` (`s3`): `rust-s3`'s own dependencies,
//!   used directly to classify transport errors for retries, to pin ranged
//!   downloads with `If-Match`, and to parse listings read through a byte cap.
//! - `timelock` 0.0.1 and its ark 0.4 BLS12-381 crates, `sha2`, `rand_chacha`,
//!   `rand_core`, `getrandom` (`timelock`): the exact timelock scheme subtensor
//!   and `bittensor-drand` use (all in that crate's own tree); `ring`
//!   (`timelock`, already in the tree through rustls): AES-256-GCM for sealed
//!   payloads with AES-NI/VAES, several times faster than a portable one.
#![warn(missing_docs)]
// docs.rs builds with every feature and `--cfg docsrs`: label each item
// with the features it needs.
#![cfg_attr(docsrs, feature(doc_cfg))]
// `fuzzing` compiles three pure parser files a second time (see `fuzzing`).
#![cfg_attr(feature = "fuzzing", allow(clippy::duplicate_mod))]

pub mod chain;
pub mod codec;
pub mod data;
pub mod digest;
pub mod error;
pub mod identity;
pub mod node;
pub mod pages;
pub mod score;
pub mod seal;
pub mod storage;
pub mod util;

#[cfg(feature = "timelock")]
pub mod timelock;

// The model: its configuration always; the libtorch model, checkpoints,
// training and the outer optimizer with the `torch` feature.
pub mod model;

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;

pub use digest::Digest;
pub use error::{Error, Result};
pub use identity::{PublicKey, Signature};

#[cfg(feature = "sr25519")]
#[cfg_attr(docsrs, doc(cfg(feature = "sr25519")))]
pub use identity::Keypair;
