//! Reveille's HTTP server as a library: [`router`] builds the whole API from each area's routes,
//! [`serve`] runs it on a listener until a shutdown future completes, with the background
//! [`jobs`] alongside under one supervisor.
//!
//! The folders are the architecture (`docs/architecture.md` walks one page through them):
//! - [`ingest`]: the senders' formats (PagerDuty, Alertmanager, Grafana, Opsgenie, ntfy, the
//!   generic API) turned into alert events, committed before a 2xx;
//! - [`deliver`]: every way a committed page reaches a person (feeds, ntfy, push, email,
//!   Matrix, webhooks), each channel reading the committed feed;
//! - [`oncall`]: schedules, escalation, heartbeats, drills, presence and readiness;
//! - [`http`]: what people and devices call (auth, sessions, incidents, the console) and the
//!   listener that bounds every connection;
//! - [`jobs`]: background work under one supervisor;
//! - [`config`] (the settings and their reload), [`state`] (what everything shares),
//!   [`error`], [`metrics`], [`clock`].
//!
//! Handlers are thin: they authenticate, translate the wire format, and hand the work to the
//! [`reveille_store::Store`], which applies `reveille-core`'s rules and commits before answering.

pub mod clock;
pub mod config;
pub mod deliver;
pub mod error;
pub mod http;
pub mod ingest;
pub mod jobs;
pub mod metrics;
pub mod oncall;
pub mod state;

use std::future::Future;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;

use crate::deliver::{follow, outbox};
use crate::http::{listen, reserved, tls};
pub use crate::state::AppState;

/// The whole HTTP API.
pub fn router(state: AppState) -> Router {
    let body_timeout = Duration::from_secs(state.settings().server.body_timeout_seconds);
    Router::new()
        .merge(http::routes())
        .merge(ingest::routes())
        .merge(deliver::routes())
        .merge(oncall::routes())
        .fallback(http::incidents::no_route)
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(body_timeout))
        .layer(axum::middleware::map_response(error::normalize))
        .with_state(state)
}

/// Serves the API on `listener` until `shutdown` completes, with the background jobs
/// alongside; a configuration reload starts the jobs over with the new configuration. After the
/// shutdown signal, open connections get `server.shutdown_seconds` to finish. Ends with an
/// error when the store can no longer write, so a supervisor starts the process again.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Outbox cursors start at the feed's head before the first request is taken: whatever
    // happens from now on is pushed and posted.
    if let Some(Err(e)) = outbox::oldest(&state).await {
        tracing::error!(error = %e, "cannot start the outboxes' cursors; they will retry");
    }
    let settings = state.settings();
    let tls = match settings.tls_files() {
        Some((cert, key)) => Some(tls::Certs::open(cert, key).map_err(std::io::Error::other)?),
        None => None,
    };
    // Listening for SIGHUP from now on: it reloads, never ends the server.
    let hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let reloading = tokio::spawn(config::reload::on_hangup(state.clone(), hangup));
    let closing = state.closing.clone();
    let signal = tokio::spawn(async move {
        shutdown.await;
        closing.send_replace(true);
    });
    let server = &settings.server;
    let patience = Duration::from_secs(server.shutdown_seconds);
    let limits = listen::Limits {
        max_connections: server.max_connections,
        per_ip: server.per_ip(),
        reserved: server.reserved(),
        idle: Duration::from_secs(server.idle_timeout_seconds),
        dead_peer: Duration::from_secs(server.heartbeat_seconds) * follow::STALL_BEATS,
        shutdown: patience,
    };
    let reserved = axum::middleware::from_fn_with_state(state.clone(), reserved::credentials_only);
    let apps = listen::Apps {
        app: router(state.clone()),
        reserved: router(state.clone()).layer(reserved),
        tls: tls.as_ref().map(|certs| (certs.acceptor(), certs.acceptor_http1())),
    };
    let serving =
        listen::run(listener, apps, limits, state.closing.subscribe(), state.metrics.clone());
    tokio::pin!(serving);
    let mut jobs = jobs::Supervisor::start(&state, jobs::jobs(&state, tls.clone()));
    let mut reloads = state.reloads.subscribe();
    let mut stopped = state.store.stopped();
    let died = async move {
        let reason = stopped.wait_for(Option::is_some).await.map(|r| r.clone().unwrap_or_default());
        match reason {
            Ok(reason) => reason,
            Err(_) => std::future::pending().await,
        }
    };
    tokio::pin!(died);
    let result = loop {
        tokio::select! {
            () = &mut serving => break Ok(()),
            reason = &mut died => {
                tracing::error!(%reason, "the store can no longer write; exiting so that a supervisor restarts Reveille");
                break Err(std::io::Error::other(reason));
            }
            Ok(()) = reloads.changed() => {
                jobs.stop(patience).await;
                jobs = jobs::Supervisor::start(&state, jobs::jobs(&state, tls.clone()));
            }
        }
    };
    jobs.stop(patience).await;
    reloading.abort();
    signal.abort();
    result
}
