//! PagerDuty, through its REST API v2 with a user API token (`Authorization: Token token=…`,
//! `Accept: application/vnd.pagerduty+json;version=2`). The person's triggered incidents
//! (`GET /incidents?user_ids[]=…&statuses[]=triggered`, paged with `offset`/`more`) ring when of
//! high urgency and notify when low; the runbook comes from the first alert's links
//! (`GET /incidents/{id}/alerts`, once per incident). Acknowledge and resolve are
//! `PUT /incidents/{id}` with the `From` header (the person's PagerDuty email). A 429 waits for
//! `ratelimit-reset` or `Retry-After`; a look every 30 s is far inside PagerDuty's 960 requests a
//! minute per user token.

use std::collections::HashMap;
use std::sync::Mutex;

use jiff::Timestamp;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use reveille_protocol::{Link, Severity, Urgency};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Failure, Found, SourceConfig, failure, poller, unreachable};
use crate::outbox::Request;

const V2: &str = "application/vnd.pagerduty+json;version=2";
/// Pages of 100 incidents at most per look.
const PAGES: usize = 10;

pub struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
    from: String,
    user: tokio::sync::OnceCell<String>,
    /// Links, details and runbook of each incident seen, from its first alert.
    extras: Mutex<HashMap<String, Extra>>,
}

#[derive(Debug, Clone, Default)]
struct Extra {
    details: Value,
    links: Vec<Link>,
    runbook: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Incidents {
    incidents: Vec<Incident>,
    #[serde(default)]
    more: bool,
}

#[derive(Debug, Deserialize)]
struct Incident {
    id: String,
    #[serde(default)]
    incident_number: Option<u64>,
    #[serde(default)]
    title: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    urgency: String,
    created_at: Timestamp,
    #[serde(default)]
    html_url: Option<String>,
    #[serde(default)]
    service: Option<Reference>,
}

#[derive(Debug, Deserialize)]
struct Reference {
    #[serde(default)]
    summary: String,
}

impl Api {
    pub fn new(http: reqwest::Client, config: &SourceConfig, token: String) -> Self {
        Self {
            http,
            base: config.url.trim().trim_end_matches('/').to_owned(),
            token,
            from: config.email.trim().to_owned(),
            user: tokio::sync::OnceCell::new(),
            extras: Mutex::default(),
        }
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .header(AUTHORIZATION, format!("Token token={}", self.token))
            .header(ACCEPT, V2)
            .header(CONTENT_TYPE, "application/json")
    }

    async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Value, Failure> {
        let sent = self.request(reqwest::Method::GET, path).query(query).send().await;
        let response = sent.map_err(|e| unreachable("PagerDuty", &e))?;
        if !response.status().is_success() {
            return Err(failure("PagerDuty", response).await);
        }
        response.json().await.map_err(|e| Failure::Down(format!("PagerDuty's answer: {e}")))
    }

    /// The token's own user (`GET /users/me`), asked once.
    async fn user_id(&self) -> Result<&String, Failure> {
        self.user
            .get_or_try_init(|| async {
                let me = self.get("/users/me", &[]).await?;
                me["user"]["id"].as_str().map(str::to_owned).ok_or_else(|| {
                    Failure::Refused("PagerDuty: the token is not a user's API token".into())
                })
            })
            .await
    }

    /// Links, details and runbook from the incident's first alert; nothing when it cannot be had.
    async fn extra(&self, id: &str) -> Extra {
        if let Some(extra) = self.extras.lock().unwrap_or_else(|p| p.into_inner()).get(id) {
            return extra.clone();
        }
        let Ok(alerts) = self.get(&format!("/incidents/{id}/alerts"), &[]).await else {
            return Extra::default();
        };
        let extra = extra_of(&alerts);
        self.extras.lock().unwrap_or_else(|p| p.into_inner()).insert(id.to_owned(), extra.clone());
        extra
    }
}

/// The first alert's details, its `link` contexts, and the one that is a runbook.
fn extra_of(alerts: &Value) -> Extra {
    let body = &alerts["alerts"][0]["body"];
    let links: Vec<Link> = body["contexts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["type"] == "link")
        .filter_map(|c| {
            let href = c["href"].as_str()?.to_owned();
            Some(Link { href, text: c["text"].as_str().map(str::to_owned) })
        })
        .collect();
    let runbook = links
        .iter()
        .find(|l| {
            let text = format!("{} {}", l.href, l.text.as_deref().unwrap_or("")).to_lowercase();
            text.contains("runbook") || text.contains("playbook")
        })
        .map(|l| l.href.clone());
    Extra { details: body["details"].clone(), links, runbook }
}

impl Incident {
    fn found(self, extra: Extra) -> Found {
        let high = self.urgency != "low";
        let mut links = extra.links;
        if let Some(url) = &self.html_url {
            links.insert(0, Link { href: url.clone(), text: Some("Open in PagerDuty".into()) });
        }
        let details = json!({
            "incident_number": self.incident_number,
            "description": self.description,
            "details": extra.details,
        });
        Found {
            key: self.id,
            title: self.title,
            service: self.service.map(|s| s.summary).unwrap_or_else(|| "PagerDuty".into()),
            severity: if high { Severity::Critical } else { Severity::Warning },
            urgency: if high { Urgency::High } else { Urgency::Low },
            details,
            links,
            runbook_url: extra.runbook,
            created_at: self.created_at,
        }
    }
}

impl poller::Api for Api {
    async fn open(&self) -> Result<Vec<Found>, Failure> {
        let user = self.user_id().await?.clone();
        let mut found = Vec::new();
        for page in 0..PAGES {
            let query = [
                ("user_ids[]", user.clone()),
                ("statuses[]", "triggered".to_owned()),
                ("limit", "100".to_owned()),
                ("offset", (page * 100).to_string()),
            ];
            let answer = self.get("/incidents", &query).await?;
            let list: Incidents = serde_json::from_value(answer)
                .map_err(|e| Failure::Down(format!("PagerDuty's incident list: {e}")))?;
            for incident in list.incidents {
                let extra = self.extra(&incident.id).await;
                found.push(incident.found(extra));
            }
            if !list.more {
                break;
            }
        }
        Ok(found)
    }

    async fn act(&self, found: &Found, request: Request) -> Result<Option<String>, Failure> {
        let status = match request {
            Request::Ack => "acknowledged",
            Request::Resolve => "resolved",
            // Snoozes are kept here: PagerDuty snoozes only what is acknowledged.
            Request::Snooze { .. } => return Ok(None),
        };
        let body = json!({"incident": {"type": "incident_reference", "status": status}});
        let sent = self
            .request(reqwest::Method::PUT, &format!("/incidents/{}", found.key))
            .header("From", &self.from)
            .json(&body)
            .send()
            .await;
        let response = sent.map_err(|e| unreachable("PagerDuty", &e))?;
        if response.status().is_success() {
            Ok(None)
        } else {
            Err(failure("PagerDuty", response).await)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_incident_with_its_first_alerts_links_and_runbook() {
        let incident: Incident = serde_json::from_value(json!({
            "id": "PT4KHLK", "type": "incident", "incident_number": 1234,
            "title": "The server is on fire.", "urgency": "high", "status": "triggered",
            "created_at": "2015-10-06T21:30:42Z",
            "html_url": "https://subdomain.pagerduty.com/incidents/PT4KHLK",
            "service": {"id": "PIJ90N7", "type": "service_reference", "summary": "My Mail Service"}
        }))
        .unwrap();
        let alerts = json!({"alerts": [{"body": {
            "details": {"disk": "/var"},
            "contexts": [
                {"type": "link", "href": "https://wiki.example/runbooks/disk", "text": "Runbook"},
                {"type": "image", "src": "https://graphs.example/disk.png"}
            ]
        }}]});
        let found = incident.found(extra_of(&alerts));
        assert_eq!(found.key, "PT4KHLK");
        assert_eq!((found.urgency, found.severity), (Urgency::High, Severity::Critical));
        assert_eq!(found.service, "My Mail Service");
        assert_eq!(found.runbook_url.as_deref(), Some("https://wiki.example/runbooks/disk"));
        assert_eq!(found.links[0].text.as_deref(), Some("Open in PagerDuty"));
        assert_eq!(found.details["details"]["disk"], "/var");
        let low: Incident = serde_json::from_value(json!({"id": "Q1", "urgency": "low",
            "created_at": "2015-10-06T21:30:42Z"}))
        .unwrap();
        assert_eq!(low.found(Extra::default()).urgency, Urgency::Low);
    }
}
