//! The configuration read again without a restart (`POST /-/reload` here; `SIGHUP` in the
//! end-to-end suite): a good file takes effect at once — a service added takes alerts, a person
//! removed is signed out — and a broken one is refused, naming its mistakes, while the server
//! goes on with the last good one and says so in `/healthz` and its metrics.

mod common;

use common::{CONFIG, Harness};
use serde_json::Value;

#[tokio::test]
async fn a_good_file_takes_effect_at_once_and_a_broken_one_is_refused() {
    let h = Harness::start().await;
    let admin = h.mint_token("alice", &["read", "admin"]).await;
    let reload =
        async |token: &str| h.post("/-/reload", Some(&format!("Bearer {token}")), "").await;
    assert_eq!(reload(&h.alice).await.0, 403, "reading and responding is not running the server");

    // A service added, bob removed.
    let added = CONFIG
        .replace("[[users]]\nname = \"bob\"\n", "")
        .replace("page = [\"alice\", \"bob\"]", "page = [\"alice\"]")
        + "\n[[services]]\nname = \"db\"\npage = [\"carol\"]\n";
    std::fs::write(h.config_path(), &added).unwrap();
    let (status, answer) = reload(&admin).await;
    assert_eq!((status, answer["ok"].as_bool()), (200, Some(true)), "{answer}");
    let db = h.mint_key("db").await;
    let event = serde_json::json!({"summary": "Replication lag", "dedup_key": "lag"}).to_string();
    let (status, landed) = h.post("/api/v1/events", Some(&format!("Bearer {db}")), &event).await;
    assert_eq!(status, 202, "the new service takes alerts: {landed}");
    let (status, _) = h.get("/api/v1/incidents", &h.bob).await;
    assert_eq!(status, 401, "bob is no user any more");
    let (status, _) = h.get("/api/v1/incidents", &h.alice).await;
    assert_eq!(status, 200);

    // A broken file: refused, every mistake named, the last good configuration kept.
    std::fs::write(h.config_path(), added.replace("[\"carol\"]", "[\"nobody\"]")).unwrap();
    let (status, error) = reload(&admin).await;
    assert_eq!(status, 400, "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("page[0]") && message.contains("nobody"), "names it: {error}");
    let (status, _) = h.post("/api/v1/events", Some(&format!("Bearer {db}")), &event).await;
    assert_eq!(status, 202, "still the last good configuration");
    let (_, health) = h.get("/healthz", "").await;
    assert_eq!(health["last_reload"]["ok"], false, "{health}");
    let metrics = h.http.get(format!("{}/metrics", h.url)).send().await.unwrap();
    let text = metrics.text().await.unwrap();
    assert!(text.contains("reveille_config_reload_failures_total 1"), "{text}");
    let reason: &Value = &health["last_reload"]["problems"];
    assert!(reason.as_str().is_some_and(|r| r.contains("page")), "{health}");
}
