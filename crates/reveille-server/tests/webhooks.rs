//! Outbound webhooks against receivers on loopback that check the signature as a receiver would:
//! each change arrives once, signed; a 5xx is retried and every attempt is on the timeline; a
//! receiver that never answers delays neither ingest nor the other receivers.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use common::Harness;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use tokio::sync::mpsc;

const SECRET: &str = "whsec_test_0123456789abcdef";

/// What the receiver saw of one request, after checking its signature.
#[derive(Debug)]
struct Received {
    kind: String,
    delivery: String,
    body: Value,
}

#[derive(Clone)]
struct Receiver {
    seen: mpsc::UnboundedSender<Received>,
    /// Requests answered so far; the first `fail` of them get a 500.
    count: Arc<AtomicUsize>,
    fail: usize,
}

/// Verifies `Reveille-Signature: t=…,v1=…` the way a receiver's docs would tell it to.
fn verify(headers: &HeaderMap, body: &[u8]) -> bool {
    let Some(header) = headers.get("reveille-signature").and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let part = |name: &str| {
        header.split(',').find_map(|p| p.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
    };
    let (Some(t), Some(v1)) = (part("t"), part("v1")) else { return false };
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    let expected: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    let fresh =
        t.parse::<i64>().is_ok_and(|t| (jiff::Timestamp::now().as_second() - t).abs() < 300);
    expected == v1 && fresh
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    if !verify(&headers, &body) {
        return StatusCode::UNAUTHORIZED;
    }
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let _ = r.seen.send(Received {
        kind: header("reveille-event"),
        delivery: header("reveille-delivery"),
        body: serde_json::from_slice(&body).unwrap(),
    });
    if r.count.fetch_add(1, Ordering::SeqCst) < r.fail {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::NO_CONTENT
    }
}

async fn start_receiver(fail: usize) -> (String, mpsc::UnboundedReceiver<Received>) {
    let (seen, rx) = mpsc::unbounded_channel();
    let state = Receiver { seen, count: Arc::default(), fail };
    let app = Router::new().route("/hook", post(receive)).with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, rx)
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Received>) -> Received {
    tokio::time::timeout(std::time::Duration::from_secs(20), rx.recv())
        .await
        .expect("no webhook in time")
        .unwrap()
}

#[tokio::test]
async fn incident_changes_are_posted_signed_retried_and_on_the_timeline() {
    let (ops_url, mut ops) = start_receiver(1).await;
    let (all_url, mut all) = start_receiver(0).await;
    // A receiver that takes the connection and never answers.
    let hung = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hung_url = format!("http://{}/hook", hung.local_addr().unwrap());
    let config = format!(
        "{}\n[[webhooks]]\nname = \"ops\"\nurl = \"{ops_url}\"\nsecret_file = \"ops.secret\"\nservices = [\"payments\"]\n\
         \n[[webhooks]]\nname = \"all\"\nurl = \"{all_url}\"\nsecret_file = \"ops.secret\"\n\
         \n[[webhooks]]\nname = \"hung\"\nurl = \"{hung_url}\"\nsecret_file = \"ops.secret\"\n",
        common::CONFIG
    );
    let h = Harness::with_files(&config, jiff::Timestamp::now(), &[("ops.secret", SECRET)]).await;

    // One incident paging alice and bob is one event, retried after the receiver's 500.
    let id = h.trigger("db-1/disk", "Disk full on db-1").await;
    let first = next(&mut ops).await;
    let retried = next(&mut ops).await;
    assert_eq!(first.kind, "incident.triggered");
    assert_eq!(first.delivery, retried.delivery, "a retry is the same delivery");
    assert_eq!(retried.body, first.body);
    assert_eq!(first.body["type"], "incident.triggered");
    assert_eq!(first.body["incident"]["id"], id);
    assert_eq!(first.body["incident"]["summary"], "Disk full on db-1");
    assert!(first.body["incident"].get("escalation").is_none());
    h.timeline_line(id, "webhook_retry", "Webhook ops (incident.triggered) attempt 1: 500").await;
    h.timeline_line(id, "webhook_delivered", "Webhook ops (incident.triggered) delivered: 204")
        .await;

    // Acknowledged and resolved, once each, with who did it.
    let (status, _) = h
        .post(&format!("/api/v1/incidents/{id}/ack"), Some(&format!("Bearer {}", h.alice)), "")
        .await;
    assert_eq!(status, 200);
    let acked = next(&mut ops).await;
    assert_eq!(
        (acked.kind.as_str(), acked.body["incident"]["acknowledged_by"].as_str()),
        ("incident.acknowledged", Some("alice"))
    );
    // A web incident: "all" hears of it, "ops" (payments only) never does.
    let web_key = h.mint_key("web").await;
    let body = serde_json::json!({"summary": "Checkout slow", "severity": "warning"});
    let (status, _) =
        h.post("/api/v1/events", Some(&format!("Bearer {web_key}")), &body.to_string()).await;
    assert_eq!(status, 202);
    let (status, _) = h
        .post(&format!("/api/v1/incidents/{id}/resolve"), Some(&format!("Bearer {}", h.alice)), "")
        .await;
    assert_eq!(status, 200);
    assert_eq!(next(&mut ops).await.kind, "incident.resolved");

    let mut kinds = Vec::new();
    while kinds.len() < 4 {
        let r = next(&mut all).await;
        kinds.push((r.kind, r.body["incident"]["service"].as_str().unwrap_or("").to_owned()));
    }
    kinds.sort();
    let expected = [
        ("incident.acknowledged", "payments"),
        ("incident.resolved", "payments"),
        ("incident.triggered", "payments"),
        ("incident.triggered", "web"),
    ];
    assert_eq!(kinds, expected.map(|(k, s)| (k.to_owned(), s.to_owned())));
    assert!(ops.try_recv().is_err(), "ops got an event it should not have");

    // The hung receiver delayed nothing: everything above was delivered while it held its
    // connections, and ingest still answers at once.
    for n in 0..5 {
        h.trigger(&format!("more-{n}"), "more").await;
    }
    drop(hung);
}

#[tokio::test]
async fn a_delivery_being_retried_survives_a_restart_as_the_same_delivery() {
    let (url, mut hook) = start_receiver(1).await;
    let config = format!(
        "{}\n[[webhooks]]\nname = \"ops\"\nurl = \"{url}\"\nsecret_file = \"ops.secret\"\n",
        common::CONFIG
    );
    let h = Harness::with_files(&config, jiff::Timestamp::now(), &[("ops.secret", SECRET)]).await;
    let id = h.trigger("db-1/disk", "Disk full on db-1").await;
    let refused = next(&mut hook).await;
    assert_eq!(refused.kind, "incident.triggered");
    // Restarted while the retry waits: the new process sends it, as the same delivery.
    let h = h.restart(&config).await;
    let again = next(&mut hook).await;
    assert_eq!((again.kind.as_str(), &again.delivery), ("incident.triggered", &refused.delivery));
    h.timeline_line(id, "webhook_delivered", "delivered: 204").await;
    // Nothing is sent a third time: the next event the receiver hears is the next change.
    let (status, _) = h
        .post(&format!("/api/v1/incidents/{id}/ack"), Some(&format!("Bearer {}", h.alice)), "")
        .await;
    assert_eq!(status, 200);
    assert_eq!(next(&mut hook).await.kind, "incident.acknowledged");
}
