//! A real server on 127.0.0.1:0 with its own temporary SQLite database and a manual clock.
#![allow(dead_code)]

pub mod smtp;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use jiff::{SignedDuration, Timestamp};
use reveille_protocol::sse::{Parser, SseEvent};
use reveille_server::AppState;
use reveille_server::clock::ManualClock;
use reveille_server::config::{Backend, Settings};
use reveille_server::http::auth::{mint_key, mint_token};
use reveille_store::{KeyInfo, Store, TokenInfo};
use reveille_store_sqlite::Sqlite;
use serde_json::Value;
use tokio::sync::oneshot;

pub const CONFIG: &str = r#"
[server]
listen = "127.0.0.1:0"
base_url = "http://reveille.test"
heartbeat_seconds = 1

[ingest]
rate_per_minute = 1000

[phone]
keepalive_seconds = 1

[[users]]
name = "alice"
[[users]]
name = "bob"
[[users]]
name = "carol"

[[services]]
name = "payments"
page = ["alice", "bob"]
runbook = "runbooks/payments.md"

[[services]]
name = "web"
page = ["carol"]
urgency = "low"
default_severity = "warning"
"#;

pub const RUNBOOK: &str = "# Payments\n\nRestart the payment worker.\n";

/// The Python virtual environment `scripts/test.sh` prepares (aiosmtpd, Synapse), when it holds
/// `program`; `None`, with the reason printed, outside CI when it is missing.
pub fn python_tools(program: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("TESTS_PYTHON_BIN").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/python/bin")
    });
    if dir.join(program).exists() {
        return Some(dir);
    }
    assert!(std::env::var_os("CI").is_none(), "CI must provide {program} in {}", dir.display());
    eprintln!("SKIPPED: {program} is missing from {} (scripts/test.sh installs it)", dir.display());
    None
}

pub fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
    std::fs::read_to_string(path).unwrap()
}

pub struct Harness {
    pub url: String,
    pub state: AppState,
    pub clock: Arc<ManualClock>,
    pub http: reqwest::Client,
    pub db: PathBuf,
    /// An integration key of `payments`.
    pub key: String,
    pub alice: String,
    pub bob: String,
    stop: Option<oneshot::Sender<()>>,
    served: Option<tokio::task::JoinHandle<()>>,
    dir: Arc<tempfile::TempDir>,
}

impl Harness {
    pub async fn start() -> Self {
        Self::with_config(CONFIG).await
    }

    pub async fn with_config(config: &str) -> Self {
        Self::at(config, Timestamp::now()).await
    }

    /// A server whose clock starts at `start`.
    pub async fn at(config: &str, start: Timestamp) -> Self {
        Self::with_files(config, start, &[]).await
    }

    /// A server on a fresh PostgreSQL database (the test process's server) with extra files.
    pub async fn on_postgres(config: &str, files: &[(&str, &str)]) -> Self {
        let url = reveille_tests::postgres::server().database();
        let config = format!("{config}\n[database]\nurl = \"{url}\"\n");
        Self::with_files(&config, Timestamp::now(), files).await
    }

    /// A server with extra files (key files, say) next to its config.
    pub async fn with_files(config: &str, start: Timestamp, files: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        for (name, content) in files {
            std::fs::write(dir.path().join(name), content).unwrap();
        }
        std::fs::create_dir(dir.path().join("runbooks")).unwrap();
        std::fs::write(dir.path().join("runbooks/payments.md"), RUNBOOK).unwrap();
        let clock = Arc::new(ManualClock::new(start));
        let mut h = Self::boot(config, Arc::new(dir), clock).await;
        h.key = h.mint_key("payments").await;
        h.alice = h.mint_token("alice", &["read", "respond"]).await;
        h.bob = h.mint_token("bob", &["read", "respond"]).await;
        h
    }

    /// Stops the server and starts a new one on the same database, as a restart would.
    pub async fn restart(mut self, config: &str) -> Self {
        self.stop().await;
        self.start_again(config).await
    }

    /// Stops the server (it is gone once this returns); [`Self::start_again`] starts it again.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(served) = self.served.take() {
            served.await.unwrap();
        }
    }

    /// A new server on the database of one stopped with [`Self::stop`].
    pub async fn start_again(self, config: &str) -> Self {
        let mut old = self;
        let mut h = Self::boot(config, old.dir.clone(), old.clock.clone()).await;
        h.key = std::mem::take(&mut old.key);
        h.alice = std::mem::take(&mut old.alice);
        h.bob = std::mem::take(&mut old.bob);
        h
    }

    async fn boot(config: &str, dir: Arc<tempfile::TempDir>, clock: Arc<ManualClock>) -> Self {
        // On disk too: a reload reads it again.
        std::fs::write(dir.path().join("reveille.toml"), config).unwrap();
        let settings =
            Settings::from_text(config, &dir.path().join("reveille.toml"), Vec::new()).unwrap();
        let db = settings.database_path();
        reveille_server::http::links::ensure(&settings).unwrap();
        let store: Arc<dyn Store> = match settings.backend() {
            Some(Backend::Postgres(url)) => {
                let opened = tokio::task::spawn_blocking(move || {
                    reveille_store_postgres::Postgres::open(&url, &Default::default())
                });
                Arc::new(opened.await.unwrap().unwrap())
            }
            _ => Arc::new(Sqlite::open(&db).unwrap()),
        };
        let state = AppState::new(store, settings, clock.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let served = state.clone();
        let served = tokio::spawn(async move {
            reveille_server::serve(listener, served, async {
                stopped.await.ok();
            })
            .await
            .unwrap();
        });
        Harness {
            url,
            state,
            clock,
            http: reqwest::Client::new(),
            db,
            key: String::new(),
            alice: String::new(),
            bob: String::new(),
            stop: Some(stop),
            served: Some(served),
            dir,
        }
    }

    /// The config file the server reads on a reload.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("reveille.toml")
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.state.store
    }

    pub async fn mint_key(&self, service: &str) -> String {
        let m = mint_key();
        let info = KeyInfo {
            prefix: m.prefix,
            service: service.into(),
            created_at: Timestamp::now(),
            revoked: false,
        };
        self.store().add_key(&m.hash, info).await.unwrap();
        m.secret
    }

    pub async fn mint_token(&self, user: &str, scopes: &[&str]) -> String {
        let m = mint_token();
        let info = TokenInfo {
            prefix: m.prefix,
            user: user.into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            created_at: Timestamp::now(),
            last_used_at: None,
            revoked: false,
        };
        self.store().add_token(&m.hash, info).await.unwrap();
        m.secret
    }

    pub fn advance(&self, seconds: i64) {
        self.clock.advance(SignedDuration::from_secs(seconds));
    }

    /// POSTs a JSON text; returns status and parsed body (Null if not JSON).
    pub async fn post(&self, path: &str, auth: Option<&str>, body: &str) -> (u16, Value) {
        let response = self.post_response(path, auth, body).await;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// POSTs a JSON text; returns the raw response, headers and all.
    pub async fn post_response(
        &self,
        path: &str,
        auth: Option<&str>,
        body: &str,
    ) -> reqwest::Response {
        let mut request = self
            .http
            .post(format!("{}{path}", self.url))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        request.send().await.unwrap()
    }

    pub async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        let response =
            self.http.get(format!("{}{path}", self.url)).bearer_auth(token).send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Sends a PagerDuty fixture with this harness's key and returns the raw response.
    pub async fn pagerduty_response(&self, body: &str) -> reqwest::Response {
        let body = body.replace("ROUTING_KEY", &self.key);
        self.http.post(format!("{}/v2/enqueue", self.url)).body(body).send().await.unwrap()
    }

    pub async fn pagerduty(&self, body: &str) -> (u16, Value) {
        self.post("/v2/enqueue", None, &body.replace("ROUTING_KEY", &self.key)).await
    }

    pub async fn trigger(&self, key: &str, summary: &str) -> i64 {
        self.trigger_with(&self.key, key, summary).await
    }

    /// Triggers an incident on another service than `payments`.
    pub async fn trigger_on(&self, service: &str, key: &str, summary: &str) -> i64 {
        let routing = self.mint_key(service).await;
        self.trigger_with(&routing, key, summary).await
    }

    async fn trigger_with(&self, routing: &str, key: &str, summary: &str) -> i64 {
        let body = serde_json::json!({
            "routing_key": routing, "event_action": "trigger", "dedup_key": key,
            "payload": {"summary": summary, "source": "test", "severity": "critical"}
        });
        let (status, _) = self.post("/v2/enqueue", None, &body.to_string()).await;
        assert_eq!(status, 202);
        self.store()
            .incidents(Default::default())
            .await
            .unwrap()
            .iter()
            .find(|i| i.dedup_key == key && i.state.is_open())
            .unwrap()
            .id
    }

    /// Waits until the incident's timeline has a line of `kind` containing `containing`
    /// (written by a background task), and returns its message.
    pub async fn timeline_line(&self, id: i64, kind: &str, containing: &str) -> String {
        // Subscribe first, then look: a line committed in between still wakes the wait.
        let mut commits = self.store().hub().commits();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
        loop {
            let timeline = self.store().incident(id).await.unwrap().timeline;
            let found = timeline.iter().find(|e| e.kind == kind && e.message.contains(containing));
            if let Some(e) = found {
                return e.message.clone();
            }
            let lines: Vec<String> =
                timeline.iter().map(|e| format!("{} {}: {}", e.actor, e.kind, e.message)).collect();
            tokio::time::timeout_at(deadline, commits.changed())
                .await
                .unwrap_or_else(|_| {
                    panic!("no {kind} line containing {containing:?} on {id}: {lines:#?}")
                })
                .unwrap();
        }
    }

    /// Waits until the incident's timeline has `n` lines of `kind` (or more).
    pub async fn timeline_lines(&self, id: i64, kind: &str, n: usize) {
        let mut commits = self.store().hub().commits();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
        loop {
            let timeline = self.store().incident(id).await.unwrap().timeline;
            if timeline.iter().filter(|e| e.kind == kind).count() >= n {
                return;
            }
            let lines: Vec<String> =
                timeline.iter().map(|e| format!("{} {}: {}", e.actor, e.kind, e.message)).collect();
            tokio::time::timeout_at(deadline, commits.changed())
                .await
                .unwrap_or_else(|_| panic!("fewer than {n} {kind} lines on {id}: {lines:#?}"))
                .unwrap();
        }
    }

    pub async fn incidents(&self) -> Vec<reveille_protocol::Incident> {
        let filter = reveille_store::IncidentFilter { limit: 1000, ..Default::default() };
        self.store().incidents(filter).await.unwrap()
    }

    pub async fn feed(&self, token: &str, last_event_id: Option<i64>) -> Feed {
        let mut request = self.http.get(format!("{}/api/v1/feed", self.url)).bearer_auth(token);
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id.to_string());
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200, "feed refused");
        Feed {
            body: Box::pin(response.bytes_stream()),
            parser: Parser::default(),
            pending: Vec::new(),
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Reads a newline-delimited stream (ntfy's `/json` and `/raw`) line by line.
pub struct Lines {
    body: Body,
    buffer: Vec<u8>,
}

impl Lines {
    pub fn new(response: reqwest::Response) -> Self {
        Lines { body: Box::pin(response.bytes_stream()), buffer: Vec::new() }
    }

    /// The next line; None when the stream ends. Fails the test after 10 s of nothing.
    pub async fn next(&mut self) -> Option<String> {
        loop {
            if let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                return Some(String::from_utf8(line[..line.len() - 1].to_vec()).unwrap());
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.body.next())
                .await
                .expect("no line within 10 s")?
                .expect("stream failed");
            self.buffer.extend_from_slice(&chunk);
        }
    }

    /// The next line as JSON, skipping ntfy keepalives.
    pub async fn message(&mut self) -> Value {
        loop {
            let line = self.next().await.expect("stream ended");
            let value: Value = serde_json::from_str(&line).unwrap();
            if value["event"] != "keepalive" {
                return value;
            }
        }
    }
}

type Body =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>;

/// One open SSE connection.
pub struct Feed {
    body: Body,
    parser: Parser,
    pending: Vec<SseEvent>,
}

impl Feed {
    /// The next event of any kind; fails the test after 10 s of nothing.
    pub async fn next(&mut self) -> SseEvent {
        loop {
            if !self.pending.is_empty() {
                return self.pending.remove(0);
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.body.next())
                .await
                .expect("no feed event within 10 s")
                .expect("feed ended")
                .expect("feed failed");
            self.pending = self.parser.push(&chunk);
        }
    }

    /// The next `page` or `incident` event, skipping heartbeats.
    pub async fn entry(&mut self) -> (i64, String, Value) {
        loop {
            let event = self.next().await;
            if event.event == "page" || event.event == "incident" {
                let id: i64 = event.id.as_deref().unwrap().parse().unwrap();
                return (id, event.event, serde_json::from_str(&event.data).unwrap());
            }
        }
    }
}
