//! Ingest over real HTTP, with bodies from each format's public documentation, and bad input.

mod common;

use common::{Harness, fixture};
use reveille_protocol::{IncidentState, Severity, Urgency};
use serde_json::json;

#[tokio::test]
async fn pagerduty_trigger_acknowledge_resolve_as_documented() {
    let h = Harness::start().await;
    let (status, body) = h.pagerduty(&fixture("pagerduty_trigger.json")).await;
    assert_eq!(status, 202);
    assert_eq!(
        body,
        json!({"status": "success", "message": "Event processed", "dedup_key": "samplekeyhere"})
    );
    let incidents = h.incidents().await;
    assert_eq!(incidents.len(), 1);
    let i = &incidents[0];
    assert_eq!(i.service, "payments");
    assert_eq!(i.summary, "Example alert on host1.example.com");
    assert_eq!(i.severity, Severity::Info);
    assert_eq!(i.urgency, Urgency::Low, "info only notifies");
    assert_eq!(i.details["load avg"], json!(0.75));
    assert_eq!(i.details["component"], json!("postgres"));
    assert!(i.links.iter().any(|l| l.href == "https://monitoring.example.com"));
    assert_eq!(i.runbook_url.as_deref(), Some("http://reveille.test/api/v1/runbooks/payments"));

    let (status, body) = h.pagerduty(&fixture("pagerduty_acknowledge.json")).await;
    assert_eq!((status, body["dedup_key"].as_str()), (202, Some("samplekeyhere")));
    assert_eq!(h.incidents().await[0].state, IncidentState::Acknowledged);
    let (status, _) = h.pagerduty(&fixture("pagerduty_resolve.json")).await;
    assert_eq!(status, 202);
    assert_eq!(h.incidents().await[0].state, IncidentState::Resolved);
    assert_eq!(h.incidents().await.len(), 1);
}

#[tokio::test]
async fn pagerduty_generates_a_dedup_key_when_a_trigger_has_none() {
    let h = Harness::start().await;
    let body = json!({"routing_key": h.key, "event_action": "trigger",
        "payload": {"summary": "s", "source": "x", "severity": "critical"}});
    let (status, answer) = h.post("/v2/enqueue", None, &body.to_string()).await;
    assert_eq!(status, 202);
    let key = answer["dedup_key"].as_str().unwrap();
    assert_eq!(key.len(), 32);
    assert_eq!(h.incidents().await[0].dedup_key, key);
    let (_, again) = h.post("/v2/enqueue", None, &body.to_string()).await;
    assert_ne!(again["dedup_key"], answer["dedup_key"]);
    assert_eq!(h.incidents().await.len(), 2);
}

#[tokio::test]
async fn bad_pagerduty_events_are_refused_naming_the_field_and_nothing_is_stored() {
    let h = Harness::start().await;
    let cases = [
        (
            json!({"event_action": "trigger", "payload": {"summary": "s", "source": "x", "severity": "critical"}}),
            "'routing_key' is missing or blank",
        ),
        (json!({"routing_key": h.key, "event_action": "explode"}), "'event_action' is invalid"),
        (json!({"routing_key": h.key, "event_action": "trigger"}), "'payload' is missing"),
        (
            json!({"routing_key": h.key, "event_action": "trigger", "payload": {"source": "x", "severity": "critical"}}),
            "'payload.summary' is missing",
        ),
        (
            json!({"routing_key": h.key, "event_action": "trigger", "payload": {"summary": "s", "source": "x", "severity": "bad"}}),
            "'payload.severity' is invalid",
        ),
        (json!({"routing_key": h.key, "event_action": "resolve"}), "'dedup_key' is required"),
        (
            json!({"routing_key": h.key, "event_action": "trigger", "payload": {"summary": 5}}),
            "payload.summary",
        ),
        (
            json!({"routing_key": "x".repeat(32), "event_action": "trigger", "payload": {"summary": "s", "source": "x", "severity": "critical"}}),
            "'routing_key' is not the integration key",
        ),
    ];
    for (body, expected) in cases {
        let (status, answer) = h.post("/v2/enqueue", None, &body.to_string()).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(answer["status"], "invalid event");
        assert_eq!(answer["message"], "Event object is invalid");
        let errors = answer["errors"].to_string();
        assert!(errors.contains(expected), "{body} gave {errors}");
    }
    let (status, answer) = h.post("/v2/enqueue", None, "{not json").await;
    assert_eq!(status, 400);
    assert!(answer["errors"][0].as_str().unwrap().contains("invalid JSON"));
    assert!(h.incidents().await.is_empty(), "nothing stored");
}

#[tokio::test]
async fn oversized_bodies_get_413_and_wrong_content_types_400() {
    let h = Harness::start().await;
    let big = json!({"routing_key": h.key, "event_action": "trigger",
        "payload": {"summary": "s", "source": "x", "severity": "critical", "custom_details": {"blob": "x".repeat(600 * 1024)}}});
    let (status, _) = h.post("/v2/enqueue", None, &big.to_string()).await;
    assert_eq!(status, 413);
    let form = h
        .http
        .post(format!("{}/v2/enqueue", h.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(fixture("pagerduty_trigger.json").replace("ROUTING_KEY", &h.key))
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 400);
    assert!(form.text().await.unwrap().contains("Content-Type"));
    assert!(h.incidents().await.is_empty());
}

#[tokio::test]
async fn a_key_over_its_rate_gets_429_with_retry_after() {
    let config = common::CONFIG.replace("rate_per_minute = 1000", "rate_per_minute = 3");
    let h = Harness::with_config(&config).await;
    let body = fixture("pagerduty_trigger.json");
    for _ in 0..3 {
        assert_eq!(h.pagerduty(&body).await.0, 202);
    }
    let response = h.pagerduty_response(&body).await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "20");
    h.advance(20);
    assert_eq!(h.pagerduty(&body).await.0, 202, "the bucket refills with time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_within_the_rate_is_taken_whole_even_all_at_once() {
    let config = common::CONFIG.replace("rate_per_minute = 1000", "rate_per_minute = 100");
    let h = Harness::with_config(&config).await;
    let sends = (0..80).map(|n| {
        let body = json!({"summary": format!("burst {n}")}).to_string();
        let (h, auth) = (&h, format!("Bearer {}", h.key));
        async move { h.post("/api/v1/events", Some(&auth), &body).await.0 }
    });
    let statuses = futures_util::future::join_all(sends).await;
    let refused = statuses.iter().filter(|s| **s != 202).count();
    assert_eq!(refused, 0, "80 requests at once, 100 a minute allowed: {statuses:?}");
}

#[tokio::test]
async fn alertmanager_firing_then_resolved_with_key_in_path_or_bearer() {
    let h = Harness::start().await;
    let path = format!("/api/v1/alertmanager/{}", h.key);
    let (status, answer) = h.post(&path, None, &fixture("alertmanager_firing.json")).await;
    assert_eq!(status, 200, "{answer}");
    let i = &h.incidents().await[0];
    assert_eq!(
        (i.state, i.severity, i.urgency),
        (IncidentState::Triggered, Severity::Critical, Urgency::High)
    );
    assert_eq!(i.dedup_key, "3a1b2c4d5e6f7081");
    assert_eq!(i.summary, "High CPU usage on web-01.example.com:9100");
    assert_eq!(i.source, "web-01.example.com:9100");
    assert_eq!(i.runbook_url.as_deref(), Some("https://runbooks.example.com/HighCPUUsage"));
    assert_eq!(i.links[0].text.as_deref(), Some("Source"));
    let bearer = format!("Bearer {}", h.key);
    let (status, _) =
        h.post("/api/v1/alertmanager", Some(&bearer), &fixture("alertmanager_resolved.json")).await;
    assert_eq!(status, 200);
    assert_eq!(h.incidents().await[0].state, IncidentState::Resolved);
    let (status, answer) =
        h.post("/api/v1/alertmanager", None, &fixture("alertmanager_firing.json")).await;
    assert_eq!((status, answer["code"].as_str()), (401, Some("unauthorized")));
}

#[tokio::test]
async fn grafana_alerts_each_become_an_incident_and_resolve() {
    let h = Harness::start().await;
    let path = format!("/api/v1/grafana/{}", h.key);
    let (status, answer) = h.post(&path, None, &fixture("grafana_firing.json")).await;
    assert_eq!(status, 200, "{answer}");
    let incidents = h.incidents().await;
    assert_eq!(incidents.len(), 2);
    let zone_us = incidents.iter().find(|i| i.dedup_key == "c6eadffa33fcdf37").unwrap();
    assert_eq!(zone_us.summary, "This alert was triggered for zone us-1");
    assert_eq!(zone_us.runbook_url.as_deref(), Some("https://myrunbook.com/runbook/1234"));
    assert_eq!(zone_us.details["values"]["B"], json!(44.23943737541908));
    assert_eq!(zone_us.severity, Severity::Critical, "no severity label: the service default");
    let (status, _) = h.post(&path, None, &fixture("grafana_resolved.json")).await;
    assert_eq!(status, 200);
    assert!(h.incidents().await.iter().all(|i| i.state == IncidentState::Resolved));
}

#[tokio::test]
async fn a_malformed_alert_refuses_the_whole_group() {
    let h = Harness::start().await;
    let path = format!("/api/v1/alertmanager/{}", h.key);
    let mut body: serde_json::Value =
        serde_json::from_str(&fixture("alertmanager_firing.json")).unwrap();
    let mut second = body["alerts"][0].clone();
    second["status"] = json!("smouldering");
    body["alerts"].as_array_mut().unwrap().push(second);
    let (status, answer) = h.post(&path, None, &body.to_string()).await;
    assert_eq!(status, 400);
    assert_eq!(answer["field"], "alerts[1].status");
    let (status, answer) = h.post(&path, None, r#"{"version": "4"}"#).await;
    assert_eq!((status, answer["field"].as_str()), (400, Some("alerts")));
    assert!(h.incidents().await.is_empty());
}

#[tokio::test]
async fn opsgenie_create_acknowledge_and_close_by_alias_or_id() {
    let h = Harness::start().await;
    let genie = format!("GenieKey {}", h.key);
    let (status, answer) =
        h.post("/v2/alerts", Some(&genie), &fixture("opsgenie_create.json")).await;
    assert_eq!(status, 202);
    assert_eq!(answer["result"], "Request will be processed");
    assert!(answer["requestId"].is_string() && answer["took"].is_number());
    let i = h.incidents().await.remove(0);
    assert_eq!(i.dedup_key, "Life is too short for no alias");
    assert_eq!((i.severity, i.summary.as_str()), (Severity::Critical, "An example alert message"));
    assert_eq!(i.details["details"]["key1"], "value1");
    let alias =
        "/v2/alerts/Life%20is%20too%20short%20for%20no%20alias/acknowledge?identifierType=alias";
    assert_eq!(h.post(alias, Some(&genie), &fixture("opsgenie_ack.json")).await.0, 202);
    assert_eq!(h.incidents().await[0].state, IncidentState::Acknowledged);
    let close = format!("/v2/alerts/{}/close?identifierType=id", i.id);
    assert_eq!(h.post(&close, Some(&genie), &fixture("opsgenie_close.json")).await.0, 202);
    assert_eq!(h.incidents().await[0].state, IncidentState::Resolved);
    // Whoever holds the key may write any name in `user`: the integration acted, the name is a claim.
    let detail = h.store().incident(i.id).await.unwrap();
    let (acked_by, resolved_by) = (detail.incident.acknowledged_by, detail.incident.resolved_by);
    assert_eq!((acked_by.as_deref(), resolved_by.as_deref()), (Some("opsgenie"), Some("opsgenie")));
    let claims: Vec<_> = detail.timeline.iter().filter(|e| e.kind == "claimed").collect();
    assert_eq!(claims.len(), 2, "{:?}", detail.timeline);
    assert!(claims[0].message.contains("\"Monitoring Script\""), "{}", claims[0].message);
    // Closing by id closes that incident only, never a newer one with the same alias.
    let (status, _) = h.post("/v2/alerts", Some(&genie), &fixture("opsgenie_create.json")).await;
    assert_eq!(status, 202);
    assert_eq!(h.post(&close, Some(&genie), "").await.0, 202);
    let states: Vec<_> = h.incidents().await.iter().map(|i| i.state).collect();
    assert_eq!(states, [IncidentState::Triggered, IncidentState::Resolved]);
    let (status, answer) = h.post("/v2/alerts/999/close", Some(&genie), "").await;
    assert_eq!(status, 404);
    assert!(answer["message"].as_str().unwrap().contains("does not exist"));
    let (status, answer) = h.post("/v2/alerts", Some(&genie), r#"{"priority": "P1"}"#).await;
    assert_eq!(
        (status, answer["message"].as_str()),
        (400, Some("message: Message can not be empty."))
    );
    let (status, _) =
        h.post("/v2/alerts", Some("GenieKey wrong"), &fixture("opsgenie_create.json")).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn the_generic_endpoint_takes_a_key_or_an_ingest_token() {
    let h = Harness::start().await;
    let bearer = format!("Bearer {}", h.key);
    let (status, answer) = h
        .post(
            "/api/v1/events",
            Some(&bearer),
            r#"{"summary": "Disk full", "severity": "critical"}"#,
        )
        .await;
    assert_eq!(status, 202);
    assert!(answer["incident_id"].is_i64());
    let ingest = format!("Bearer {}", h.mint_token("carol", &["ingest"]).await);
    let (status, answer) =
        h.post("/api/v1/events", Some(&ingest), r#"{"service": "web", "summary": "Slow"}"#).await;
    assert_eq!(status, 202, "{answer}");
    let web = h.incidents().await.into_iter().find(|i| i.service == "web").unwrap();
    assert_eq!((web.severity, web.urgency), (Severity::Warning, Urgency::Low));
    let (status, answer) = h.post("/api/v1/events", Some(&ingest), r#"{"summary": "Slow"}"#).await;
    assert_eq!((status, answer["field"].as_str()), (400, Some("service")));
    let reader = format!("Bearer {}", h.alice);
    let (status, answer) =
        h.post("/api/v1/events", Some(&reader), r#"{"service": "web", "summary": "x"}"#).await;
    assert_eq!((status, answer["code"].as_str()), (403, Some("forbidden")));
    let (status, answer) =
        h.post("/api/v1/events", Some(&bearer), r#"{"summary": "x", "sevrity": "low"}"#).await;
    assert_eq!(status, 400);
    assert!(answer["message"].as_str().unwrap().contains("sevrity"), "{answer}");
    let (status, answer) =
        h.post("/api/v1/events", Some(&bearer), r#"{"action": "resolve"}"#).await;
    assert_eq!((status, answer["field"].as_str()), (400, Some("dedup_key")));
    assert_eq!(h.incidents().await.len(), 2);
}

#[tokio::test]
async fn a_failing_store_answers_503_on_every_endpoint_and_the_sender_can_retry() {
    let h = Harness::start().await;
    let open = h.trigger("open-before", "open before the failure").await;
    let side = rusqlite::Connection::open(&h.db).unwrap();
    let events =
        || -> i64 { side.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0)).unwrap() };
    let before = events();
    side.execute_batch("ALTER TABLE incidents RENAME TO incidents_away").unwrap();
    let (bearer, genie, alice) =
        (format!("Bearer {}", h.key), format!("GenieKey {}", h.key), format!("Bearer {}", h.alice));
    let alias = "/v2/alerts/open-before/acknowledge?identifierType=alias";
    let requests = [
        (
            "/v2/enqueue".to_owned(),
            None,
            fixture("pagerduty_trigger.json").replace("ROUTING_KEY", &h.key),
        ),
        (format!("/api/v1/alertmanager/{}", h.key), None, fixture("alertmanager_firing.json")),
        ("/api/v1/alertmanager".to_owned(), Some(&bearer), fixture("alertmanager_resolved.json")),
        (format!("/api/v1/grafana/{}", h.key), None, fixture("grafana_firing.json")),
        ("/v2/alerts".to_owned(), Some(&genie), fixture("opsgenie_create.json")),
        (alias.to_owned(), Some(&genie), fixture("opsgenie_ack.json")),
        (format!("/v2/alerts/{open}/close"), Some(&genie), fixture("opsgenie_close.json")),
        ("/api/v1/events".to_owned(), Some(&bearer), r#"{"summary": "Disk full"}"#.to_owned()),
        (format!("/api/v1/incidents/{open}/ack"), Some(&alice), String::new()),
        (format!("/api/v1/incidents/{open}/resolve"), Some(&alice), String::new()),
    ];
    for (path, auth, body) in &requests {
        let response = h.post_response(path, auth.map(String::as_str), body).await;
        assert_eq!(response.status(), 503, "{path}");
        assert!(response.headers().contains_key("retry-after"), "{path}: no Retry-After");
        let answer: serde_json::Value = response.json().await.unwrap();
        assert!(answer["message"].as_str().is_some_and(|m| !m.is_empty()), "{path}: {answer}");
    }
    assert_eq!(events(), before, "nothing half-written");
    side.execute_batch("ALTER TABLE incidents_away RENAME TO incidents").unwrap();
    let body = fixture("pagerduty_trigger.json");
    assert_eq!(h.pagerduty(&body).await.0, 202, "a retry succeeds once storage is back");
    let (status, _) = h.post(&format!("/api/v1/incidents/{open}/ack"), Some(&alice), "").await;
    assert_eq!(status, 200, "and so does an ack");
    assert_eq!(h.incidents().await.len(), 2);
}

#[tokio::test]
async fn a_revoked_integration_key_stops_working_within_a_second() {
    let h = Harness::start().await;
    let body = |dedup: &str| {
        json!({"routing_key": h.key, "event_action": "trigger", "dedup_key": dedup,
            "payload": {"summary": "s", "source": "x", "severity": "critical"}})
        .to_string()
    };
    assert_eq!(h.post("/v2/enqueue", None, &body("a")).await.0, 202);
    let prefix = h.store().keys().await.unwrap()[0].prefix.clone();
    h.store().revoke_key(&prefix).await.unwrap();
    h.clock.advance(reveille_server::http::auth::KEY_TRUST);
    let (status, answer) = h.post("/v2/enqueue", None, &body("b")).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(h.incidents().await.len(), 1, "nothing is stored for a revoked key");
}

/// What the README promises about Content-Type and an Alertmanager alert without `status`.
#[tokio::test]
async fn json_without_a_type_or_as_text_plain_pages_and_an_alert_takes_its_groups_status() {
    let h = Harness::start().await;
    let body = fixture("pagerduty_trigger.json").replace("ROUTING_KEY", &h.key);
    for content_type in [None, Some("text/plain"), Some("application/json; charset=utf-8")] {
        let mut request = h.http.post(format!("{}/v2/enqueue", h.url)).body(body.clone());
        if let Some(t) = content_type {
            request = request.header("content-type", t);
        }
        assert_eq!(request.send().await.unwrap().status(), 202, "{content_type:?}");
    }
    let url = format!("/api/v1/alertmanager/{}", h.key);
    let group = json!({"status": "firing", "alerts": [{"fingerprint": "f1", "labels": {"alertname": "A"}}]});
    let (status, _) = h.post(&url, None, &group.to_string()).await;
    assert_eq!(status, 200, "the alert takes the group's status");
    let neither = json!({"alerts": [{"fingerprint": "f2", "labels": {"alertname": "B"}}]});
    let (status, answer) = h.post(&url, None, &neither.to_string()).await;
    assert_eq!((status, answer["field"].as_str()), (400, Some("alerts[0].status")), "{answer}");
}
