//! Opsgenie, through its Alert API v2 with an API key (`Authorization: GenieKey …`): the
//! person's open, unacknowledged alerts (`GET /v2/alerts?query=…`; by default those the person
//! owns) ring when P1 or P2 and notify otherwise; an alert's description and details come from
//! `GET /v2/alerts/{id}` once, and a detail named `runbook` or `runbook_url` is its runbook.
//! Acknowledge and close are `POST /v2/alerts/{id}/acknowledge` and `/close`
//! (`identifierType=id`, the person as `user`, Reveille as `source`); Opsgenie answers 202 and
//! applies them a moment later.

use std::collections::HashMap;
use std::sync::Mutex;

use jiff::Timestamp;
use reqwest::header::AUTHORIZATION;
use reveille_protocol::{Link, Severity, Urgency};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Failure, Found, SourceConfig, failure, poller, unreachable};
use crate::outbox::Request;

pub struct Api {
    http: reqwest::Client,
    base: String,
    key: String,
    user: String,
    query: String,
    /// Description and details of each alert seen.
    extras: Mutex<HashMap<String, Value>>,
}

#[derive(Debug, Deserialize)]
struct Alerts {
    data: Vec<Alert>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Alert {
    id: String,
    #[serde(default)]
    tiny_id: Option<String>,
    #[serde(default)]
    message: String,
    #[serde(default)]
    priority: String,
    created_at: Timestamp,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
}

impl Api {
    pub fn new(http: reqwest::Client, config: &SourceConfig, key: String) -> Self {
        let user = config.email.trim().to_owned();
        let query = match config.query.trim() {
            "" => format!("status: open AND acknowledged: false AND owner: \"{user}\""),
            query => query.to_owned(),
        };
        Self {
            http,
            base: config.url.trim().trim_end_matches('/').to_owned(),
            key,
            user,
            query,
            extras: Mutex::default(),
        }
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .header(AUTHORIZATION, format!("GenieKey {}", self.key))
    }

    async fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, Failure> {
        let sent = self.request(reqwest::Method::GET, path).query(query).send().await;
        let response = sent.map_err(|e| unreachable("Opsgenie", &e))?;
        if !response.status().is_success() {
            return Err(failure("Opsgenie", response).await);
        }
        response.json().await.map_err(|e| Failure::Down(format!("Opsgenie's answer: {e}")))
    }

    /// The alert's description and details (`GET /v2/alerts/{id}`), asked once.
    async fn extra(&self, id: &str) -> Value {
        if let Some(extra) = self.extras.lock().unwrap_or_else(|p| p.into_inner()).get(id) {
            return extra.clone();
        }
        let Ok(alert) = self.get(&format!("/v2/alerts/{id}"), &[("identifierType", "id")]).await
        else {
            return Value::Null;
        };
        let extra = json!({"description": alert["data"]["description"], "details": alert["data"]["details"]});
        self.extras.lock().unwrap_or_else(|p| p.into_inner()).insert(id.to_owned(), extra.clone());
        extra
    }
}

impl Alert {
    fn found(self, extra: Value) -> Found {
        let (urgency, severity) = match self.priority.as_str() {
            "P1" => (Urgency::High, Severity::Critical),
            "P2" => (Urgency::High, Severity::Error),
            "P3" => (Urgency::Low, Severity::Warning),
            _ => (Urgency::Low, Severity::Info),
        };
        let runbook = ["runbook", "runbook_url", "runbookUrl"]
            .iter()
            .find_map(|k| extra["details"][k].as_str())
            .filter(|url| url.starts_with("https://") || url.starts_with("http://"))
            .map(str::to_owned);
        let links = runbook
            .iter()
            .map(|href| Link { href: href.clone(), text: Some("Runbook".into()) })
            .collect();
        let details = json!({
            "tiny_id": self.tiny_id, "priority": self.priority, "tags": self.tags,
            "description": extra["description"], "details": extra["details"],
        });
        Found {
            key: self.id,
            title: self.message,
            service: self.source.unwrap_or_else(|| "Opsgenie".into()),
            severity,
            urgency,
            details,
            links,
            runbook_url: runbook,
            created_at: self.created_at,
        }
    }
}

impl poller::Api for Api {
    async fn open(&self) -> Result<Vec<Found>, Failure> {
        let query = [("query", self.query.as_str()), ("limit", "100"), ("sort", "createdAt")];
        let answer = self.get("/v2/alerts", &query).await?;
        let alerts: Alerts = serde_json::from_value(answer)
            .map_err(|e| Failure::Down(format!("Opsgenie's alert list: {e}")))?;
        let mut found = Vec::with_capacity(alerts.data.len());
        for alert in alerts.data {
            let extra = self.extra(&alert.id).await;
            found.push(alert.found(extra));
        }
        Ok(found)
    }

    async fn act(&self, found: &Found, request: Request) -> Result<Option<String>, Failure> {
        let verb = match request {
            Request::Ack => "acknowledge",
            Request::Resolve => "close",
            Request::Snooze { .. } => return Ok(None),
        };
        let body = json!({"user": self.user, "source": "Reveille desktop",
            "note": format!("{verb}d from the Reveille desktop alarm")});
        let sent = self
            .request(reqwest::Method::POST, &format!("/v2/alerts/{}/{verb}", found.key))
            .query(&[("identifierType", "id")])
            .json(&body)
            .send()
            .await;
        let response = sent.map_err(|e| unreachable("Opsgenie", &e))?;
        if response.status().is_success() {
            Ok(None)
        } else {
            Err(failure("Opsgenie", response).await)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_decide_what_rings_and_a_runbook_detail_is_the_runbook() {
        let alert = |priority: &str| -> Alert {
            serde_json::from_value(json!({"id": "70413a06", "tinyId": "1791", "alias": "event_573",
                "message": "Our servers are in danger", "status": "open", "acknowledged": false,
                "priority": priority, "createdAt": "2017-05-03T14:14:26.364Z", "source": "Isengard",
                "tags": ["OverwriteQuietHours"]}))
            .unwrap()
        };
        let extra = json!({"description": "db-1 is down",
            "details": {"runbook": "https://wiki.example/runbooks/db", "host": "db-1"}});
        let p1 = alert("P1").found(extra.clone());
        assert_eq!((p1.urgency, p1.severity), (Urgency::High, Severity::Critical));
        assert_eq!(p1.runbook_url.as_deref(), Some("https://wiki.example/runbooks/db"));
        assert_eq!(p1.service, "Isengard");
        assert_eq!(alert("P2").found(Value::Null).urgency, Urgency::High);
        assert_eq!(alert("P3").found(Value::Null).urgency, Urgency::Low);
        let bad = json!({"details": {"runbook": "javascript:alert(1)"}});
        assert_eq!(alert("P1").found(bad).runbook_url, None);
    }
}
