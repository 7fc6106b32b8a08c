//! Every way a page leaves the server after its commit — native push, email, outbound webhooks,
//! and an ntfy phone replaying its backlog — reads the committed feed. Here the database they
//! read from fails under them (every session of the node terminated, then PostgreSQL restarted)
//! while pages flow: each page still goes out on each of them, once. (Matrix messages leave
//! through the same notifier as email.)

mod common;
mod fakes;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use base64::Engine;
use common::Harness;
use common::smtp::{PASSWORD, start_smtp};
use fakes::Providers;
use serde_json::Value;

/// Pages sent while the database fails.
const PAGES: usize = 30;

/// Successful webhook deliveries: (event type, incident) → delivery ids.
type Hooks = Arc<Mutex<HashMap<(String, i64), Vec<String>>>>;

async fn hook(
    State(hooks): State<Hooks>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    let event: Value = serde_json::from_slice(&body).unwrap();
    let header = |n: &str| headers[n].to_str().unwrap().to_owned();
    let key = (header("reveille-event"), event["incident"]["id"].as_i64().unwrap());
    hooks.lock().unwrap().entry(key).or_default().push(header("reveille-delivery"));
    StatusCode::NO_CONTENT
}

/// Sends a page, again and again while the database is away (503), until it is taken.
async fn page(h: &Harness, n: usize) -> i64 {
    let body =
        serde_json::json!({"summary": format!("Page {n}"), "dedup_key": format!("page-{n}")});
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (status, answer) =
            h.post("/api/v1/events", Some(&format!("Bearer {}", h.key)), &body.to_string()).await;
        match status {
            202 => return answer["incident_id"].as_i64().unwrap(),
            503 => assert!(tokio::time::Instant::now() < deadline, "page {n} never taken"),
            other => panic!("page {n}: {other} {answer}"),
        }
        // The database is restarting: nothing to wait on but a 2xx.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until `done` holds (up to 60 s), moving the server's clock a minute each round so the
/// notifier's once-a-minute mails and any retries come due.
async fn until(h: &Harness, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        h.advance(61);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_reaches_every_channel_once_across_a_database_restart() {
    // What the outboxes did is in their logs, shown when this fails.
    let logs =
        tracing_subscriber::fmt().with_test_writer().with_env_filter("warn,reveille_server=info");
    let _ = logs.try_init();
    if let Some(why) = reveille_tests::postgres::missing() {
        assert!(std::env::var_os("CI").is_none(), "CI must run this: {why}");
        return eprintln!("SKIPPED: {why}");
    }
    let Some(python) = common::python_tools("python").map(|d| d.join("python")) else { return };
    let smtp = start_smtp(python);
    let mut providers = Providers::start().await;
    let hooks = Hooks::default();
    let receiver = Router::new().route("/hook", post(hook)).with_state(hooks.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, receiver).await.unwrap() });
    let alice = "[[users]]\nname = \"alice\"\nemail = \"alice@example.com\"\n";
    let config = format!(
        "{}\n[email]\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"starttls\"\n\
         from = \"pager@reveille.test\"\nusername = \"reveille\"\npassword_file = \"smtp.password\"\n\
         ca_file = \"smtp-ca.pem\"\n\n[push]\nca_file = \"providers.pem\"\n\
         [push.fcm]\nservice_account = \"service-account.json\"\nendpoint = \"{}\"\n\n\
         [[webhooks]]\nname = \"ops\"\nurl = \"{hook_url}\"\nsecret_file = \"hook.secret\"\n",
        common::CONFIG.replace("[[users]]\nname = \"alice\"\n", alice),
        smtp.port,
        providers.url,
    );
    let files = [
        ("smtp.password", PASSWORD),
        ("smtp-ca.pem", smtp.cert.as_str()),
        ("providers.pem", providers.ca_pem.as_str()),
        ("service-account.json", &providers.service_account()),
        ("hook.secret", "whsec_outboxes_0123456789"),
    ];
    let h = Harness::on_postgres(&config, &files).await;
    let device = serde_json::json!({"platform": "fcm", "token": "alice-phone"});
    let (status, _) =
        h.post("/api/v1/devices", Some(&format!("Bearer {}", h.alice)), &device.to_string()).await;
    assert_eq!(status, 200);
    let topic =
        h.store().phone_topic("alice", "rv_outboxes_alice", jiff::Timestamp::now()).await.unwrap();

    // Pages flow; every session of the node is ended a third of the way, PostgreSQL restarts at
    // two thirds.
    let pg = reveille_tests::postgres::server();
    let db = h.state.settings().database.url.clone();
    let mut ids = Vec::new();
    for n in 0..PAGES {
        if n == PAGES / 3 {
            pg.terminate_backends(&db);
        }
        if n == 2 * PAGES / 3 {
            tokio::task::spawn_blocking(move || pg.restart()).await.unwrap();
        }
        ids.push(page(&h, n).await);
    }

    // Native push: each page once.
    let mut pushed: HashMap<i64, usize> = HashMap::new();
    while pushed.len() < PAGES {
        let seen = providers.next().await;
        let data = &seen.body["message"]["data"];
        assert_eq!(data["type"], "page", "{data}");
        *pushed.entry(data["incident_id"].as_str().unwrap().parse().unwrap()).or_default() += 1;
    }
    // Webhooks: each incident triggered once, delivered once.
    until(&h, "every page's webhook", || hooks.lock().unwrap().len() >= PAGES).await;
    // Email: each page in one mail (a mail a minute: the first alone, the rest in digests).
    until(&h, "every page mailed", || {
        let mails = smtp.mails();
        ids.iter().all(|id| {
            mails.iter().any(|m| m["body"].as_str().unwrap().contains(&format!("#{id} ")))
        })
    })
    .await;
    // Nothing more comes: a last look after the clock moved on and the notifier had its ticks
    // (a negative: there is no event to wait for).
    h.advance(61);
    tokio::time::sleep(Duration::from_secs(3)).await;
    while providers.seen.try_recv().is_ok_and(|seen| {
        let id: i64 =
            seen.body["message"]["data"]["incident_id"].as_str().unwrap().parse().unwrap();
        *pushed.entry(id).or_default() += 1;
        true
    }) {}
    let mails = smtp.mails();
    for id in &ids {
        let told = mails
            .iter()
            .filter(|m| m["body"].as_str().unwrap().contains(&format!("#{id} ")))
            .count();
        assert!(told <= 1, "incident {id} mailed {told} times");
        assert_eq!(pushed.get(id), Some(&1), "incident {id} pushed {:?} times", pushed.get(id));
        let delivered = hooks.lock().unwrap().get(&("incident.triggered".to_owned(), *id)).cloned();
        if delivered.as_ref().map(|d| d.len()) != Some(1) {
            let timeline = h.store().incident(*id).await.unwrap().timeline;
            let lines: Vec<String> =
                timeline.iter().map(|e| format!("{} {}: {}", e.actor, e.kind, e.message)).collect();
            panic!("incident {id}'s webhook delivered as {delivered:?}; its timeline: {lines:#?}");
        }
    }
    // The phone's backlog: each page once.
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("alice:{}", h.alice))
    );
    let backlog = h
        .http
        .get(format!("{}/{topic}/json?poll=1&since=all", h.url))
        .header("authorization", basic)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut replayed: Vec<String> = backlog
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|m| m["event"] == "message")
        .map(|m| m["sequence_id"].as_str().unwrap().to_owned())
        .collect();
    replayed.sort();
    let mut expected: Vec<String> = ids.iter().map(|id| format!("rv-incident-{id}")).collect();
    expected.sort();
    assert_eq!(replayed, expected, "the phone's backlog: every page, once");
}
