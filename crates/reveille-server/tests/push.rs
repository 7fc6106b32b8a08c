//! Native push against local fakes of Google's token endpoint, FCM v1 and APNs over HTTPS (APNs
//! over HTTP/2), which check signatures, claims, headers and payloads as the providers document
//! them: delivery, invalid tokens removing the device, 429/5xx retried with backoff, and every
//! attempt on the incident's timeline.

mod common;
mod fakes;

use common::Harness;
use fakes::{Answer, Providers};
use jiff::Timestamp;
use serde_json::json;

const APNS_OK: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";

async fn start(providers: &Providers, apns_key: &str) -> Harness {
    start_with(providers, apns_key, "").await
}

async fn start_with(providers: &Providers, apns_key: &str, push: &str) -> Harness {
    let config = format!(
        r#"{}
[push]
ca_file = "providers.pem"
attempts = 4
retry_base_ms = 10
{push}

[push.fcm]
service_account = "service-account.json"
endpoint = "{url}"

[push.apns]
key_file = "AuthKey.p8"
key_id = "{key_id}"
team_id = "{team}"
topic = "{topic}"
endpoint = "{url}"
critical = true
"#,
        common::CONFIG,
        url = providers.url,
        key_id = fakes::KEY_ID,
        team = fakes::TEAM_ID,
        topic = fakes::TOPIC,
    );
    let files = [
        ("providers.pem", providers.ca_pem.as_str()),
        ("service-account.json", &providers.service_account()),
        ("AuthKey.p8", apns_key),
    ];
    Harness::with_files(&config, Timestamp::now(), &files).await
}

async fn register(h: &Harness, platform: &str, token: &str) -> i64 {
    register_for(h, &h.alice, platform, token).await
}

async fn register_for(h: &Harness, user: &str, platform: &str, token: &str) -> i64 {
    let body = json!({"platform": platform, "token": token, "name": format!("{platform} phone")});
    let (status, device) =
        h.post("/api/v1/devices", Some(&format!("Bearer {user}")), &body.to_string()).await;
    assert_eq!(status, 200, "{device}");
    device["id"].as_i64().unwrap()
}

async fn line(h: &Harness, id: i64, kind: &str, containing: &str) -> String {
    h.timeline_line(id, kind, containing).await
}

#[tokio::test]
async fn a_page_reaches_fcm_and_apns_and_an_ack_follows() {
    let mut providers = Providers::start().await;
    let h = start(&providers, &fakes::keys().ec_private).await;
    register(&h, "fcm", "fcm-token-ok").await;
    register(&h, "apns", APNS_OK).await;
    let id = h.trigger("db", "Database down").await;

    let mut seen = [providers.next().await, providers.next().await];
    seen.sort_by_key(|s| s.provider);
    let (apns, fcm) = (&seen[0], &seen[1]);
    let message = &fcm.body["message"];
    assert_eq!(message["token"], "fcm-token-ok");
    assert_eq!(message["android"]["priority"], "high");
    assert_eq!(message["data"]["type"], "page");
    assert_eq!(message["data"]["incident_id"], id.to_string());
    assert_eq!(message["data"]["body"], "Database down");
    assert!(message["data"]["ack_url"].as_str().unwrap().contains("/api/v1/links/ack/"));

    assert_eq!(apns.device, APNS_OK);
    assert_eq!(apns.body["aps"]["interruption-level"], "critical");
    assert_eq!(apns.body["aps"]["sound"], json!({"critical": 1, "name": "default", "volume": 1.0}));
    assert_eq!(apns.headers["apns-priority"], "10");
    assert_eq!(apns.headers["apns-collapse-id"], format!("incident-{id}"));

    line(&h, id, "push_delivered", "(fcm, device").await;
    line(&h, id, "push_delivered", "(apns, device").await;

    h.post(&format!("/api/v1/incidents/{id}/ack"), Some(&format!("Bearer {}", h.bob)), "").await;
    let mut after = [providers.next().await, providers.next().await];
    after.sort_by_key(|s| s.provider);
    assert_eq!(after[1].body["message"]["data"]["state"], "acknowledged");
    assert_eq!(after[0].body["aps"]["interruption-level"], "passive");
    assert_eq!(after[0].headers["apns-collapse-id"], format!("incident-{id}"), "replaces the page");
}

#[tokio::test]
async fn an_invalid_token_removes_the_device() {
    let mut providers = Providers::start().await;
    providers.answer("fcm-gone", vec![Answer::fcm_error(404, "NOT_FOUND", "UNREGISTERED")]);
    providers.answer(
        "deaddeaddeaddeaddeaddeaddeaddeaddeaddeaddeaddeaddeaddeaddeaddead",
        vec![Answer::new(
            410,
            json!({"reason": "Unregistered", "timestamp": 1_700_000_000_000u64}),
        )],
    );
    let h = start(&providers, &fakes::keys().ec_private).await;
    register(&h, "fcm", "fcm-gone").await;
    register(&h, "apns", "deaddeaddeaddeaddeaddeaddeaddeaddeaddeaddeaddeaddeaddeaddeaddead").await;
    register(&h, "fcm", "fcm-token-ok").await;
    let id = h.trigger("db", "Database down").await;
    for _ in 0..3 {
        providers.next().await;
    }
    let gone = line(&h, id, "push_failed", "UNREGISTERED").await;
    assert!(gone.ends_with("the device is removed"), "{gone}");
    line(&h, id, "push_failed", "410 Unregistered").await;
    line(&h, id, "push_delivered", "fcm").await;
    let (_, devices) = h.get("/api/v1/devices", &h.alice).await;
    let left: Vec<&str> =
        devices.as_array().unwrap().iter().map(|d| d["platform"].as_str().unwrap()).collect();
    assert_eq!(left, ["fcm"], "only the working device is left");
}

#[tokio::test]
async fn rate_limits_and_server_errors_are_retried_with_backoff() {
    let mut providers = Providers::start().await;
    providers.answer(
        "fcm-busy",
        vec![
            Answer::fcm_error(429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED").retry_after(0),
            Answer::fcm_error(503, "UNAVAILABLE", "UNAVAILABLE"),
            Answer::ok(),
        ],
    );
    providers.answer(
        "beefbeefbeefbeefbeefbeefbeefbeefbeefbeefbeefbeefbeefbeefbeefbeef",
        vec![
            Answer::apns_error(429, "TooManyRequests"),
            Answer::apns_error(500, "InternalServerError"),
        ],
    );
    let h = start(&providers, &fakes::keys().ec_private).await;
    register(&h, "fcm", "fcm-busy").await;
    register(&h, "apns", "beefbeefbeefbeefbeefbeefbeefbeefbeefbeefbeefbeefbeefbeefbeefbeef").await;
    let id = h.trigger("db", "Database down").await;
    for _ in 0..7 {
        providers.next().await;
    }
    line(&h, id, "push_delivered", "fcm").await;
    let gave_up = line(&h, id, "push_failed", "gave up after 4 attempts").await;
    assert!(gave_up.contains("500 InternalServerError"), "{gave_up}");
    let timeline = h.store().incident(id).await.unwrap().timeline;
    let retries: Vec<&str> =
        timeline.iter().filter(|e| e.kind == "push_retry").map(|e| e.message.as_str()).collect();
    assert_eq!(retries.len(), 5, "{retries:?}");
    assert!(retries.iter().any(|r| r.contains("429 QUOTA_EXCEEDED")));
    assert!(retries.iter().any(|r| r.contains("429 TooManyRequests")));
}

#[tokio::test]
async fn a_provider_token_signed_with_the_wrong_key_is_refused() {
    let mut providers = Providers::start().await;
    let stranger =
        rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap().serialize_pem();
    let h = start(&providers, &stranger).await;
    register(&h, "apns", APNS_OK).await;
    let id = h.trigger("db", "Database down").await;
    let refused = line(&h, id, "push_failed", "InvalidProviderToken").await;
    assert!(refused.contains("403"), "{refused}");
    assert!(providers.seen.try_recv().is_err(), "the fake accepted nothing");
}

/// Alice pages first and Carol ten minutes later; alice carries only a phone with native push.
const LADDER: &str = r#"
[server]
listen = "127.0.0.1:0"
base_url = "http://reveille.test"
heartbeat_seconds = 1

[escalation]
deaf_after_seconds = 120

[push]
ca_file = "providers.pem"
attempts = 2
retry_base_ms = 10

[push.fcm]
service_account = "service-account.json"
endpoint = "URL"

[[users]]
name = "alice"
[[users]]
name = "carol"

[[policies]]
name = "ladder"
[[policies.levels]]
users = ["alice"]
delay_minutes = 10
[[policies.levels]]
users = ["carol"]
delay_minutes = 10

[[services]]
name = "payments"
policy = "ladder"
"#;

/// Who was paged for `incident`, in order.
async fn paged_for(h: &Harness, incident: i64) -> Vec<String> {
    let mut who = Vec::new();
    for user in ["alice", "carol"] {
        let feed = h.store().feed_since(user, 0, 1000).await.unwrap();
        if feed
            .iter()
            .any(|e| e.kind == reveille_protocol::FeedKind::Page && e.incident.id == incident)
        {
            who.push(user.to_owned());
        }
    }
    who
}

#[tokio::test]
async fn a_person_whose_only_device_is_a_push_phone_gets_the_whole_delay_until_a_push_fails() {
    let mut providers = Providers::start().await;
    let config = LADDER.replace("URL", &providers.url);
    let files = [
        ("providers.pem", providers.ca_pem.as_str()),
        ("service-account.json", &providers.service_account()),
    ];
    let h = Harness::with_files(&config, Timestamp::now(), &files).await;
    register(&h, "fcm", "fcm-alice").await;
    let tick = |seconds| {
        h.advance(seconds);
        reveille_server::oncall::escalation::tick(&h.state)
    };

    // No feed connection at all, yet the phone took the push: alice can hear it.
    let first = h.trigger("db", "Database down").await;
    providers.next().await;
    line(&h, first, "push_delivered", "accepted").await;
    tick(300).await;
    assert_eq!(paged_for(&h, first).await, ["alice"], "5 minutes in: still alice's turn");
    tick(299).await;
    assert_eq!(paged_for(&h, first).await, ["alice"]);
    tick(1).await;
    assert_eq!(paged_for(&h, first).await, ["alice", "carol"], "after the level's whole delay");

    // The provider refuses the next push: alice cannot hear it, and the ladder moves on early.
    providers.answer("fcm-alice", vec![Answer::new(500, json!({"error": {"status": "INTERNAL"}}))]);
    let second = h.trigger("web", "Web down").await;
    line(&h, second, "push_failed", "gave up").await;
    tick(1).await;
    assert_eq!(paged_for(&h, second).await, ["alice", "carol"], "a failed push is deafness");
}

#[tokio::test]
async fn a_provider_that_hangs_holds_at_most_the_configured_deliveries_at_once() {
    let mut providers = Providers::start().await;
    let h = start_with(&providers, &fakes::keys().ec_private, "concurrency = 3").await;
    for n in 0..5 {
        register_for(&h, &h.alice, "fcm", &format!("alice-{n}")).await;
        register_for(&h, &h.bob, "fcm", &format!("bob-{n}")).await;
    }
    providers.hold(true);
    h.trigger("one", "first").await;
    h.trigger("two", "second").await;
    for _ in 0..3 {
        providers.next().await;
    }
    assert_eq!(providers.in_flight().0, 3, "three deliveries wait on the provider");

    providers.hold(false);
    for _ in 3..20 {
        providers.next().await;
    }
    assert_eq!(providers.in_flight().1, 3, "never more than push.concurrency at once");
}

#[tokio::test]
async fn a_device_needs_the_respond_scope_and_a_token_its_provider_could_have_made() {
    let providers = Providers::start().await;
    let h = start(&providers, &fakes::keys().ec_private).await;
    let reader = h.mint_token("alice", &["read"]).await;
    let body = json!({"platform": "apns", "token": APNS_OK});
    let (status, error) =
        h.post("/api/v1/devices", Some(&format!("Bearer {reader}")), &body.to_string()).await;
    assert_eq!(status, 403, "reading alone may not send pages elsewhere: {error}");
    for (platform, token) in
        [("apns", "../../3/device/other?x="), ("apns", "a1b2"), ("fcm", "tok en"), ("fcm", "a/b")]
    {
        let body = json!({"platform": platform, "token": token});
        let auth = format!("Bearer {}", h.alice);
        let (status, error) = h.post("/api/v1/devices", Some(&auth), &body.to_string()).await;
        assert_eq!((status, error["field"].as_str()), (400, Some("token")), "{platform} {token:?}");
    }
    let (_, devices) = h.get("/api/v1/devices", &h.alice).await;
    assert_eq!(devices, json!([]), "nothing refused was kept");
}
