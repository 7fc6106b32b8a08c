//! The subscriber against a real Reveille server on loopback: it rings for a page, sends
//! receipts, falls silent when anyone acknowledges, notices a lost feed, and delivers an ack made
//! while the server was down exactly once when it returns.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reveille_client::conn::Policy;
use reveille_client::outbox::Request;
use reveille_client::{Config, Device, Sound, Status, Subscriber};
use reveille_protocol::{Action, AlertEvent, Incident, IncidentState, Severity};
use reveille_server::AppState;
use reveille_server::clock::SystemClock;
use reveille_server::config::Settings;
use reveille_store::{IngestBatch, Sqlite, Store, TokenInfo};
use tokio::sync::{oneshot, watch};

const CONFIG: &str = r#"
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
struct Recorder {
    calls: Mutex<Vec<String>>,
    changed: watch::Sender<usize>,
}

impl Recorder {
    fn record(&self, call: String) {
        let mut calls = self.calls.lock().unwrap();
        calls.push(call);
        self.changed.send_replace(calls.len());
    }

    async fn wait_for(&self, call: &str) {
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

    fn count(&self, call: &str) -> usize {
        self.calls.lock().unwrap().iter().filter(|c| *c == call).count()
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
        self.record(format!("notify {}", incident.id));
    }
    fn show(&self, incident: &Incident) {
        self.record(format!("show {}", incident.id));
    }
    fn withdraw(&self, incident: i64) {
        self.record(format!("withdraw {incident}"));
    }
    fn feed_lost(&self, lost: bool) {
        self.record(format!("lost {lost}"));
    }
    fn sound(&self) -> Sound {
        Sound { volume: Some(0.4), silent: false, output: Some("Test speakers".into()) }
    }
}

struct Server {
    store: Arc<Sqlite>,
    stop: oneshot::Sender<()>,
    done: tokio::task::JoinHandle<()>,
}

async fn serve(dir: &std::path::Path, port: u16) -> (Server, u16) {
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

async fn page(store: &Sqlite, key: &str) -> i64 {
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

async fn until(status: &mut watch::Receiver<Status>, what: impl Fn(&Status) -> bool) {
    tokio::time::timeout(Duration::from_secs(10), status.wait_for(what))
        .await
        .expect("status never got there")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rings_receipts_silences_survives_an_outage_and_delivers_the_ack_once() {
    let dir = tempfile::tempdir().unwrap();
    let (server, port) = serve(dir.path(), 0).await;
    let token = "rvt_test-token-for-alice";
    let info = TokenInfo {
        prefix: "rvt_test-t".into(),
        user: "alice".into(),
        scopes: vec!["read".into(), "respond".into()],
        created_at: jiff::Timestamp::now(),
        last_used_at: None,
        revoked: false,
    };
    server.store.add_token(&reveille_server::auth::hash(token), info).await.unwrap();

    let device = Arc::new(Recorder::default());
    let policy = Policy {
        base: Duration::from_millis(50),
        cap: Duration::from_millis(200),
        silence: Duration::from_secs(3),
        lost_after: Duration::from_secs(1),
        ..Policy::default()
    };
    let config = Config {
        server: format!("http://127.0.0.1:{port}"),
        token: token.into(),
        device: "alice-laptop".into(),
        outbox: dir.path().join("outbox.json"),
        policy,
    };
    let client = Subscriber::start(config, device.clone()).unwrap();
    let mut status = client.status.clone();
    until(&mut status, |s| s.connected).await;

    // A page rings, and the server hears that it was delivered and is ringing, and how loud.
    let first = page(&server.store, "a").await;
    device.wait_for("ring").await;
    device.wait_for(&format!("show {first}")).await;
    assert_eq!(device.count(&format!("notify {first}")), 1);
    let receipts = || async {
        let timeline = server.store.incident(first).await.unwrap().timeline;
        timeline
            .iter()
            .filter(|e| e.kind == "receipt")
            .map(|e| e.message.clone())
            .collect::<Vec<_>>()
    };
    // Receipts are written by the server as they arrive: wait on its commits, not on a timer.
    let mut commits = server.store.hub().commits();
    let mut seen = receipts().await;
    while seen.len() < 2 {
        tokio::time::timeout(Duration::from_secs(10), commits.changed())
            .await
            .expect("no receipts")
            .unwrap();
        seen = receipts().await;
    }
    assert!(seen.contains(&"delivered on alice-laptop".to_string()), "{seen:?}");
    assert!(
        seen.contains(&"ringing on alice-laptop at 40% volume through Test speakers".to_string()),
        "{seen:?}"
    );

    // An ack from anywhere else silences this device.
    server
        .store
        .command(first, "bob", reveille_core::Command::Acknowledge, jiff::Timestamp::now())
        .await
        .unwrap();
    device.wait_for("silence").await;
    device.wait_for(&format!("withdraw {first}")).await;

    // The server goes away: the feed is reported lost.
    let second = page(&server.store, "b").await;
    device.wait_for(&format!("show {second}")).await;
    let Server { store, stop, done } = server;
    stop.send(()).unwrap();
    done.await.unwrap();
    drop(store);
    device.wait_for("lost true").await;
    until(&mut status, |s| s.lost).await;

    // Acknowledged while the server is down: silent at once, kept on disk.
    client.act(second, Request::Ack).await;
    until(&mut status, |s| s.pending == 1 && s.ringing.is_empty()).await;
    assert_eq!(device.count("silence"), 2);

    // The server returns on the same address: the feed is back, and the ack lands once.
    let (server, _) = serve(dir.path(), port).await;
    device.wait_for("lost false").await;
    until(&mut status, |s| s.pending == 0).await;
    let incident = server.store.incident(second).await.unwrap();
    assert_eq!(incident.incident.state, IncidentState::Acknowledged);
    assert_eq!(incident.incident.acknowledged_by.as_deref(), Some("alice"));
    let acks = incident.timeline.iter().filter(|e| e.kind == "acknowledged").count();
    assert_eq!(acks, 1, "exactly once");
}
