//! The subscriber against a real Reveille server on loopback: it rings for a page, sends
//! receipts, falls silent when anyone acknowledges, notices a lost feed, and delivers an ack made
//! while the server was down exactly once when it returns.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Recorder, Server, add_token, config, page, serve, until};
use reveille_client::Subscriber;
use reveille_client::outbox::Request;
use reveille_protocol::IncidentState;
use reveille_store::prelude::*;

/// A server in `dir`, and a subscriber connected to it through a recording device.
async fn connected(dir: &std::path::Path) -> (Server, u16, Arc<Recorder>, Subscriber) {
    let (server, port) = serve(dir, 0).await;
    add_token(&server.store).await;
    let device = Arc::new(Recorder::default());
    let config = config(format!("http://127.0.0.1:{port}"), dir);
    let client = Subscriber::start(config, device.clone()).unwrap();
    until(&mut client.status.clone(), |s| s.connected).await;
    (server, port, device, client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rings_receipts_silences_survives_an_outage_and_delivers_the_ack_once() {
    let dir = tempfile::tempdir().unwrap();
    let (server, port, device, client) = connected(dir.path()).await;
    let mut status = client.status.clone();

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
    // The receipt saying where it was acknowledged was kept with the ack, and landed with it.
    let said: Vec<&str> = incident.timeline.iter().map(|e| e.message.as_str()).collect();
    assert!(said.contains(&"acked on alice-laptop"), "{said:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_answered_while_the_device_was_away_never_rings_when_it_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let (server, port, device, client) = connected(dir.path()).await;
    let mut status = client.status.clone();
    // Something on the feed first, so the device resumes from an id when it comes back.
    let first = page(&server.store, "a").await;
    device.wait_for(&format!("show {first}")).await;
    client.act(first, Request::Ack).await;
    until(&mut status, |s| s.pending == 0 && s.ringing.is_empty()).await;

    let Server { store, stop, done } = server;
    stop.send(()).unwrap();
    done.await.unwrap();
    device.wait_for("lost true").await;
    // While the device is away: one page comes and bob answers it; another comes and waits.
    let answered = page(&store, "b").await;
    store
        .command(answered, "bob", reveille_core::Command::Acknowledge, jiff::Timestamp::now())
        .await
        .unwrap();
    let waiting = page(&store, "c").await;
    drop(store);

    let (_server, _) = serve(dir.path(), port).await;
    device.wait_for(&format!("show {waiting}")).await;
    let calls = device.calls.lock().unwrap().clone();
    let about = |id: i64| calls.iter().filter(|c| c.ends_with(&format!(" {id}"))).count();
    assert_eq!(about(answered), 0, "the answered page did something: {calls:?}");
    assert_eq!(device.count("ring"), 2, "{calls:?}");
    until(&mut status, |s| s.ringing.iter().map(|i| i.id).eq([waiting])).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_output_that_goes_away_mid_alarm_tells_the_server_the_page_is_silent() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _, device, client) = connected(dir.path()).await;
    let id = page(&server.store, "a").await;
    device.wait_for("ring").await;

    // The headphones are unplugged, the sink removed: the alarm plays into nothing.
    device.silent.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut commits = server.store.hub().commits();
    loop {
        let incident = server.store.incident(id).await.unwrap();
        let said =
            incident.timeline.iter().any(|e| e.kind == "receipt" && e.message.contains("SILENT"));
        if said && incident.incident.silent == ["alice"] {
            break;
        }
        tokio::time::timeout(Duration::from_secs(10), commits.changed())
            .await
            .expect("the server never heard that the page is silent")
            .unwrap();
    }
    drop(client);
}
