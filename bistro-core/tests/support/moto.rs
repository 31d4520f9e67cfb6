//! A real S3-compatible server for tests: `moto_server` (PyPI `moto[server]`),
//! started on a free 127.0.0.1 port and killed on drop.
//!
//! The binary is `$BISTRO_MOTO_SERVER`, else `<repo>/.deps/venv/bin/moto_server`
//! (what `scripts/setup-test-tools.sh` installs), else `moto_server` on PATH.
//! Without one the tests fail: they never pass silently.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bistro_core::storage::{S3Bucket, S3Config, S3Credentials};

use super::http::{self, form_encode, xml_field};

/// How long moto may take to start answering.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Finds the moto_server binary or fails the test with what to run.
pub fn moto_binary() -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    find_moto(
        std::env::var_os("BISTRO_MOTO_SERVER").map(PathBuf::from),
        &repo,
        std::env::var_os("PATH"),
    )
}

/// The lookup behind [`moto_binary`]: the explicit binary, else the repo's
/// venv, else `PATH`; panics with the setup instructions when none exists.
pub fn find_moto(
    explicit: Option<PathBuf>,
    repo: &Path,
    path: Option<std::ffi::OsString>,
) -> PathBuf {
    if let Some(path) = explicit {
        assert!(
            path.is_file(),
            "BISTRO_MOTO_SERVER={} does not exist; run scripts/setup-test-tools.sh",
            path.display()
        );
        return path;
    }
    let venv = repo.join(".deps/venv/bin/moto_server");
    if venv.is_file() {
        return venv;
    }
    if let Some(paths) = path {
        for dir in std::env::split_paths(&paths) {
            let candidate = dir.join("moto_server");
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "moto_server not found: run scripts/setup-test-tools.sh (installs moto[server] into \
         .deps/venv) or set BISTRO_MOTO_SERVER to a moto_server binary"
    );
}

/// A free TCP port on 127.0.0.1 (free when this returns; moto binds it next).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

/// Options for starting moto.
#[derive(Default, Clone)]
pub struct MotoOptions {
    /// Listen on this port (a free one if `None`).
    pub port: Option<u16>,
    /// Record every request to this file (moto's recorder), so that the
    /// state can be replayed into a new server after a kill.
    pub recording: Option<PathBuf>,
}

/// A running moto_server.
pub struct Moto {
    child: Option<Child>,
    pub port: u16,
    pub endpoint: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

/// An access key pair created in moto's IAM.
#[derive(Clone, Debug)]
pub struct Key {
    pub id: String,
    pub secret: String,
}

impl Moto {
    /// Starts moto on a free port.
    pub fn start() -> Moto {
        Moto::start_with(MotoOptions::default())
    }

    /// Starts moto with `options` and waits until it answers.
    pub fn start_with(options: MotoOptions) -> Moto {
        let binary = moto_binary();
        let dir = tempfile::tempdir().expect("temp dir");
        let port = options.port.unwrap_or_else(free_port);
        let log = dir.path().join("moto.log");
        let log_file = std::fs::File::create(&log).expect("moto log");
        let mut command = Command::new(&binary);
        command
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log handle"))
            .stderr(log_file);
        if let Some(recording) = &options.recording {
            command
                .env("MOTO_ENABLE_RECORDING", "True")
                .env("MOTO_RECORDER_FILEPATH", recording);
        }
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let mut moto = Moto {
            child: Some(child),
            port,
            endpoint: format!("http://127.0.0.1:{port}"),
            log,
            _dir: dir,
        };
        moto.wait_ready();
        moto
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!(
                    "moto_server exited ({status}) at start:\n{}",
                    self.log_tail()
                );
            }
            let answered = TcpStream::connect(("127.0.0.1", self.port)).is_ok()
                && http::request(self.port, "GET", "/moto-api/", &[], b"")
                    .is_ok_and(|answer| answer.status < 500);
            if answered {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "moto_server did not answer on port {} within {START_TIMEOUT:?}:\n{}",
            self.port,
            self.log_tail()
        );
    }

    /// The last lines of the server's log (for failure messages).
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Kills the server at once (SIGKILL) and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// A bucket config for `bucket` on this server, with fast retries.
    pub fn config(&self, bucket: &str, credentials: S3Credentials) -> S3Config {
        let mut config = S3Config::new(&self.endpoint, bucket, credentials);
        config.retry.max_attempts = 3;
        config.retry.initial_backoff = Duration::from_millis(20);
        config.retry.max_backoff = Duration::from_millis(100);
        config.request_timeout = Duration::from_secs(60);
        config
    }

    /// Creates `bucket` (with any credentials: moto without IAM accepts all)
    /// and returns a client for it.
    pub fn bucket(&self, bucket: &str) -> S3Bucket {
        self.bucket_with(self.config(bucket, S3Credentials::key("test", "test")))
    }

    /// Creates the bucket `config` names and returns a client for it.
    pub fn bucket_with(&self, config: S3Config) -> S3Bucket {
        let bucket = S3Bucket::new(config).expect("S3 bucket config");
        bucket
            .create_bucket_if_missing()
            .unwrap_or_else(|e| panic!("create bucket: {e}\n{}", self.log_tail()));
        bucket
    }

    /// Sends one IAM query-API action (unsigned: moto does not check
    /// signatures until [`Moto::enforce_iam`]).
    fn iam(&self, params: &[(&str, &str)]) -> String {
        let mut body = String::from("Version=2010-05-08");
        for (name, value) in params {
            body.push_str(&format!("&{name}={}", form_encode(value)));
        }
        let auth = "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20240101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0";
        let answer = http::request(
            self.port,
            "POST",
            "/",
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Authorization", auth),
            ],
            body.as_bytes(),
        )
        .expect("IAM request");
        assert_eq!(answer.status, 200, "IAM {params:?}: {}", answer.body);
        answer.body
    }

    /// Creates IAM user `name` allowed `actions` on every S3 resource and
    /// returns its access key.
    pub fn create_user(&self, name: &str, actions: &[&str]) -> Key {
        self.iam(&[("Action", "CreateUser"), ("UserName", name)]);
        let actions: Vec<String> = actions.iter().map(|a| format!("\"{a}\"")).collect();
        let policy = format!(
            "{{\"Version\":\"2012-10-17\",\"Statement\":[{{\"Effect\":\"Allow\",\"Action\":[{}],\"Resource\":\"*\"}}]}}",
            actions.join(",")
        );
        self.iam(&[
            ("Action", "PutUserPolicy"),
            ("UserName", name),
            ("PolicyName", "bistro-test"),
            ("PolicyDocument", &policy),
        ]);
        let created = self.iam(&[("Action", "CreateAccessKey"), ("UserName", name)]);
        Key {
            id: xml_field(&created, "AccessKeyId").expect("AccessKeyId"),
            secret: xml_field(&created, "SecretAccessKey").expect("SecretAccessKey"),
        }
    }

    /// From now on every request must be signed by an IAM key and allowed
    /// by its policy.
    pub fn enforce_iam(&self) {
        let answer = http::request(self.port, "POST", "/moto-api/reset-auth", &[], b"0")
            .expect("reset-auth");
        assert_eq!(answer.status, 200, "reset-auth: {}", answer.body);
    }

    /// Replays the recorded requests into this (fresh) server.
    pub fn replay_recording(&self) {
        let answer = http::request(
            self.port,
            "POST",
            "/moto-api/recorder/replay-recording",
            &[],
            b"",
        )
        .expect("replay");
        assert_eq!(answer.status, 200, "replay: {}", answer.body);
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.kill();
    }
}
