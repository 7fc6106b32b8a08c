//! Live means live, revocation bites at once, secrets at rest, and health that tells the truth:
//! a device that stops reading stops counting as one; a revoked token's streams close within a
//! heartbeat and its ack links stop working; the database and the link key are private and the
//! key is not in the database; `/healthz` fails when nothing can commit, the server exits when its
//! writer dies, and a shutdown never waits longer than its deadline.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::Duration;

use common::Harness;
use futures_util::StreamExt;
use jiff::{SignedDuration, Timestamp};
use reveille_server::AppState;
use reveille_server::clock::ManualClock;
use reveille_server::config::Settings;
use reveille_server::http::links;
use reveille_store_sqlite::Sqlite;
use serde_json::json;
use tokio::io::AsyncWriteExt;

/// Waits until the server counts `n` open device connections.
async fn connections(h: &Harness, n: usize) {
    let mut open = h.state.presence.watch();
    let reached = tokio::time::timeout(Duration::from_secs(30), open.wait_for(|open| *open == n));
    assert!(
        reached.await.is_ok(),
        "the server still counts {} connections, not {n}",
        *open.borrow()
    );
}

#[tokio::test]
async fn a_device_that_stops_reading_its_feed_stops_counting_as_live() {
    let h = Harness::start().await;
    // A client with a tiny receive window that asks for its feed and then never reads.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream =
        socket.connect(h.url.trim_start_matches("http://").parse().unwrap()).await.unwrap();
    let request = format!(
        "GET /api/v1/feed HTTP/1.1\r\nHost: reveille\r\nAuthorization: Bearer {}\r\n\r\n",
        h.alice
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    connections(&h, 1).await;

    // Pages keep coming: 6 MB, more than the socket buffers on both sides hold, so frames wait
    // for the device until the server gives up on it.
    let log = "x".repeat(15_000);
    for n in 0..400 {
        let body = json!({"summary": format!("page {n}"), "details": {"log": log}});
        let key = format!("Bearer {}", h.key);
        let (status, _) = h.post("/api/v1/events", Some(&key), &body.to_string()).await;
        assert_eq!(status, 202);
    }
    // The kernel (the user timeout also bounds a zero window) or the follower (a frame waited
    // three heartbeats), whichever comes first, closes it.
    connections(&h, 0).await;
    drop(stream);
}

#[tokio::test]
async fn a_follower_whose_frames_are_not_taken_closes_after_three_heartbeats() {
    let h = Harness::start().await;
    let start = reveille_server::deliver::follow::Start::default();
    let beat = Duration::from_millis(50);
    // Nobody takes the frames: the channel fills with heartbeats, then one waits too long.
    let frames =
        reveille_server::deliver::follow::follow(&h.state, "alice", start, beat).await.unwrap();
    connections(&h, 1).await;
    connections(&h, 0).await;
    let metrics = h.http.get(format!("{}/metrics", h.url)).send().await.unwrap();
    let metrics = metrics.text().await.unwrap();
    assert!(metrics.contains("reveille_feed_closed_stalled_total 1"), "{metrics}");
    drop(frames);
}

/// Reads a stream until it ends; fails if it is still open after `within`.
async fn ends_within(response: reqwest::Response, within: Duration) {
    let mut body = response.bytes_stream();
    tokio::time::timeout(within, async { while let Some(Ok(_)) = body.next().await {} })
        .await
        .expect("the stream of a revoked token is still open");
}

#[tokio::test]
async fn revoking_a_token_closes_its_streams_and_voids_its_ack_links() {
    let h = Harness::start().await;
    let first = h.trigger("one", "first").await;
    let second = h.trigger("two", "second").await;
    let prefix =
        h.store().tokens().await.unwrap().into_iter().find(|t| t.user == "alice").unwrap().prefix;
    let secret = links::secret(&h.state).await.unwrap();
    let expires = Timestamp::now() + SignedDuration::from_hours(1);
    let link = |id| {
        let url = links::ack_url(&h.url, &secret, id, "alice", expires, Some(&prefix));
        url.replace(&h.url, "")
    };
    let (status, body) = h.post(&link(first), None, "").await;
    assert_eq!(status, 200, "a link works while its token is live: {body}");

    let sse =
        h.http.get(format!("{}/api/v1/feed", h.url)).bearer_auth(&h.alice).send().await.unwrap();
    let topic = h.store().phone_topic("alice", "alicetopic123", Timestamp::now()).await.unwrap();
    let ntfy =
        h.http.get(format!("{}/{topic}/json", h.url)).bearer_auth(&h.alice).send().await.unwrap();
    assert_eq!((sse.status().as_u16(), ntfy.status().as_u16()), (200, 200));
    let ws_url = format!("{}/{topic}/ws", h.url.replace("http://", "ws://"));
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(ws_url)
            .unwrap();
    request.headers_mut().insert("authorization", format!("Bearer {}", h.alice).parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    connections(&h, 3).await;

    h.store().revoke_token(&prefix).await.unwrap();
    h.advance(2); // past the second a live token is trusted for
    // heartbeat_seconds = 1 (and the phone's keepalive 1): closed at the next one.
    ends_within(sse, Duration::from_secs(5)).await;
    ends_within(ntfy, Duration::from_secs(5)).await;
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(message)) = ws.next().await {
            if message.is_close() {
                break;
            }
        }
    });
    closed.await.expect("the WebSocket of a revoked token is still open");
    connections(&h, 0).await;

    let (status, body) = h.post(&link(second), None, "").await;
    assert_eq!(status, 403, "{body}");
    assert!(body["message"].as_str().unwrap().contains("revoked"), "{body}");
}

#[tokio::test]
async fn the_database_and_the_link_key_are_private_and_the_key_is_not_in_the_database() {
    let h = Harness::start().await;
    let id = h.trigger("one", "first").await;
    let secret = links::secret(&h.state).await.unwrap();
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&h.db), 0o600, "the database file");
    let key = links::key_path(&h.state.settings());
    assert_eq!(mode(&key), 0o600, "the link key file");
    let conn = rusqlite::Connection::open(&h.db).unwrap();
    let dump: String = conn
        .query_row("SELECT COALESCE(group_concat(value, ' '), '') FROM meta", [], |r| r.get(0))
        .unwrap();
    assert!(!dump.contains(std::str::from_utf8(&secret).unwrap()), "the key is in the database");

    // Rotating the key voids every link already sent.
    let expires = Timestamp::now() + SignedDuration::from_hours(1);
    let old = links::ack_url(&h.url, &secret, id, "alice", expires, None).replace(&h.url, "");
    links::rotate(&key).unwrap();
    assert_eq!(mode(&key), 0o600);
    let (status, body) = h.post(&old, None, "").await;
    assert_eq!(status, 403, "{body}");
}

#[tokio::test]
async fn a_new_database_folder_is_created_private() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state/reveille.db");
    Sqlite::open(&db).unwrap();
    let mode = std::fs::metadata(db.parent().unwrap()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
}

#[tokio::test]
async fn a_dead_writer_ends_the_server_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("runbooks")).unwrap();
    std::fs::write(dir.path().join("runbooks/payments.md"), common::RUNBOOK).unwrap();
    let settings =
        Settings::from_text(common::CONFIG, &dir.path().join("reveille.toml"), Vec::new()).unwrap();
    let sqlite = Sqlite::open(settings.database_path()).unwrap();
    reveille_server::http::links::ensure(&settings).unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp::now()));
    let state = AppState::new(Arc::new(sqlite.clone()), settings, clock);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/healthz", listener.local_addr().unwrap());
    let served = tokio::spawn(reveille_server::serve(listener, state, std::future::pending()));
    let http = reqwest::Client::new();
    assert_eq!(http.get(&url).send().await.unwrap().status(), 200);

    sqlite.crash_writer().await;
    let exited = tokio::time::timeout(Duration::from_secs(10), served)
        .await
        .expect("the server kept running");
    let error = exited.unwrap().expect_err("the server must end with an error");
    assert!(error.to_string().contains("writer thread died"), "{error}");
}

#[tokio::test]
async fn healthz_answers_503_when_the_database_cannot_commit() {
    let h = Harness::start().await;
    // Another process holds the write lock: no commit can happen.
    let conn = rusqlite::Connection::open(&h.db).unwrap();
    conn.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let (status, body) = h.get("/healthz", "").await;
    assert_eq!(status, 503, "{body}");
    conn.execute_batch("ROLLBACK").unwrap();
}

#[tokio::test]
async fn a_shutdown_never_waits_past_its_deadline_for_a_half_open_request() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("runbooks")).unwrap();
    std::fs::write(dir.path().join("runbooks/payments.md"), common::RUNBOOK).unwrap();
    let config = common::CONFIG
        .replace("heartbeat_seconds = 1", "heartbeat_seconds = 1\nshutdown_seconds = 1");
    let settings =
        Settings::from_text(&config, &dir.path().join("reveille.toml"), Vec::new()).unwrap();
    let sqlite = Sqlite::open(settings.database_path()).unwrap();
    reveille_server::http::links::ensure(&settings).unwrap();
    let state =
        AppState::new(Arc::new(sqlite), settings, Arc::new(ManualClock::new(Timestamp::now())));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(reveille_server::serve(listener, state, async {
        stopped.await.ok();
    }));
    // A client that starts a request and never finishes its headers.
    let mut client = tokio::net::TcpStream::connect(address).await.unwrap();
    client.write_all(b"GET /healthz HTTP/1.1\r\nHost: reveille\r\n").await.unwrap();
    let answered = reqwest::get(format!("http://{address}/healthz")).await.unwrap();
    assert_eq!(answered.status(), 200, "the server is up");

    stop.send(()).unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(10), served).await;
    ended.expect("the shutdown waited on the half-open request").unwrap().unwrap();
    drop(client);
}
