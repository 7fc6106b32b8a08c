//! Outbound webhooks: every incident change is posted as JSON to each configured URL, signed with
//! HMAC-SHA256 over the timestamp and the body (`Reveille-Signature: t=…,v1=…`, in the style of
//! Stripe's), retried with backoff, and written on the incident's timeline attempt by attempt.
//!
//! Events come from the committed feed ([`crate::deliver::outbox`]), so a webhook never slows ingest: the
//! feed holds one entry per paged person, and one change becomes one event (the first entry of it
//! names it). A delivery still being tried keeps the outbox's saved cursor before its entry, so
//! after a restart (or on the node that takes over) it is sent again, with the same
//! `Reveille-Delivery` (`evt_` and the entry's id), which receivers use to drop a repeat. Types: `incident.triggered` (the first page, and a snoozed incident paging again),
//! `incident.escalated` (a later level or round pages), `incident.acknowledged`,
//! `incident.snoozed`, `incident.resolved`. Drills are not sent.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use reveille_core::Command;
use reveille_protocol::console::IncidentView;
use reveille_protocol::{FeedEvent, FeedKind, IncidentState};
use serde_json::json;
use sha2::Sha256;

use crate::AppState;
use crate::config::outbound::Webhook;

/// Attempts per event and receiver; the waits between them double from [`FIRST_WAIT`].
pub const ATTEMPTS: u32 = 6;
pub const FIRST_WAIT: Duration = Duration::from_secs(1);
/// A receiver gets this long to answer an attempt.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// Deliveries in flight at once, over every receiver.
const CONCURRENCY: usize = 32;

/// The event type of a feed entry, or `None` when it is no event of its own.
pub fn event_type(entry: &FeedEvent) -> Option<&'static str> {
    let incident = &entry.incident;
    if incident.drill {
        return None;
    }
    Some(match (entry.kind, incident.state) {
        (FeedKind::Page, _) => {
            let later = incident.escalation.as_ref().is_some_and(|e| e.level > 0 || e.round > 0);
            if later { "incident.escalated" } else { "incident.triggered" }
        }
        (FeedKind::Incident, IncidentState::Triggered) => "incident.triggered",
        (FeedKind::Incident, IncidentState::Acknowledged) => "incident.acknowledged",
        (FeedKind::Incident, IncidentState::Snoozed) => "incident.snoozed",
        (FeedKind::Incident, IncidentState::Resolved) => "incident.resolved",
    })
}

/// The JSON body of an event: the incident as the API shows it, without the escalation cursor.
pub fn body(kind: &str, entry: &FeedEvent) -> String {
    let incident = IncidentView::from(entry.incident.clone());
    let event = json!({
        "id": format!("evt_{}", entry.id),
        "type": kind,
        "created_at": entry.at,
        "incident": incident,
    });
    event.to_string()
}

/// `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`.
pub fn signature(secret: &[u8], at: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(format!("{at}.{body}").as_bytes());
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={at},v1={hex}")
}

/// One change seen already: the same change reaches the feed once per paged person.
fn change(entry: &FeedEvent) -> (i64, FeedKind, IncidentState, jiff::Timestamp) {
    let i = &entry.incident;
    (i.id, entry.kind, i.state, i.updated_at)
}

/// What the webhooks' outbox hands every entry to: posts each change to every webhook.
pub struct Sender {
    /// Made, and the secrets' files tightened, at the first entry.
    client: Option<reqwest::Client>,
    /// Changes sent lately, oldest first (a bounded memory of them).
    seen: VecDeque<(i64, FeedKind, IncidentState, jiff::Timestamp)>,
    seen_set: HashSet<(i64, FeedKind, IncidentState, jiff::Timestamp)>,
    pool: Arc<tokio::sync::Semaphore>,
    /// Deliveries being tried, by a number of their own: the feed id of each.
    in_flight: Arc<std::sync::Mutex<std::collections::BTreeMap<u64, i64>>>,
    next: u64,
    /// The deliveries' tasks: stopping the outbox stops them too.
    tasks: tokio::task::JoinSet<()>,
}

impl Default for Sender {
    fn default() -> Self {
        Self {
            client: None,
            seen: VecDeque::new(),
            seen_set: HashSet::new(),
            pool: Arc::new(tokio::sync::Semaphore::new(CONCURRENCY)),
            in_flight: Arc::default(),
            next: 0,
            tasks: tokio::task::JoinSet::new(),
        }
    }
}

impl Sender {
    fn client(&mut self, state: &AppState) -> reqwest::Client {
        if self.client.is_none() {
            state.settings().tighten_webhook_secrets();
        }
        let made = || reqwest::Client::builder().timeout(TIMEOUT).build();
        self.client.get_or_insert_with(|| made().unwrap_or_default()).clone()
    }
}

impl crate::deliver::outbox::Handler for Sender {
    async fn handle(
        &mut self,
        state: &AppState,
        _user: &str,
        entry: &FeedEvent,
        _again: Option<&str>,
    ) -> reveille_store::Result<()> {
        let Some(kind) = event_type(entry) else { return Ok(()) };
        let key = change(entry);
        if self.seen_set.contains(&key) {
            return Ok(());
        }
        let body = body(kind, entry);
        let service = &entry.incident.service;
        for hook in &state.settings().webhooks {
            if !hook.services.is_empty() && !hook.services.contains(service) {
                continue;
            }
            let Ok(slot) = self.pool.clone().acquire_owned().await else { return Ok(()) };
            let delivery = Delivery {
                client: self.client(state),
                hook: hook.clone(),
                kind,
                id: format!("evt_{}", entry.id),
                body: body.clone(),
                incident: entry.incident.id,
            };
            self.next += 1;
            let (number, in_flight) = (self.next, self.in_flight.clone());
            in_flight.lock().unwrap_or_else(|p| p.into_inner()).insert(number, entry.id);
            let state = state.clone();
            while self.tasks.try_join_next().is_some() {}
            self.tasks.spawn(async move {
                delivery.send(&state).await;
                in_flight.lock().unwrap_or_else(|p| p.into_inner()).remove(&number);
                drop(slot);
            });
        }
        // Seen only once every receiver has its delivery: an entry handed over again after this
        // one was cut short (the lease lost while waiting for a slot) still reaches them all.
        self.seen_set.insert(key);
        self.seen.push_back(key);
        if self.seen.len() > 4096
            && let Some(old) = self.seen.pop_front()
        {
            self.seen_set.remove(&old);
        }
        Ok(())
    }

    fn waiting(&self) -> Option<i64> {
        self.in_flight.lock().unwrap_or_else(|p| p.into_inner()).values().copied().min()
    }

    fn reset(&mut self) {
        self.tasks.abort_all();
        self.in_flight.lock().unwrap_or_else(|p| p.into_inner()).clear();
        self.seen.clear();
        self.seen_set.clear();
    }
}

/// One event on its way to one receiver.
struct Delivery {
    client: reqwest::Client,
    hook: Webhook,
    kind: &'static str,
    id: String,
    body: String,
    incident: i64,
}

impl Delivery {
    /// Posts until the receiver answers 2xx, retrying network errors, 429 and 5xx with backoff
    /// (a 4xx other than 429 is final); every attempt goes on the timeline.
    async fn send(&self, state: &AppState) {
        let mut wait = FIRST_WAIT;
        let what = format!("Webhook {} ({})", self.hook.name, self.kind);
        for attempt in 1..=ATTEMPTS {
            let (retry, outcome) = match self.attempt(state).await {
                Ok(status) if status.is_success() => {
                    return note(
                        state,
                        self.incident,
                        "webhook_delivered",
                        format!("{what} delivered: {status}"),
                    )
                    .await;
                }
                Ok(status) => {
                    (status.as_u16() == 429 || status.is_server_error(), status.to_string())
                }
                Err(e) => (true, e),
            };
            if !retry || attempt == ATTEMPTS {
                let message = format!("{what} failed after {attempt} attempt(s): {outcome}");
                return note(state, self.incident, "webhook_failed", message).await;
            }
            let message = format!("{what} attempt {attempt}: {outcome}; retrying in {wait:?}");
            note(state, self.incident, "webhook_retry", message).await;
            tokio::time::sleep(wait).await;
            wait *= 2;
        }
    }

    async fn attempt(&self, state: &AppState) -> Result<reqwest::StatusCode, String> {
        let secret = state.settings().webhook_secret(&self.hook)?;
        let at = state.clock.now().as_second();
        let sent = self
            .client
            .post(&self.hook.url)
            .header("Content-Type", "application/json")
            .header("User-Agent", concat!("Reveille-Webhook/", env!("CARGO_PKG_VERSION")))
            .header("Reveille-Event", self.kind)
            .header("Reveille-Delivery", &self.id)
            .header("Reveille-Signature", signature(&secret, at, &self.body))
            .body(self.body.clone())
            .send()
            .await;
        sent.map(|r| r.status()).map_err(|e| e.without_url().to_string())
    }
}

async fn note(state: &AppState, incident: i64, kind: &str, message: String) {
    let command = Command::Note { kind: kind.into(), message };
    if let Err(e) = state.store.command(incident, "webhook", command, state.clock.now()).await {
        tracing::error!(error = %e, "cannot write a webhook attempt on the timeline");
    }
}

#[cfg(test)]
mod tests {
    use reveille_protocol::Incident;

    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_over_timestamp_dot_body() {
        // Computed independently:
        // printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac 'whsec_0123456789abcdef'
        let sig = signature(b"whsec_0123456789abcdef", 1_700_000_000, r#"{"a":1}"#);
        assert_eq!(
            sig,
            "t=1700000000,v1=9f5e37cdc7ea587c7c02062d93283cad000d66a831b2a1676418696db47ed6c2"
        );
        assert_ne!(sig, signature(b"whsec_0123456789abcdeX", 1_700_000_000, r#"{"a":1}"#));
        assert_ne!(sig, signature(b"whsec_0123456789abcdef", 1_700_000_001, r#"{"a":1}"#));
    }

    #[test]
    fn event_types_follow_the_change() {
        let incident: Incident = serde_json::from_value(json!({
            "id": 1, "service": "s", "dedup_key": "k", "state": "triggered", "urgency": "high",
            "severity": "critical", "summary": "x", "source": "", "details": {}, "links": [],
            "runbook_url": null, "created_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-01-01T00:00:00Z", "acknowledged_by": null, "resolved_by": null,
            "snoozed_until": null, "paged": ["alice"]
        }))
        .unwrap();
        let entry = |kind, state, level: Option<usize>| FeedEvent {
            id: 1,
            kind,
            at: jiff::Timestamp::UNIX_EPOCH,
            incident: Incident {
                state,
                escalation: level.map(|level| reveille_protocol::Escalation {
                    level,
                    round: 0,
                    next_at: None,
                }),
                ..incident.clone()
            },
        };
        use FeedKind::{Incident as Change, Page};
        use IncidentState::*;
        assert_eq!(event_type(&entry(Page, Triggered, Some(0))), Some("incident.triggered"));
        assert_eq!(event_type(&entry(Page, Triggered, Some(1))), Some("incident.escalated"));
        assert_eq!(event_type(&entry(Change, Acknowledged, None)), Some("incident.acknowledged"));
        assert_eq!(event_type(&entry(Change, Resolved, None)), Some("incident.resolved"));
        assert_eq!(event_type(&entry(Change, Snoozed, None)), Some("incident.snoozed"));
        let mut drill = entry(Page, Triggered, None);
        drill.incident.drill = true;
        assert_eq!(event_type(&drill), None);
        let body: serde_json::Value =
            serde_json::from_str(&body("incident.escalated", &entry(Page, Triggered, Some(1))))
                .unwrap();
        assert_eq!(body["type"], "incident.escalated");
        assert_eq!(body["incident"]["summary"], "x");
        assert!(body["incident"].get("escalation").is_none(), "the cursor stays server-side");
    }
}
