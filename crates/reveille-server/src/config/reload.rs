//! Reading the configuration again without a restart, as Alertmanager does: on `SIGHUP` and on
//! `POST /-/reload` (a token with the `admin` scope). The file is read and validated whole; a
//! file with mistakes is refused, and the server goes on with the configuration it has, saying
//! why (the log, `reveille_config_reload_failures_total`, `last_reload` in `/healthz`). A good
//! one takes effect at once: users, services, schedules, policies, heartbeats, notification
//! rules, channels and webhooks; the background jobs start over with it (they resume from what
//! the store holds). Open feeds and incidents are untouched. What the listener and the database
//! were opened with (`server.listen`, the connection limits and timeouts, TLS file names,
//! `database.*`) takes effect at the next restart, and the log says which of them changed.

use axum::Json;
use axum::extract::State;
use jiff::Timestamp;
use reveille_protocol::api::Reload;

use crate::AppState;
use crate::config::Settings;
use crate::error::{ApiError, ApiResult};
use crate::http::auth::{Caller, Scope};

/// Reads the configuration file again and applies it, or keeps the one in use and says why.
pub async fn reload(state: &AppState) -> Result<(), String> {
    let path = state.settings().path.clone();
    let outcome = match Settings::load(&path) {
        Ok(fresh) => {
            let later = needs_restart(&state.settings(), &fresh);
            if !later.is_empty() {
                tracing::warn!(
                    keys = later.join(", "),
                    "changed, and takes effect at the next restart"
                );
            }
            state.replace_settings(fresh).await;
            tracing::info!(config = %path.display(), "configuration reloaded");
            Ok(())
        }
        Err(e) => {
            state.metrics.config_reload_failures.inc();
            tracing::error!(config = %path.display(), problems = %e, "the configuration has mistakes; still using the last good one");
            Err(e.to_string())
        }
    };
    state.record_reload(Reload {
        at: state.clock.now(),
        ok: outcome.is_ok(),
        problems: outcome.clone().err(),
    });
    outcome
}

/// The keys that differ between `old` and `new` and only take effect at a restart.
fn needs_restart(old: &Settings, new: &Settings) -> Vec<&'static str> {
    let (a, b) = (&old.server, &new.server);
    let mut changed = Vec::new();
    let mut check = |key, differs: bool| {
        if differs {
            changed.push(key);
        }
    };
    check("server.listen", a.listen != b.listen);
    check("server.max_connections", a.max_connections != b.max_connections);
    check("server.max_connections_per_ip", a.per_ip() != b.per_ip());
    check("server.reserved_connections", a.reserved() != b.reserved());
    check("server.idle_timeout_seconds", a.idle_timeout_seconds != b.idle_timeout_seconds);
    check("server.body_timeout_seconds", a.body_timeout_seconds != b.body_timeout_seconds);
    check("server.shutdown_seconds", a.shutdown_seconds != b.shutdown_seconds);
    check("server.tls_cert", a.tls_cert != b.tls_cert || a.tls_key != b.tls_key);
    check("database", format!("{:?}", old.database) != format!("{:?}", new.database));
    changed
}

/// `POST /-/reload`: reloads now; `400` naming every mistake when the file has any.
pub async fn post(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Reload>> {
    caller.require(Scope::Admin)?;
    match reload(&state).await {
        Ok(()) => Ok(Json(Reload { at: Timestamp::now(), ok: true, problems: None })),
        Err(problems) => Err(ApiError::invalid("config", problems)),
    }
}

/// Reloads on every `SIGHUP` (`hangup` listens for it from the server's start, so none ends
/// the server), until the task is dropped.
pub async fn on_hangup(state: AppState, mut hangup: tokio::signal::unix::Signal) {
    while hangup.recv().await.is_some() {
        let _ = reload(&state).await;
    }
}
