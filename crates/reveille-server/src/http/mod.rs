//! The API people and their devices call, and how it is served: authentication (tokens, keys,
//! console sessions), the incidents (list, read, act on them, alone or in bulk, receipts,
//! runbooks, postmortems), the console's live streams and its embedded pages, signed links,
//! health, and the listener that bounds every connection (TLS included). The other areas add
//! their own routes ([`crate::router`]).

pub mod auth;
pub mod bulk;
pub mod health;
pub mod incidents;
pub mod links;
pub mod listen;
pub mod live;
pub mod reserved;
pub mod session;
pub mod tls;
pub mod web;

use axum::Router;
use axum::routing::{get, post};

use crate::AppState;

/// This area's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(crate::metrics::scrape))
        .route("/-/reload", post(crate::config::reload::post))
        .route("/api/v1/whoami", get(incidents::whoami))
        .route("/api/v1/session", get(session::info).post(session::create).delete(session::delete))
        .route("/api/v1/incidents", get(incidents::list_incidents))
        .route("/api/v1/incidents/stream", get(live::incidents))
        .route("/api/v1/incidents/ack", post(bulk::ack))
        .route("/api/v1/incidents/resolve", post(bulk::resolve))
        .route("/api/v1/incidents/snooze", post(bulk::snooze))
        .route("/api/v1/incidents/{id}", get(incidents::get_incident))
        .route("/api/v1/incidents/{id}/postmortem", get(incidents::postmortem))
        .route("/api/v1/incidents/{id}/ack", post(incidents::ack))
        .route("/api/v1/incidents/{id}/resolve", post(incidents::resolve))
        .route("/api/v1/incidents/{id}/snooze", post(incidents::snooze))
        .route("/api/v1/incidents/{id}/receipts", post(incidents::receipt))
        .route("/api/v1/runbooks/{service}", get(incidents::runbook))
        .route("/api/v1/readiness/stream", get(live::readiness))
        .route("/api/v1/links/ack/{incident}", get(links::confirm).post(links::ack))
        .merge(web::routes())
}
