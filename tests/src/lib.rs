//! Helpers for end-to-end tests that run the real `reveille` binary as a separate process.
//!
//! The binary must be built first (`cargo build -p reveille-cli`; `.ci/run` does it). Every
//! server gets its own temporary directory, config and database, and listens on a free port
//! that it reports on stdout; helpers wait on that line, never on a timer.

pub mod alertmanager;
pub mod cluster;
pub mod device;
pub mod postgres;
pub mod proxy;
pub mod telephony;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use futures_util::StreamExt;
use reveille_protocol::sse::{Parser, SseEvent};

/// The `reveille` binary of the same build as the running test or program.
pub fn binary() -> PathBuf {
    let exe = std::env::current_exe().expect("executable path");
    // A test runs from target/<profile>/deps/, a program (reveille-bench) from target/<profile>/.
    let mut dir = exe.parent().expect("target/<profile>/…");
    if dir.ends_with("deps") {
        dir = dir.parent().expect("target/<profile>/deps");
    }
    let bin = dir.join("reveille");
    let release = if cfg!(debug_assertions) { "" } else { " --release" };
    assert!(
        bin.is_file(),
        "{} is missing: run `cargo build{release} -p reveille-cli` first",
        bin.display()
    );
    bin
}

/// Runs `reveille ARGS` to completion.
pub fn reveille(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(binary());
    cmd.args(args).env_remove("REVEILLE_TOKEN").env_remove("REVEILLE_SERVER");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run reveille")
}

/// The last line of a command's stdout: where `token create` and `key create` put the secret.
pub fn last_line(output: &Output) -> String {
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).lines().last().unwrap_or_default().to_owned()
}

pub const CONFIG: &str = r#"
[server]
listen = "127.0.0.1:0"
base_url = "http://127.0.0.1"
heartbeat_seconds = 1

[database]
url = "sqlite://reveille.db"

[ingest]
rate_per_minute = 100000

[[users]]
name = "alice"

[[services]]
name = "payments"
page = ["alice"]
runbook = "https://runbooks.example/payments"
"#;

/// A directory with a config, a database, a key for `payments` and a token for `alice`.
pub struct Site {
    pub dir: tempfile::TempDir,
    pub key: String,
    pub token: String,
}

impl Site {
    pub fn new() -> Self {
        Self::with_config(CONFIG)
    }

    pub fn with_config(config: &str) -> Self {
        Self::with_files(config, &[])
    }

    /// A site whose config refers to files (runbooks, say) that must exist first.
    pub fn with_files(config: &str, files: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        for (name, content) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content).unwrap();
        }
        std::fs::write(dir.path().join("reveille.toml"), config).unwrap();
        let mut site = Site { dir, key: String::new(), token: String::new() };
        site.key = last_line(&reveille(
            &["key", "create", "-c", &site.config(), "--service", "payments"],
            &[],
        ));
        site.token = last_line(&reveille(
            &[
                "token",
                "create",
                "-c",
                &site.config(),
                "--user",
                "alice",
                "--scope",
                "read,respond,ingest",
            ],
            &[],
        ));
        site
    }

    pub fn config(&self) -> String {
        self.dir.path().join("reveille.toml").display().to_string()
    }

    pub fn start(&self) -> Server {
        Server::start(&self.config())
    }
}

impl Default for Site {
    fn default() -> Self {
        Self::new()
    }
}

/// A running `reveille serve`, killed when dropped.
pub struct Server {
    pub child: Child,
    pub url: String,
}

impl Server {
    pub fn start(config: &str) -> Self {
        let mut command = Command::new(binary());
        command.args(["serve", "-c", config]);
        Self::spawn(command)
    }

    /// Runs `command`, a `reveille serve` (perhaps started through a shell), until it listens.
    pub fn spawn(mut command: Command) -> Self {
        let mut child = command
            .env("REVEILLE_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start reveille serve");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("reveille listening on ") {
                    let _ = tx.send(url.to_owned());
                }
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the server never said it was listening");
        Server { child, url }
    }

    /// SIGKILL: no chance to flush or clean up.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A program of the Python virtual environment `scripts/test.sh` prepares (Apprise, PagerDuty's
/// client); `None`, with the reason printed, outside CI when it is missing.
pub fn python_bin(program: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("TESTS_PYTHON_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/python/bin"));
    let path = dir.join(program);
    if path.exists() {
        return Some(path);
    }
    assert!(std::env::var_os("CI").is_none(), "CI must provide {}", path.display());
    eprintln!("SKIPPED: {} is missing (scripts/test.sh installs it)", path.display());
    None
}

/// `GET url` with a Bearer token, as JSON.
pub async fn get_json(url: &str, token: &str) -> serde_json::Value {
    let response = reqwest::Client::new().get(url).bearer_auth(token).send().await.unwrap();
    assert!(response.status().is_success(), "GET {url}: {}", response.status());
    response.json().await.unwrap()
}

/// Follows a feed over HTTP.
pub struct Feed {
    body: std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    parser: Parser,
    pending: Vec<SseEvent>,
}

impl Feed {
    pub async fn open(url: &str, token: &str) -> Self {
        let response = reqwest::Client::new()
            .get(format!("{url}/api/v1/feed"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        Self::from_response(response)
    }

    /// Follows a feed already requested (over TLS, say).
    pub fn from_response(response: reqwest::Response) -> Self {
        assert_eq!(response.status(), 200);
        Feed {
            body: Box::pin(response.bytes_stream()),
            parser: Parser::default(),
            pending: Vec::new(),
        }
    }

    /// The next `page` or `incident` entry, as JSON; fails after `patience` without one.
    pub async fn entry(&mut self, patience: Duration) -> (String, serde_json::Value) {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            if !self.pending.is_empty() {
                let event = self.pending.remove(0);
                if event.event == "page" || event.event == "incident" {
                    return (event.event, serde_json::from_str(&event.data).unwrap());
                }
                continue;
            }
            let chunk = tokio::time::timeout_at(deadline, self.body.next())
                .await
                .expect("no feed entry in time")
                .expect("feed ended")
                .expect("feed failed");
            self.pending = self.parser.push(&chunk);
        }
    }
}
