//! Bounded resources: no sender, device or stranger can make the server hold more than its
//! limits say. Connections over `server.max_connections` get a 503 that senders retry; request
//! heads and bodies that never arrive are cut; a wrong key is refused before its body is read; one
//! person's feed streams are capped; an Alertmanager group too large to store whole still pages;
//! devices are capped per person and never move from one person to another.

mod common;

use std::time::Duration;

use common::Harness;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn config(extra: &str) -> String {
    common::CONFIG.replace("heartbeat_seconds = 1", &format!("heartbeat_seconds = 1\n{extra}"))
}

async fn connect(h: &Harness) -> TcpStream {
    TcpStream::connect(h.url.trim_start_matches("http://")).await.unwrap()
}

/// Everything the server writes until it closes the connection; fails if it is still open
/// after `within`.
async fn until_closed(stream: &mut TcpStream, within: Duration) -> String {
    let mut seen = Vec::new();
    let read = tokio::time::timeout(within, async {
        let mut buffer = [0u8; 4096];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buffer[..n]),
            }
        }
    });
    read.await.expect("the server kept the connection open");
    String::from_utf8_lossy(&seen).into_owned()
}

/// Polls a condition of the running server until it holds (up to 10 s).
async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(tokio::time::Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_connection_over_the_cap_gets_a_503_to_retry_and_a_freed_slot_serves_again() {
    let h = Harness::with_config(&config("max_connections = 2")).await;
    let first = connect(&h).await;
    let second = connect(&h).await;
    eventually("two connections are served", || h.state.metrics.connections.get() == 2).await;

    let mut third = connect(&h).await;
    let answer = until_closed(&mut third, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("Retry-After: 5"), "{answer}");

    drop((first, second));
    eventually("the slots are free again", || h.state.metrics.connections.get() == 0).await;
    let (status, body) = h.get("/healthz", "").await;
    assert_eq!(status, 200, "{body}");
    let metrics = h.http.get(format!("{}/metrics", h.url)).send().await.unwrap();
    assert!(metrics.text().await.unwrap().contains("reveille_connections_refused_total 1"));
}

#[tokio::test]
async fn a_request_head_that_never_completes_and_an_idle_connection_are_cut() {
    let h = Harness::with_config(&config("idle_timeout_seconds = 1")).await;
    let mut trickling = connect(&h).await;
    trickling.write_all(b"GET /healthz HTTP/1.1\r\nHost: reveille\r\n").await.unwrap();
    let answer = until_closed(&mut trickling, Duration::from_secs(10)).await;
    assert!(!answer.contains("200 OK"), "{answer}");

    // A keep-alive connection that asks nothing more after its first answer.
    let mut idle = connect(&h).await;
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: reveille\r\n\r\n").await.unwrap();
    let answer = until_closed(&mut idle, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn a_body_that_stops_arriving_is_refused_when_the_body_timeout_passes() {
    let h = Harness::with_config(&config("body_timeout_seconds = 1")).await;
    let mut sender = connect(&h).await;
    let head = format!(
        "POST /api/v1/events HTTP/1.1\r\nHost: reveille\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"summary\":",
        h.key
    );
    sender.write_all(head.as_bytes()).await.unwrap();
    let answer = until_closed(&mut sender, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 4"), "{answer}");
    assert!(h.incidents().await.is_empty(), "nothing half-sent is stored");
}

#[tokio::test]
async fn a_wrong_key_is_refused_before_the_body_is_read() {
    let h = Harness::start().await;
    let requests = [
        ("/api/v1/alertmanager/not-a-key", "Content-Type: application/json"),
        ("/api/v1/grafana", "Authorization: Bearer not-a-key"),
        ("/api/v1/events", "Authorization: Bearer not-a-key"),
        ("/v2/alerts", "Authorization: GenieKey not-a-key"),
        ("/v2/alerts/x/acknowledge?identifierType=alias", "Authorization: GenieKey not-a-key"),
    ];
    for (path, header) in requests {
        // The head promises a body that never comes: only an answer given without it returns.
        let mut sender = connect(&h).await;
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: reveille\r\n{header}\r\nContent-Length: 400000\r\n\
             Connection: close\r\n\r\n"
        );
        sender.write_all(head.as_bytes()).await.unwrap();
        let answer = until_closed(&mut sender, Duration::from_secs(10)).await;
        assert!(answer.starts_with("HTTP/1.1 401"), "{path}: {answer}");
    }
}

async fn open_feed(h: &Harness, token: &str) -> reqwest::Response {
    h.http.get(format!("{}/api/v1/feed", h.url)).bearer_auth(token).send().await.unwrap()
}

#[tokio::test]
async fn one_person_holds_at_most_max_streams_per_user_feeds() {
    let h = Harness::with_config(&config("max_streams_per_user = 2")).await;
    let topic =
        h.store().phone_topic("alice", "alicetopic123", jiff::Timestamp::now()).await.unwrap();
    let first = open_feed(&h, &h.alice).await;
    let second = open_feed(&h, &h.alice).await;
    assert_eq!((first.status().as_u16(), second.status().as_u16()), (200, 200));

    let third = open_feed(&h, &h.alice).await;
    assert_eq!(third.status(), 429);
    let body: Value = third.json().await.unwrap();
    assert_eq!(body["code"], "rate_limited", "{body}");
    assert!(body["message"].as_str().unwrap().contains("max_streams_per_user"), "{body}");
    let phone =
        h.http.get(format!("{}/{topic}/json", h.url)).bearer_auth(&h.alice).send().await.unwrap();
    assert_eq!(phone.status(), 429);
    let body: Value = phone.json().await.unwrap();
    assert_eq!(body["code"], 42903, "ntfy's own limit error: {body}");

    let bob = open_feed(&h, &h.bob).await;
    assert_eq!(bob.status(), 200, "others are not affected");
    drop(first);
    let mut open = h.state.presence.watch();
    let freed = tokio::time::timeout(Duration::from_secs(10), open.wait_for(|n| *n == 2));
    freed.await.expect("the closed stream still counts").unwrap();
    assert_eq!(open_feed(&h, &h.alice).await.status(), 200, "a closed stream frees its place");
    drop((second, bob));
}

fn alert(n: usize, status: &str) -> Value {
    json!({"status": status, "fingerprint": format!("fp{n}"),
           "labels": {"alertname": format!("Alert{n}")},
           "annotations": {"summary": format!("alert {n}")}})
}

#[tokio::test]
async fn an_alertmanager_group_too_large_to_store_whole_still_pages_for_the_rest() {
    let h = Harness::start().await;
    let mut alerts: Vec<Value> = (0..3).map(|n| alert(n, "resolved")).collect();
    alerts.extend((3..1005).map(|n| alert(n, "firing")));
    let group = json!({"version": "4", "status": "firing", "groupKey": "{}:{alertname=\"x\"}",
                       "receiver": "reveille", "alerts": alerts});
    let path = format!("/api/v1/alertmanager/{}", h.key);
    let (status, body) = h.post(&path, None, &group.to_string()).await;
    assert_eq!(status, 200, "never refused: Alertmanager would drop the whole group");
    assert_eq!(body.as_array().unwrap().len(), 1001, "1000 alerts and one for the rest");

    let (status, _) = h.post(&path, None, &group.to_string()).await;
    assert_eq!(status, 200);
    let incidents =
        h.store().incidents(reveille_store::IncidentFilter { limit: 5000, ..Default::default() });
    let incidents = incidents.await.unwrap();
    assert_eq!(incidents.len(), 1001, "the same group again changes nothing");
    let rest: Vec<_> = incidents.iter().filter(|i| i.dedup_key.starts_with("overflow-")).collect();
    assert_eq!(rest.len(), 1);
    assert!(rest[0].summary.starts_with("2 more firing alerts"), "{}", rest[0].summary);
    assert!(incidents.iter().any(|i| i.summary == "alert 1002"), "firing alerts come first");
}

async fn register(h: &Harness, token: &str, device: &str) -> (u16, Value) {
    let body = json!({"platform": "fcm", "token": device});
    h.post("/api/v1/devices", Some(&format!("Bearer {token}")), &body.to_string()).await
}

#[tokio::test]
async fn devices_are_capped_per_person_and_never_move_to_another_person() {
    let h = Harness::start().await;
    let (status, _) = register(&h, &h.alice, "alices-phone").await;
    assert_eq!(status, 200);
    let (status, body) = register(&h, &h.bob, "alices-phone").await;
    assert_eq!(status, 409, "bob cannot take alice's phone: {body}");
    assert_eq!(h.store().devices(Some("alice")).await.unwrap().len(), 1);
    assert!(h.store().devices(Some("bob")).await.unwrap().is_empty());

    for n in 1..reveille_server::deliver::push::devices::MAX_PER_USER {
        let (status, _) = register(&h, &h.alice, &format!("spare-{n}")).await;
        assert_eq!(status, 200);
    }
    let (status, body) = register(&h, &h.alice, "one-too-many").await;
    assert_eq!(status, 409, "{body}");
    assert!(body["message"].as_str().unwrap().contains("remove one"), "{body}");
}

#[tokio::test]
async fn no_request_without_credentials_queues_work_on_the_writer() {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("runbooks")).unwrap();
    std::fs::write(dir.path().join("runbooks/payments.md"), common::RUNBOOK).unwrap();
    let settings = reveille_server::config::Settings::from_text(
        common::CONFIG,
        &dir.path().join("reveille.toml"),
        Vec::new(),
    )
    .unwrap();
    let store = reveille_store_sqlite::Sqlite::open(settings.database_path()).unwrap();
    reveille_server::http::links::ensure(&settings).unwrap();
    let clock =
        std::sync::Arc::new(reveille_server::clock::ManualClock::new(jiff::Timestamp::now()));
    let state = reveille_server::AppState::new(std::sync::Arc::new(store), settings, clock);
    let topic = state.store.phone_topic("alice", "alicetopic123", jiff::Timestamp::now());
    let topic = topic.await.unwrap();
    // The router alone: no worker writes behind the test's back.
    let app = reveille_server::router(state.clone());
    let commits = state.store.hub().commits();
    let before = *commits.borrow();

    let event = json!({"routing_key": "x".repeat(32), "event_action": "trigger",
        "payload": {"summary": "s", "source": "s", "severity": "critical"}});
    let requests: Vec<(&str, String, Option<&str>, String)> = vec![
        ("POST", "/v2/enqueue".into(), None, event.to_string()),
        ("POST", "/api/v1/alertmanager/wrong".into(), None, "{}".into()),
        ("POST", "/api/v1/grafana".into(), None, "{}".into()),
        ("POST", "/api/v1/events".into(), Some("Bearer wrong"), "{}".into()),
        ("POST", "/v2/alerts".into(), Some("GenieKey wrong"), "{}".into()),
        ("POST", "/v2/alerts/1/close".into(), Some("GenieKey wrong"), String::new()),
        ("GET", "/api/v1/feed".into(), None, String::new()),
        ("GET", "/api/v1/incidents".into(), Some("Bearer wrong"), String::new()),
        ("POST", "/api/v1/incidents/1/ack".into(), Some("Bearer wrong"), String::new()),
        ("POST", "/api/v1/devices".into(), Some("Bearer wrong"), "{}".into()),
        (
            "POST",
            "/api/v1/links/ack/1?user=alice&exp=9999999999&sig=AAAA".into(),
            None,
            String::new(),
        ),
        ("GET", format!("/{topic}/json"), Some("Bearer wrong"), String::new()),
        ("GET", format!("/{topic}/auth"), None, String::new()),
    ];
    for _ in 0..5 {
        for (method, path, auth, body) in &requests {
            let mut request = Request::builder().method(*method).uri(path.as_str());
            if let Some(auth) = auth {
                request = request.header("authorization", *auth);
            }
            let request = request
                .header("content-type", "application/json")
                .body(Body::from(body.clone()))
                .unwrap();
            let status = app.clone().oneshot(request).await.unwrap().status();
            assert!(status.is_client_error(), "{method} {path}: {status}");
        }
    }
    for path in ["/healthz", "/metrics"].repeat(10) {
        let request = Request::get(path).body(Body::empty()).unwrap();
        assert_eq!(app.clone().oneshot(request).await.unwrap().status(), 200);
    }
    let writes = *commits.borrow() - before;
    assert!(writes <= 2, "{writes} commits: strangers queued work on the writer");
}

/// A connection from `127.0.0.<host>` (loopback answers on all of 127/8).
async fn connect_from(h: &Harness, host: u8) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(std::net::SocketAddr::from(([127, 0, 0, host], 0))).unwrap();
    socket.connect(h.url.trim_start_matches("http://").parse().unwrap()).await.unwrap()
}

/// Sends one request on `stream` and reads the answer's status line.
async fn status_of(stream: &mut TcpStream, request: &str) -> String {
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 1024];
    let n = stream.read(&mut answer).await.unwrap();
    String::from_utf8_lossy(&answer[..n]).lines().next().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn one_host_holding_its_whole_share_cannot_stop_an_authenticated_ingest() {
    let h = Harness::with_config(&config(
        "max_connections = 20\nmax_connections_per_ip = 5\nreserved_connections = 2",
    ))
    .await;
    // One host opens as many connections as it can: it gets its share, the rest are refused.
    let mut greedy = Vec::new();
    for _ in 0..5 {
        greedy.push(connect_from(&h, 2).await);
    }
    let mut sixth = connect_from(&h, 2).await;
    let answer = until_closed(&mut sixth, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    let sent = h.trigger("db-1/disk", "Disk full").await;
    assert!(sent > 0, "an ingest from elsewhere goes through");

    // Many hosts fill every slot but the reserve: only requests with a credential get in now.
    // (Counted by the server: the harness's own client may hold a connection too.)
    let mut host = 3;
    while h.state.metrics.connections.get() < 18 {
        let before = h.state.metrics.connections.get();
        if greedy.len() % 5 == 0 {
            host += 1;
        }
        greedy.push(connect_from(&h, host).await);
        eventually("the connection is served", || h.state.metrics.connections.get() > before).await;
    }
    let mut anonymous = connect_from(&h, 9).await;
    let status = status_of(&mut anonymous, "GET /healthz HTTP/1.1\r\nHost: r\r\n\r\n").await;
    assert!(status.starts_with("HTTP/1.1 503"), "a reserved slot serves no stranger: {status}");
    let body = json!({"summary": "Disk full on db-2", "dedup_key": "db-2"}).to_string();
    let request = format!(
        "POST /api/v1/events HTTP/1.1\r\nHost: r\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        h.key,
        body.len()
    );
    let mut sender = connect_from(&h, 10).await;
    let status = status_of(&mut sender, &request).await;
    assert!(status.starts_with("HTTP/1.1 202"), "the sender gets the reserve: {status}");
    drop(greedy);
}

#[tokio::test]
async fn metrics_are_made_at_most_once_a_second_however_often_they_are_scraped() {
    let h = Harness::start().await;
    let started = std::time::Instant::now();
    let scrapes: Vec<_> = (0..200)
        .map(|_| {
            let (http, url) = (h.http.clone(), format!("{}/metrics", h.url));
            tokio::spawn(async move { http.get(url).send().await.unwrap().status() })
        })
        .collect();
    for scrape in scrapes {
        assert_eq!(scrape.await.unwrap(), 200);
    }
    let renders = h.state.metrics.renders.load(std::sync::atomic::Ordering::Relaxed);
    let seconds = started.elapsed().as_secs() + 1;
    assert!(renders <= seconds, "200 scrapes in {seconds} s made the page {renders} times");
}
