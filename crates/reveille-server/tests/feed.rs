//! The SSE feed over real HTTP: pages arrive, resume has no gap and no duplicate, an ack by one
//! device reaches the others, and a slow reader blocks nobody.

mod common;

use common::Harness;
use serde_json::json;

#[tokio::test]
async fn a_page_reaches_every_paged_user_and_nobody_else() {
    let h = Harness::start().await;
    let carol = h.mint_token("carol", &["read"]).await;
    let mut alice = h.feed(&h.alice, None).await;
    let mut bob = h.feed(&h.bob, None).await;
    let mut carol = h.feed(&carol, None).await;
    for feed in [&mut alice, &mut bob, &mut carol] {
        assert_eq!(feed.next().await.event, "open");
    }
    let id = h.trigger("db-down", "Database down").await;
    for feed in [&mut alice, &mut bob] {
        let (_, kind, event) = feed.entry().await;
        assert_eq!(kind, "page");
        assert_eq!(event["incident"]["id"], json!(id));
        assert_eq!(event["incident"]["summary"], "Database down");
        assert_eq!(event["incident"]["urgency"], "high");
        assert_eq!(
            event["incident"]["runbook_url"],
            "http://reveille.test/api/v1/runbooks/payments"
        );
    }
    let next = carol.next().await;
    assert_eq!(next.event, "heartbeat", "carol is not paged for payments");
    let beat: serde_json::Value = serde_json::from_str(&next.data).unwrap();
    assert!(beat["time"].is_string());
}

#[tokio::test]
async fn resuming_with_last_event_id_gets_exactly_the_missed_events() {
    let h = Harness::start().await;
    let mut feed = h.feed(&h.alice, None).await;
    let first = h.trigger("k1", "first").await;
    let (seen, _, _) = feed.entry().await;
    drop(feed);

    let second = h.trigger("k2", "second").await;
    let third = h.trigger("k3", "third").await;
    let (status, _) = h
        .post(&format!("/api/v1/incidents/{first}/ack"), Some(&format!("Bearer {}", h.bob)), "")
        .await;
    assert_eq!(status, 200);

    let mut feed = h.feed(&h.alice, Some(seen)).await;
    assert_eq!(feed.next().await.event, "open");
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(feed.entry().await);
    }
    let summary: Vec<(String, i64)> = got
        .iter()
        .map(|(_, kind, e)| (kind.clone(), e["incident"]["id"].as_i64().unwrap()))
        .collect();
    assert_eq!(
        summary,
        [("page".into(), second), ("page".into(), third), ("incident".into(), first)]
    );
    assert!(got.windows(2).all(|w| w[0].0 < w[1].0) && got[0].0 > seen);
    assert_eq!(got[2].2["incident"]["state"], "acknowledged");
    assert_eq!(feed.next().await.event, "heartbeat", "nothing more: no duplicate");

    // A live entry after the replay continues the same sequence.
    let fourth = h.trigger("k4", "fourth").await;
    let (id, _, event) = feed.entry().await;
    assert!(id > got[2].0);
    assert_eq!(event["incident"]["id"], json!(fourth));
}

#[tokio::test]
async fn an_ack_by_one_device_is_seen_by_every_other() {
    let h = Harness::start().await;
    let mut alice_laptop = h.feed(&h.alice, None).await;
    let alice_phone_token = h.mint_token("alice", &["read", "respond"]).await;
    let mut alice_phone = h.feed(&alice_phone_token, None).await;
    let mut bob = h.feed(&h.bob, None).await;
    let id = h.trigger("k", "ring").await;
    for feed in [&mut alice_laptop, &mut alice_phone, &mut bob] {
        assert_eq!(feed.entry().await.1, "page");
    }
    let (status, body) = h
        .post(
            &format!("/api/v1/incidents/{id}/ack"),
            Some(&format!("Bearer {alice_phone_token}")),
            "",
        )
        .await;
    assert_eq!((status, body["state"].as_str()), (200, Some("acknowledged")));
    for feed in [&mut alice_laptop, &mut alice_phone, &mut bob] {
        let (_, kind, event) = feed.entry().await;
        assert_eq!(kind, "incident");
        assert_eq!(event["incident"]["state"], "acknowledged");
        assert_eq!(event["incident"]["acknowledged_by"], "alice");
    }
}

#[tokio::test]
async fn a_snoozed_page_rings_again_when_the_snooze_ends() {
    let h = Harness::start().await;
    let mut feed = h.feed(&h.alice, None).await;
    let id = h.trigger("k", "flapping").await;
    assert_eq!(feed.entry().await.1, "page");
    let auth = format!("Bearer {}", h.alice);
    let (status, body) =
        h.post(&format!("/api/v1/incidents/{id}/snooze"), Some(&auth), r#"{"seconds": 600}"#).await;
    assert_eq!((status, body["state"].as_str()), (200, Some("snoozed")));
    assert_eq!(feed.entry().await.2["incident"]["state"], "snoozed");
    h.advance(599);
    reveille_server::oncall::escalation::tick(&h.state).await;
    assert_eq!(feed.next().await.event, "heartbeat", "no page before the snooze ends");
    h.advance(1);
    h.state.wake.notify_one();
    let (_, kind, event) = feed.entry().await;
    assert_eq!((kind.as_str(), event["incident"]["state"].as_str()), ("page", Some("triggered")));
    let timeline = h.store().incident(id).await.unwrap().timeline;
    assert_eq!(timeline.last().unwrap().kind, "snooze_ended");
}

#[tokio::test]
async fn a_slow_reader_blocks_nobody_and_still_gets_everything_in_order() {
    // Slow, not dead: heartbeats of 5 s give it 15 s before it would count as stalled.
    let h = Harness::with_config(
        &common::CONFIG.replace("heartbeat_seconds = 1", "heartbeat_seconds = 5"),
    )
    .await;
    let mut slow = h.feed(&h.alice, Some(0)).await;
    let mut bob = h.feed(&h.bob, None).await;
    let path = format!("/api/v1/alertmanager/{}", h.key);
    let batches = 3;
    let per_batch = 500;
    for b in 0..batches {
        let alerts: Vec<_> = (0..per_batch)
            .map(|i| {
                json!({
                    "status": "firing", "labels": {"alertname": format!("a{b}-{i}")},
                    // Big enough that the socket buffers cannot hide the slow reader.
                    "annotations": {"description": "x".repeat(8 * 1024)},
                    "fingerprint": format!("f{b}-{i}")
                })
            })
            .collect();
        let body = json!({"version": "4", "status": "firing", "alerts": alerts});
        assert_eq!(h.post(&path, None, &body.to_string()).await.0, 200);
    }
    let total = batches * per_batch;
    let mut bob_ids = Vec::new();
    while bob_ids.len() < total {
        bob_ids.push(bob.entry().await.0);
    }
    // Only now does the slow reader start reading: well past the live channel's capacity.
    let mut slow_ids = Vec::new();
    while slow_ids.len() < total {
        slow_ids.push(slow.entry().await.0);
    }
    assert!(slow_ids.windows(2).all(|w| w[0] < w[1]), "in order, no duplicate");
    let stored: Vec<i64> =
        h.store().feed_since("alice", 0, 10_000).await.unwrap().iter().map(|e| e.id).collect();
    assert_eq!(slow_ids, stored, "no gap");
    assert_eq!(slow.next().await.event, "heartbeat");
    assert!(h.state.metrics.feed_resyncs.get() > 0, "the slow reader did fall behind");
}

#[tokio::test]
async fn a_resume_id_beyond_the_head_starts_from_the_head() {
    let h = Harness::start().await;
    h.trigger("k1", "before").await;
    // As if the client's last id came from a database that has since been replaced.
    let mut feed = h.feed(&h.alice, Some(1_000_000)).await;
    assert_eq!(feed.next().await.event, "open");
    let id = h.trigger("k2", "after").await;
    let (_, kind, event) = feed.entry().await;
    assert_eq!((kind.as_str(), event["incident"]["id"].as_i64()), ("page", Some(id)));
}

#[tokio::test]
async fn a_bad_token_or_resume_id_is_refused_with_a_clear_error() {
    let h = Harness::start().await;
    let response =
        h.http.get(format!("{}/api/v1/feed", h.url)).bearer_auth("rvt_nope").send().await.unwrap();
    assert_eq!(response.status(), 401);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["code"], "unauthorized");
    assert_eq!(body["message"], "this token is unknown or revoked");
    let response = h
        .http
        .get(format!("{}/api/v1/feed", h.url))
        .bearer_auth(&h.alice)
        .header("last-event-id", "yesterday")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["field"], "Last-Event-ID");
}
