//! `RowsSource` against a local server that answers like the HuggingFace
//! datasets-server `/rows` endpoint. The response shape follows the
//! service's documentation (<https://huggingface.co/docs/dataset-viewer/rows>)
//! and its OpenAPI schema `RowsResponse` (`/openapi.json`): `features`,
//! `rows` of `{row_idx, row, truncated_cells}`, `num_rows_total`,
//! `num_rows_per_page`, `partial`; errors are `{"error": ...}` with a 4xx/5xx
//! status, and rate limiting is a 429. The row columns are RefinedWeb's
//! (`content`, `url`, `timestamp`, `dump`, `segment`, `image_urls`). The texts
//! are real English: paragraphs of the held-out sample corpus.
#![cfg(feature = "http")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // not library code: a failure here should stop loudly

mod support_http;

use std::sync::Arc;
use std::time::Duration;

use bistro_core::Error;
use bistro_core::data::tokenizer::Gpt2Tokenizer;
use bistro_core::data::{HttpOptions, PageSource, RowsConfig, RowsSource, sample};
use serde_json::{Value, json};
use support_http::{Reply, Request, TestServer};

const ROWS: u64 = 350;

fn options() -> HttpOptions {
    HttpOptions {
        timeout: Duration::from_secs(5),
        max_attempts: 3,
        backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        max_retry_after: Duration::from_millis(50),
        ..HttpOptions::default()
    }
}

/// `ROWS` paragraphs of real text, from the held-out sample shard.
fn texts() -> Arc<Vec<String>> {
    let t = Gpt2Tokenizer::new().unwrap();
    let heldout = sample::heldout().unwrap();
    let mut paragraphs = Vec::new();
    for id in 0..heldout.num_pages() {
        let text = t.decode(&heldout.page(id).unwrap().tokens).unwrap();
        paragraphs.extend(
            text.split("\n\n")
                .map(|p| p.replace("<|endoftext|>", "").trim().to_string())
                .filter(|p| p.len() > 40),
        );
    }
    assert!(
        paragraphs.len() as u64 >= ROWS,
        "{} paragraphs",
        paragraphs.len()
    );
    paragraphs.truncate(ROWS as usize);
    Arc::new(paragraphs)
}

fn features() -> Value {
    let string = json!({"dtype": "string", "_type": "Value"});
    json!([
        {"feature_idx": 0, "name": "content", "type": string},
        {"feature_idx": 1, "name": "url", "type": string},
        {"feature_idx": 2, "name": "timestamp", "type": {"dtype": "timestamp[s]", "_type": "Value"}},
        {"feature_idx": 3, "name": "dump", "type": string},
        {"feature_idx": 4, "name": "segment", "type": string},
        {"feature_idx": 5, "name": "image_urls", "type": {"feature": {"feature": string, "_type": "Sequence"}, "_type": "Sequence"}},
    ])
}

fn row(idx: u64, content: Value) -> Value {
    json!({
        "row_idx": idx,
        "row": {
            "content": content,
            "url": format!("https://example.org/austen/{idx}"),
            "timestamp": "2023-01-29T10:11:12",
            "dump": "CC-MAIN-2023-06",
            "segment": "1674764494974.21",
            "image_urls": [],
        },
        "truncated_cells": [],
    })
}

/// The documented response for `offset`, `length` over `texts`, or the
/// service's error for bad parameters.
fn rows_reply(texts: &[String], r: &Request) -> Reply {
    let param = |k: &str| r.query(k);
    if !r.target.starts_with("/rows?") {
        return Reply::status(404, r#"{"error":"Not Found"}"#);
    }
    if param("dataset").as_deref() != Some("tiiuae/falcon-refinedweb") {
        return Reply::status(404, r#"{"error":"The dataset does not exist."}"#);
    }
    if param("config").as_deref() != Some("default") || param("split").as_deref() != Some("train") {
        return Reply::status(404, r#"{"error":"The config or split does not exist."}"#);
    }
    let (Some(offset), Some(length)) = (
        param("offset").and_then(|v| v.parse::<u64>().ok()),
        param("length").and_then(|v| v.parse::<u64>().ok()),
    ) else {
        return Reply::status(
            422,
            r#"{"error":"Parameters 'offset' and 'length' must be integers"}"#,
        );
    };
    if length > 100 {
        return Reply::status(
            422,
            r#"{"error":"Parameter 'length' must not be greater than 100"}"#,
        );
    }
    let end = (offset + length).min(texts.len() as u64);
    let rows: Vec<Value> = (offset.min(end)..end)
        .map(|i| row(i, json!(texts[i as usize])))
        .collect();
    Reply::json(
        json!({
            "features": features(),
            "rows": rows,
            "num_rows_total": texts.len(),
            "num_rows_per_page": 100,
            "partial": false,
        })
        .to_string(),
    )
}

fn config(server: &TestServer) -> RowsConfig {
    RowsConfig {
        base_url: server.base.clone(),
        num_rows: ROWS,
        ..RowsConfig::refinedweb()
    }
}

fn rows_server() -> (TestServer, Arc<Vec<String>>) {
    let texts = texts();
    let t = texts.clone();
    (TestServer::start(move |r, _| rows_reply(&t, r)), texts)
}

#[test]
fn pages_are_tokenized_rows_with_eos() {
    let (server, texts) = rows_server();
    let source = RowsSource::new(config(&server), None, options()).unwrap();
    assert_eq!(source.num_pages(), 3, "350 rows make 3 full pages");
    let t = Gpt2Tokenizer::new().unwrap();
    for id in 0..3u64 {
        let page = source.page(id).unwrap();
        assert_eq!(page.num_sequences(), 100);
        for (i, seq) in page.sequences().enumerate() {
            let expected = t.encode_document(&texts[(id * 100) as usize + i]).unwrap();
            assert_eq!(seq, &expected[..]);
            assert_eq!(seq.last(), Some(&50_256));
        }
    }
    let asked: Vec<String> = server
        .requests()
        .iter()
        .map(|r| r.query("offset").unwrap())
        .collect();
    assert_eq!(asked, ["0", "100", "200"]);
    assert!(matches!(source.page(3), Err(Error::NotFound(_))));
    assert_eq!(
        server.request_count(),
        3,
        "no request for a page past the end"
    );
    let batch = source.batch(&[2, 0], 128).unwrap();
    assert!(
        batch.rows > 0 && batch.mask.contains(&0),
        "padding at page ends is masked"
    );
}

#[test]
fn refinedweb_has_the_documented_page_count() {
    let source = RowsSource::new(RowsConfig::refinedweb(), None, options()).unwrap();
    assert_eq!(source.num_pages(), 9_680_000);
    assert_eq!(source.tokenizer().vocab_size, 50_257);
}

#[test]
fn bearer_token_is_sent_when_configured() {
    let (server, _) = rows_server();
    let opts = HttpOptions {
        bearer_token: Some("hf_test".into()),
        ..options()
    };
    let source = RowsSource::new(config(&server), None, opts).unwrap();
    source.page(0).unwrap();
    assert_eq!(
        server.requests()[0].authorization.as_deref(),
        Some("Bearer hf_test")
    );
}

#[test]
fn rate_limits_are_waited_out() {
    let texts = texts();
    let server = TestServer::start(move |r, n| {
        if n < 2 {
            return Reply::status(429, r#"{"error":"Too Many Requests"}"#)
                .with_header("Retry-After", "1");
        }
        rows_reply(&texts, r)
    });
    let source = RowsSource::new(config(&server), None, options()).unwrap();
    assert_eq!(source.page(1).unwrap().num_sequences(), 100);
    assert_eq!(server.request_count(), 3);
}

#[test]
fn server_errors_are_retried_a_bounded_number_of_times() {
    let server =
        TestServer::start(|_, _| Reply::status(500, r#"{"error":"Internal Server Error"}"#));
    let source = RowsSource::new(config(&server), None, options()).unwrap();
    let err = source.page(0).unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert_eq!(server.request_count(), 3);
}

/// Whether an error is the expected kind.
type ErrorCheck = fn(&Error) -> bool;

/// One malformed answer per case; none is retried.
#[test]
fn malformed_responses_are_typed_errors() {
    let texts = texts();
    let good_rows = |offset: u64, n: u64| -> Vec<Value> {
        (offset..offset + n)
            .map(|i| row(i, json!(texts[i as usize])))
            .collect()
    };
    let body = |rows: Vec<Value>, partial: bool| {
        json!({"features": features(), "rows": rows, "num_rows_total": ROWS, "num_rows_per_page": 100, "partial": partial}).to_string()
    };
    let mut shifted = good_rows(0, 100);
    shifted[7]["row_idx"] = json!(8);
    let mut null_content = good_rows(0, 100);
    null_content[3]["row"]["content"] = Value::Null;
    let mut no_content = good_rows(0, 100);
    no_content[3]["row"]
        .as_object_mut()
        .unwrap()
        .remove("content");
    let full = body(good_rows(0, 100), false);
    let cases: Vec<(&str, Reply, ErrorCheck)> = vec![
        (
            "html",
            Reply::json("<html>Service Unavailable</html>"),
            |e| matches!(e, Error::Corrupt { .. }),
        ),
        (
            "cut json",
            Reply::json(full[..full.len() / 2].to_string()),
            |e| matches!(e, Error::Corrupt { .. }),
        ),
        ("rows not a list", Reply::json(r#"{"rows": "none"}"#), |e| {
            matches!(e, Error::Corrupt { .. })
        }),
        ("no rows key", Reply::json(r#"{"features": []}"#), |e| {
            matches!(e, Error::Corrupt { .. })
        }),
        ("shifted row_idx", Reply::json(body(shifted, false)), |e| {
            matches!(e, Error::Corrupt { .. })
        }),
        (
            "null content",
            Reply::json(body(null_content, false)),
            |e| matches!(e, Error::Corrupt { .. }),
        ),
        (
            "missing content",
            Reply::json(body(no_content, false)),
            |e| matches!(e, Error::Corrupt { .. }),
        ),
        ("99 rows", Reply::json(body(good_rows(0, 99), false)), |e| {
            matches!(e, Error::Corrupt { .. })
        }),
        ("partial split", Reply::json(body(vec![], true)), |e| {
            matches!(e, Error::Unavailable(_))
        }),
        (
            "unknown dataset",
            Reply::status(404, r#"{"error":"The dataset does not exist."}"#),
            |e| matches!(e, Error::NotFound(_)),
        ),
        (
            "bad parameter",
            Reply::status(422, r#"{"error":"Parameter 'offset' is required"}"#),
            |e| {
                matches!(
                    e,
                    Error::Network {
                        transient: false,
                        ..
                    }
                )
            },
        ),
        (
            "gated",
            Reply::status(401, r#"{"error":"The dataset is gated."}"#),
            |e| matches!(e, Error::AccessDenied(_)),
        ),
    ];
    for (name, reply, check) in cases {
        let reply = std::sync::Mutex::new(Some(reply));
        let server = TestServer::start(move |_, _| {
            reply
                .lock()
                .unwrap()
                .take()
                .unwrap_or(Reply::status(500, "only one reply"))
        });
        let source = RowsSource::new(config(&server), None, options()).unwrap();
        let err = source.page(0).unwrap_err();
        assert!(check(&err), "{name}: {err}");
        assert_eq!(server.request_count(), 1, "{name}: not retried");
    }
}

#[test]
fn oversized_responses_are_refused() {
    let (server, _) = rows_server();
    let small = HttpOptions {
        max_response_bytes: 4096,
        ..options()
    };
    let source = RowsSource::new(config(&server), None, small).unwrap();
    assert!(matches!(source.page(0), Err(Error::LimitExceeded { .. })));
}

#[test]
fn cache_answers_repeat_reads_and_heals() {
    let (server, _) = rows_server();
    let cache = tempfile::tempdir().unwrap();
    let first = RowsSource::new(config(&server), Some(cache.path()), options()).unwrap();
    let pages: Vec<_> = (0..3).map(|id| first.page(id).unwrap()).collect();
    assert_eq!(server.request_count(), 3);
    let second = RowsSource::new(config(&server), Some(cache.path()), options()).unwrap();
    for (id, page) in pages.iter().enumerate() {
        assert_eq!(&second.page(id as u64).unwrap(), page);
    }
    assert_eq!(server.request_count(), 3, "served from the cache");
    // Damage the cached files: each is detected and fetched again.
    for dir in std::fs::read_dir(cache.path()).unwrap() {
        for f in std::fs::read_dir(dir.unwrap().path()).unwrap() {
            std::fs::write(f.unwrap().path(), b"{\"rows\": [").unwrap();
        }
    }
    let third = RowsSource::new(config(&server), Some(cache.path()), options()).unwrap();
    assert_eq!(third.page(1).unwrap(), pages[1]);
    assert_eq!(server.request_count(), 4);
}

#[test]
fn parallel_reads_agree() {
    let (server, _) = rows_server();
    let source = Arc::new(RowsSource::new(config(&server), None, options()).unwrap());
    let expected: Vec<_> = (0..3).map(|id| source.page(id).unwrap()).collect();
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let s = source.clone();
            std::thread::spawn(move || {
                (0..3)
                    .map(|i| s.page((i + t) % 3).unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for (t, h) in handles.into_iter().enumerate() {
        for (i, page) in h.join().unwrap().into_iter().enumerate() {
            assert_eq!(page, expected[(i + t) % 3]);
        }
    }
}
