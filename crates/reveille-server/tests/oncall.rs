//! Who gets woken, end to end over HTTP with a moved clock: escalation ladders, schedules,
//! shadows, overrides, deaf pagers, heartbeat monitors, drills, and a restart mid-ladder.

mod common;

use common::Harness;
use jiff::Timestamp;
use reveille_protocol::FeedKind;
use reveille_server::oncall::escalation::tick;
use serde_json::json;

const CONFIG: &str = r#"
[server]
listen = "127.0.0.1:0"
heartbeat_seconds = 1

[escalation]
deaf_after_seconds = 0

[[users]]
name = "alice"
[[users]]
name = "bob"
[[users]]
name = "carol"
[[users]]
name = "dave"
[[users]]
name = "erin"

[[schedules]]
name = "primary"
time_zone = "Europe/Berlin"
[[schedules.layers]]
members = ["alice", "bob"]
shadows = ["dave"]
start = "2026-01-05T09:00"
shift = "1w"

[[policies]]
name = "ladder"
repeat = 1
[[policies.levels]]
schedules = ["primary"]
delay_minutes = 10
[[policies.levels]]
users = ["carol"]
delay_minutes = 10

[[services]]
name = "payments"
policy = "ladder"

[[heartbeats]]
name = "backup"
service = "payments"
interval_seconds = 3600
grace_seconds = 600
"#;

/// Monday 2026-02-02, 12:00 in Berlin: the fifth week of the rotation, alice's.
fn monday_noon() -> Timestamp {
    "2026-02-02T11:00:00Z".parse().unwrap()
}

async fn start(config: &str) -> Harness {
    Harness::at(config, monday_noon()).await
}

/// Everyone paged so far, in order, as (user, incident id).
async fn pages(h: &Harness) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    for user in ["alice", "bob", "carol", "dave", "erin"] {
        for e in h.store().feed_since(user, 0, 1000).await.unwrap() {
            if e.kind == FeedKind::Page {
                out.push((e.id, user.to_string(), e.incident.id));
            }
        }
    }
    out.sort();
    out.into_iter().map(|(_, u, i)| (u, i)).collect()
}

fn paged(list: &[(String, i64)]) -> Vec<&str> {
    list.iter().map(|(u, _)| u.as_str()).collect()
}

async fn after(h: &Harness, seconds: i64) {
    h.advance(seconds);
    tick(&h.state).await;
}

#[tokio::test]
async fn an_unacknowledged_page_climbs_the_ladder_and_repeats_it() {
    let h = start(CONFIG).await;
    let id = h.trigger("db", "Database down").await;
    assert_eq!(paged(&pages(&h).await), ["alice", "dave"], "the primary and the shadow");
    after(&h, 599).await;
    assert_eq!(pages(&h).await.len(), 2, "not before the delay");
    after(&h, 1).await;
    assert_eq!(paged(&pages(&h).await), ["alice", "dave", "carol"]);
    after(&h, 600).await;
    assert_eq!(paged(&pages(&h).await), ["alice", "dave", "carol", "alice", "dave"], "round two");
    after(&h, 600).await;
    after(&h, 600).await;
    after(&h, 3600).await;
    let all = pages(&h).await;
    assert_eq!(
        paged(&all),
        ["alice", "dave", "carol", "alice", "dave", "carol"],
        "two rounds, then it ends"
    );
    let timeline = h.store().incident(id).await.unwrap().timeline;
    let kinds: Vec<&str> = timeline.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        ["triggered", "paged", "escalated", "escalated", "escalated", "escalation_ended"]
    );
    assert!(
        timeline[2].message.contains("level 1 did not acknowledge within 10m"),
        "{}",
        timeline[2].message
    );
}

#[tokio::test]
async fn an_ack_stops_the_ladder() {
    let h = start(CONFIG).await;
    let id = h.trigger("db", "Database down").await;
    after(&h, 300).await;
    let (status, _) = h
        .post(&format!("/api/v1/incidents/{id}/ack"), Some(&format!("Bearer {}", h.alice)), "")
        .await;
    assert_eq!(status, 200);
    for _ in 0..5 {
        after(&h, 600).await;
    }
    assert_eq!(paged(&pages(&h).await), ["alice", "dave"]);
}

#[tokio::test]
async fn the_shadow_is_never_primary_and_an_override_wins() {
    let h = start(CONFIG).await;
    let (status, report) = h.get("/api/v1/oncall", &h.alice).await;
    assert_eq!(status, 200);
    assert_eq!(report["schedules"][0]["primary"], "alice");
    assert_eq!(report["schedules"][0]["shadows"], json!(["dave"]));
    assert_eq!(report["schedules"][0]["until"], "2026-02-09T08:00:00Z", "next Monday 09:00 Berlin");
    assert_eq!(report["services"][0]["levels"][0]["primaries"], json!(["alice"]));
    assert_eq!(report["services"][0]["levels"][1]["primaries"], json!(["carol"]));
    let (_, next_week) = h.get("/api/v1/oncall?at=2026-02-10T12:00:00Z", &h.alice).await;
    assert_eq!(next_week["schedules"][0]["primary"], "bob");

    let (_, shifts) = h.get("/api/v1/schedules/primary?days=28", &h.alice).await;
    let primaries: Vec<&str> = shifts["shifts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["primary"].as_str().unwrap())
        .collect();
    assert_eq!(primaries, ["alice", "bob", "alice", "bob", "alice"]);
    assert!(!primaries.contains(&"dave"));

    let body =
        json!({"user": "erin", "start": "2026-02-02T10:00:00Z", "end": "2026-02-03T10:00:00Z"});
    let (status, saved) = h
        .post(
            "/api/v1/schedules/primary/overrides",
            Some(&format!("Bearer {}", h.bob)),
            &body.to_string(),
        )
        .await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved["created_by"], "bob");
    let (_, report) = h.get("/api/v1/oncall", &h.alice).await;
    assert_eq!(report["schedules"][0]["primary"], "erin");
    h.trigger("db", "Database down").await;
    assert_eq!(paged(&pages(&h).await), ["erin"]);

    let (status, _) = h
        .http
        .delete(format!("{}/api/v1/overrides/{}", h.url, saved["id"]))
        .bearer_auth(&h.bob)
        .send()
        .await
        .map(|r| (r.status(), ()))
        .unwrap();
    assert_eq!(status, 200);
    let (_, report) = h.get("/api/v1/oncall", &h.alice).await;
    assert_eq!(report["schedules"][0]["primary"], "alice");
    let bad =
        json!({"user": "mallory", "start": "2026-02-02T10:00:00Z", "end": "2026-02-03T10:00:00Z"});
    let (status, error) = h
        .post(
            "/api/v1/schedules/primary/overrides",
            Some(&format!("Bearer {}", h.bob)),
            &bad.to_string(),
        )
        .await;
    assert_eq!((status, error["field"].as_str()), (400, Some("user")));
}

#[tokio::test]
async fn a_deaf_pager_moves_the_ladder_on_early() {
    let config = CONFIG.replace("deaf_after_seconds = 0", "deaf_after_seconds = 120");
    let h = start(&config).await;
    let mut alice_laptop = h.feed(&h.alice, None).await;
    alice_laptop.next().await;
    let id = h.trigger("db", "Database down").await;
    after(&h, 300).await;
    assert_eq!(paged(&pages(&h).await), ["alice", "dave"], "alice is connected: she can hear it");

    let mut connected = h.state.presence.watch();
    drop(alice_laptop);
    connected.wait_for(|n| *n == 0).await.unwrap();
    after(&h, 119).await;
    assert_eq!(pages(&h).await.len(), 2);
    after(&h, 1).await;
    assert_eq!(
        paged(&pages(&h).await),
        ["alice", "dave", "carol"],
        "moved on before the 10 minutes"
    );
    let timeline = h.store().incident(id).await.unwrap().timeline;
    assert!(
        timeline.last().unwrap().message.contains("alice has had no live device for 2m"),
        "{:?}",
        timeline.last()
    );
}

#[tokio::test]
async fn a_silent_device_moves_the_ladder_on_early() {
    let h = start(CONFIG).await;
    let id = h.trigger("db", "Database down").await;
    let receipt =
        json!({"kind": "ringing", "device": "alice-laptop", "volume": 0.0, "muted": true});
    let auth = format!("Bearer {}", h.alice);
    assert_eq!(
        h.post(&format!("/api/v1/incidents/{id}/receipts"), Some(&auth), &receipt.to_string())
            .await
            .0,
        200
    );
    tick(&h.state).await;
    assert_eq!(paged(&pages(&h).await), ["alice", "dave", "carol"]);
}

#[tokio::test]
async fn a_missed_heartbeat_opens_an_incident_and_the_next_ping_resolves_it() {
    let h = start(CONFIG).await;
    let ping = async |auth: &str| h.post("/api/v1/heartbeats/backup", Some(auth), "").await;
    let key = format!("Bearer {}", h.key);
    let (status, body) = ping(&key).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["next_due"], "2026-02-02T12:10:00Z");
    after(&h, 4200).await;
    assert!(h.incidents().await.is_empty(), "due at exactly interval + grace");
    after(&h, 1).await;
    let incidents = h.incidents().await;
    assert_eq!(incidents.len(), 1);
    assert!(
        incidents[0].summary.contains("Heartbeat \"backup\" missed"),
        "{}",
        incidents[0].summary
    );
    after(&h, 60).await;
    assert_eq!(h.incidents().await.len(), 1, "one incident per missed period");
    assert_eq!(ping(&key).await.0, 200);
    let incidents = h.incidents().await;
    assert_eq!((incidents.len(), incidents[0].state.as_str()), (1, "resolved"));
    assert_eq!(h.post("/api/v1/heartbeats/nope", Some(&key), "").await.0, 404);
    assert_eq!(ping(&format!("Bearer {}", h.alice)).await.0, 403, "a token needs the ingest scope");
}

#[tokio::test]
async fn a_drill_rings_one_person_only_and_records_how_it_went() {
    let h = start(CONFIG).await;
    let auth = format!("Bearer {}", h.bob);
    let (status, drill) = h.post("/api/v1/drills", Some(&auth), r#"{"schedule": "primary"}"#).await;
    assert_eq!(status, 200, "{drill}");
    let id = drill["id"].as_i64().unwrap();
    assert_eq!(drill["drill"], true);
    assert_eq!(paged(&pages(&h).await), ["alice"], "the primary only: no shadow, no ladder");
    let alice = format!("Bearer {}", h.alice);
    h.advance(2);
    h.post(
        &format!("/api/v1/incidents/{id}/receipts"),
        Some(&alice),
        r#"{"kind": "delivered", "device": "laptop"}"#,
    )
    .await;
    h.post(
        &format!("/api/v1/incidents/{id}/receipts"),
        Some(&alice),
        r#"{"kind": "ringing", "device": "laptop", "volume": 0.4, "muted": false}"#,
    )
    .await;
    for _ in 0..6 {
        after(&h, 600).await;
    }
    assert_eq!(pages(&h).await.len(), 1, "a drill never escalates");
    h.post(&format!("/api/v1/incidents/{id}/ack"), Some(&alice), "").await;
    let (_, list) = h.get("/api/v1/drills", &h.bob).await;
    let result = &list["drills"][0];
    assert_eq!(result["user"], "alice");
    assert_eq!(result["delivered_at"], "2026-02-02T11:00:02Z");
    assert_eq!(result["silent"], false);
    assert_eq!(result["seconds_to_ack"], json!(3602.0));
    let (status, error) =
        h.post("/api/v1/drills", Some(&auth), r#"{"user": "alice", "schedule": "primary"}"#).await;
    assert_eq!((status, error["field"].as_str()), (400, Some("user")));
}

#[tokio::test]
async fn a_restart_mid_ladder_resumes_at_the_right_step() {
    let h = start(CONFIG).await;
    h.trigger("db", "Database down").await;
    after(&h, 600).await;
    assert_eq!(paged(&pages(&h).await), ["alice", "dave", "carol"]);
    let h = h.restart(CONFIG).await;
    after(&h, 300).await;
    assert_eq!(pages(&h).await.len(), 3, "the restart pages nobody again");
    after(&h, 300).await;
    assert_eq!(
        paged(&pages(&h).await),
        ["alice", "dave", "carol", "alice", "dave"],
        "round two, on time"
    );
}

#[tokio::test]
async fn handoff_drills_page_the_incoming_primary_once() {
    let config = CONFIG.replace("shift = \"1w\"", "shift = \"1w\"\n").replace(
        "time_zone = \"Europe/Berlin\"",
        "time_zone = \"Europe/Berlin\"\ndrill_at_handoff = true",
    );
    let h = start(&config).await;
    tick(&h.state).await;
    assert!(pages(&h).await.is_empty(), "no drill for the person already holding the pager");
    after(&h, 7 * 24 * 3600).await;
    after(&h, 60).await;
    let drilled = pages(&h).await;
    assert_eq!(paged(&drilled), ["bob"]);
    assert!(h.store().incident(drilled[0].1).await.unwrap().incident.drill);
}
