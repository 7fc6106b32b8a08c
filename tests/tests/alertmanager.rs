//! The real Prometheus Alertmanager (Debian's prometheus-alertmanager) receives alerts on its own
//! API and posts them to Reveille: firing opens an incident with its runbook, resolved resolves it.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reveille_tests::{Feed, Site};
use serde_json::json;

const ALERTMANAGER: &str = "/usr/bin/prometheus-alertmanager";

struct Alertmanager {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn start_alertmanager(webhook: &str, key: &str) -> Alertmanager {
    let dir = tempfile::tempdir().unwrap();
    // The key travels as a Bearer token through Alertmanager's http_config.
    let config = format!(
        "route:\n  receiver: reveille\n  group_by: ['alertname']\n  group_wait: 0s\n  group_interval: 1s\n  repeat_interval: 1h\n\
         receivers:\n  - name: reveille\n    webhook_configs:\n      - url: '{webhook}'\n        send_resolved: true\n\
         \x20       http_config:\n          authorization:\n            type: Bearer\n            credentials: '{key}'\n"
    );
    std::fs::write(dir.path().join("alertmanager.yml"), config).unwrap();
    let port = free_port();
    let child = Command::new(ALERTMANAGER)
        .arg(format!("--config.file={}", dir.path().join("alertmanager.yml").display()))
        .arg(format!("--storage.path={}", dir.path().join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .arg("--log.level=warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("start alertmanager");
    let am = Alertmanager { child, url: format!("http://127.0.0.1:{port}"), _dir: dir };
    let http = reqwest::Client::new();
    for _ in 0..300 {
        let ready = http.get(format!("{}/-/ready", am.url)).send().await;
        if ready.is_ok_and(|r| r.status().is_success()) {
            return am;
        }
        // Readiness poll of another process: there is nothing to wait on but its answer.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("alertmanager did not become ready");
}

#[tokio::test]
async fn alertmanager_pages_with_the_runbook_and_resolves() {
    if !std::path::Path::new(ALERTMANAGER).exists() {
        assert!(std::env::var_os("CI").is_none(), "CI must provide {ALERTMANAGER}");
        eprintln!(
            "SKIPPED: {ALERTMANAGER} is not installed (apt-get install prometheus-alertmanager)"
        );
        return;
    }
    let site = Site::new();
    let server = site.start();
    let am = start_alertmanager(&format!("{}/api/v1/alertmanager", server.url), &site.key).await;
    let mut feed = Feed::open(&server.url, &site.token).await;
    let http = reqwest::Client::new();
    let alert = |ends: Option<String>| {
        let mut a = json!([{
            "labels": {"alertname": "DiskFull", "severity": "critical", "instance": "db-1:9100"},
            "annotations": {"summary": "Disk full on db-1", "runbook_url": "https://runbooks.example/disk-full"},
            "generatorURL": "http://prometheus.example/graph"
        }]);
        if let Some(ends) = ends {
            a[0]["endsAt"] = json!(ends);
        }
        a
    };
    let posted =
        http.post(format!("{}/api/v2/alerts", am.url)).json(&alert(None)).send().await.unwrap();
    assert!(posted.status().is_success(), "{}", posted.status());

    let (kind, page) = feed.entry(Duration::from_secs(30)).await;
    assert_eq!(kind, "page");
    let incident = &page["incident"];
    assert_eq!(incident["summary"], "Disk full on db-1");
    assert_eq!(incident["severity"], "critical");
    assert_eq!(incident["state"], "triggered");
    assert_eq!(incident["runbook_url"], "https://runbooks.example/disk-full");
    assert_eq!(incident["source"], "db-1:9100");

    let now = jiff::Timestamp::now().to_string();
    let posted = http
        .post(format!("{}/api/v2/alerts", am.url))
        .json(&alert(Some(now)))
        .send()
        .await
        .unwrap();
    assert!(posted.status().is_success());
    let (kind, change) = feed.entry(Duration::from_secs(30)).await;
    assert_eq!(kind, "incident");
    assert_eq!(change["incident"]["id"], incident["id"]);
    assert_eq!(change["incident"]["state"], "resolved");
    assert_eq!(change["incident"]["resolved_by"], "alertmanager");
}
