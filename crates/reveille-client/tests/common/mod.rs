//! What the subscriber's tests share: a real Reveille server in this process on its own
//! temporary database, a token for alice, pages straight into the store, and a device that
//! records what it was asked to do.
#![allow(dead_code)]

use reveille_store::prelude::*;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reveille_client::conn::Policy;
use reveille_client::{Config, Device, Sound, Status};
use reveille_protocol::{Action, AlertEvent, Incident, Severity};
use reveille_server::AppState;
use reveille_server::clock::SystemClock;
use reveille_server::config::Settings;
use reveille_store::{IngestBatch, TokenInfo};
use reveille_store_sqlite::Sqlite;
use tokio::sync::{oneshot, watch};

pub const CONFIG: &str = r#"
[server]
listen = "127.0.0.1:0"
heartbeat_seconds = 1
[[users]]
name = "alice"
[[services]]
name = "db"
page = ["alice"]
"#;

/// A device that records what it was asked to do.
#[derive(Default)]
pub struct Recorder {
    pub calls: Mutex<Vec<String>>,
    /// Every incident notified or shown, as it was then.
    pub incidents: Mutex<std::collections::HashMap<i64, Incident>>,
    changed: watch::Sender<usize>,
    /// The output has gone (or is muted): the device can no longer be heard.
    pub silent: std::sync::atomic::AtomicBool,
}

impl Recorder {
    fn record(&self, call: String) {
        let mut calls = self.calls.lock().unwrap();
        calls.push(call);
        self.changed.send_replace(calls.len());
    }

    pub async fn wait_for(&self, call: &str) {
        let mut changed = self.changed.subscribe();
        let wait = async {
            loop {
                if self.calls.lock().unwrap().iter().any(|c| c == call) {
                    return;
                }
                changed.changed().await.unwrap();
            }
        };
        tokio::time::timeout(Duration::from_secs(10), wait).await.unwrap_or_else(|_| {
            panic!("the device never got {call:?}; it got {:?}", self.calls.lock().unwrap())
        });
    }

    pub fn count(&self, call: &str) -> usize {
        self.calls.lock().unwrap().iter().filter(|c| *c == call).count()
    }

    /// How many calls start with `prefix` (`"notify "`: every notification).
    pub fn count_starting(&self, prefix: &str) -> usize {
        self.calls.lock().unwrap().iter().filter(|c| c.starts_with(prefix)).count()
    }

    /// The incident as it was last notified or shown.
    pub fn incident(&self, id: i64) -> Incident {
        self.incidents.lock().unwrap().get(&id).cloned().expect("never notified nor shown")
    }
}

impl Device for Recorder {
    fn ring(&self) {
        self.record("ring".into());
    }
    fn silence(&self) {
        self.record("silence".into());
    }
    fn notify(&self, incident: &Incident) {
        self.incidents.lock().unwrap().insert(incident.id, incident.clone());
        self.record(format!("notify {}", incident.id));
    }
    fn show(&self, incident: &Incident) {
        self.incidents.lock().unwrap().insert(incident.id, incident.clone());
        self.record(format!("show {}", incident.id));
    }
    fn withdraw(&self, incident: i64) {
        self.record(format!("withdraw {incident}"));
    }
    fn feed_lost(&self, lost: bool) {
        self.record(format!("lost {lost}"));
    }
    fn sound(&self) -> Sound {
        let silent = self.silent.load(std::sync::atomic::Ordering::SeqCst);
        Sound { volume: Some(0.4), silent, output: Some("Test speakers".into()) }
    }
}

/// A server running in this process; `stop` ends it.
pub struct Server {
    pub store: Arc<Sqlite>,
    pub stop: oneshot::Sender<()>,
    pub done: tokio::task::JoinHandle<()>,
}

/// Serves on `port` (0: any free port) with the database in `dir`; returns the port.
pub async fn serve(dir: &std::path::Path, port: u16) -> (Server, u16) {
    let settings = Settings::from_text(CONFIG, &dir.join("reveille.toml"), Vec::new()).unwrap();
    let store = Arc::new(Sqlite::open(settings.database_path()).unwrap());
    let state = AppState::new(store.clone(), settings, Arc::new(SystemClock));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop, stopped) = oneshot::channel::<()>();
    let done = tokio::spawn(async move {
        reveille_server::serve(listener, state, async {
            stopped.await.ok();
        })
        .await
        .unwrap();
    });
    (Server { store, stop, done }, port)
}

/// Pages alice with a new critical incident straight through the store; returns its id.
pub async fn page(store: &Sqlite, key: &str) -> i64 {
    let event = AlertEvent {
        action: Action::Trigger,
        dedup_key: key.into(),
        summary: format!("{key} is down"),
        severity: Severity::Critical,
        source: "test".into(),
        details: serde_json::Value::Null,
        links: vec![],
        runbook_url: None,
        occurred_at: None,
    };
    let rules = reveille_core::ServiceRules::paging("db", &["alice"]);
    let batch = IngestBatch {
        rules,
        source: "test".into(),
        events: vec![event],
        received_at: jiff::Timestamp::now(),
    };
    store.ingest(batch).await.unwrap()[0].incident_id.unwrap()
}

/// Waits until the subscriber's status passes `what`.
pub async fn until(status: &mut watch::Receiver<Status>, what: impl Fn(&Status) -> bool) {
    tokio::time::timeout(Duration::from_secs(10), status.wait_for(what))
        .await
        .expect("status never got there")
        .unwrap();
}

/// The token alice's device signs in with.
pub const TOKEN: &str = "rvt_test-token-for-alice";

/// Gives alice a token that may read and respond.
pub async fn add_token(store: &Sqlite) {
    let info = TokenInfo {
        prefix: "rvt_test-t".into(),
        user: "alice".into(),
        scopes: vec!["read".into(), "respond".into()],
        created_at: jiff::Timestamp::now(),
        last_used_at: None,
        revoked: false,
    };
    store.add_token(&reveille_server::http::auth::hash(TOKEN), info).await.unwrap();
}

/// A subscriber's settings for alice's laptop, with backoff short enough for tests.
pub fn config(server: String, dir: &std::path::Path) -> Config {
    let policy = Policy {
        base: Duration::from_millis(50),
        cap: Duration::from_millis(200),
        silence: Duration::from_secs(3),
        lost_after: Duration::from_secs(1),
        ..Policy::default()
    };
    Config {
        server,
        token: TOKEN.into(),
        device: "alice-laptop".into(),
        outbox: dir.join("outbox.json"),
        policy,
        agent: concat!("reveille-desktop/", env!("CARGO_PKG_VERSION")).into(),
        receipts: true,
        resume: None,
    }
}
