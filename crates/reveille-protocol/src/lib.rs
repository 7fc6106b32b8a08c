//! Reveille's wire vocabulary: the shapes that cross a process boundary.
//!
//! Serde types only — no I/O, no async, no HTTP. The server, the clients and the desktop app all
//! speak through these types, so a change here is a change of the protocol.

pub mod alert;
pub mod api;
pub mod console;
pub mod error;
pub mod feed;
pub mod formats;
pub mod incident;
pub mod limits;
pub mod postmortem;
pub mod sse;

pub use alert::{Action, AlertEvent, Link, Severity, Urgency};
pub use error::{ErrorBody, ErrorCode};
pub use feed::{FeedEvent, FeedKind};
pub use incident::{
    Escalation, Incident, IncidentDetail, IncidentState, Receipt, ReceiptKind, TimelineEntry,
};
