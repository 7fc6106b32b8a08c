//! The real Prometheus Alertmanager (Debian's prometheus-alertmanager) receives alerts on its own
//! API and posts them to Reveille: firing opens an incident with its runbook, resolved resolves it.
//! And the desktop's Alertmanager source follows the same real Alertmanager: it rings for the
//! person's firing alerts, and acknowledging makes a silence there.

use std::time::Duration;

use reveille_tests::alertmanager::{Alertmanager, installed, start_with};
use reveille_tests::{Feed, Site};
use serde_json::json;

/// An Alertmanager that posts to Reveille's webhook with `key`.
async fn start_alertmanager(webhook: &str, key: &str) -> Alertmanager {
    // The key travels as a Bearer token through Alertmanager's http_config.
    let config = format!(
        "route:\n  receiver: reveille\n  group_by: ['alertname']\n  group_wait: 0s\n  group_interval: 1s\n  repeat_interval: 1h\n\
         receivers:\n  - name: reveille\n    webhook_configs:\n      - url: '{webhook}'\n        send_resolved: true\n\
         \x20       http_config:\n          authorization:\n            type: Bearer\n            credentials: '{key}'\n"
    );
    start_with(&config).await
}

#[tokio::test]
async fn alertmanager_pages_with_the_runbook_and_resolves() {
    if !installed() {
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

/// A device that notes what it is asked to do.
#[derive(Default)]
struct Noted {
    calls: std::sync::Mutex<Vec<String>>,
    changed: tokio::sync::Notify,
}

impl Noted {
    fn note(&self, call: String) {
        self.calls.lock().unwrap().push(call);
        self.changed.notify_waiters();
    }

    fn count(&self, prefix: &str) -> usize {
        self.calls.lock().unwrap().iter().filter(|c| c.starts_with(prefix)).count()
    }

    async fn wait_for(&self, prefix: &str) {
        self.wait_count(prefix, 1).await;
    }

    async fn wait_count(&self, prefix: &str, n: usize) {
        let wait = async {
            loop {
                let changed = self.changed.notified();
                if self.count(prefix) >= n {
                    return;
                }
                changed.await;
            }
        };
        tokio::time::timeout(Duration::from_secs(15), wait)
            .await
            .unwrap_or_else(|_| panic!("never {prefix:?}: {:?}", self.calls.lock().unwrap()));
    }
}

impl reveille_client::Device for Noted {
    fn ring(&self) {
        self.note("ring".into());
    }
    fn silence(&self) {
        self.note("silence".into());
    }
    fn notify(&self, incident: &reveille_protocol::Incident) {
        self.note(format!("notify {} {}", incident.id, incident.summary));
    }
    fn show(&self, incident: &reveille_protocol::Incident) {
        let runbook = incident.runbook_url.clone().unwrap_or_default();
        self.note(format!("show {} {} {runbook}", incident.id, incident.summary));
    }
    fn withdraw(&self, incident: i64) {
        self.note(format!("withdraw {incident}"));
    }
    fn feed_lost(&self, lost: bool) {
        self.note(format!("lost {lost}"));
    }
    fn sound(&self) -> reveille_client::Sound {
        reveille_client::Sound { volume: Some(1.0), silent: false, output: None }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_desktop_rings_for_my_firing_alerts_and_acknowledges_with_a_silence() {
    use reveille_client::outbox::Request;
    use reveille_client::sources::{self, Kind, SourceConfig, Timing};
    if !installed() {
        return;
    }
    let am = start_with("route:\n  receiver: nobody\nreceivers:\n  - name: nobody\n").await;
    let http = reqwest::Client::new();
    let alerts = json!([
        {"labels": {"alertname": "DiskFull", "team": "db", "severity": "critical", "instance": "db-1"},
         "annotations": {"summary": "Disk full on db-1", "runbook_url": "https://runbooks.example/disk-full"}},
        {"labels": {"alertname": "DiskFilling", "team": "db", "severity": "warning", "instance": "db-2"},
         "annotations": {"summary": "Disk at 80% on db-2"}},
        {"labels": {"alertname": "CpuHot", "team": "web", "severity": "critical"},
         "annotations": {"summary": "Someone else's alert"}}
    ]);
    let posted = http.post(format!("{}/api/v2/alerts", am.url)).json(&alerts).send().await.unwrap();
    assert!(posted.status().is_success(), "{}", posted.status());

    let dir = tempfile::tempdir().unwrap();
    let config = SourceConfig {
        name: "prometheus".into(),
        kind: Kind::Alertmanager,
        url: am.url.clone(),
        email: "alice@example.com".into(),
        matchers: vec!["team=\"db\"".into()],
        silence_minutes: 30,
        ..Default::default()
    };
    let device = std::sync::Arc::new(Noted::default());
    let timing =
        Timing { interval: Duration::from_millis(200), lost_after: Duration::from_secs(5) };
    let outbox = dir.path().join("outbox.json");
    let handle = sources::start(2, config, String::new(), device.clone(), outbox, timing).unwrap();

    device.wait_for("ring").await;
    device.wait_count("notify ", 2).await;
    let calls = device.calls.lock().unwrap().clone();
    let shown: Vec<&String> = calls.iter().filter(|c| c.starts_with("show ")).collect();
    assert_eq!(shown.len(), 1, "{calls:?}");
    assert!(
        shown[0].ends_with("Disk full on db-1 https://runbooks.example/disk-full"),
        "{calls:?}"
    );
    assert_eq!(
        device.count("notify "),
        2,
        "the warning notifies, the web team's alert does not: {calls:?}"
    );
    assert!(!calls.iter().any(|c| c.contains("Someone else")), "{calls:?}");
    let id: i64 = shown[0].split_whitespace().nth(1).unwrap().parse().unwrap();

    handle.act(id, Request::Ack).await;
    device.wait_for("silence").await;
    let mut health = handle.health.clone();
    let noted = health.wait_for(|h| h.note.is_some());
    let note = tokio::time::timeout(Duration::from_secs(10), noted)
        .await
        .unwrap()
        .unwrap()
        .note
        .clone()
        .unwrap();
    let silences: serde_json::Value =
        http.get(format!("{}/api/v2/silences", am.url)).send().await.unwrap().json().await.unwrap();
    let silence = &silences[0];
    assert_eq!(silences.as_array().unwrap().len(), 1, "{silences}");
    assert_eq!(silence["createdBy"], "alice@example.com");
    assert!(silence["comment"].as_str().unwrap().contains("Reveille"), "{silence}");
    assert!(note.contains(silence["id"].as_str().unwrap()), "the silence is shown: {note}");
    let matchers = silence["matchers"].as_array().unwrap();
    for (name, value) in [("alertname", "DiskFull"), ("team", "db"), ("instance", "db-1")] {
        assert!(
            matchers
                .iter()
                .any(|m| m["name"] == name && m["value"] == value && m["isEqual"] == true),
            "{silence}"
        );
    }
    let starts: jiff::Timestamp = silence["startsAt"].as_str().unwrap().parse().unwrap();
    let ends: jiff::Timestamp = silence["endsAt"].as_str().unwrap().parse().unwrap();
    let minutes = ends.duration_since(starts).as_secs() / 60;
    assert!((29..=30).contains(&minutes), "{silence}");

    // Silenced, the alert is no longer listed: it never rings again; the warning stays.
    let settled = health.wait_for(|h| h.open == 1);
    tokio::time::timeout(Duration::from_secs(10), settled).await.unwrap().unwrap();
    assert_eq!(device.count("ring"), 1);
}
