//! Browser notifications: a page reaches a browser subscribed from the console through a local
//! push service (`tests/push_service.py`) that checks the server's VAPID signature and decrypts
//! the payload with the subscription's own keys; a subscription the service says is gone is
//! removed.

mod common;

use std::io::BufRead;
use std::process::{Child, Command, Stdio};

use common::{CONFIG, Harness};
use serde_json::{Value, json};

struct PushService {
    child: Child,
    url: String,
}

impl Drop for PushService {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn push_service() -> Option<PushService> {
    let bin = common::python_tools("python")?;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/push_service.py");
    let mut child =
        Command::new(bin.join("python")).arg(script).stdout(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let port = line.trim().strip_prefix("ready ").expect("the push service did not start");
    Some(PushService { child, url: format!("http://127.0.0.1:{port}") })
}

async fn get(url: &str) -> Value {
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

#[tokio::test]
async fn a_page_reaches_a_subscribed_browser_encrypted_and_signed() {
    let Some(service) = push_service() else { return };
    let config = format!("[push.webpush]\ninsecure_endpoints = true\n{CONFIG}");
    let h = Harness::with_config(&config).await;
    let auth = format!("Bearer {}", h.alice);
    let (status, info) = h.get("/api/v1/webpush", &h.alice).await;
    assert_eq!((status, info["subscribed"].as_u64()), (200, Some(0)));
    let server_key = info["public_key"].as_str().unwrap().to_owned();
    assert_eq!(server_key.len(), 87, "an uncompressed P-256 point, base64url: {server_key}");

    let live = get(&format!("{}/new", service.url)).await;
    let gone = get(&format!("{}/new?gone=1", service.url)).await;
    for subscription in [&live, &gone] {
        let (status, _) =
            h.post("/api/v1/webpush/subscriptions", Some(&auth), &subscription.to_string()).await;
        assert_eq!(status, 201);
    }
    let mut bad = live.clone();
    bad["keys"]["p256dh"] = json!("AAAA");
    let (status, error) =
        h.post("/api/v1/webpush/subscriptions", Some(&auth), &bad.to_string()).await;
    assert_eq!((status, error["field"].as_str()), (400, Some("keys.p256dh")));
    assert_eq!(h.get("/api/v1/webpush", &h.alice).await.1["subscribed"], 2);

    let id = h.trigger("k1", "Checkout is down").await;
    h.timeline_line(id, "push_delivered", "alice's browser").await;
    h.timeline_line(id, "push_failed", "removed").await;

    let received = get(&format!("{}/received", service.url)).await;
    let pushes: Vec<&Value> = received.as_array().unwrap().iter().collect();
    assert_eq!(pushes.len(), 1, "{received}");
    let push = pushes[0];
    assert_eq!(push["problem"], Value::Null, "the push service refused it: {push}");
    assert_eq!(push["vapid_key"], server_key.as_str(), "signed by the key the browser was given");
    assert_eq!(push["claims"]["aud"], service.url.as_str());
    assert_eq!(push["urgency"], "high");
    let payload = &push["payload"];
    assert_eq!(payload["incident_id"], id);
    assert_eq!(payload["body"], "Checkout is down");
    assert_eq!(payload["url"], format!("http://reveille.test/#/incidents/{id}"));
    assert_eq!(payload["title"], "[critical] payments");

    // The subscription the service called gone is forgotten; the live one stays.
    assert_eq!(h.get("/api/v1/webpush", &h.alice).await.1["subscribed"], 1);
    let endpoint = json!({ "endpoint": live["endpoint"] }).to_string();
    let response = h
        .http
        .delete(format!("{}/api/v1/webpush/subscriptions", h.url))
        .header("authorization", &auth)
        .body(endpoint)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(h.get("/api/v1/webpush", &h.alice).await.1["subscribed"], 0);
}

#[tokio::test]
async fn only_https_push_endpoints_are_taken() {
    let h = Harness::start().await;
    let subscription = json!({
        "endpoint": "http://169.254.169.254/latest/meta-data",
        "keys": {"p256dh": "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4", "auth": "BTBZMqHH6r4Tts7J_aSIgg"}
    });
    let auth = format!("Bearer {}", h.alice);
    let (status, error) =
        h.post("/api/v1/webpush/subscriptions", Some(&auth), &subscription.to_string()).await;
    assert_eq!((status, error["field"].as_str()), (400, Some("endpoint")));
}
