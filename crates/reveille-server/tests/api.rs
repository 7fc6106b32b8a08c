//! The REST API: incidents with timelines, commands, receipts, runbooks, scopes, and one error
//! shape for every failure.

mod common;

use common::{Harness, RUNBOOK};
use serde_json::json;

#[tokio::test]
async fn incidents_are_listed_and_shown_with_their_timeline() {
    let h = Harness::start().await;
    let first = h.trigger("a", "first").await;
    let second = h.trigger("b", "second").await;
    let auth = format!("Bearer {}", h.alice);
    h.post(&format!("/api/v1/incidents/{first}/resolve"), Some(&auth), "").await;

    let (status, list) = h.get("/api/v1/incidents", &h.alice).await;
    assert_eq!(status, 200);
    let ids: Vec<i64> =
        list["incidents"].as_array().unwrap().iter().map(|i| i["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, [second], "open only by default");
    let (_, list) = h.get("/api/v1/incidents?all=true", &h.alice).await;
    assert_eq!(list["incidents"].as_array().unwrap().len(), 2);
    let carol = h.mint_token("carol", &["read"]).await;
    let (_, mine) = h.get("/api/v1/incidents?mine=true&all=true", &carol).await;
    assert_eq!(mine["incidents"], json!([]));

    let (status, detail) = h.get(&format!("/api/v1/incidents/{first}"), &h.bob).await;
    assert_eq!(status, 200);
    assert_eq!(detail["state"], "resolved");
    assert_eq!(detail["resolved_by"], "alice");
    let kinds: Vec<&str> = detail["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["triggered", "paged", "resolved"]);
    assert_eq!(detail["timeline"][2]["actor"], "alice");
    assert!(detail["timeline"][0]["at"].is_string());
}

#[tokio::test]
async fn receipts_from_devices_are_on_the_timeline() {
    let h = Harness::start().await;
    let id = h.trigger("a", "ring").await;
    let auth = format!("Bearer {}", h.alice);
    let path = format!("/api/v1/incidents/{id}/receipts");
    for body in [
        json!({"kind": "delivered", "device": "alice-laptop"}),
        json!({"kind": "ringing", "device": "alice-laptop", "volume": 0.4, "muted": false, "output": "Built-in Audio"}),
        json!({"kind": "ringing", "device": "alice-phone", "volume": 1.0, "muted": true}),
        json!({"kind": "acked", "device": "alice-laptop"}),
    ] {
        assert_eq!(h.post(&path, Some(&auth), &body.to_string()).await.0, 200, "{body}");
    }
    let (_, detail) = h.get(&format!("/api/v1/incidents/{id}"), &h.alice).await;
    let receipts: Vec<&str> = detail["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "receipt")
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        receipts,
        [
            "delivered on alice-laptop",
            "ringing on alice-laptop at 40% volume through Built-in Audio",
            "ringing on alice-phone at 100% volume, SILENT: output muted or missing",
            "acked on alice-laptop",
        ]
    );
    let (status, error) =
        h.post(&path, Some(&auth), r#"{"kind": "ringing", "device": "x", "volume": 7}"#).await;
    assert_eq!((status, error["field"].as_str()), (400, Some("volume")));
    let (status, error) =
        h.post(&path, Some(&auth), r#"{"kind": "exploded", "device": "x"}"#).await;
    assert_eq!((status, error["field"].as_str()), (400, Some("kind")));
}

#[tokio::test]
async fn every_error_has_the_same_shape_and_a_stable_code() {
    let h = Harness::start().await;
    let id = h.trigger("a", "x").await;
    let alice = format!("Bearer {}", h.alice);
    let reader = format!("Bearer {}", h.mint_token("alice", &["read"]).await);
    let cases = [
        (h.post("/api/v1/incidents/999/ack", Some(&alice), "").await, 404, "not_found"),
        (h.post("/api/v1/incidents/abc/ack", Some(&alice), "").await, 404, "not_found"),
        (h.post("/api/v1/nowhere", Some(&alice), "").await, 404, "not_found"),
        (h.post(&format!("/api/v1/incidents/{id}/ack"), None, "").await, 401, "unauthorized"),
        (h.post(&format!("/api/v1/incidents/{id}/ack"), Some(&reader), "").await, 403, "forbidden"),
        (
            h.post(&format!("/api/v1/incidents/{id}/snooze"), Some(&alice), "{}").await,
            400,
            "invalid_body",
        ),
        (
            h.post(&format!("/api/v1/incidents/{id}/snooze"), Some(&alice), r#"{"seconds": 0}"#)
                .await,
            400,
            "invalid_body",
        ),
    ];
    for ((status, body), want_status, want_code) in cases {
        assert_eq!((status, body["code"].as_str()), (want_status, Some(want_code)), "{body}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    h.post(&format!("/api/v1/incidents/{id}/resolve"), Some(&alice), "").await;
    let (status, body) =
        h.post(&format!("/api/v1/incidents/{id}/snooze"), Some(&alice), r#"{"seconds": 60}"#).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("conflict")));
    let (status, body) = h.post(&format!("/api/v1/incidents/{id}/ack"), Some(&alice), "").await;
    assert_eq!(
        (status, body["state"].as_str()),
        (200, Some("resolved")),
        "ack after resolve is a no-op"
    );
}

#[tokio::test]
async fn a_revoked_token_stops_working() {
    let h = Harness::start().await;
    assert_eq!(h.get("/api/v1/whoami", &h.alice).await.1["user"], "alice");
    let prefix: String = h.alice.chars().take(10).collect();
    h.store().revoke_token(&prefix).await.unwrap();
    let (status, body) = h.get("/api/v1/whoami", &h.alice).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("unauthorized")));
    assert_eq!(h.get("/api/v1/whoami", &h.bob).await.0, 200);
    let (status, _) = h.get("/api/v1/incidents", &h.key).await;
    assert_eq!(status, 401, "an integration key can only ingest");
}

#[tokio::test]
async fn runbooks_health_and_metrics() {
    let h = Harness::start().await;
    let response = h
        .http
        .get(format!("{}/api/v1/runbooks/payments", h.url))
        .bearer_auth(&h.alice)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), RUNBOOK);
    assert_eq!(h.get("/api/v1/runbooks/web", &h.alice).await.0, 404);

    let (status, health) = h.get("/healthz", "").await;
    assert_eq!((status, health["status"].as_str()), (200, Some("ok")));

    let mut feed = h.feed(&h.alice, None).await;
    h.trigger("a", "x").await;
    feed.entry().await;
    h.post("/v2/enqueue", None, "{}").await;
    let text = h.http.get(format!("{}/metrics", h.url)).send().await.unwrap().text().await.unwrap();
    for line in [
        r#"reveille_ingest_events_total{source="pagerduty",outcome="accepted"} 1"#,
        r#"reveille_ingest_events_total{source="pagerduty",outcome="invalid"} 1"#,
        "reveille_feed_connections 1",
        r#"reveille_incidents{state="triggered"} 1"#,
        "reveille_ingest_to_feed_seconds_count 1",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} missing from\n{text}");
    }
}

#[tokio::test]
async fn errors_axum_makes_itself_have_the_same_shape() {
    let h = Harness::start().await;
    let wrong_method = h
        .http
        .delete(format!("{}/api/v1/incidents", h.url))
        .bearer_auth(&h.alice)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_method.status(), 405);
    let body: serde_json::Value = wrong_method.json().await.unwrap();
    assert_eq!(body["code"], "method_not_allowed");
    let (status, body) = h.get("/api/v1/incidents?limit=many", &h.alice).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("invalid_body")));
    assert!(body["message"].as_str().unwrap().contains("limit"), "{body}");
    let big = format!("{{\"summary\": \"{}\"}}", "x".repeat(600 * 1024));
    let (status, body) = h.post("/api/v1/events", Some(&format!("Bearer {}", h.key)), &big).await;
    assert_eq!((status, body["code"].as_str()), (413, Some("payload_too_large")));
}

#[tokio::test]
async fn many_incidents_are_acknowledged_snoozed_or_resolved_in_one_call() {
    let h = Harness::start().await;
    let mut ids = Vec::new();
    for n in 0..40 {
        ids.push(h.trigger(&format!("k{n}"), "storm").await);
    }
    let auth = format!("Bearer {}", h.alice);
    // Acknowledged from a laptop: each incident is acknowledged once, with the laptop's receipt.
    let body = json!({"ids": ids[..30], "device": "alice-laptop"}).to_string();
    let (status, answer) = h.post("/api/v1/incidents/ack", Some(&auth), &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["done"].as_array().unwrap().len(), 30);
    let (_, detail) = h.get(&format!("/api/v1/incidents/{}", ids[7]), &h.bob).await;
    assert_eq!(
        (detail["state"].as_str(), detail["acknowledged_by"].as_str()),
        (Some("acknowledged"), Some("alice"))
    );
    let said: Vec<&str> = detail["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert!(said.contains(&"acked on alice-laptop"), "{said:?}");
    let (_, open) = h.get("/api/v1/incidents?state=triggered", &h.alice).await;
    assert_eq!(open["incidents"].as_array().unwrap().len(), 10);

    // One that is gone, and one resolved, answer for themselves; the others go on.
    let (_, _) = h.post(&format!("/api/v1/incidents/{}/resolve", ids[30]), Some(&auth), "").await;
    let body = json!({"ids": [ids[30], ids[31], 999_999], "seconds": 600}).to_string();
    let (status, answer) = h.post("/api/v1/incidents/snooze", Some(&auth), &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["done"], json!([ids[31]]));
    let refused: Vec<(i64, &str)> = answer["refused"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["id"].as_i64().unwrap(), r["code"].as_str().unwrap()))
        .collect();
    assert_eq!(refused, [(ids[30], "refused"), (999_999, "not_found")]);
    let body = json!({"ids": ids[32..]}).to_string();
    let (status, answer) = h.post("/api/v1/incidents/resolve", Some(&auth), &body).await;
    assert_eq!((status, answer["done"].as_array().unwrap().len()), (200, 8));

    // Bad bodies name their field; a read-only token may not act.
    let reader = format!("Bearer {}", h.mint_token("alice", &["read"]).await);
    let too_many: Vec<i64> = (1..=10_001).collect();
    for (path, auth, body, status, field) in [
        ("ack", &auth, json!({"ids": []}), 400, Some("ids")),
        ("ack", &auth, json!({"ids": too_many}), 400, Some("ids")),
        ("ack", &auth, json!({"ids": "all"}), 400, Some("ids")),
        ("ack", &auth, json!({"ids": [1], "device": ""}), 400, Some("device")),
        ("snooze", &auth, json!({"ids": [1]}), 400, Some("seconds")),
        ("ack", &reader, json!({"ids": [1]}), 403, None),
    ] {
        let (got, error) =
            h.post(&format!("/api/v1/incidents/{path}"), Some(auth), &body.to_string()).await;
        assert_eq!((got, error["field"].as_str()), (status, field), "{path} {body}: {error}");
    }
}
