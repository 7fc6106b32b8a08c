//! The ntfy Android app's requests, replayed over real HTTP: the auth check, a poll for the
//! backlog, the long-lived JSON stream with keepalives, a reconnect with `since`, the signed
//! Acknowledge action, and the delete that withdraws a notification after an ack elsewhere.

mod common;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::{Harness, Lines};
use futures_util::StreamExt;
use serde_json::{Value, json};

/// A harness with a phone topic for alice, and her phone's Basic credentials.
async fn phone() -> (Harness, String, String) {
    let h = Harness::start().await;
    let topic = h.store().phone_topic("alice", "rv_testtopicalice", h.clock_now()).await.unwrap();
    let basic = format!("Basic {}", STANDARD.encode(format!("alice:{}", h.alice)));
    (h, topic, basic)
}

trait Now {
    fn clock_now(&self) -> jiff::Timestamp;
}

impl Now for Harness {
    fn clock_now(&self) -> jiff::Timestamp {
        use reveille_server::clock::Clock;
        self.clock.now()
    }
}

async fn get(h: &Harness, path: &str, auth: Option<&str>) -> reqwest::Response {
    let mut request = h
        .http
        .get(format!("{}{path}", h.url))
        .header("user-agent", "ntfy/1.22.2 (fdroid; Android 14; SDK 34)");
    if let Some(auth) = auth {
        request = request.header("authorization", auth);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn the_auth_check_answers_as_ntfy_does() {
    let (h, topic, basic) = phone().await;
    let ok = get(&h, &format!("/{topic}/auth"), Some(&basic)).await;
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.json::<Value>().await.unwrap(), json!({"success": true}));
    let bearer = get(&h, &format!("/{topic}/auth"), Some(&format!("Bearer {}", h.alice))).await;
    assert_eq!(bearer.status(), 200, "a token as Bearer works too");

    let anonymous = get(&h, &format!("/{topic}/auth"), None).await;
    assert_eq!(anonymous.status(), 403);
    assert_eq!(anonymous.json::<Value>().await.unwrap()["code"], 40301);
    let wrong = get(
        &h,
        &format!("/{topic}/auth"),
        Some(&format!("Basic {}", STANDARD.encode("alice:nope"))),
    )
    .await;
    assert_eq!(wrong.status(), 401);
    assert_eq!(
        wrong.json::<Value>().await.unwrap(),
        json!({"code": 40101, "http": 401, "error": "unauthorized", "link": "https://ntfy.sh/docs/publish/#authentication"})
    );
    let bob = format!("Basic {}", STANDARD.encode(format!("bob:{}", h.bob)));
    assert_eq!(
        get(&h, &format!("/{topic}/auth"), Some(&bob)).await.status(),
        403,
        "alice's topic is hers"
    );
    assert_eq!(get(&h, "/not-a-topic-anyone-has/auth", Some(&basic)).await.status(), 403);
    let header = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&basic);
    assert_eq!(
        get(&h, &format!("/{topic}/auth?auth={header}"), None).await.status(),
        200,
        "?auth= as ntfy takes it"
    );
}

#[tokio::test]
async fn the_app_polls_then_streams_and_resumes_with_since() {
    let (h, topic, basic) = phone().await;
    // 1. Subscribing: a poll for the backlog, which is empty.
    let poll = get(&h, &format!("/{topic}/json?poll=1&since=all"), Some(&basic)).await;
    assert_eq!(poll.status(), 200);
    assert_eq!(poll.headers()["content-type"], "application/x-ndjson; charset=utf-8");
    assert_eq!(poll.text().await.unwrap(), "");

    // 2. Instant delivery: the long-lived stream, from now on.
    let mut stream = Lines::new(get(&h, &format!("/{topic}/json?since=none"), Some(&basic)).await);
    let open: Value = serde_json::from_str(&stream.next().await.unwrap()).unwrap();
    assert_eq!(open["event"], "open");
    assert_eq!(open["topic"], topic.as_str());
    assert_eq!(open["id"].as_str().unwrap().len(), 12);
    assert!(open["time"].is_i64());
    let keepalive: Value = serde_json::from_str(&stream.next().await.unwrap()).unwrap();
    assert_eq!(keepalive["event"], "keepalive", "a keepalive when nothing happens");

    let id = h.trigger("db", "Database down").await;
    let page = stream.message().await;
    assert_eq!(page["event"], "message");
    assert_eq!(page["topic"], topic.as_str());
    assert_eq!(page["priority"], 5);
    assert_eq!(page["title"], "[critical] payments");
    assert_eq!(page["message"], "Database down");
    assert_eq!(page["tags"], json!(["rotating_light", "critical"]));
    assert_eq!(page["sequence_id"], format!("rv-incident-{id}"));
    assert_eq!(page["click"], format!("http://reveille.test/api/v1/incidents/{id}"));
    assert_eq!(page["expires"].as_i64().unwrap() - page["time"].as_i64().unwrap(), 12 * 3600);
    let action = &page["actions"][0];
    assert_eq!(
        (action["action"].as_str(), action["label"].as_str(), action["method"].as_str()),
        (Some("http"), Some("Acknowledge"), Some("POST"))
    );
    assert_eq!(action["clear"], true);
    assert!(!action["url"].as_str().unwrap().contains(&h.alice), "no token inside a notification");
    let last_seen = page["id"].as_str().unwrap().to_owned();

    // 3. The connection drops; meanwhile a low-urgency page and an ack elsewhere.
    drop(stream);
    let low = h
        .post(
            "/api/v1/events",
            Some(&format!("Bearer {}", h.key)),
            r#"{"summary": "Disk at 80%", "severity": "warning"}"#,
        )
        .await;
    assert_eq!(low.0, 202);
    h.post(&format!("/api/v1/incidents/{id}/ack"), Some(&format!("Bearer {}", h.bob)), "").await;

    // 4. Reconnect with the id of the last message seen: exactly what was missed.
    let mut stream =
        Lines::new(get(&h, &format!("/{topic}/json?since={last_seen}"), Some(&basic)).await);
    assert_eq!(stream.message().await["event"], "open");
    let missed_low = stream.message().await;
    assert_eq!(
        (missed_low["event"].as_str(), missed_low["priority"].as_i64()),
        (Some("message"), Some(3))
    );
    let withdrawn = stream.message().await;
    assert_eq!(withdrawn["event"], "message_delete");
    assert_eq!(withdrawn["sequence_id"], format!("rv-incident-{id}"));
    assert_ne!(withdrawn["id"], page["id"]);

    // 5. A later poll of the backlog does not ring for the page that was acknowledged.
    let backlog = get(&h, &format!("/{topic}/json?poll=1&since=all"), Some(&basic))
        .await
        .text()
        .await
        .unwrap();
    let events: Vec<Value> = backlog.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let kinds: Vec<(&str, Option<&str>)> =
        events.iter().map(|e| (e["event"].as_str().unwrap(), e["message"].as_str())).collect();
    assert_eq!(kinds, [("message", Some("Disk at 80%")), ("message_delete", None)]);
}

#[tokio::test]
async fn the_acknowledge_button_works_once_for_its_incident_until_it_expires() {
    let (h, topic, basic) = phone().await;
    let first = h.trigger("a", "first").await;
    let second = h.trigger("b", "second").await;
    let backlog =
        get(&h, &format!("/{topic}/json?poll=1"), Some(&basic)).await.text().await.unwrap();
    let pages: Vec<Value> = backlog.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let url = |i: usize| {
        pages[i]["actions"][0]["url"].as_str().unwrap().replace("http://reveille.test", &h.url)
    };

    // The app sends the action's method with no Authorization header.
    let forged = url(0).replace(&format!("/ack/{first}?"), &format!("/ack/{second}?"));
    let refused = h.http.post(&forged).send().await.unwrap();
    assert_eq!(refused.status(), 403);
    assert!(refused.text().await.unwrap().contains(&format!("not valid for incident {second}")));

    let acked = h.http.post(url(0)).body("").send().await.unwrap();
    assert_eq!(acked.status(), 200);
    assert_eq!(acked.json::<Value>().await.unwrap()["acknowledged_by"], "alice");
    let again = h.http.post(url(0)).send().await.unwrap();
    assert_eq!(again.status(), 409);
    assert!(again.text().await.unwrap().contains("already used"));

    h.advance(24 * 3600);
    let expired = h.http.post(url(1)).send().await.unwrap();
    assert_eq!(expired.status(), 403);
    assert!(expired.text().await.unwrap().contains("expired"));
    assert_eq!(h.store().incident(second).await.unwrap().incident.state.as_str(), "triggered");
}

#[tokio::test]
async fn sse_raw_and_websocket_carry_the_same_messages() {
    let (h, topic, basic) = phone().await;
    let sse = get(&h, &format!("/{topic}/sse"), Some(&basic)).await;
    assert_eq!(sse.headers()["content-type"], "text/event-stream; charset=utf-8");
    let mut sse = Lines::new(sse);
    assert_eq!(sse.next().await.unwrap(), "event: open");
    let mut raw = Lines::new(get(&h, &format!("/{topic}/raw"), Some(&basic)).await);
    assert_eq!(raw.next().await.unwrap(), "", "the open event is a blank line in raw");

    let ws_url = format!("{}/{topic}/ws", h.url.replace("http://", "ws://"));
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(ws_url)
            .unwrap();
    request.headers_mut().insert("authorization", basic.parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let text = |m: tokio_tungstenite::tungstenite::Message| -> Value {
        serde_json::from_str(m.to_text().unwrap()).unwrap()
    };
    assert_eq!(text(ws.next().await.unwrap().unwrap())["event"], "open");

    h.trigger("db", "Line one\nline two").await;
    loop {
        let line = sse.next().await.unwrap();
        if let Some(data) = line.strip_prefix("data: ") {
            let event = serde_json::from_str::<Value>(data).unwrap();
            if event["event"] == "message" {
                assert_eq!(event["message"], "Line one\nline two");
                break;
            }
        } else if let Some(name) = line.strip_prefix("event: ") {
            assert!(["open", "keepalive"].contains(&name), "only control events are named: {name}");
        }
    }
    loop {
        let line = raw.next().await.unwrap();
        if !line.is_empty() {
            assert_eq!(line, "Line one line two");
            break;
        }
    }
    let mut saw_ping = false;
    loop {
        match ws.next().await.unwrap().unwrap() {
            tokio_tungstenite::tungstenite::Message::Ping(_) => saw_ping = true,
            m => {
                let m = text(m);
                assert_eq!(
                    (m["event"].as_str(), m["message"].as_str()),
                    (Some("message"), Some("Line one\nline two"))
                );
                break;
            }
        }
    }
    // The next keepalive on a WebSocket is a ping frame, as ntfy sends it.
    while !saw_ping {
        saw_ping = matches!(
            ws.next().await.unwrap().unwrap(),
            tokio_tungstenite::tungstenite::Message::Ping(_)
        );
    }
}

#[tokio::test]
async fn extreme_query_values_are_refused_not_a_panic() {
    let (h, topic, basic) = phone().await;
    for since in ["999999999h", "99999999999999999", "-999999999h"] {
        let answer = get(&h, &format!("/{topic}/json?poll=1&since={since}"), Some(&basic)).await;
        assert_eq!(answer.status(), 400, "since={since}");
    }
    for path in
        ["/api/v1/oncall?at=9999-12-30T00:00:00Z", "/api/v1/oncall?at=-009999-01-01T00:00:00Z"]
    {
        let (status, body) = h.get(path, &h.alice).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["field"], "at", "{body}");
    }
    let (status, _) = h.get("/api/v1/oncall", &h.alice).await;
    assert_eq!(status, 200, "the server is still up");
}
