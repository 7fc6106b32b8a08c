//! No input can break a feed. Alerts past Reveille's bounds are refused naming the field; a
//! stored row no reader can decode is skipped by the feed and by push, never failing either; and
//! after generated bodies on every ingest endpoint (valid, odd and at every limit) a device
//! resuming from id 0 still receives the page sent after them, and push delivery still advances.

mod common;
mod fakes;

use common::Harness;
use fakes::Providers;
use jiff::Timestamp;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::{Value, json};

/// `levels` of objects around a number.
fn nested(levels: usize) -> Value {
    (0..levels).fold(json!(1), |inner, _| json!({ "a": inner }))
}

/// One body for one endpoint: (path, authorization, body).
fn request(
    h: &Harness,
    endpoint: usize,
    details: Value,
    key: &str,
    text: &str,
) -> (String, Option<String>, String) {
    let bearer = Some(format!("Bearer {}", h.key));
    match endpoint % 5 {
        0 => {
            let body = json!({"summary": text, "dedup_key": key, "details": details});
            ("/api/v1/events".into(), bearer, body.to_string())
        }
        1 => {
            let body = json!({"routing_key": h.key, "event_action": "trigger", "dedup_key": key,
                "payload": {"summary": text, "source": text, "severity": "critical",
                            "custom_details": details}});
            ("/v2/enqueue".into(), None, body.to_string())
        }
        2 => {
            let body = json!({"version": "4", "status": "firing", "alerts": [{"status": "firing",
                "fingerprint": key, "labels": {"alertname": text},
                "annotations": {"summary": text, "description": details.to_string()}}]});
            (format!("/api/v1/alertmanager/{}", h.key), None, body.to_string())
        }
        3 => {
            let body = json!({"status": "firing", "title": text, "alerts": [{"status": "firing",
                "fingerprint": key, "labels": {"alertname": "x"}, "values": details}]});
            (format!("/api/v1/grafana/{}", h.key), None, body.to_string())
        }
        _ => {
            let body = json!({"message": text, "alias": key, "details": {"d": details.to_string()},
                "extra": details});
            ("/v2/alerts".into(), Some(format!("GenieKey {}", h.key)), body.to_string())
        }
    }
}

async fn send(h: &Harness, request: (String, Option<String>, String)) -> (u16, Value) {
    let (path, auth, body) = request;
    h.post(&path, auth.as_deref(), &body).await
}

#[tokio::test]
async fn alerts_past_the_bounds_are_refused_naming_the_field_and_store_nothing() {
    let h = Harness::start().await;
    let deep = nested(125);
    let cases = [
        (0, deep.clone(), "k".to_string(), "details"),
        (1, deep.clone(), "k".to_string(), "payload.custom_details"),
        (2, json!({}), "f".repeat(10_000), "alerts[0].fingerprint"),
        (3, nested(40), "k".to_string(), "alerts[0].values"),
        (4, json!({}), "k".repeat(600), "alias"),
        (0, json!({}), "k".repeat(600), "dedup_key"),
        (2, json!("x".repeat(600 * 1024)), "k".to_string(), "alerts[0].annotations"),
    ];
    for (endpoint, details, key, field) in cases {
        let (status, body) = send(&h, request(&h, endpoint, details, &key, "disk full")).await;
        assert_eq!(status, 400, "endpoint {endpoint}, {field}: {body}");
        assert!(body.to_string().contains(field), "the answer names {field}: {body}");
    }
    assert!(h.incidents().await.is_empty(), "nothing was stored");
}

#[tokio::test]
async fn a_feed_row_no_reader_can_decode_is_skipped_and_later_pages_still_arrive() {
    let h = Harness::start().await;
    let first = h.trigger("one", "first page").await;
    // What main stored for a 125-deep alert: an entry serde_json refuses to read back.
    let poison = json!({"id": 0, "kind": "page", "at": Timestamp::now(),
        "incident": {"id": first, "details": nested(130)}});
    let conn = rusqlite::Connection::open(&h.db).unwrap();
    let rows = conn
        .execute("UPDATE feed SET body = ?1 WHERE user = 'alice'", [poison.to_string()])
        .unwrap();
    assert_eq!(rows, 1);
    drop(conn);

    let second = h.trigger("two", "second page").await;
    let mut feed = h.feed(&h.alice, Some(0)).await;
    let (_, kind, entry) = feed.entry().await;
    assert_eq!((kind.as_str(), entry["incident"]["id"].as_i64()), ("page", Some(second)));

    let metrics = h.http.get(format!("{}/metrics", h.url)).send().await.unwrap();
    let metrics = metrics.text().await.unwrap();
    assert!(metrics.contains("reveille_unreadable_rows 1"), "{metrics}");
    let line = h.timeline_line(first, "unreadable", "cannot be read").await;
    assert!(line.contains("feed row"), "{line}");
}

/// Generated bodies for every endpoint: details from flat to past every parser limit, keys and
/// texts around each length bound.
fn generated() -> impl Strategy<Value = (usize, usize, usize, usize)> {
    (0usize..5, 0usize..128, prop_oneof![1usize..20, 250usize..260, 500usize..520], 0usize..1100)
}

#[tokio::test]
async fn after_any_mix_of_bodies_a_resuming_device_gets_the_next_page_and_push_advances() {
    let mut providers = Providers::start().await;
    let config = format!(
        "{}\n[push]\nca_file = \"providers.pem\"\n[push.fcm]\nservice_account = \"sa.json\"\nendpoint = \"{}\"\n",
        common::CONFIG,
        providers.url
    );
    let files =
        [("providers.pem", providers.ca_pem.as_str()), ("sa.json", &providers.service_account())];
    let h = Harness::with_files(&config, Timestamp::now(), &files).await;
    let device = json!({"platform": "fcm", "token": "phone-1", "name": "alice phone"});
    let (status, _) =
        h.post("/api/v1/devices", Some(&format!("Bearer {}", h.alice)), &device.to_string()).await;
    assert_eq!(status, 200);

    let mut runner = TestRunner::deterministic();
    let mut answers = std::collections::BTreeMap::<u16, usize>::new();
    for n in 0..60 {
        let (endpoint, depth, key_len, text_len) =
            generated().new_tree(&mut runner).unwrap().current();
        let key = format!("{n}-{}", "k".repeat(key_len));
        let text = format!("alert {n} {}", "é".repeat(text_len));
        let (status, body) = send(&h, request(&h, endpoint, nested(depth), &key, &text)).await;
        assert!(matches!(status, 200 | 202 | 400 | 422), "{status}: {body}");
        *answers.entry(status).or_default() += 1;
    }
    assert!(answers.len() > 1, "both accepted and refused bodies were generated: {answers:?}");

    let last = h.trigger("after-all", "the page that must arrive").await;
    let mut feed = h.feed(&h.alice, Some(0)).await;
    loop {
        let (_, kind, entry) = feed.entry().await;
        if kind == "page" && entry["incident"]["id"].as_i64() == Some(last) {
            break;
        }
    }
    loop {
        let seen = providers.next().await;
        if seen.body.to_string().contains("the page that must arrive") {
            break;
        }
    }
}
