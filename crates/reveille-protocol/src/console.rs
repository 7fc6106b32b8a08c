//! What the API shows of incidents, and the bodies the web console needs beyond the CLI's:
//! sessions, the readiness board, calendar links and Web Push.
//!
//! [`IncidentView`] is the incident as the API shows it: the stored [`Incident`] without the
//! server's own bookkeeping (the escalation cursor). Every type here derives `TS`, so the
//! console's TypeScript types are generated from these definitions (`web/src/api.gen.ts`).

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::alert::{Link, Severity, Urgency};
use crate::api::DrillResult;
use crate::feed::{FeedEvent, FeedKind};
use crate::incident::{Incident, IncidentDetail, IncidentState, TimelineEntry};

/// An incident as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct IncidentView {
    #[ts(type = "number")]
    pub id: i64,
    pub service: String,
    pub dedup_key: String,
    pub state: IncidentState,
    pub urgency: Urgency,
    pub severity: Severity,
    pub summary: String,
    pub source: String,
    #[ts(type = "unknown")]
    pub details: serde_json::Value,
    pub links: Vec<Link>,
    pub runbook_url: Option<String>,
    #[ts(type = "string")]
    pub created_at: Timestamp,
    #[ts(type = "string")]
    pub updated_at: Timestamp,
    pub acknowledged_by: Option<String>,
    pub resolved_by: Option<String>,
    #[ts(type = "string | null")]
    pub snoozed_until: Option<Timestamp>,
    /// Users who were paged for this incident.
    pub paged: Vec<String>,
    pub drill: bool,
    /// Users whose device reported it cannot make sound for this page.
    pub silent: Vec<String>,
}

impl From<Incident> for IncidentView {
    fn from(i: Incident) -> Self {
        Self {
            id: i.id,
            service: i.service,
            dedup_key: i.dedup_key,
            state: i.state,
            urgency: i.urgency,
            severity: i.severity,
            summary: i.summary,
            source: i.source,
            details: i.details,
            links: i.links,
            runbook_url: i.runbook_url,
            created_at: i.created_at,
            updated_at: i.updated_at,
            acknowledged_by: i.acknowledged_by,
            resolved_by: i.resolved_by,
            snoozed_until: i.snoozed_until,
            paged: i.paged,
            drill: i.drill,
            silent: i.silent,
        }
    }
}

/// A feed entry as devices receive it: the incident as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct FeedEntryView {
    #[ts(type = "number")]
    pub id: i64,
    pub kind: FeedKind,
    #[ts(type = "string")]
    pub at: Timestamp,
    pub incident: IncidentView,
}

impl From<&FeedEvent> for FeedEntryView {
    fn from(e: &FeedEvent) -> Self {
        Self { id: e.id, kind: e.kind, at: e.at, incident: e.incident.clone().into() }
    }
}

/// Answer of `GET /api/v1/incidents/{id}`: the incident's fields and its timeline, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct IncidentDetailView {
    #[serde(flatten)]
    pub incident: IncidentView,
    pub timeline: Vec<TimelineEntry>,
}

impl From<IncidentDetail> for IncidentDetailView {
    fn from(d: IncidentDetail) -> Self {
        Self { incident: d.incident.into(), timeline: d.timeline }
    }
}

/// Answer of `GET /api/v1/incidents`: newest first; `next_before` asks for the next page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct IncidentPage {
    pub incidents: Vec<IncidentView>,
    #[ts(type = "number | null")]
    pub next_before: Option<i64>,
}

/// Body of `POST /api/v1/session`: exactly one of the two.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct SessionRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub token: Option<String>,
    /// The code of a one-time sign-in link (`reveille web-link`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub code: Option<String>,
}

/// A browser session, as its own page scripts may know it (never the cookie's secret).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct SessionInfo {
    pub user: String,
    /// Sent back as `X-CSRF-Token` with every request that changes something.
    pub csrf: String,
    #[ts(type = "string")]
    pub expires_at: Timestamp,
}

/// Answer of `GET /api/v1/readiness`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct Readiness {
    #[ts(type = "string")]
    pub at: Timestamp,
    pub people: Vec<PersonReadiness>,
}

/// Whether one person on call now or next would hear a page right now, and why not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct PersonReadiness {
    pub user: String,
    pub on_call: Vec<Duty>,
    pub devices: Vec<DeviceStatus>,
    pub last_receipt: Option<LastReceipt>,
    pub last_drill: Option<DrillResult>,
    /// Why the server counts this person deaf (the escalation ladder passes them), if it does.
    pub deaf: Option<String>,
    pub ready: bool,
    /// Why `ready` is false, one line each.
    pub reasons: Vec<String>,
}

/// A stretch of a schedule a person holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct Duty {
    pub schedule: String,
    /// `now` or `next`.
    pub when: String,
    #[ts(type = "string")]
    pub start: Timestamp,
    #[ts(type = "string")]
    pub end: Timestamp,
    pub shadow: bool,
}

/// One way of reaching a person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct DeviceStatus {
    /// `desktop`, `watch`, `ntfy`, `fcm`, `apns`, `webpush`, `email` or `matrix`.
    pub kind: String,
    pub name: String,
    pub live: bool,
    pub detail: Option<String>,
}

/// The newest receipt any of a person's devices sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct LastReceipt {
    #[ts(type = "string")]
    pub at: Timestamp,
    #[ts(type = "number")]
    pub incident_id: i64,
    /// `delivered`, `ringing` or `acked`.
    pub kind: String,
    pub device: String,
    pub volume: Option<f32>,
    pub muted: Option<bool>,
    /// The device said it cannot make sound.
    pub silent: bool,
}

/// Answer of `GET /api/v1/calendars`: iCalendar URLs to subscribe to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct CalendarLinks {
    /// The caller's own shifts, across every schedule.
    pub me: String,
    pub schedules: Vec<CalendarLink>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct CalendarLink {
    pub schedule: String,
    pub url: String,
}

/// Answer of `GET /api/v1/webpush`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct WebPushInfo {
    /// The server's VAPID public key: an uncompressed P-256 point, base64url.
    pub public_key: String,
    /// How many browsers of the caller are subscribed.
    pub subscribed: u32,
}

/// A browser's push subscription, as `PushSubscription.toJSON()` gives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct WebPushSubscription {
    pub endpoint: String,
    pub keys: WebPushKeys,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct WebPushKeys {
    pub p256dh: String,
    pub auth: String,
}

/// What a browser notification carries (encrypted to the subscription).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct WebPushMessage {
    pub title: String,
    pub body: String,
    #[ts(type = "number")]
    pub incident_id: i64,
    pub url: String,
}
