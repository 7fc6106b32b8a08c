//! Who is on call and whether they would hear a page: schedules and their overrides
//! ([`directory`] turns the configuration into the core's rules), the escalation worker
//! ([`escalation`]: snoozes, ladders, deafness), heartbeat monitors, drills, calendar feeds,
//! which devices are connected ([`presence`]) and the readiness board.

pub mod calendar;
pub mod directory;
pub mod drills;
pub mod escalation;
pub mod heartbeats;
pub mod presence;
pub mod readiness;
pub mod schedules;

use axum::Router;
use axum::routing::{delete, get, post};

use crate::AppState;

pub use schedules::MAX_OVERRIDES;

/// This area's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/oncall", get(schedules::report))
        .route("/api/v1/schedules/{name}", get(schedules::shifts))
        .route("/api/v1/schedules/{name}/overrides", post(schedules::add_override))
        .route("/api/v1/overrides", get(schedules::list_overrides))
        .route("/api/v1/overrides/{id}", delete(schedules::remove_override))
        .route("/api/v1/readiness", get(readiness::board))
        .route("/api/v1/calendars", get(calendar::links))
        .route("/api/v1/calendars/reset", post(calendar::reset))
        .route("/calendars/{kind}/{file}", get(calendar::feed))
        .route("/api/v1/heartbeats/{name}", post(heartbeats::ping))
        .route("/api/v1/drills", post(drills::create).get(drills::list))
}
