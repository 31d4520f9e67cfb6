//! A small HTTP/1.1 server for tests, on 127.0.0.1 only: one request per
//! connection, answered by a handler that can serve byte ranges or inject
//! faults (error statuses, 429 with Retry-After, bodies cut short, stalls,
//! malformed content). It stops when dropped, and by itself after
//! `MAX_LIFETIME` in any case.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The server stops accepting after this long, whatever the test does.
const MAX_LIFETIME: Duration = Duration::from_secs(120);
/// Largest request head read.
const MAX_REQUEST_BYTES: usize = 16 << 10;

/// A request as the handler sees it.
#[derive(Clone, Debug)]
pub struct Request {
    /// Path and query, e.g. `/rows?dataset=...`.
    pub target: String,
    /// The `Range` header, if any.
    pub range: Option<String>,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
}

impl Request {
    /// The value of query parameter `name`.
    pub fn query(&self, name: &str) -> Option<String> {
        let (_, query) = self.target.split_once('?')?;
        query.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            (k == name).then(|| v.to_string())
        })
    }
}

/// What the server does with a request.
pub enum Reply {
    /// A complete response.
    Full {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Declares `declared` bytes of body, sends `body`, then closes.
    CutShort { declared: usize, body: Vec<u8> },
    /// Waits, then closes without answering.
    Stall(Duration),
}

impl Reply {
    pub fn status(status: u16, body: impl Into<Vec<u8>>) -> Reply {
        Reply::Full {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.into(),
        }
    }

    pub fn json(body: impl Into<Vec<u8>>) -> Reply {
        Reply::status(200, body)
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Reply {
        if let Reply::Full { headers, .. } = &mut self {
            headers.push((name.into(), value.into()));
        }
        self
    }
}

/// Serves `data` honouring a `Range: bytes=a-b` header (206 with
/// Content-Range), or whole (200) without one.
pub fn serve_bytes(data: &[u8], range: Option<&str>) -> Reply {
    let Some(spec) = range.and_then(|r| r.strip_prefix("bytes=")) else {
        return Reply::Full {
            status: 200,
            headers: vec![],
            body: data.to_vec(),
        };
    };
    let parsed = spec.split_once('-').and_then(|(a, b)| {
        let a: usize = a.parse().ok()?;
        let b: usize = if b.is_empty() {
            data.len().checked_sub(1)?
        } else {
            b.parse().ok()?
        };
        (a <= b && a < data.len()).then_some((a, b.min(data.len() - 1)))
    });
    match parsed {
        Some((a, b)) => Reply::Full {
            status: 206,
            headers: vec![(
                "Content-Range".into(),
                format!("bytes {a}-{b}/{}", data.len()),
            )],
            body: data[a..=b].to_vec(),
        },
        None => Reply::Full {
            status: 416,
            headers: vec![("Content-Range".into(), format!("bytes */{}", data.len()))],
            body: vec![],
        },
    }
}

type Handler = dyn Fn(&Request, usize) -> Reply + Send + Sync;

/// A running server. Its handler gets each request and its number (from 0).
pub struct TestServer {
    pub base: String,
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<Vec<Request>>>,
    thread: Option<JoinHandle<()>>,
}

impl TestServer {
    pub fn start(handler: impl Fn(&Request, usize) -> Reply + Send + Sync + 'static) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let stop = Arc::new(AtomicBool::new(false));
        let log = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let thread = {
            let (stop, log) = (stop.clone(), log.clone());
            std::thread::spawn(move || {
                let born = Instant::now();
                while !stop.load(Ordering::Relaxed) && born.elapsed() < MAX_LIFETIME {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let (handler, log) = (handler.clone(), log.clone());
                            // One thread per connection, so stalls do not block others.
                            std::thread::spawn(move || serve(stream, &*handler, &log));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(2)),
                    }
                }
            })
        };
        TestServer {
            base,
            stop,
            log,
            thread: Some(thread),
        }
    }

    /// Requests received so far.
    pub fn requests(&self) -> Vec<Request> {
        self.log.lock().unwrap().clone()
    }

    pub fn request_count(&self) -> usize {
        self.log.lock().unwrap().len()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(mut stream: TcpStream, handler: &Handler, log: &Mutex<Vec<Request>>) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_REQUEST_BYTES {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut lines = text.split("\r\n");
    let target = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .unwrap_or("/")
        .to_string();
    let mut request = Request {
        target,
        range: None,
        authorization: None,
    };
    for line in lines {
        if let Some((k, v)) = line.split_once(':') {
            match k.trim().to_ascii_lowercase().as_str() {
                "range" => request.range = Some(v.trim().to_string()),
                "authorization" => request.authorization = Some(v.trim().to_string()),
                _ => {}
            }
        }
    }
    let number = {
        let mut log = log.lock().unwrap();
        log.push(request.clone());
        log.len() - 1
    };
    let reply = handler(&request, number);
    let _ = match reply {
        Reply::Full {
            status,
            headers,
            body,
        } => {
            let mut out = format!(
                "HTTP/1.1 {status} {}\r\nContent-Length: {}\r\nConnection: close\r\n",
                reason(status),
                body.len()
            );
            for (k, v) in headers {
                out.push_str(&format!("{k}: {v}\r\n"));
            }
            out.push_str("\r\n");
            stream
                .write_all(out.as_bytes())
                .and_then(|()| stream.write_all(&body))
        }
        Reply::CutShort { declared, body } => {
            let out = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {declared}\r\nConnection: close\r\n\r\n"
            );
            stream
                .write_all(out.as_bytes())
                .and_then(|()| stream.write_all(&body))
        }
        Reply::Stall(d) => {
            std::thread::sleep(d);
            Ok(())
        }
    };
    let _ = stream.flush();
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        403 => "Forbidden",
        404 => "Not Found",
        416 => "Range Not Satisfiable",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}
