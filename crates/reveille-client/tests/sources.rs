//! The sources besides Reveille, over real HTTP on loopback: PagerDuty and Opsgenie as local
//! servers that implement the documented API and check what the app sends (credentials, the v2
//! `Accept`, `From`, the query, a 429 honoured), Debian's real Alertmanager, and Reveille's own
//! ntfy endpoint. Each time the device must ring for what is the person's, stay quiet for the
//! rest, stop when answered here or there, and keep an answer it could not deliver.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use common::Recorder;
use reveille_client::outbox::Request;
use reveille_client::sources::{self, Handle, Kind, SourceConfig, Timing};
use serde_json::{Value, json};

const QUICK: Timing =
    Timing { interval: Duration::from_millis(100), lost_after: Duration::from_millis(600) };

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    url
}

fn follow(config: SourceConfig, secret: &str, dir: &std::path::Path) -> (Arc<Recorder>, Handle) {
    let device = Arc::new(Recorder::default());
    let outbox = dir.join(format!("{}.json", config.name));
    let handle = sources::start(1, config, secret.into(), device.clone(), outbox, QUICK).unwrap();
    (device, handle)
}

/// Waits until the source's health passes `what`.
async fn health(handle: &Handle, what: impl Fn(&sources::Health) -> bool) {
    let mut health = handle.health.clone();
    tokio::time::timeout(Duration::from_secs(10), health.wait_for(what))
        .await
        .unwrap_or_else(|_| panic!("the source never got there: {:?}", *handle.health.borrow()))
        .unwrap();
}

/// Waits until `check` holds, looking again each time the source reports (every look).
async fn until(handle: &Handle, mut check: impl FnMut() -> bool) {
    let mut health = handle.health.clone();
    let wait = async {
        while !check() {
            health.changed().await.unwrap();
        }
    };
    tokio::time::timeout(Duration::from_secs(10), wait).await.expect("never happened");
}

/// The ids the device showed, in order.
fn shown(device: &Recorder) -> Vec<String> {
    let calls = device.calls.lock().unwrap();
    calls.iter().filter_map(|c| c.strip_prefix("show ").map(str::to_owned)).collect()
}

// ---- PagerDuty -------------------------------------------------------------------------------

#[derive(Default)]
struct PagerDuty {
    triggered: Vec<Value>,
    /// What the app asked, one line a request.
    log: Vec<String>,
    /// Answer the next list with 429 and `ratelimit-reset: 2`.
    limit_next: bool,
    limited_at: Option<Instant>,
    too_soon: usize,
    /// Answer this many actions with 500.
    fail_puts: usize,
}

type Pd = State<Arc<Mutex<PagerDuty>>>;

fn pd_refused(headers: &HeaderMap) -> Option<Response> {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
    let accept = headers.get("accept").and_then(|v| v.to_str().ok());
    if auth != Some("Token token=pd-user-token") {
        let body = json!({"error": {"message": "Unauthorized", "code": 2001}});
        return Some((StatusCode::UNAUTHORIZED, Json(body)).into_response());
    }
    if accept != Some("application/vnd.pagerduty+json;version=2") {
        let body = json!({"error": {"message": "Not Acceptable", "code": 2000}});
        return Some((StatusCode::NOT_ACCEPTABLE, Json(body)).into_response());
    }
    None
}

async fn pd_me(headers: HeaderMap) -> Response {
    pd_refused(&headers).unwrap_or_else(|| {
        Json(json!({"user": {"id": "PXPGF42", "email": "alice@example.com"}})).into_response()
    })
}

async fn pd_list(State(pd): Pd, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    if let Some(refused) = pd_refused(&headers) {
        return refused;
    }
    let mut pd = pd.lock().unwrap();
    let query = query.unwrap_or_default();
    pd.log.push(format!("GET /incidents?{query}"));
    if pd.limited_at.is_some_and(|at| at.elapsed() < Duration::from_secs(2)) {
        pd.too_soon += 1;
    }
    if std::mem::take(&mut pd.limit_next) {
        pd.limited_at = Some(Instant::now());
        let body = json!({"error": {"message": "Rate Limit Exceeded", "code": 2020}});
        return (StatusCode::TOO_MANY_REQUESTS, [("ratelimit-reset", "2")], Json(body))
            .into_response();
    }
    let body = json!({"incidents": pd.triggered, "limit": 100, "offset": 0, "more": false});
    Json(body).into_response()
}

async fn pd_alerts(headers: HeaderMap, Path(id): Path<String>) -> Response {
    pd_refused(&headers).unwrap_or_else(|| {
        Json(json!({"alerts": [{"id": format!("A{id}"), "body": {"details": {"host": "db-1"},
            "contexts": [{"type": "link", "href": "https://wiki.example/runbooks/db", "text": "Runbook"}]}}]}))
        .into_response()
    })
}

async fn pd_update(
    State(pd): Pd,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Response {
    if let Some(refused) = pd_refused(&headers) {
        return refused;
    }
    let from = headers.get("from").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let mut pd = pd.lock().unwrap();
    if from != "alice@example.com" {
        let body = json!({"error": {"message": "Invalid Input Provided", "code": 2001,
            "errors": ["A valid user is required in the From header"]}});
        return (StatusCode::BAD_REQUEST, Json(body)).into_response();
    }
    if pd.fail_puts > 0 {
        pd.fail_puts -= 1;
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    let status = body["incident"]["status"].as_str().unwrap_or("").to_owned();
    let kind = body["incident"]["type"].as_str().unwrap_or("").to_owned();
    pd.log.push(format!("PUT /incidents/{id} from={from} type={kind} status={status}"));
    pd.triggered.retain(|i| i["id"] != id.as_str());
    Json(json!({"incident": {"id": id, "status": status}})).into_response()
}

fn pd_incident(id: &str, urgency: &str, title: &str) -> Value {
    json!({"id": id, "type": "incident", "incident_number": 7, "title": title, "urgency": urgency,
        "status": "triggered", "created_at": "2026-12-05T10:00:00Z",
        "html_url": format!("https://acme.pagerduty.com/incidents/{id}"),
        "service": {"id": "PSVC", "type": "service_reference", "summary": "Payments"}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pagerduty_rings_for_high_urgency_and_acknowledges_with_from() {
    let fake = Arc::new(Mutex::new(PagerDuty { limit_next: true, ..Default::default() }));
    let router = Router::new()
        .route("/users/me", get(pd_me))
        .route("/incidents", get(pd_list))
        .route("/incidents/{id}/alerts", get(pd_alerts))
        .route("/incidents/{id}", put(pd_update))
        .with_state(fake.clone());
    let url = serve(router).await;
    {
        let mut pd = fake.lock().unwrap();
        pd.triggered.push(pd_incident("PHIGH1", "high", "Payments are failing"));
        pd.triggered.push(pd_incident("PLOW1", "low", "Disk at 80%"));
    }
    let dir = tempfile::tempdir().unwrap();
    let config = SourceConfig {
        name: "work".into(),
        kind: Kind::PagerDuty,
        url: url.clone(),
        email: "alice@example.com".into(),
        ..Default::default()
    };
    let (device, handle) = follow(config.clone(), "pd-user-token", dir.path());

    // The first list is refused with 429: the next comes no sooner than PagerDuty said.
    device.wait_for("ring").await;
    let ringing = shown(&device);
    assert_eq!(ringing.len(), 1, "only the high-urgency incident rings: {ringing:?}");
    until(&handle, || device.count_starting("notify ") == 2).await;
    let id: i64 = ringing[0].parse().unwrap();
    assert_eq!(sources::slot_of(id), Some(1));
    {
        let pd = fake.lock().unwrap();
        assert_eq!(pd.too_soon, 0, "asked again inside the rate limit's reset");
        let list = pd.log.iter().find(|l| l.starts_with("GET")).unwrap();
        assert!(
            list.contains("user_ids%5B%5D=PXPGF42") && list.contains("statuses%5B%5D=triggered"),
            "{list}"
        );
    }
    let incident = device.incident(id);
    assert_eq!(incident.runbook_url.as_deref(), Some("https://wiki.example/runbooks/db"));
    assert_eq!(incident.summary, "Payments are failing");

    // Acknowledged here while PagerDuty fails: silent at once, kept, and delivered once it works.
    fake.lock().unwrap().fail_puts = 2;
    handle.act(id, Request::Ack).await;
    device.wait_for("silence").await;
    let puts = || -> Vec<String> {
        fake.lock().unwrap().log.iter().filter(|l| l.starts_with("PUT")).cloned().collect()
    };
    until(&handle, || !puts().is_empty()).await;
    health(&handle, |h| h.pending == 0).await;
    assert_eq!(
        puts(),
        [
            "PUT /incidents/PHIGH1 from=alice@example.com type=incident_reference status=acknowledged"
        ]
    );
    health(&handle, |h| h.open == 1).await;
    assert_eq!(device.count("ring"), 1, "an answered incident never rings again");

    // Acknowledged while PagerDuty refuses actions, then the app restarts: the answer kept on
    // disk is delivered by the next run once it has looked, and the page does not ring meanwhile.
    fake.lock().unwrap().triggered.push(pd_incident("PHIGH2", "high", "Checkout is failing"));
    until(&handle, || device.count("ring") == 2).await;
    let second: i64 = shown(&device).last().unwrap().parse().unwrap();
    fake.lock().unwrap().fail_puts = 1_000;
    handle.act(second, Request::Ack).await;
    health(&handle, |h| h.pending == 1).await;
    handle.stop(Duration::from_secs(5)).await;
    fake.lock().unwrap().fail_puts = 0;
    let (restarted, handle) = follow(config.clone(), "pd-user-token", dir.path());
    until(&handle, || puts().len() == 2).await;
    assert_eq!(
        puts()[1],
        "PUT /incidents/PHIGH2 from=alice@example.com type=incident_reference status=acknowledged"
    );
    health(&handle, |h| h.pending == 0).await;
    assert_eq!(restarted.count("ring"), 0, "a page answered before the restart rang again");

    // A wrong token is said in the source's health, and becomes a lost feed.
    drop(handle);
    let (device, handle) =
        follow(SourceConfig { name: "bad".into(), ..config }, "wrong", dir.path());
    health(&handle, |h| h.ok == Some(false) && h.message.contains("refused the credential")).await;
    device.wait_for("lost true").await;
}

// ---- Opsgenie --------------------------------------------------------------------------------

#[derive(Default)]
struct Opsgenie {
    open: Vec<Value>,
    log: Vec<String>,
    /// Acknowledged alerts still listed for this many lists (Opsgenie applies actions later).
    lagging: usize,
}

type Og = State<Arc<Mutex<Opsgenie>>>;

fn og_refused(headers: &HeaderMap) -> Option<Response> {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
    (auth != Some("GenieKey og-key")).then(|| {
        let body = json!({"message": "Could not authenticate", "took": 0.0, "requestId": "r"});
        (StatusCode::UNAUTHORIZED, Json(body)).into_response()
    })
}

async fn og_list(State(og): Og, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    if let Some(refused) = og_refused(&headers) {
        return refused;
    }
    let mut og = og.lock().unwrap();
    og.log.push(format!("GET /v2/alerts?{}", query.unwrap_or_default()));
    og.lagging = og.lagging.saturating_sub(1);
    let lagging = og.lagging;
    let open: Vec<Value> =
        og.open.iter().filter(|a| a["acknowledged"] == false || lagging > 0).cloned().collect();
    Json(json!({"data": open, "took": 0.01, "requestId": "r"})).into_response()
}

async fn og_get(headers: HeaderMap, Path(id): Path<String>) -> Response {
    og_refused(&headers).unwrap_or_else(|| {
        Json(json!({"data": {"id": id, "description": "db-1 is down",
            "details": {"runbook_url": "https://wiki.example/runbooks/db-down"}}, "took": 0.01, "requestId": "r"}))
        .into_response()
    })
}

async fn og_act(
    State(og): Og,
    headers: HeaderMap,
    Path((id, verb)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    Json(body): Json<Value>,
) -> Response {
    if let Some(refused) = og_refused(&headers) {
        return refused;
    }
    let mut og = og.lock().unwrap();
    og.log.push(format!(
        "POST /v2/alerts/{id}/{verb}?{} user={} source={}",
        query.unwrap_or_default(),
        body["user"].as_str().unwrap_or(""),
        body["source"].as_str().unwrap_or("")
    ));
    for alert in og.open.iter_mut().filter(|a| a["id"] == id.as_str()) {
        alert["acknowledged"] = json!(true);
    }
    og.lagging = 3;
    let body = json!({"result": "Request will be processed", "took": 0.02, "requestId": "r"});
    (StatusCode::ACCEPTED, Json(body)).into_response()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opsgenie_rings_for_p1_and_an_ack_in_flight_does_not_ring_again() {
    let fake = Arc::new(Mutex::new(Opsgenie::default()));
    let router = Router::new()
        .route("/v2/alerts", get(og_list))
        .route("/v2/alerts/{id}", get(og_get))
        .route("/v2/alerts/{id}/{verb}", post(og_act))
        .with_state(fake.clone());
    let url = serve(router).await;
    let alert = |id: &str, priority: &str| {
        json!({"id": id, "tinyId": "17", "message": format!("{priority} alert"), "status": "open",
            "acknowledged": false, "priority": priority, "createdAt": "2026-12-05T10:00:00.000Z",
            "source": "db-monitor", "tags": []})
    };
    fake.lock().unwrap().open = vec![alert("og-1", "P1"), alert("og-3", "P3")];
    let dir = tempfile::tempdir().unwrap();
    let config = SourceConfig {
        name: "ops".into(),
        kind: Kind::Opsgenie,
        url,
        email: "alice@example.com".into(),
        ..Default::default()
    };
    let (device, handle) = follow(config, "og-key", dir.path());
    device.wait_for("ring").await;
    let ringing = shown(&device);
    assert_eq!(ringing.len(), 1, "{ringing:?}");
    let id: i64 = ringing[0].parse().unwrap();
    assert_eq!(
        device.incident(id).runbook_url.as_deref(),
        Some("https://wiki.example/runbooks/db-down")
    );
    let list = fake.lock().unwrap().log[0].clone();
    assert!(
        list.contains("owner%3A+%22alice%40example.com%22")
            || list.contains("owner%3A%20%22alice%40example.com%22"),
        "{list}"
    );

    handle.act(id, Request::Ack).await;
    device.wait_for("silence").await;
    // Opsgenie lists the alert as open for three more looks; it must not ring again meanwhile.
    until(&handle, || fake.lock().unwrap().lagging == 0).await;
    health(&handle, |h| h.open == 1).await;
    assert_eq!(device.count("ring"), 1);
    let acks: Vec<String> =
        fake.lock().unwrap().log.iter().filter(|l| l.starts_with("POST")).cloned().collect();
    assert_eq!(
        acks,
        [
            "POST /v2/alerts/og-1/acknowledge?identifierType=id user=alice@example.com source=Reveille desktop"
        ]
    );
}

// ---- ntfy, through Reveille's own ntfy endpoint ------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ntfy_topic_rings_stops_when_answered_anywhere_and_resumes_with_since() {
    use reveille_store::prelude::*;
    let dir = tempfile::tempdir().unwrap();
    let (server, port) = common::serve(dir.path(), 0).await;
    common::add_token(&server.store).await;
    let now = jiff::Timestamp::now();
    let topic = server.store.phone_topic("alice", "alice-phone-topic-1", now).await.unwrap();
    let config = SourceConfig {
        name: "phone-topic".into(),
        kind: Kind::Ntfy,
        url: format!("http://127.0.0.1:{port}"),
        topic,
        ..Default::default()
    };
    let (device, handle) = follow(config, common::TOKEN, dir.path());
    health(&handle, |h| h.ok == Some(true)).await;

    // A page rings; bob acknowledges it on the server: ntfy's message_delete stops the alarm.
    let first = common::page(&server.store, "a").await;
    device.wait_for("ring").await;
    server.store.command(first, "bob", reveille_core::Command::Acknowledge, now).await.unwrap();
    device.wait_for("silence").await;

    // Another, dismissed here.
    common::page(&server.store, "b").await;
    until(&handle, || device.count("ring") == 2).await;
    let id: i64 = shown(&device).last().unwrap().parse().unwrap();
    handle.act(id, Request::Ack).await;
    until(&handle, || device.count("silence") == 2).await;

    // The server goes away; a page sent meanwhile rings once it is back (resumed with since=).
    let common::Server { store, stop, done } = server;
    stop.send(()).unwrap();
    done.await.unwrap();
    health(&handle, |h| h.ok == Some(false)).await;
    let third = common::page(&store, "c").await;
    drop(store);
    let (_server, _) = common::serve(dir.path(), port).await;
    until(&handle, || device.count("ring") == 3).await;
    let summary = device.incident(shown(&device).last().unwrap().parse().unwrap()).summary;
    assert!(summary.contains("c is down"), "{summary} (incident {third})");
}
