//! Request and response bodies of Reveille's REST API.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::alert::{Action, Link};

/// Body of `POST /api/v1/events`, the generic ingest endpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenericEvent {
    /// Needed when authenticating with a token; implied by an integration key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dedup_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<Link>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runbook: Option<String>,
}

/// Answer of the generic ingest endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventAccepted {
    pub dedup_key: String,
    /// The incident the event landed on, if any (an ack for an unknown key lands nowhere).
    pub incident_id: Option<i64>,
}

/// Body of `POST /api/v1/incidents/{id}/snooze`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct SnoozeRequest {
    /// How long to stay quiet, in seconds.
    #[ts(type = "number")]
    pub seconds: u64,
}

/// Body of `POST /api/v1/incidents/{ack,resolve,snooze}`: one action on many incidents at once
/// ("acknowledge all" in a storm), in one transaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BulkRequest {
    pub ids: Vec<i64>,
    /// For a snooze: how long, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<u64>,
    /// The device acting: an ack also records `acked on <device>`, in the same transaction, so
    /// a device that acknowledged offline needs nothing else kept for its receipt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
}

/// Answer of a bulk action: the incidents it applied to, and those it could not.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BulkAnswer {
    pub done: Vec<i64>,
    #[serde(default)]
    pub refused: Vec<BulkRefusal>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BulkRefusal {
    pub id: i64,
    /// `not_found` or `refused`.
    pub code: String,
    pub message: String,
}

/// Answer of `GET /api/v1/incidents`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentList {
    pub incidents: Vec<crate::Incident>,
}

/// Answer of `GET /healthz`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Health {
    pub status: String,
    pub time: Timestamp,
    /// How the last configuration reload went, if there was one since the start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_reload: Option<Reload>,
}

/// A configuration reload: when, whether it was applied, and the file's mistakes if not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reload {
    pub at: Timestamp,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problems: Option<String>,
}

/// Who holds a schedule's pager at an instant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct ScheduleOnCall {
    pub schedule: String,
    pub primary: Option<String>,
    pub shadows: Vec<String>,
    /// When this changes next (within a year), if it does.
    #[ts(type = "string | null")]
    pub until: Option<Timestamp>,
}

/// Who one level of a service's escalation policy pages at an instant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct LevelOnCall {
    /// 1 for the first level.
    #[ts(type = "number")]
    pub level: usize,
    pub primaries: Vec<String>,
    pub shadows: Vec<String>,
    /// Minutes before the next level is paged.
    #[ts(type = "number")]
    pub delay_minutes: i64,
}

/// Who a service pages, level by level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct ServiceOnCall {
    pub service: String,
    pub levels: Vec<LevelOnCall>,
    /// How many more times the ladder runs after the first.
    pub repeat: u32,
}

/// Answer of `GET /api/v1/oncall`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct OnCallReport {
    #[ts(type = "string")]
    pub at: Timestamp,
    pub schedules: Vec<ScheduleOnCall>,
    pub services: Vec<ServiceOnCall>,
}

/// One stretch of a schedule with the same people on call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct Shift {
    #[ts(type = "string")]
    pub start: Timestamp,
    #[ts(type = "string")]
    pub end: Timestamp,
    pub primary: Option<String>,
    pub shadows: Vec<String>,
}

/// Answer of `GET /api/v1/schedules/{name}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct ScheduleView {
    pub schedule: String,
    pub time_zone: String,
    pub shifts: Vec<Shift>,
}

/// Body of `POST /api/v1/schedules/{name}/overrides`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct OverrideRequest {
    pub user: String,
    #[ts(type = "string")]
    pub start: Timestamp,
    #[ts(type = "string")]
    pub end: Timestamp,
}

/// A stored override.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct OverrideView {
    #[ts(type = "number")]
    pub id: i64,
    pub schedule: String,
    pub user: String,
    #[ts(type = "string")]
    pub start: Timestamp,
    #[ts(type = "string")]
    pub end: Timestamp,
    pub created_by: String,
}

/// Answer of `POST /api/v1/heartbeats/{name}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeartbeatAccepted {
    pub name: String,
    /// A missed ping is declared after this instant.
    pub next_due: Timestamp,
}

/// Body of `POST /api/v1/people/{user}/notify-test`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct NotifyTestRequest {
    /// `call` or `sms`.
    pub channel: String,
}

/// How a test call or text went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct NotifyTestOutcome {
    pub user: String,
    pub channel: String,
    pub ok: bool,
    /// What happened, in words.
    pub outcome: String,
}

/// Body of `POST /api/v1/drills`: exactly one of the two.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct DrillRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Drill whoever is primary on this schedule now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
}

/// How a drill went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct DrillResult {
    #[ts(type = "number")]
    pub incident_id: i64,
    pub user: String,
    #[ts(type = "string")]
    pub started_at: Timestamp,
    #[ts(type = "string | null")]
    pub delivered_at: Option<Timestamp>,
    #[ts(type = "string | null")]
    pub ringing_at: Option<Timestamp>,
    /// Whether a ringing receipt said the device was silent.
    pub silent: bool,
    #[ts(type = "string | null")]
    pub acked_at: Option<Timestamp>,
    pub seconds_to_ack: Option<f64>,
}

/// Answer of `GET /api/v1/drills`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrillList {
    pub drills: Vec<DrillResult>,
}

/// Body of `POST /api/v1/devices`: a phone app registers for native push.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceRequest {
    /// `fcm` (Android, Firebase) or `apns` (iOS).
    pub platform: String,
    /// The registration token the provider gave the app.
    pub token: String,
    /// A name the user recognises, e.g. "alice's Pixel".
    #[serde(default)]
    pub name: Option<String>,
}

/// A registered device. The push token is not shown back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceView {
    pub id: i64,
    pub platform: String,
    pub name: String,
    pub created_at: Timestamp,
}
