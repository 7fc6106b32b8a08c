//! Faults with the real binary. A 2xx means durable: SIGKILL the server again and again during a
//! storm of concurrent PagerDuty and Alertmanager ingest, restart it on the same database each
//! time, and every accepted event must be stored. And an acknowledgement made on a device while
//! the server is dead lands exactly once when it returns on the same address.
//!
//! `FAULT_ROUNDS` raises the number of kills (default 5). It has no `REVEILLE_` prefix on
//! purpose: the server refuses unknown `REVEILLE_*` variables, and it inherits this environment.

use reveille_store::prelude::*;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reveille_client::conn::Policy;
use reveille_client::outbox::Request;
use reveille_client::{Config, Device, Sound, Status, Subscriber};
use reveille_protocol::{Incident, IncidentDetail};
use reveille_store::IncidentFilter;
use reveille_store_sqlite::Sqlite;
use reveille_tests::{CONFIG, Site};
use serde_json::{Value, json};
use tokio::sync::watch;

/// Events each round must have accepted before the kill.
const PER_ROUND: usize = 150;

fn rounds() -> usize {
    std::env::var("FAULT_ROUNDS").ok().and_then(|n| n.parse().ok()).unwrap_or(5)
}

/// What the senders were told was accepted; `count` wakes whoever waits for a number.
#[derive(Default)]
struct Accepted {
    keys: Mutex<Vec<String>>,
    count: watch::Sender<usize>,
}

impl Accepted {
    fn add(&self, keys: impl IntoIterator<Item = String>) {
        let mut all = self.keys.lock().unwrap();
        all.extend(keys);
        self.count.send_replace(all.len());
    }
}

/// One request after another until the server dies, counting what it accepted; `Err` on an
/// answer that is neither a success nor a dead connection.
async fn storm<F>(url: String, accepted: Arc<Accepted>, request: F) -> Result<(), String>
where
    F: Fn(u64) -> (String, Value, Vec<String>),
{
    let http = reqwest::Client::new();
    for n in 0.. {
        let (path, body, keys) = request(n);
        match http.post(format!("{url}{path}")).json(&body).send().await {
            Ok(r) if r.status().is_success() => accepted.add(keys),
            Ok(r) => return Err(format!("{path} answered {}", r.status())),
            Err(_) => return Ok(()),
        }
    }
    Ok(())
}

/// A PagerDuty trigger with its own dedup key.
fn pagerduty(key: &str, tag: &str, n: u64) -> (String, Value, Vec<String>) {
    let dedup = format!("{tag}-{n}");
    let body = json!({"routing_key": key, "event_action": "trigger", "dedup_key": dedup,
        "payload": {"summary": format!("storm {dedup}"), "source": "storm", "severity": "critical"}});
    ("/v2/enqueue".into(), body, vec![dedup])
}

/// An Alertmanager webhook of five firing alerts, each with its own fingerprint.
fn alertmanager(key: &str, tag: &str, n: u64) -> (String, Value, Vec<String>) {
    let fingerprints: Vec<String> = (0..5).map(|a| format!("{tag}-{n}-{a}")).collect();
    let alerts: Vec<_> = fingerprints
        .iter()
        .map(|f| {
            json!({"status": "firing", "fingerprint": f,
            "labels": {"alertname": "Storm", "instance": f}, "annotations": {"summary": f}})
        })
        .collect();
    let body = json!({"version": "4", "status": "firing", "receiver": "reveille",
        "groupKey": "{}:{alertname=\"Storm\"}", "alerts": alerts});
    (format!("/api/v1/alertmanager/{key}"), body, fingerprints)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_accepted_event_is_lost_across_repeated_sigkills_during_a_storm() {
    let site = Site::new();
    let accepted = Arc::new(Accepted::default());
    let rounds = rounds();
    for round in 0..rounds {
        let mut server = site.start();
        let mut senders = Vec::new();
        for s in 0..8 {
            // Six PagerDuty senders and two Alertmanagers, all at once.
            let (key, tag) = (site.key.clone(), format!("r{round}-s{s}"));
            let request = move |n| match s {
                0 | 1 => alertmanager(&key, &format!("{tag}-am"), n),
                _ => pagerduty(&key, &format!("{tag}-pd"), n),
            };
            senders.push(tokio::spawn(storm(server.url.clone(), accepted.clone(), request)));
        }
        let target = *accepted.count.borrow() + PER_ROUND;
        let mut count = accepted.count.subscribe();
        tokio::time::timeout(Duration::from_secs(30), count.wait_for(|n| *n >= target))
            .await
            .expect("the storm stalled")
            .unwrap();
        server.kill();
        for sender in senders {
            sender.await.unwrap().unwrap();
        }
    }
    // The server still starts on a database killed this often.
    site.start().kill();

    let store = Sqlite::open(site.dir.path().join("reveille.db")).unwrap();
    let filter = IncidentFilter { limit: 1_000_000, ..Default::default() };
    let stored: HashSet<String> =
        store.incidents(filter).await.unwrap().into_iter().map(|i| i.dedup_key).collect();
    let accepted = accepted.keys.lock().unwrap().clone();
    let lost: Vec<&String> = accepted.iter().filter(|k| !stored.contains(*k)).collect();
    let pd = accepted.iter().filter(|k| k.contains("-pd")).count();
    println!(
        "faults: {rounds} kills, {} accepted ({pd} PagerDuty, {} Alertmanager), {} lost, {} stored but never answered",
        accepted.len(),
        accepted.len() - pd,
        lost.len(),
        stored.len() - (accepted.len() - lost.len()),
    );
    assert!(accepted.len() >= rounds * PER_ROUND);
    assert!(lost.is_empty(), "{} of {} accepted events lost: {lost:?}", lost.len(), accepted.len());
}

/// A device that only needs the subscriber's status: no sound, no windows.
struct Quiet;

impl Device for Quiet {
    fn ring(&self) {}
    fn silence(&self) {}
    fn notify(&self, _: &Incident) {}
    fn show(&self, _: &Incident) {}
    fn withdraw(&self, _: i64) {}
    fn feed_lost(&self, _: bool) {}
    fn sound(&self) -> Sound {
        Sound { volume: Some(1.0), silent: false, output: None }
    }
}

async fn until(status: &mut watch::Receiver<Status>, what: &str, test: impl Fn(&Status) -> bool) {
    tokio::time::timeout(Duration::from_secs(20), status.wait_for(test))
        .await
        .unwrap_or_else(|_| panic!("the device never got to: {what}"))
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ack_made_while_the_server_is_dead_lands_once_after_it_restarts() {
    // A fixed port, so the restarted server is where the device looks for it.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let site = Site::with_config(&CONFIG.replace("127.0.0.1:0", &format!("127.0.0.1:{port}")));
    let mut server = site.start();
    let policy = Policy {
        base: Duration::from_millis(50),
        cap: Duration::from_millis(200),
        lost_after: Duration::from_millis(500),
        ..Policy::default()
    };
    let config = Config {
        server: server.url.clone(),
        token: site.token.clone(),
        device: "alice-laptop".into(),
        outbox: site.dir.path().join("outbox.json"),
        policy,
        agent: concat!("reveille-desktop/", env!("CARGO_PKG_VERSION")).into(),
        receipts: true,
        resume: None,
    };
    let device = Subscriber::start(config, Arc::new(Quiet)).unwrap();
    let mut status = device.status.clone();
    until(&mut status, "connected", |s| s.connected).await;

    let http = reqwest::Client::new();
    let page = json!({"routing_key": site.key, "event_action": "trigger", "dedup_key": "disk",
        "payload": {"summary": "Disk full", "source": "db-1", "severity": "critical"}});
    let answer = http.post(format!("{}/v2/enqueue", server.url)).json(&page).send().await.unwrap();
    assert_eq!(answer.status(), 202);
    until(&mut status, "ringing", |s| !s.ringing.is_empty()).await;
    let incident = status.borrow().ringing[0].id;

    server.kill();
    until(&mut status, "feed lost", |s| s.lost).await;
    device.act(incident, Request::Ack).await;
    until(&mut status, "silent, ack kept", |s| s.ringing.is_empty() && s.pending == 1).await;

    let server = site.start();
    assert_eq!(server.url, format!("http://127.0.0.1:{port}"));
    until(&mut status, "ack delivered", |s| !s.lost && s.pending == 0).await;
    let detail: IncidentDetail = http
        .get(format!("{}/api/v1/incidents/{incident}", server.url))
        .bearer_auth(&site.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let acks = detail.timeline.iter().filter(|e| e.kind == "acknowledged").count();
    println!("faults: ack made while the server was dead landed {acks} time(s)");
    assert_eq!(detail.incident.acknowledged_by.as_deref(), Some("alice"));
    assert_eq!(acks, 1, "exactly once: {:?}", detail.timeline);
}
