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
//!   shorter); each page keeps the document pieces as its sequences. Or
//!   `--docs-per-page K`: each page is `K` whole documents, one sequence each
//!   (like RefinedWeb's pages of 100 rows).
//! - `--pages-per-shard N` (default 65536), `--token-bytes 2|4` (default 2).
//! - `--heldout-every K` (default 0, none): document `i` (from 0) goes to the
//!   held-out split when `i % K == K - 1`.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use bistro::data::TokenizerInfo;
use bistro::data::shard::{ShardSummary, ShardWriter, dataset_identity};
use bistro::data::tokenizer::Gpt2Tokenizer;
use bistro::{Digest, Error, Result};

struct Options {
    inputs: Vec<PathBuf>,
    jsonl: bool,
    split_paragraphs: bool,
    field: String,
    out: PathBuf,
    page_tokens: usize,
    docs_per_page: usize,
    pages_per_shard: u64,
    token_bytes: u32,
    heldout_every: u64,
}

fn parse_args() -> Result<Options> {
    let mut o = Options {
        inputs: Vec::new(),
        jsonl: false,
        split_paragraphs: false,
        field: "text".into(),
        out: PathBuf::new(),
        page_tokens: 1024,
        docs_per_page: 0,
        pages_per_shard: 65_536,
        token_bytes: 2,
        heldout_every: 0,
    };
    let mut args = std::env::args().skip(1);
    let bad = |m: String| Error::InvalidArgument(m);
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| bad(format!("{flag} needs a value")))
        };
        let number = |v: String| {
            v.parse::<u64>()
                .map_err(|_| bad(format!("{v:?} is not a number")))
        };
        match flag.as_str() {
            "--input" => o.inputs.push(value()?.into()),
            "--format" => {
                o.jsonl = match value()?.as_str() {
                    "jsonl" => true,
                    "text" => false,
                    f => return Err(bad(format!("unknown format {f:?}"))),
                }
            }
            "--split" => {
                o.split_paragraphs = match value()?.as_str() {
                    "blank-lines" => true,
                    "file" => false,
                    s => return Err(bad(format!("unknown split {s:?}"))),
                }
            }
            "--field" => o.field = value()?,
            "--out" => o.out = value()?.into(),
            "--page-tokens" => o.page_tokens = number(value()?)? as usize,
            "--docs-per-page" => o.docs_per_page = number(value()?)? as usize,
            "--pages-per-shard" => o.pages_per_shard = number(value()?)?,
            "--token-bytes" => o.token_bytes = number(value()?)? as u32,
            "--heldout-every" => o.heldout_every = number(value()?)?,
            "--help" | "-h" => {
                println!("see the comment at the top of examples/make_shards.rs");
                std::process::exit(0);
            }
            f => return Err(bad(format!("unknown option {f:?}"))),
        }
    }
    if o.inputs.is_empty() || o.out.as_os_str().is_empty() {
        return Err(bad("--input and --out are required".into()));
    }
    if o.page_tokens == 0 && o.docs_per_page == 0 || o.pages_per_shard == 0 {
        return Err(bad("page and shard sizes must be positive".into()));
    }
    Ok(o)
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
        if o.docs_per_page > 0 {
            self.page.push(doc.to_vec());
            if self.page.len() >= o.docs_per_page {
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
    if o.jsonl {
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
    if !o.split_paragraphs {
        return doc(&text, text.len() as u64);
    }
    for para in text.split("\n\n") {
        doc(para.trim(), para.len() as u64 + 2)?;
    }
    Ok(())
}

fn run() -> Result<()> {
    let o = parse_args()?;
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
