//! A miner's own S3 server, as a hostile miner would run it: a small HTTP
//! server on 127.0.0.1 that serves one local bucket folder with the parts of
//! the S3 API a validator reads (`ListObjectsV2`, `HEAD`, ranged `GET`,
//! path-style, anonymous), and misbehaves in one chosen way. The local
//! network's `staller` runs one; `tests/node.rs` runs one of each kind.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bistro_core::error::{Error, Result};
use bistro_core::storage::{Bucket, LocalBucket};

/// How the server misbehaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Serves the bucket as S3 would.
    Honest,
    /// Dates every object an hour before now.
    Backdate,
    /// Lists what is there, then serves other bytes of the same length.
    SwapAfterListing,
    /// Answers `GET`s of objects one byte every 200 ms.
    Drip,
    /// Answers a listing only after a minute.
    StallListing,
    /// Every listing page says "more to come", forever.
    EndlessListing,
    /// Redirects every request to `127.0.0.1:<port>`.
    RedirectTo(u16),
    /// Redirects every request to the cloud metadata address.
    RedirectToMetadata,
}

/// A running server: its endpoint and what it was asked.
pub struct FaultServer {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    /// Requests answered (or being answered).
    pub requests: Arc<AtomicUsize>,
    /// Listing requests among them.
    pub listings: Arc<AtomicUsize>,
}

/// A listener that only counts the connections made to it (the target of a
/// redirect that must never be followed).
pub struct Trap {
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Connections accepted.
    pub connections: Arc<AtomicUsize>,
}

impl Trap {
    /// Starts a trap.
    pub fn start() -> Result<Trap> {
        let listener = bind()?;
        let port = listener
            .local_addr()
            .map_err(|e| Error::io("trap listener", e))?
            .port();
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&connections);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                counted.fetch_add(1, Ordering::SeqCst);
                drop(stream);
            }
        });
        Ok(Trap { port, connections })
    }
}

fn bind() -> Result<TcpListener> {
    TcpListener::bind("127.0.0.1:0").map_err(|e| Error::io("127.0.0.1:0", e))
}

/// Serves the local bucket at `root` (named `bucket` in URLs) with `fault`.
pub fn serve(root: PathBuf, bucket: &str, fault: Fault) -> Result<FaultServer> {
    let listener = bind()?;
    let address = listener
        .local_addr()
        .map_err(|e| Error::io("server listener", e))?;
    let endpoint = format!("http://{address}");
    let requests = Arc::new(AtomicUsize::new(0));
    let listings = Arc::new(AtomicUsize::new(0));
    let (req, lis, name) = (
        Arc::clone(&requests),
        Arc::clone(&listings),
        bucket.to_string(),
    );
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (root, name, req, lis) = (root.clone(), name.clone(), req.clone(), lis.clone());
            std::thread::spawn(move || {
                let _ = answer(stream, &root, &name, fault, &req, &lis);
            });
        }
    });
    Ok(FaultServer {
        endpoint,
        requests,
        listings,
    })
}

/// One request: its method, path and query (decoded) and `Range`.
struct Request {
    method: String,
    path: String,
    query: Vec<(String, String)>,
    range: Option<(u64, u64)>,
}

fn read_request(stream: &TcpStream) -> std::io::Result<Request> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default().to_string();
    let mut range = None;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
        let lower = header.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("range: bytes=") {
            let (a, b) = v.trim().split_once('-').unwrap_or(("0", ""));
            range = Some((a.parse().unwrap_or(0), b.parse().unwrap_or(u64::MAX)));
        }
    }
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let query = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect();
    Ok(Request {
        method,
        path: decode(path),
        query,
        range,
    })
}

/// Percent-decoding (`%2F` → `/`).
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn respond(stream: &mut TcpStream, status: &str, headers: &[(&str, String)], body: &[u8]) {
    let mut head = format!("HTTP/1.1 {status}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
}

fn answer(
    mut stream: TcpStream,
    root: &PathBuf,
    name: &str,
    fault: Fault,
    requests: &AtomicUsize,
    listings: &AtomicUsize,
) -> std::io::Result<()> {
    let request = read_request(&stream)?;
    requests.fetch_add(1, Ordering::SeqCst);
    let redirect = match fault {
        Fault::RedirectTo(port) => Some(format!("http://127.0.0.1:{port}{}", request.path)),
        Fault::RedirectToMetadata => Some("http://169.254.169.254/latest/meta-data/".into()),
        _ => None,
    };
    if let Some(location) = redirect {
        respond(
            &mut stream,
            "307 Temporary Redirect",
            &[("Location", location), ("Content-Length", "0".into())],
            b"",
        );
        return Ok(());
    }
    let Ok(bucket) = LocalBucket::open(root) else {
        respond(
            &mut stream,
            "500 Internal Server Error",
            &[("Content-Length", "0".into())],
            b"",
        );
        return Ok(());
    };
    let key = request
        .path
        .trim_start_matches('/')
        .strip_prefix(name)
        .unwrap_or("")
        .trim_start_matches('/')
        .to_string();
    let age = if fault == Fault::Backdate { 3600 } else { 0 };
    if key.is_empty() {
        listings.fetch_add(1, Ordering::SeqCst);
        let prefix = request
            .query
            .iter()
            .find(|(k, _)| k == "prefix")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let token: u64 = request
            .query
            .iter()
            .find(|(k, _)| k == "continuation-token")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let xml = match fault {
            Fault::StallListing => {
                std::thread::sleep(Duration::from_secs(60));
                listing(name, &prefix, &[], false, 0)
            }
            Fault::EndlessListing => listing(name, &prefix, &[], true, token + 1),
            _ => {
                let objects: Vec<(String, u64)> = bucket
                    .list(&prefix)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|o| (o.key, o.size))
                    .collect();
                listing(name, &prefix, &objects, false, age)
            }
        };
        respond(
            &mut stream,
            "200 OK",
            &[
                ("Content-Type", "application/xml".into()),
                ("Content-Length", xml.len().to_string()),
            ],
            xml.as_bytes(),
        );
        return Ok(());
    }
    let Ok(mut bytes) = bucket.get(&key, 1 << 32) else {
        let body = b"<Error><Code>NoSuchKey</Code></Error>";
        respond(
            &mut stream,
            "404 Not Found",
            &[("Content-Length", body.len().to_string())],
            body,
        );
        return Ok(());
    };
    if fault == Fault::SwapAfterListing {
        bytes.iter_mut().for_each(|b| *b ^= 0x5a);
    }
    let size = bytes.len() as u64;
    let common = vec![
        ("Last-Modified", http_date(age)),
        (
            "ETag",
            format!("\"{size}-{}\"", bytes.first().unwrap_or(&0)),
        ),
    ];
    if request.method == "HEAD" {
        let mut headers = common;
        headers.push(("Content-Length", size.to_string()));
        respond(&mut stream, "200 OK", &headers, b"");
        return Ok(());
    }
    let (start, end) = request.range.unwrap_or((0, size.saturating_sub(1)));
    let end = end.min(size.saturating_sub(1));
    let Some(part) = bytes.get(start as usize..=end as usize) else {
        respond(
            &mut stream,
            "416 Range Not Satisfiable",
            &[("Content-Length", "0".into())],
            b"",
        );
        return Ok(());
    };
    let mut headers = common;
    headers.push(("Content-Length", part.len().to_string()));
    headers.push(("Content-Range", format!("bytes {start}-{end}/{size}")));
    if fault == Fault::Drip {
        respond(&mut stream, "206 Partial Content", &headers, b"");
        for b in part {
            stream.write_all(&[*b])?;
            std::thread::sleep(Duration::from_millis(200));
        }
        return Ok(());
    }
    respond(&mut stream, "206 Partial Content", &headers, part);
    Ok(())
}

/// A `ListObjectsV2` answer.
fn listing(name: &str, prefix: &str, objects: &[(String, u64)], more: bool, age: u64) -> String {
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult><Name>{name}</Name>\
         <Prefix>{prefix}</Prefix><KeyCount>{}</KeyCount><MaxKeys>1000</MaxKeys>\
         <IsTruncated>{more}</IsTruncated>",
        objects.len()
    );
    if more {
        // `age` is the next page's token here: the pages never end.
        xml.push_str(&format!(
            "<NextContinuationToken>{age}</NextContinuationToken>"
        ));
    }
    for (key, size) in objects {
        xml.push_str(&format!(
            "<Contents><Key>{key}</Key><LastModified>{}</LastModified>\
             <ETag>\"e\"</ETag><Size>{size}</Size><StorageClass>STANDARD</StorageClass></Contents>",
            iso_date(age)
        ));
    }
    xml.push_str("</ListBucketResult>");
    xml
}

/// Days since 1970-01-01 as (year, month, day) (Howard Hinnant's algorithm).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Now minus `age` seconds, split into date and time of day.
fn now_minus(age: u64) -> ((i64, u32, u32), (u64, u64, u64), i64) {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        .saturating_sub(age);
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    (civil(days), (rem / 3600, rem / 60 % 60, rem % 60), days)
}

fn iso_date(age: u64) -> String {
    let ((y, mo, d), (h, mi, s), _) = now_minus(age);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.000Z")
}

fn http_date(age: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let ((y, mo, d), (h, mi, s), days) = now_minus(age);
    format!(
        "{}, {d:02} {} {y:04} {h:02}:{mi:02}:{s:02} GMT",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(mo as usize).clamp(1, 12) - 1]
    )
}
