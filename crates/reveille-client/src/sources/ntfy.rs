//! Any ntfy server: the topic's JSON stream (`GET /{topic}/json`, resumed with `since=` the last
//! message id after a drop, so nothing sent meanwhile is missed). Messages of priority 4 and 5
//! ring, the others notify. A message with a `sequence_id` replaces the earlier one of that
//! sequence, and `message_delete` / `message_clear` for it withdraw it (Reveille's own ntfy
//! endpoint does so when a page is answered anywhere). ntfy keeps no state of its own, so
//! "acknowledge" and "resolve" only dismiss the message here. Credentials: an access token, or a
//! user name and password.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use jiff::Timestamp;
use reveille_protocol::{Link, Severity, Urgency};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::Notify;

use super::{Failure, Found, SourceConfig, poller};
use crate::outbox::Request;

/// Messages kept at most (the newest).
const KEPT: usize = 500;
/// Nothing for this long (ntfy sends a keepalive every 45 s by default) means the stream is dead.
const SILENCE: Duration = Duration::from_secs(120);

pub struct Api {
    state: Arc<Mutex<State>>,
    wake: Arc<Notify>,
    stream: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct State {
    /// Messages not dismissed, oldest first.
    open: Vec<Found>,
    /// Why the stream is down; None while it is up.
    down: Option<String>,
    last: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Message {
    id: String,
    time: i64,
    event: String,
    #[serde(default)]
    topic: String,
    #[serde(default)]
    sequence_id: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    priority: Option<u8>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    click: Option<String>,
    #[serde(default)]
    actions: Vec<serde_json::Value>,
}

impl Message {
    fn found(self) -> Found {
        let priority = self.priority.unwrap_or(3);
        let (urgency, severity) = match priority {
            5 => (Urgency::High, Severity::Critical),
            4 => (Urgency::High, Severity::Error),
            3 => (Urgency::Low, Severity::Warning),
            _ => (Urgency::Low, Severity::Info),
        };
        let web = |url: &str| url.starts_with("https://") || url.starts_with("http://");
        let mut links: Vec<Link> = self
            .click
            .iter()
            .filter(|u| web(u))
            .map(|href| Link { href: href.clone(), text: Some("Open".into()) })
            .collect();
        links.extend(self.actions.iter().filter(|a| a["action"] == "view").filter_map(|a| {
            let href = a["url"].as_str().filter(|u| web(u))?.to_owned();
            Some(Link { href, text: a["label"].as_str().map(str::to_owned) })
        }));
        let runbook = links
            .iter()
            .find(|l| l.text.as_deref().is_some_and(|t| t.to_lowercase().contains("runbook")))
            .map(|l| l.href.clone());
        let message = self.message.unwrap_or_default();
        // The alarm's one line: the title and the message's first line, as the ntfy app shows.
        let first = message.lines().next().unwrap_or_default();
        let title = match (self.title.filter(|t| !t.is_empty()), first) {
            (Some(title), "") => title,
            (Some(title), first) => format!("{title}: {first}"),
            (None, "") => "ntfy message".to_owned(),
            (None, first) => first.to_owned(),
        };
        Found {
            key: self.sequence_id.unwrap_or(self.id),
            title,
            service: self.topic,
            severity,
            urgency,
            details: json!({"message": message, "tags": self.tags, "priority": priority}),
            links,
            runbook_url: runbook,
            created_at: Timestamp::from_second(self.time).unwrap_or_else(|_| Timestamp::now()),
        }
    }
}

impl Api {
    /// Starts following the topic's stream.
    pub fn start(config: &SourceConfig, secret: String) -> std::io::Result<Self> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("reveille-desktop/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(std::io::Error::other)?;
        let url = format!(
            "{}/{}/json",
            config.url.trim().trim_end_matches('/'),
            config.topic.trim().trim_matches('/')
        );
        let state =
            Arc::new(Mutex::new(State { down: Some("connecting".into()), ..State::default() }));
        let wake = Arc::new(Notify::new());
        let follow = Follow { http, url, user: config.user.trim().to_owned(), secret };
        let stream = tokio::spawn(follow.run(state.clone(), wake.clone()));
        Ok(Self { state, wake, stream })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Api {
    fn drop(&mut self) {
        self.stream.abort();
    }
}

struct Follow {
    http: reqwest::Client,
    url: String,
    user: String,
    secret: String,
}

impl Follow {
    async fn run(self, state: Arc<Mutex<State>>, wake: Arc<Notify>) {
        let set = |down: Option<String>| {
            state.lock().unwrap_or_else(|p| p.into_inner()).down = down;
            wake.notify_one();
        };
        let mut attempt = 0u32;
        loop {
            let since = state.lock().unwrap_or_else(|p| p.into_inner()).last.clone();
            let mut opened = false;
            match self.stream(since, &state, &wake, &mut opened).await {
                Ok(()) => set(Some("the server closed the stream".into())),
                Err(why) => set(Some(why)),
            }
            // A stream that was up starts the backoff over: 1, 2, 4 … 30 s between attempts.
            attempt = if opened { 0 } else { attempt + 1 };
            let backoff = Duration::from_secs(1 << attempt.min(5)).min(Duration::from_secs(30));
            tokio::time::sleep(backoff).await;
        }
    }

    /// One connection, until it ends; `Err` says why it could not go on.
    async fn stream(
        &self,
        since: Option<String>,
        state: &Mutex<State>,
        wake: &Notify,
        opened: &mut bool,
    ) -> Result<(), String> {
        let mut request = self.http.get(&self.url);
        if let Some(since) = since {
            request = request.query(&[("since", since)]);
        }
        request = match (self.user.is_empty(), self.secret.is_empty()) {
            (false, _) => request.basic_auth(&self.user, Some(&self.secret)),
            (true, false) => request.bearer_auth(&self.secret),
            (true, true) => request,
        };
        // A server that accepts the connection and never answers counts as down.
        let response = tokio::time::timeout(Duration::from_secs(20), request.send())
            .await
            .map_err(|_| "ntfy did not answer within 20 s".to_owned())?
            .map_err(|e| format!("cannot reach ntfy: {e}"))?;
        if !response.status().is_success() {
            let status = response.status();
            let text: String =
                response.text().await.unwrap_or_default().chars().take(200).collect();
            return Err(format!("ntfy answered {status}: {text}"));
        }
        *opened = true;
        let mut body = response.bytes_stream();
        let mut line = Vec::new();
        loop {
            let chunk = match tokio::time::timeout(SILENCE, body.next()).await {
                Err(_) => return Err("ntfy sent nothing for two minutes".into()),
                Ok(None) => return Ok(()),
                Ok(Some(Err(e))) => return Err(format!("the ntfy stream broke: {e}")),
                Ok(Some(Ok(chunk))) => chunk,
            };
            for &byte in chunk.iter() {
                if byte != b'\n' {
                    line.push(byte);
                    continue;
                }
                let parsed = serde_json::from_slice::<Message>(&line);
                line.clear();
                let Ok(message) = parsed else { continue };
                let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
                state.down = None;
                let event = message.event.clone();
                if matches!(event.as_str(), "message" | "message_delete" | "message_clear") {
                    state.last = Some(message.id.clone());
                    let found = message.found();
                    state.open.retain(|f| f.key != found.key);
                    if event == "message" {
                        keep(&mut state.open, found);
                    }
                }
                drop(state);
                wake.notify_one();
            }
        }
    }
}

/// Adds a message to those kept; past [`KEPT`], the oldest that only notifies goes first, so a
/// flood of chatter never pushes out a page that rings.
fn keep(open: &mut Vec<Found>, found: Found) {
    open.push(found);
    if open.len() > KEPT {
        let at = open.iter().position(|f| f.urgency == Urgency::Low).unwrap_or(0);
        open.remove(at);
    }
}

impl poller::Api for Api {
    async fn open(&self) -> Result<Vec<Found>, Failure> {
        let state = self.state();
        match &state.down {
            Some(why) => Err(Failure::Down(why.clone())),
            None => Ok(state.open.clone()),
        }
    }

    async fn act(&self, found: &Found, request: Request) -> Result<Option<String>, Failure> {
        if !matches!(request, Request::Snooze { .. }) {
            self.state().open.retain(|f| f.key != found.key);
        }
        Ok(None)
    }

    fn wake(&self) -> Option<Arc<Notify>> {
        Some(self.wake.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_of_quiet_messages_never_pushes_out_a_ringing_page() {
        let message = |id: usize, priority: u8| -> Found {
            serde_json::from_value::<Message>(json!({"id": format!("m{id}"), "time": 1_700_000_000,
                "event": "message", "topic": "alerts", "message": "x", "priority": priority}))
            .unwrap()
            .found()
        };
        let mut open = Vec::new();
        keep(&mut open, message(0, 5));
        for id in 1..=KEPT * 2 {
            keep(&mut open, message(id, 2));
        }
        assert_eq!(open.len(), KEPT);
        assert_eq!(open[0].key, "m0", "the page is still there");
        assert_eq!(open.last().unwrap().key, format!("m{}", KEPT * 2));
    }

    #[test]
    fn priority_four_and_five_ring_and_view_actions_are_links() {
        let message = |priority: u8| -> Message {
            serde_json::from_value(json!({"id": "sPs71M8A2T", "time": 1_700_000_000, "event": "message",
                "topic": "alerts", "message": "Disk full on db-1\nat 99 %", "priority": priority,
                "tags": ["warning"], "click": "https://grafana.example/d/1",
                "actions": [{"action": "view", "label": "Runbook", "url": "https://wiki.example/disk"},
                            {"action": "http", "label": "Restart", "url": "https://api.example/restart"}]}))
            .unwrap()
        };
        let urgent = message(5).found();
        assert_eq!((urgent.urgency, urgent.title.as_str()), (Urgency::High, "Disk full on db-1"));
        assert_eq!(urgent.runbook_url.as_deref(), Some("https://wiki.example/disk"));
        assert_eq!(urgent.links.len(), 2, "the click URL and the view action, not the http action");
        assert_eq!(message(4).found().urgency, Urgency::High);
        assert_eq!(message(3).found().urgency, Urgency::Low);
    }
}
