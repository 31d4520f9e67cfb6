//! Converts text files or JSON lines into token shards (`docs/shards.md`),
//! tokenized with GPT-2, with a progress bar on stderr.
//!
//! ```text
//! cargo run --release --no-default-features --features tokenizer --example make_shards -- \
//!     --input austen.jsonl --format jsonl --out data/sample --page-tokens 1024 --heldout-every 20
//! ```
//!
//! Options:
//! - `--input PATH` (repeatable): a file, or a directory (its files, sorted by name).
//! - `--format text|jsonl` (default `text`). Text: `--split file` (each file is a
//!   document, the default) or `--split blank-lines` (paragraphs). JSON lines:
//!   one object per line, the document in field `--field` (default `text`);
//!   blank lines are skipped, anything else that is not such an object is an error.
//! - `--out DIR`: where `train-NNN.shard`, `heldout-NNN.shard` and
//!   `manifest.json` are written (created if missing).
//! - `--page-tokens N` (default 1024): documents (each followed by EOS) are laid
//!   end to end and cut into pages of exactly `N` tokens (the last may be
//!   shorter); each page keeps the document pieces as its sequences. Or,
//!   instead (not both), `--docs-per-page K`: each page is `K` whole
//!   documents, one sequence each (like RefinedWeb's pages of 100 rows).
//! - `--pages-per-shard N` (default 65536), `--token-bytes 2|4` (default 2).
//! - `--heldout-every K` (default 0, none): document `i` (from 0) goes to the
//!   held-out split when `i % K == K - 1`.
//!
//! Sizes past the shard format's limits, a `--token-bytes` other than 2 or 4
//! and unknown or repeated flags are errors (exit status 2); `--help` lists
//! every flag with its default.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use bistro::data::TokenizerInfo;
use bistro::data::shard::{MAX_PAGE_SEQUENCES, MAX_PAGE_TOKENS, MAX_PAGES};
use bistro::data::shard::{ShardSummary, ShardWriter, dataset_identity};
use bistro::data::tokenizer::Gpt2Tokenizer;
use bistro::{Digest, Error, Result};
use clap::Parser;
use clap::builder::RangedU64ValueParser;

/// Converts text files or JSON lines into token shards (docs/shards.md), tokenized with GPT-2.
#[derive(Parser, Debug)]
struct Options {
    /// A file, or a directory (its files, sorted by name); repeatable
    #[arg(long = "input", value_name = "PATH", required = true)]
    inputs: Vec<PathBuf>,
    /// text, or JSON lines (one object per line, the document in --field)
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Text: each file is a document, or each paragraph (split at blank lines)
    #[arg(long, value_enum, default_value_t = SplitAt::File)]
    split: SplitAt,
    /// JSON lines: the field that holds the document
    #[arg(long, value_name = "NAME", default_value = "text")]
    field: String,
    /// Where the shards and manifest.json are written (created if missing)
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Documents laid end to end, cut into pages of exactly N tokens
    #[arg(
        long = "page-tokens",
        value_name = "N",
        default_value_t = 1024,
        value_parser = RangedU64ValueParser::<usize>::new().range(1..=MAX_PAGE_TOKENS),
    )]
    page_tokens: usize,
    /// Instead of --page-tokens: pages of K whole documents, one sequence each
    #[arg(
        long = "docs-per-page",
        value_name = "K",
        conflicts_with = "page_tokens",
        value_parser = RangedU64ValueParser::<usize>::new().range(1..=MAX_PAGE_SEQUENCES),
    )]
    docs_per_page: Option<usize>,
    /// Pages per shard file
    #[arg(
        long = "pages-per-shard",
        value_name = "N",
        default_value_t = 65_536,
        value_parser = clap::value_parser!(u64).range(1..=MAX_PAGES),
    )]
    pages_per_shard: u64,
    /// Bytes per token: 2 or 4
    #[arg(
        long = "token-bytes",
        value_name = "2|4",
        default_value_t = 2,
        value_parser = token_bytes,
    )]
    token_bytes: u32,
    /// Document i (from 0) goes to the held-out split when i % K == K - 1 (0: none)
    #[arg(long = "heldout-every", value_name = "K", default_value_t = 0)]
    heldout_every: u64,
}

/// `--format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Text,
    Jsonl,
}

/// `--split`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum SplitAt {
    File,
    BlankLines,
}

/// `--token-bytes`: the shard format's token widths, 2 or 4 (anything else,
/// however large, is an error rather than truncated).
fn token_bytes(value: &str) -> std::result::Result<u32, String> {
    match value.trim() {
        "2" => Ok(2),
        "4" => Ok(4),
        _ => Err(format!("{value:?} is not 2 or 4")),
    }
}

/// A progress bar over input bytes, redrawn at most ten times a second.
struct Progress {
    total: u64,
    done: u64,
    tokens: u64,
    start: Instant,
    last_draw: Instant,
}

impl Progress {
    fn advance(&mut self, bytes: u64, tokens: u64) {
        self.done += bytes;
        self.tokens += tokens;
        if self.last_draw.elapsed().as_millis() >= 100 || self.done >= self.total {
            self.draw();
        }
    }

    fn draw(&mut self) {
        self.last_draw = Instant::now();
        let frac = if self.total == 0 {
            1.0
        } else {
            self.done as f64 / self.total as f64
        };
        let filled = (frac * 30.0).round() as usize;
        let secs = self.start.elapsed().as_secs_f64().max(1e-9);
        eprint!(
            "\r[{}{}] {:5.1}%  {:.1}/{:.1} MB  {} tokens  {:.0} tokens/s ",
            "#".repeat(filled.min(30)),
            ".".repeat(30 - filled.min(30)),
            100.0 * frac,
            self.done as f64 / 1e6,
            self.total as f64 / 1e6,
            self.tokens,
            self.tokens as f64 / secs
        );
        let _ = std::io::stderr().flush();
    }
}

/// One output split: a sequence of shard files and the page being built.
struct Split {
    name: &'static str,
    dir: PathBuf,
    tokenizer: TokenizerInfo,
    token_bytes: u32,
    pages_per_shard: u64,
    writer: Option<ShardWriter>,
    shards: Vec<ShardSummary>,
    /// The page under construction: its sequences.
    page: Vec<Vec<u32>>,
    page_len: usize,
}

impl Split {
    fn new(name: &'static str, o: &Options, tokenizer: TokenizerInfo) -> Split {
        Split {
            name,
            dir: o.out.clone(),
            tokenizer,
            token_bytes: o.token_bytes,
            pages_per_shard: o.pages_per_shard,
            writer: None,
            shards: Vec::new(),
            page: Vec::new(),
            page_len: 0,
        }
    }

    fn flush_page(&mut self) -> Result<()> {
        if self.page.is_empty() {
            return Ok(());
        }
        if self.writer.is_none() {
            let path = self
                .dir
                .join(format!("{}-{:03}.shard", self.name, self.shards.len()));
            self.writer = Some(ShardWriter::create(
                path,
                self.tokenizer.clone(),
                self.token_bytes,
            )?);
        }
        if let Some(w) = self.writer.as_mut() {
            w.push_page(self.page.iter().map(|s| &s[..]))?;
            if w.page_count() >= self.pages_per_shard {
                self.finish_shard()?;
            }
        }
        self.page.clear();
        self.page_len = 0;
        Ok(())
    }

    fn finish_shard(&mut self) -> Result<()> {
        if let Some(w) = self.writer.take() {
            self.shards.push(w.finish()?);
        }
        Ok(())
    }

    /// Adds one document's tokens (already ending with EOS).
    fn add(&mut self, doc: &[u32], o: &Options) -> Result<()> {
        if let Some(docs_per_page) = o.docs_per_page {
            self.page.push(doc.to_vec());
            if self.page.len() >= docs_per_page {
                self.flush_page()?;
            }
            return Ok(());
        }
        let mut rest = doc;
        while !rest.is_empty() {
            let room = o.page_tokens - self.page_len;
            let (piece, tail) = rest.split_at(room.min(rest.len()));
            self.page.push(piece.to_vec());
            self.page_len += piece.len();
            rest = tail;
            if self.page_len == o.page_tokens {
                self.flush_page()?;
            }
        }
        Ok(())
    }

    fn finish(mut self) -> Result<Vec<ShardSummary>> {
        self.flush_page()?;
        self.finish_shard()?;
        Ok(self.shards)
    }
}

fn input_files(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(input)
                .map_err(|e| Error::io(input, e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect();
            entries.sort();
            files.extend(entries);
        } else {
            files.push(input.clone());
        }
    }
    Ok(files)
}

/// Calls `doc` with each document of `path` and the input bytes it covered.
fn for_each_document(
    path: &Path,
    o: &Options,
    mut doc: impl FnMut(&str, u64) -> Result<()>,
) -> Result<()> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut reader = BufReader::new(file);
    if o.format == Format::Jsonl {
        let mut line = String::new();
        let mut number = 0u64;
        loop {
            line.clear();
            let n = reader
                .read_line(&mut line)
                .map_err(|e| Error::io(path, e))?;
            if n == 0 {
                return Ok(());
            }
            number += 1;
            if line.trim().is_empty() {
                doc("", n as u64)?;
                continue;
            }
            let value: serde_json::Value = serde_json::from_str(&line).map_err(|e| {
                Error::corrupt(
                    "jsonl",
                    format!("{} line {number}", path.display()),
                    e.to_string(),
                )
            })?;
            let text = value
                .get(&o.field)
                .and_then(|v| v.as_str())
                .ok_or_else(|| {
                    Error::corrupt(
                        "jsonl",
                        format!("{} line {number}", path.display()),
                        format!("no string field {:?}", o.field),
                    )
                })?;
            doc(text, n as u64)?;
        }
    }
    let mut text = String::new();
    std::io::Read::read_to_string(&mut reader, &mut text).map_err(|e| Error::io(path, e))?;
    if o.split == SplitAt::File {
        return doc(&text, text.len() as u64);
    }
    for para in text.split("\n\n") {
        doc(para.trim(), para.len() as u64 + 2)?;
    }
    Ok(())
}

fn run() -> Result<()> {
    let o = Options::parse();
    std::fs::create_dir_all(&o.out).map_err(|e| Error::io(&o.out, e))?;
    let tokenizer = Gpt2Tokenizer::new()?;
    let info = tokenizer.info();
    let files = input_files(&o.inputs)?;
    let total = files
        .iter()
        .map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0))
        .sum();
    let now = Instant::now();
    let mut progress = Progress {
        total,
        done: 0,
        tokens: 0,
        start: now,
        last_draw: now,
    };
    let mut train = Split::new("train", &o, info.clone());
    let mut heldout = Split::new("heldout", &o, info.clone());
    let mut index = 0u64;
    let mut documents = [0u64; 2];
    for file in &files {
        for_each_document(file, &o, |text, bytes| {
            if text.trim().is_empty() {
                progress.advance(bytes, 0);
                return Ok(());
            }
            let tokens = tokenizer.encode_document(text)?;
            let held = o.heldout_every > 0 && index % o.heldout_every == o.heldout_every - 1;
            index += 1;
            documents[usize::from(held)] += 1;
            if held {
                heldout.add(&tokens, &o)?
            } else {
                train.add(&tokens, &o)?
            }
            progress.advance(bytes, tokens.len() as u64);
            Ok(())
        })?;
    }
    progress.draw();
    eprintln!();
    let splits = [("train", train.finish()?), ("heldout", heldout.finish()?)];
    let mut manifest = serde_json::Map::new();
    manifest.insert(
        "format".into(),
        "bistro token shards v1 (docs/shards.md)".into(),
    );
    manifest.insert(
        "tokenizer".into(),
        serde_json::to_value(&info).map_err(|e| Error::InvalidArgument(e.to_string()))?,
    );
    for ((name, shards), docs) in splits.iter().zip(documents) {
        let ids: Vec<Digest> = shards.iter().map(|s| s.identity).collect();
        let dataset = dataset_identity(&ids);
        let pages: u64 = shards.iter().map(|s| s.pages).sum();
        let tokens: u64 = shards.iter().map(|s| s.tokens).sum();
        println!("{name}: {docs} documents, {pages} pages, {tokens} tokens, dataset id {dataset}");
        let files: Vec<serde_json::Value> = shards
            .iter()
            .map(|s| {
                println!(
                    "  {} {} pages {} bytes {}",
                    s.path.display(),
                    s.pages,
                    s.bytes,
                    s.identity
                );
                serde_json::json!({
                    "file": s.path.file_name().map(|n| n.to_string_lossy().into_owned()),
                    "identity": s.identity.to_hex(),
                    "pages": s.pages,
                    "sequences": s.sequences,
                    "tokens": s.tokens,
                    "bytes": s.bytes,
                })
            })
            .collect();
        manifest.insert(
            name.to_string(),
            serde_json::json!({
                "dataset_id": dataset.to_hex(),
                "documents": docs,
                "pages": pages,
                "tokens": tokens,
                "shards": files,
            }),
        );
    }
    let path = o.out.join("manifest.json");
    let text = serde_json::to_string_pretty(&serde_json::Value::Object(manifest))
        .map_err(|e| Error::InvalidArgument(e.to_string()))?;
    bistro_core::util::atomic::write_file_atomic(&path, (text + "\n").as_bytes())?;
    println!("wrote {}", path.display());
    Ok(())
}

fn main() {
    if let Err(e) = run() {
        eprintln!("make_shards: {e}");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;
    use clap::error::ErrorKind;

    /// Parses `--input a.txt --out o` and `args`.
    fn parse(args: &[&str]) -> std::result::Result<Options, clap::Error> {
        let base = ["make_shards", "--input", "a.txt", "--out", "o"];
        Options::try_parse_from(base.iter().chain(args))
    }

    #[test]
    fn the_documented_command_lines_parse() {
        // BENCHMARKS.md's line.
        let o = parse(&[
            "--format",
            "jsonl",
            "--page-tokens",
            "1024",
            "--heldout-every",
            "10",
        ])
        .unwrap();
        assert_eq!(o.inputs, [PathBuf::from("a.txt")]);
        assert_eq!(o.out, PathBuf::from("o"));
        assert_eq!(
            (o.format, o.page_tokens, o.heldout_every),
            (Format::Jsonl, 1024, 10)
        );
        // The defaults.
        let o = parse(&[]).unwrap();
        assert_eq!((o.format, o.split), (Format::Text, SplitAt::File));
        assert_eq!((o.page_tokens, o.docs_per_page), (1024, None));
        assert_eq!(
            (o.pages_per_shard, o.token_bytes, o.heldout_every),
            (65_536, 2, 0)
        );
        assert_eq!(o.field, "text");
        let o = parse(&[
            "--input=b",
            "--split=blank-lines",
            "--docs-per-page",
            "100",
            "--token-bytes=4",
        ])
        .unwrap();
        assert_eq!(o.inputs, [PathBuf::from("a.txt"), PathBuf::from("b")]);
        assert_eq!(
            (o.split, o.docs_per_page, o.token_bytes),
            (SplitAt::BlankLines, Some(100), 4)
        );
    }

    #[test]
    fn token_bytes_past_u32_are_errors_not_truncated() {
        // 2^32 + 2 used to be cast to u32 (2) and accepted.
        for bad in ["4294967298", "4294967300", "3", "0", "8", "two", ""] {
            let err = parse(&["--token-bytes", bad]).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::ValueValidation, "{bad}: {err}");
            assert_eq!(err.exit_code(), 2);
        }
    }

    #[test]
    fn sizes_out_of_range_are_errors() {
        for bad in [
            &["--page-tokens", "0"][..],
            &["--page-tokens", "16777217"],
            &["--page-tokens", "18446744073709551616"],
            &["--docs-per-page", "0"],
            &["--docs-per-page", "1048577"],
            &["--pages-per-shard", "0"],
            &["--pages-per-shard", "4294967297"],
            &["--heldout-every", "-1"],
            &["--format", "csv"],
            &["--split", "lines"],
        ] {
            let err = parse(bad).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad:?}");
        }
        // Both ways of cutting pages at once (which one won was silent).
        let err = parse(&["--page-tokens", "512", "--docs-per-page", "4"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ArgumentConflict);
    }

    #[test]
    fn bad_command_lines_are_errors() {
        let missing = Options::try_parse_from(["make_shards", "--out", "o"]).unwrap_err();
        assert_eq!(missing.kind(), ErrorKind::MissingRequiredArgument);
        let missing = Options::try_parse_from(["make_shards", "--input", "a"]).unwrap_err();
        assert_eq!(missing.kind(), ErrorKind::MissingRequiredArgument);
        for bad in [
            &["--colour", "red"][..],
            &["stray"],
            &["--out", "p"],
            &["--token-bytes", "2", "--token-bytes", "4"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn help_lists_every_flag_and_its_default() {
        let text = Options::command().render_help().to_string();
        for needle in [
            "--input <PATH>",
            "--format <FORMAT>",
            "--split <SPLIT>",
            "--field <NAME>",
            "--out <DIR>",
            "--page-tokens <N>",
            "--docs-per-page <K>",
            "--pages-per-shard <N>",
            "--token-bytes <2|4>",
            "--heldout-every <K>",
            "[default: text]",
            "[default: file]",
            "[default: 1024]",
            "[default: 65536]",
            "[default: 2]",
            "[default: 0]",
        ] {
            assert!(text.contains(needle), "{needle} missing from\n{text}");
        }
    }
}
