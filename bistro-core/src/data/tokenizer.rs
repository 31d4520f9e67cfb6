//! GPT-2's byte-pair encoding (tiktoken's `r50k_base`, whose ranks ship
//! inside `tiktoken-rs`: no download, works offline).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::OnceLock;

use tiktoken_rs::CoreBPE;

use super::source::{GPT2_EOS_ID, TokenizerInfo};
use crate::error::{Error, Result};

/// Longest text one call encodes, in bytes.
pub const MAX_TEXT_BYTES: usize = 64 << 20;

/// The GPT-2 tokenizer. Cheap to create after the first one (the ranks are
/// parsed once per process) and shareable between threads.
#[derive(Clone, Copy)]
pub struct Gpt2Tokenizer {
    bpe: &'static CoreBPE,
}

impl std::fmt::Debug for Gpt2Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Gpt2Tokenizer")
    }
}

fn ranks() -> &'static std::result::Result<CoreBPE, String> {
    static BPE: OnceLock<std::result::Result<CoreBPE, String>> = OnceLock::new();
    BPE.get_or_init(|| tiktoken_rs::r50k_base().map_err(|e| e.to_string()))
}

impl Gpt2Tokenizer {
    /// Loads the tokenizer (parses the built-in ranks the first time).
    pub fn new() -> Result<Self> {
        match ranks() {
            Ok(bpe) => Ok(Gpt2Tokenizer { bpe }),
            Err(e) => Err(Error::Unavailable(format!("GPT-2 tokenizer ranks: {e}"))),
        }
    }

    /// Name, vocabulary size and EOS id.
    pub fn info(&self) -> TokenizerInfo {
        TokenizerInfo::gpt2()
    }

    /// The tokens of `text`, as ordinary text: a literal `<|endoftext|>` in
    /// the text is encoded as its characters, never as the EOS token, so
    /// text cannot forge document boundaries.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        if text.len() > MAX_TEXT_BYTES {
            return Err(Error::limit(
                "text to tokenize (bytes)",
                MAX_TEXT_BYTES as u64,
                text.len() as u64,
            ));
        }
        // tiktoken-rs unwraps the regex engine's result; a pathological text
        // could make it panic. Contain that as an error.
        catch_unwind(AssertUnwindSafe(|| self.bpe.encode_ordinary(text))).map_err(|_| {
            Error::corrupt(
                "text",
                "tokenizer",
                "the GPT-2 pre-tokenizer failed on this text",
            )
        })
    }

    /// The tokens of one document: [`Self::encode`] followed by EOS.
    pub fn encode_document(&self, text: &str) -> Result<Vec<u32>> {
        let mut tokens = self.encode(text)?;
        tokens.push(GPT2_EOS_ID);
        Ok(tokens)
    }

    /// The text of `tokens` (invalid UTF-8 from cut-off byte sequences is
    /// replaced by U+FFFD); unknown ids are an error.
    pub fn decode(&self, tokens: &[u32]) -> Result<String> {
        let bytes = self
            .bpe
            .decode_bytes(tokens)
            .map_err(|e| Error::InvalidArgument(format!("cannot decode tokens: {e}")))?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_gpt2() {
        let t = Gpt2Tokenizer::new().unwrap();
        // Reference ids from GPT-2's published vocabulary: "Hello" = 15496,
        // " world" = 995.
        assert_eq!(t.encode("Hello world").unwrap(), vec![15496, 995]);
        assert_eq!(t.encode_document("Hello").unwrap(), vec![15496, 50256]);
        let text = "It is a truth universally acknowledged, that a single man…";
        assert_eq!(t.decode(&t.encode(text).unwrap()).unwrap(), text);
    }

    #[test]
    fn special_token_text_is_ordinary() {
        let t = Gpt2Tokenizer::new().unwrap();
        let tokens = t.encode("a<|endoftext|>b").unwrap();
        assert!(!tokens.contains(&GPT2_EOS_ID));
        assert_eq!(t.decode(&tokens).unwrap(), "a<|endoftext|>b");
    }

    #[test]
    fn long_whitespace_runs_do_not_panic() {
        let t = Gpt2Tokenizer::new().unwrap();
        let text = format!("a{}b", " ".repeat(200_000));
        // Either tokens or a typed error; never a panic out of this call.
        if let Ok(tokens) = t.encode(&text) {
            assert_eq!(t.decode(&tokens).unwrap(), text);
        }
        assert!(t.decode(&[u32::MAX]).is_err());
    }
}
