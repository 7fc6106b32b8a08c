//! Prometheus Alertmanager, through its API v2: the firing alerts that match the person's
//! matchers and are neither silenced nor inhibited (`GET /api/v2/alerts?filter=…`) ring, except
//! those labelled `severity` warning or info, which notify. "Acknowledge" (and "resolve": an
//! alert resolves when its condition does) creates a silence matching the alert's labels
//! exactly (`POST /api/v2/silences`), for the length chosen in the settings, made by the
//! person, with a comment saying so; the silence's id is shown in the source's status. The
//! runbook is the `runbook_url` annotation. Credentials, if the Alertmanager sits behind a proxy
//! that asks: a Bearer token, or a user name and password.

use jiff::{SignedDuration, Timestamp};
use reveille_protocol::{Link, Severity, Urgency};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

use super::{Failure, Found, SourceConfig, failure, poller, unreachable};
use crate::outbox::Request;

pub struct Api {
    http: reqwest::Client,
    base: String,
    user: String,
    secret: String,
    matchers: Vec<String>,
    author: String,
    silence: SignedDuration,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Alert {
    fingerprint: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    starts_at: Timestamp,
    #[serde(default, rename = "generatorURL")]
    generator_url: Option<String>,
}

impl Api {
    pub fn new(http: reqwest::Client, config: &SourceConfig, secret: String) -> Self {
        let author = match config.email.trim() {
            "" => "reveille-desktop".to_owned(),
            who => who.to_owned(),
        };
        Self {
            http,
            base: config.url.trim().trim_end_matches('/').to_owned(),
            user: config.user.trim().to_owned(),
            secret,
            matchers: config
                .matchers
                .iter()
                .map(|m| m.trim().to_owned())
                .filter(|m| !m.is_empty())
                .collect(),
            author,
            silence: SignedDuration::from_mins(config.silence_minutes.clamp(1, 7 * 24 * 60) as i64),
        }
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.base));
        match (self.user.is_empty(), self.secret.is_empty()) {
            (false, _) => request.basic_auth(&self.user, Some(&self.secret)),
            (true, false) => request.bearer_auth(&self.secret),
            (true, true) => request,
        }
    }
}

impl Alert {
    fn found(self) -> Found {
        let (urgency, severity) = match self.labels.get("severity").map(String::as_str) {
            Some("warning") => (Urgency::Low, Severity::Warning),
            Some("info" | "none") => (Urgency::Low, Severity::Info),
            Some("error") => (Urgency::High, Severity::Error),
            _ => (Urgency::High, Severity::Critical),
        };
        let name = self.labels.get("alertname").cloned().unwrap_or_else(|| "alert".into());
        let title = ["summary", "description", "message"]
            .iter()
            .find_map(|k| self.annotations.get(*k).cloned())
            .unwrap_or_else(|| name.clone());
        let web = |url: &String| url.starts_with("https://") || url.starts_with("http://");
        let runbook = self.annotations.get("runbook_url").filter(|u| web(u)).cloned();
        let links = self
            .generator_url
            .iter()
            .filter(|u| web(u))
            .map(|href| Link { href: href.clone(), text: Some("Source".into()) })
            .collect();
        Found {
            key: self.fingerprint,
            title,
            service: name,
            severity,
            urgency,
            details: json!({"labels": self.labels, "annotations": self.annotations}),
            links,
            runbook_url: runbook,
            created_at: self.starts_at,
        }
    }
}

/// A silence of exactly this alert: every label, equal.
fn silence(found: &Found, author: &str, now: Timestamp, length: SignedDuration) -> Value {
    let labels = found.details["labels"].as_object().cloned().unwrap_or_default();
    let matchers: Vec<Value> = labels
        .iter()
        .map(|(name, value)| json!({"name": name, "value": value, "isRegex": false, "isEqual": true}))
        .collect();
    json!({
        "matchers": matchers,
        "startsAt": now.to_string(),
        "endsAt": (now + length).to_string(),
        "createdBy": author,
        "comment": format!("Acknowledged from the Reveille desktop alarm: {}", found.title),
    })
}

impl poller::Api for Api {
    async fn open(&self) -> Result<Vec<Found>, Failure> {
        let mut query: Vec<(&str, &str)> = vec![
            ("active", "true"),
            ("silenced", "false"),
            ("inhibited", "false"),
            ("unprocessed", "false"),
        ];
        query.extend(self.matchers.iter().map(|m| ("filter", m.as_str())));
        let sent = self.request(reqwest::Method::GET, "/api/v2/alerts").query(&query).send().await;
        let response = sent.map_err(|e| unreachable("Alertmanager", &e))?;
        if !response.status().is_success() {
            return Err(failure("Alertmanager", response).await);
        }
        let alerts: Vec<Alert> = response
            .json()
            .await
            .map_err(|e| Failure::Down(format!("Alertmanager's alert list: {e}")))?;
        Ok(alerts.into_iter().map(Alert::found).collect())
    }

    async fn act(&self, found: &Found, request: Request) -> Result<Option<String>, Failure> {
        if let Request::Snooze { .. } = request {
            return Ok(None);
        }
        let body = silence(found, &self.author, Timestamp::now(), self.silence);
        let sent = self.request(reqwest::Method::POST, "/api/v2/silences").json(&body).send().await;
        let response = sent.map_err(|e| unreachable("Alertmanager", &e))?;
        if !response.status().is_success() {
            return Err(failure("Alertmanager", response).await);
        }
        let answer: Value = response.json().await.unwrap_or_default();
        let id = answer["silenceID"].as_str().unwrap_or("?");
        let until = body["endsAt"].as_str().and_then(|t| t.parse::<Timestamp>().ok());
        let until =
            until.map_or_else(String::new, |t| t.strftime("%Y-%m-%d %H:%M UTC").to_string());
        Ok(Some(format!("silenced \"{}\" until {until} (silence {id})", found.title)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_alert_rings_by_severity_and_its_silence_matches_it_exactly() {
        let alert: Alert = serde_json::from_value(json!({
            "labels": {"alertname": "DiskFull", "severity": "critical", "instance": "db-1:9100"},
            "annotations": {"summary": "Disk full on db-1", "runbook_url": "https://runbooks.example/disk"},
            "startsAt": "2026-12-05T10:00:00Z", "endsAt": "2026-12-05T11:00:00Z",
            "fingerprint": "3f0b5c2a", "generatorURL": "http://prometheus.example/graph",
            "status": {"state": "active", "silencedBy": [], "inhibitedBy": []}, "receivers": [{"name": "x"}],
            "updatedAt": "2026-12-05T10:00:00Z"
        }))
        .unwrap();
        let found = alert.found();
        assert_eq!((found.urgency, found.title.as_str()), (Urgency::High, "Disk full on db-1"));
        assert_eq!(found.runbook_url.as_deref(), Some("https://runbooks.example/disk"));
        let now: Timestamp = "2026-12-05T10:05:00Z".parse().unwrap();
        let body = silence(&found, "alice@example.com", now, SignedDuration::from_mins(60));
        assert_eq!(body["endsAt"], "2026-12-05T11:05:00Z");
        assert_eq!(body["createdBy"], "alice@example.com");
        let matchers = body["matchers"].as_array().unwrap();
        assert_eq!(matchers.len(), 3);
        assert!(matchers.contains(
            &json!({"name": "instance", "value": "db-1:9100", "isRegex": false, "isEqual": true})
        ));
        let warning: Alert = serde_json::from_value(json!({"labels": {"severity": "warning"},
            "startsAt": "2026-12-05T10:00:00Z", "fingerprint": "1"}))
        .unwrap();
        assert_eq!(warning.found().urgency, Urgency::Low);
    }
}
