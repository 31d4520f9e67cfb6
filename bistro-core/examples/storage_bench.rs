//! Storage throughput against baselines measured in the same run.
//!
//! - `LocalBucket` put/get (temp file + fsync + rename; capped read) against
//!   plain `std::fs::write` / `std::fs::read` of the same bytes.
//! - With `--features s3`: `S3Bucket` put/get (multipart upload; HEAD then
//!   ranged `If-Match` GETs through a cap) against `rust-s3`'s plain
//!   `put_object` / `get_object`, both on a local `moto_server` (run
//!   `scripts/setup-test-tools.sh` first).
//!
//! ```sh
//! cargo run -p bistro-core --features s3 --example storage_bench
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // not library code: a failure here should stop loudly

use std::time::{Duration, Instant};

use bistro_core::storage::{Bucket, LocalBucket};

const MIB: usize = 1 << 20;

fn pattern(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// The best of `runs` timings of `f` (less noise from other processes).
fn best(runs: usize, mut f: impl FnMut()) -> Duration {
    (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .min()
        .unwrap_or_default()
}

fn report(what: &str, bytes: usize, ours: Duration, baseline: Duration) {
    let rate = |d: Duration| bytes as f64 / MIB as f64 / d.as_secs_f64();
    println!(
        "{what:<28} ours {:>8.1} MiB/s   baseline {:>8.1} MiB/s   ours/baseline time {:.2}",
        rate(ours),
        rate(baseline),
        ours.as_secs_f64() / baseline.as_secs_f64()
    );
}

fn local(dir: &std::path::Path) {
    let len = 256 * MIB;
    let data = pattern(len);
    let bucket = LocalBucket::create(dir.join("bucket")).expect("bucket");
    let plain = dir.join("plain.bin");

    let base_put = best(3, || std::fs::write(&plain, &data).expect("write"));
    let our_put = best(3, || bucket.put("obj", &data).expect("put"));
    report("local put 256 MiB", len, our_put, base_put);

    let base_get = best(3, || {
        assert_eq!(std::fs::read(&plain).expect("read").len(), len)
    });
    let our_get = best(3, || {
        assert_eq!(bucket.get("obj", len as u64).expect("get").len(), len)
    });
    report("local get 256 MiB", len, our_get, base_get);
}

#[cfg(feature = "s3")]
mod s3_bench {
    use super::*;
    use bistro_core::storage::{S3Bucket, S3Config, S3Credentials};
    use std::process::{Child, Command, Stdio};

    struct Moto(Child);

    impl Drop for Moto {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    fn moto_binary() -> std::path::PathBuf {
        if let Some(p) = std::env::var_os("BISTRO_MOTO_SERVER") {
            return p.into();
        }
        let venv =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.deps/venv/bin/moto_server");
        if venv.is_file() {
            return venv;
        }
        "moto_server".into()
    }

    pub fn run() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = Command::new(moto_binary())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server (run scripts/setup-test-tools.sh)");
        let _moto = Moto(child);
        let endpoint = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto_server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(300));

        let config = S3Config::new(&endpoint, "bench", S3Credentials::key("test", "test"));
        let ours = S3Bucket::new(config).expect("bucket");
        ours.create_bucket_if_missing().expect("create bucket");
        let raw = s3::Bucket::new(
            "bench",
            s3::Region::Custom {
                region: "us-east-1".into(),
                endpoint: endpoint.clone(),
            },
            s3::creds::Credentials::new(Some("test"), Some("test"), None, None, None)
                .expect("creds"),
        )
        .expect("raw bucket")
        .with_path_style()
        .with_request_timeout(Duration::from_secs(300))
        .expect("timeout");

        let len = 105 * MIB;
        let data = pattern(len);
        let base_put = best(2, || {
            raw.put_object("plain", &data).expect("raw put");
        });
        let our_put = best(2, || ours.put("obj", &data).expect("put"));
        report("S3 (moto) put 105 MiB", len, our_put, base_put);

        let base_get = best(2, || {
            assert_eq!(raw.get_object("plain").expect("raw get").bytes().len(), len)
        });
        let our_get = best(2, || {
            assert_eq!(ours.get("obj", len as u64).expect("get").len(), len)
        });
        report("S3 (moto) get 105 MiB", len, our_get, base_get);

        // The same with one part for the whole object: how much of the cost
        // is the number of requests (HEAD + one GET per part).
        let mut one_part = S3Config::new(&endpoint, "bench", S3Credentials::key("test", "test"));
        one_part.part_size = 128 * MIB as u64;
        let one_part = S3Bucket::new(one_part).expect("bucket");
        let our_put = best(2, || one_part.put("obj1", &data).expect("put"));
        report("S3 put, one 128 MiB part", len, our_put, base_put);
        let our_get = best(2, || {
            assert_eq!(one_part.get("obj1", len as u64).expect("get").len(), len)
        });
        report("S3 get, one 128 MiB part", len, our_get, base_get);
    }
}

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    local(dir.path());
    #[cfg(feature = "s3")]
    s3_bench::run();
    #[cfg(not(feature = "s3"))]
    println!("(S3 part skipped: build with --features s3)");
}
