//! Pagers besides Reveille: PagerDuty, Opsgenie, Alertmanager, and any ntfy server. Each source
//! the person adds is followed by a task of its own, with the same ringing state ([`Pages`]),
//! storm limits and offline outbox as the Reveille feed: what the vendor says is open now is shown
//! to the [`Device`] as pages, and "acknowledge" means what it means there (see each module).
//!
//! Incidents of a source get ids of their own, below zero, that say which source they come from
//! ([`local_id`], [`slot_of`]): the alarm window and the tray route an action by the id alone.

pub mod alertmanager;
pub mod ntfy;
pub mod opsgenie;
pub mod pagerduty;
mod poller;

use std::time::Duration;

use jiff::Timestamp;
use reveille_protocol::{Incident, IncidentState, Link, Severity, Urgency};
use serde::{Deserialize, Serialize};

pub use poller::{CATCH_UP, Handle, Health, Timing, start};

/// What kind of pager a source is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    #[default]
    PagerDuty,
    Opsgenie,
    Alertmanager,
    Ntfy,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Self::PagerDuty => "PagerDuty",
            Self::Opsgenie => "Opsgenie",
            Self::Alertmanager => "Alertmanager",
            Self::Ntfy => "ntfy",
        }
    }
}

/// A source as the person set it up. Never a secret: the credential is in the OS keyring.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SourceConfig {
    /// Unique among the sources; shown in the tray.
    pub name: String,
    pub kind: Kind,
    /// The API's base: `https://api.pagerduty.com`, `https://api.opsgenie.com` (or
    /// `https://api.eu.opsgenie.com`), an Alertmanager (`http://alertmanager:9093`), an ntfy server.
    pub url: String,
    /// PagerDuty: the `From` of actions (a PagerDuty user's email). Opsgenie: the acting user.
    /// Alertmanager: `createdBy` of the silences.
    pub email: String,
    /// Alertmanager: the person's matchers (`team="db"`, `severity=~"critical|page"`).
    pub matchers: Vec<String>,
    /// Opsgenie: the search query of the person's open alerts (empty: not acknowledged, open,
    /// and the person among the responders).
    pub query: String,
    /// ntfy: the topic.
    pub topic: String,
    /// ntfy: a user name for Basic auth (empty: the credential is an access token).
    pub user: String,
    /// Seconds between two looks (polling sources); at least 10.
    pub poll_seconds: u64,
    /// Alertmanager: how long the silence that acknowledges an alert lasts.
    pub silence_minutes: u64,
}

impl Default for SourceConfig {
    fn default() -> Self {
        Self {
            name: String::new(),
            kind: Kind::PagerDuty,
            url: String::new(),
            email: String::new(),
            matchers: Vec::new(),
            query: String::new(),
            topic: String::new(),
            user: String::new(),
            poll_seconds: 30,
            silence_minutes: 60,
        }
    }
}

impl SourceConfig {
    /// What is wrong with it, in words, naming the field; None when it can be followed.
    pub fn problem(&self) -> Option<String> {
        let url = self.url.trim();
        if self.name.trim().is_empty() || self.name.len() > 64 {
            return Some("name: give the source a name (up to 64 characters)".into());
        }
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Some("url: the address must start with https:// or http://".into());
        }
        match self.kind {
            Kind::PagerDuty if !self.email.contains('@') => {
                Some("email: PagerDuty needs your PagerDuty login email for the From header".into())
            }
            Kind::Opsgenie if self.email.trim().is_empty() && self.query.trim().is_empty() => {
                Some("email: Opsgenie needs your user (or a query of your alerts)".into())
            }
            Kind::Alertmanager if self.matchers.iter().all(|m| m.trim().is_empty()) => {
                Some("matchers: say which alerts are yours, e.g. team=\"db\"".into())
            }
            Kind::Ntfy if self.topic.trim().is_empty() => Some("topic: name the ntfy topic".into()),
            _ => None,
        }
    }

    /// The time between two looks, within the vendor's rate limits.
    pub fn interval(&self) -> Duration {
        Duration::from_secs(self.poll_seconds.clamp(10, 3600))
    }
}

/// Something a source says is open and waits for the person.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    /// The vendor's own key (PagerDuty incident id, Opsgenie alert id, Alertmanager fingerprint,
    /// ntfy message id).
    pub key: String,
    pub title: String,
    /// Where it comes from there (a PagerDuty service, an alert name, a topic).
    pub service: String,
    pub severity: Severity,
    /// High rings; low only notifies.
    pub urgency: Urgency,
    pub details: serde_json::Value,
    pub links: Vec<Link>,
    pub runbook_url: Option<String>,
    pub created_at: Timestamp,
}

impl Found {
    /// The page as the ringing state and the windows know pages.
    pub fn incident(&self, id: i64, source: &SourceConfig) -> Incident {
        Incident {
            id,
            service: self.service.clone(),
            dedup_key: self.key.clone(),
            state: IncidentState::Triggered,
            urgency: self.urgency,
            severity: self.severity,
            summary: self.title.clone(),
            source: format!("{} ({})", source.name, source.kind.label()),
            details: self.details.clone(),
            links: self.links.clone(),
            runbook_url: self.runbook_url.clone(),
            created_at: self.created_at,
            updated_at: self.created_at,
            acknowledged_by: None,
            resolved_by: None,
            snoozed_until: None,
            paged: Vec::new(),
            escalation: None,
            drill: false,
            silent: Vec::new(),
        }
    }
}

/// Why a look or an action did not work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// 429: wait this long (the vendor's own word, or the backoff's).
    RateLimited(Option<Duration>),
    /// Refused for good (bad credential, no such user): trying again will not help.
    Refused(String),
    /// Cannot be reached, or answered with a server error: try again later.
    Down(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::RateLimited(_) => write!(f, "rate limited: waiting before the next look"),
            Self::Refused(why) | Self::Down(why) => f.write_str(why),
        }
    }
}

/// Sorts an HTTP answer that is not a success; `what` names the vendor.
pub(crate) async fn failure(what: &str, response: reqwest::Response) -> Failure {
    let status = response.status();
    let retry = retry_after(response.headers());
    let text = response.text().await.unwrap_or_default();
    let text: String = text.chars().take(200).collect();
    match status.as_u16() {
        429 => Failure::RateLimited(retry),
        401 | 403 => Failure::Refused(format!("{what} refused the credential ({status}): {text}")),
        400..=499 => Failure::Refused(format!("{what} answered {status}: {text}")),
        _ => Failure::Down(format!("{what} answered {status}: {text}")),
    }
}

pub(crate) fn unreachable(what: &str, e: &reqwest::Error) -> Failure {
    Failure::Down(format!("cannot reach {what}: {e}"))
}

/// `Retry-After` (seconds), or PagerDuty's `ratelimit-reset` (seconds until the window resets).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    ["retry-after", "ratelimit-reset"].iter().find_map(|name| {
        let seconds = headers.get(*name)?.to_str().ok()?.trim().parse::<u64>().ok()?;
        Some(Duration::from_secs(seconds.min(3600)))
    })
}

/// Ids of a source's incidents: below zero, with the source's slot in them, and growing with `n`
/// (the ringing state shows the oldest pages first, by id).
pub fn local_id(slot: u8, n: u32) -> i64 {
    -(i64::from(slot) + 1) * SLOT + i64::from(n)
}

/// The slot of the source an incident id belongs to; None for the Reveille server's ids.
pub fn slot_of(id: i64) -> Option<u8> {
    let below = id.checked_neg()?.checked_sub(1).filter(|_| id < 0)?;
    u8::try_from(below / SLOT).ok()
}

const SLOT: i64 = 1 << 32;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_say_their_source_and_never_meet_the_servers() {
        for slot in [1u8, 2, 63] {
            for n in [0u32, 1, u32::MAX] {
                let id = local_id(slot, n);
                assert!(id < 0);
                assert_eq!(slot_of(id), Some(slot), "{slot} {n}");
            }
        }
        assert!(local_id(3, 1) > local_id(3, 0), "later pages have greater ids");
        assert_eq!(slot_of(7), None);
        assert_eq!(slot_of(0), None);
        assert_eq!(slot_of(i64::MIN), None, "an id from a window is not trusted");
    }

    #[test]
    fn a_source_that_cannot_be_followed_says_which_field() {
        let source = SourceConfig {
            name: "work".into(),
            url: "https://api.pagerduty.com".into(),
            ..Default::default()
        };
        assert!(source.problem().unwrap().starts_with("email:"));
        let ok = SourceConfig { email: "alice@example.com".into(), ..source.clone() };
        assert_eq!(ok.problem(), None);
        let bad = SourceConfig { url: "api.pagerduty.com".into(), ..ok };
        assert!(bad.problem().unwrap().starts_with("url:"));
        let am = SourceConfig { kind: Kind::Alertmanager, ..source };
        assert!(am.problem().unwrap().starts_with("matchers:"));
    }
}
