//! Reveille's HTTP server as a library: [`router`] builds the whole API, [`serve`] runs it on a
//! listener until a shutdown future completes, with the [`worker`] alongside (snoozes, escalation
//! ladders, heartbeat monitors, handoff drills).
//!
//! Handlers are thin: they authenticate, translate the wire format, and hand the work to the
//! [`reveille_store::Store`], which applies `reveille-core`'s rules and commits before answering.

pub mod api;
pub mod auth;
pub mod browsers;
pub mod bulk;
pub mod calendar;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod devices;
pub mod directory;
pub mod drills;
pub mod email;
pub mod error;
pub mod feed;
pub mod follow;
pub mod health;
pub mod heartbeats;
pub mod ingest;
pub mod links;
pub mod listen;
pub mod live;
pub mod matrix;
pub mod metrics;
pub mod notify;
pub mod ntfy;
pub mod oncall;
pub mod outbox;
pub mod presence;
pub mod push;
pub mod ratelimit;
pub mod readiness;
pub mod reserved;
pub mod retention;
pub mod rules;
pub mod session;
pub mod tls;
pub mod web;
pub mod webhooks;
pub mod worker;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, RwLock};

use std::time::Duration;

use axum::Router;
use axum::routing::{delete, get, post};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

use crate::clock::Clock;
use crate::config::Settings;
use crate::directory::Directory;
use crate::error::ApiResult;
use crate::metrics::Metrics;
use crate::presence::Presence;
use crate::ratelimit::RateLimiter;
use reveille_store::Store;

/// Everything a request handler may use; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub settings: Arc<Settings>,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
    pub limiter: Arc<RateLimiter>,
    pub presence: Arc<Presence>,
    /// Integration keys found live in the last second.
    pub keys: Arc<auth::KeyCache>,
    /// Tokens found live in the last second, by digest (their user as the value).
    pub live_tokens: Arc<auth::KeyCache>,
    /// Poked when something may need the worker now (a snooze, a silent receipt).
    pub wake: Arc<Notify>,
    /// Set when the server is shutting down, so long-lived feed streams end.
    pub closing: Arc<watch::Sender<bool>>,
    /// The ack-link signing key as last read from its file.
    pub link_key: Arc<links::CachedKey>,
    /// The last health check, shared by every caller.
    pub health: Arc<health::Checks>,
    /// This node's name in the cluster.
    pub node: Arc<str>,
    /// When this node started.
    pub started: jiff::Timestamp,
    /// What every node last reported (with SQLite: this one).
    pub cluster: Arc<RwLock<reveille_store::ClusterView>>,
    /// Why this node disagrees with the rest of the cluster, if it does (its health fails).
    pub cluster_problem: Arc<RwLock<Option<String>>>,
    /// The readiness board as last computed, and when.
    pub readiness: Arc<tokio::sync::Mutex<Option<readiness::Shared>>>,
    /// Console streams open per person on this node.
    pub console_streams: Arc<live::Streams>,
    directory: Arc<RwLock<Arc<Directory>>>,
    /// The overrides version the directory was built from, and when it was built.
    directory_source: Arc<tokio::sync::Mutex<Option<(String, std::time::Instant)>>>,
    touched: Arc<std::sync::Mutex<HashMap<String, jiff::Timestamp>>>,
}

/// Where the version of the stored overrides is kept: every node rebuilds its schedules when it
/// changes, instead of reading every override every second.
const OVERRIDES_VERSION: &str = "overrides_version";
/// The longest a node goes without reading the overrides again, whatever the version says.
const OVERRIDES_PATIENCE: std::time::Duration = std::time::Duration::from_secs(60);

impl AppState {
    pub fn new(store: Arc<dyn Store>, settings: Settings, clock: Arc<dyn Clock>) -> Self {
        let limiter = RateLimiter::new(settings.ingest.rate_per_minute);
        let directory = Directory::build(&settings, &[]);
        let started = clock.now();
        Self {
            store,
            presence: Arc::new(Presence::new(clock.clone())),
            keys: Arc::default(),
            live_tokens: Arc::default(),
            settings: Arc::new(settings),
            clock,
            metrics: Arc::new(Metrics::default()),
            limiter: Arc::new(limiter),
            wake: Arc::new(Notify::new()),
            closing: Arc::new(watch::channel(false).0),
            health: Arc::default(),
            node: cluster::node_name().into(),
            started,
            cluster: Arc::default(),
            cluster_problem: Arc::default(),
            link_key: Arc::default(),
            readiness: Arc::default(),
            console_streams: Arc::default(),
            directory: Arc::new(RwLock::new(Arc::new(directory))),
            directory_source: Arc::default(),
            touched: Arc::default(),
        }
    }

    /// Services and schedules as they are now, with the stored overrides.
    pub fn directory(&self) -> Arc<Directory> {
        self.directory.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Rebuilds the directory from the configuration and the overrides in the store, when the
    /// overrides changed (on any node) or a minute has passed.
    pub async fn refresh(&self) -> ApiResult<()> {
        let version = self.store.meta(OVERRIDES_VERSION).await?.unwrap_or_default();
        let mut source = self.directory_source.lock().await;
        let current = source
            .as_ref()
            .is_some_and(|(seen, at)| *seen == version && at.elapsed() < OVERRIDES_PATIENCE);
        if current {
            return Ok(());
        }
        let overrides = self.store.overrides().await?;
        let fresh = Arc::new(Directory::build(&self.settings, &overrides));
        *self.directory.write().unwrap_or_else(|p| p.into_inner()) = fresh;
        *source = Some((version, std::time::Instant::now()));
        Ok(())
    }

    /// The overrides were changed here: every node rebuilds its schedules, this one at once.
    pub async fn overrides_changed(&self) -> ApiResult<()> {
        let version = auth::random::<8>().iter().map(|b| format!("{b:02x}")).collect::<String>();
        self.store.set_meta(OVERRIDES_VERSION, &version).await?;
        self.refresh().await
    }
}

/// The whole HTTP API.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(metrics::scrape))
        .merge(ingest::routes())
        .merge(ntfy::routes())
        .merge(web::routes())
        .route("/api/v1/feed", get(feed::subscribe))
        .route("/api/v1/whoami", get(api::whoami))
        .route("/api/v1/session", get(session::info).post(session::create).delete(session::delete))
        .route("/api/v1/me/notify", get(rules::get).put(rules::put).delete(rules::delete))
        .route("/api/v1/incidents", get(api::list_incidents))
        .route("/api/v1/incidents/stream", get(live::incidents))
        .route("/api/v1/incidents/ack", post(bulk::ack))
        .route("/api/v1/incidents/resolve", post(bulk::resolve))
        .route("/api/v1/incidents/snooze", post(bulk::snooze))
        .route("/api/v1/incidents/{id}/postmortem", get(api::postmortem))
        .route("/api/v1/readiness", get(readiness::board))
        .route("/api/v1/calendars", get(calendar::links))
        .route("/api/v1/calendars/reset", post(calendar::reset))
        .route("/api/v1/webpush", get(browsers::info))
        .route(
            "/api/v1/webpush/subscriptions",
            post(browsers::subscribe).delete(browsers::unsubscribe),
        )
        .route("/calendars/{kind}/{file}", get(calendar::feed))
        .route("/api/v1/readiness/stream", get(live::readiness))
        .route("/api/v1/incidents/{id}", get(api::get_incident))
        .route("/api/v1/incidents/{id}/ack", post(api::ack))
        .route("/api/v1/incidents/{id}/resolve", post(api::resolve))
        .route("/api/v1/incidents/{id}/snooze", post(api::snooze))
        .route("/api/v1/incidents/{id}/receipts", post(api::receipt))
        .route("/api/v1/runbooks/{service}", get(api::runbook))
        .route("/api/v1/oncall", get(oncall::report))
        .route("/api/v1/schedules/{name}", get(oncall::shifts))
        .route("/api/v1/schedules/{name}/overrides", post(oncall::add_override))
        .route("/api/v1/overrides", get(oncall::list_overrides))
        .route("/api/v1/overrides/{id}", delete(oncall::remove_override))
        .route("/api/v1/heartbeats/{name}", post(heartbeats::ping))
        .route("/api/v1/drills", post(drills::create).get(drills::list))
        .route("/api/v1/devices", post(devices::register).get(devices::list))
        .route("/api/v1/devices/{id}", delete(devices::remove))
        .route("/api/v1/links/ack/{incident}", get(links::confirm).post(links::ack))
        .fallback(api::no_route)
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(Duration::from_secs(
            state.settings.server.body_timeout_seconds,
        )))
        .layer(axum::middleware::map_response(error::normalize))
        .with_state(state)
}

/// Serves the API on `listener` until `shutdown` completes, with the worker alongside. After
/// the shutdown signal, open connections get `server.shutdown_seconds` to finish. Ends with an
/// error when the store can no longer write, so a supervisor starts the process again.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Outbox cursors start at the feed's head before the first request is taken: whatever
    // happens from now on is pushed and posted.
    if let Some(Err(e)) = outbox::oldest(&state).await {
        tracing::error!(error = %e, "cannot start the push and webhook cursors; they will retry");
    }
    let worker = tokio::spawn(worker::run(state.clone()));
    let pruner = tokio::spawn(retention::run(state.clone()));
    let reporter = tokio::spawn(cluster::run(state.clone()));
    let pusher = push::wanted(&state.settings).then(|| tokio::spawn(push::start(state.clone())));
    let webhooks =
        (!state.settings.webhooks.is_empty()).then(|| tokio::spawn(webhooks::run(state.clone())));
    let notifier = match email::Mailer::from_settings(&state.settings) {
        Ok(mailer) if mailer.is_some() || state.settings.matrix.is_some() => {
            Some(tokio::spawn(notify::run(state.clone(), mailer)))
        }
        Ok(_) => None,
        Err(e) => {
            tracing::error!(error = %e, "email is OFF: its configuration cannot be used");
            state.settings.matrix.is_some().then(|| tokio::spawn(notify::run(state.clone(), None)))
        }
    };
    let closing = state.closing.clone();
    let signal = tokio::spawn(async move {
        shutdown.await;
        closing.send_replace(true);
    });
    let mut stopped = state.store.stopped();
    let server = &state.settings.server;
    let limits = listen::Limits {
        max_connections: server.max_connections,
        per_ip: server.per_ip(),
        reserved: server.reserved(),
        idle: Duration::from_secs(server.idle_timeout_seconds),
        dead_peer: Duration::from_secs(server.heartbeat_seconds) * follow::STALL_BEATS,
        shutdown: Duration::from_secs(server.shutdown_seconds),
    };
    let tls = match state.settings.tls_files() {
        Some((cert, key)) => Some(tls::Certs::open(cert, key).map_err(std::io::Error::other)?),
        None => None,
    };
    let reloader = tls.clone().map(|certs| tokio::spawn(tls::watch(certs, state.metrics.clone())));
    let reserved = axum::middleware::from_fn_with_state(state.clone(), reserved::credentials_only);
    let apps = listen::Apps {
        app: router(state.clone()),
        reserved: router(state.clone()).layer(reserved),
        tls: tls.as_ref().map(|certs| (certs.acceptor(), certs.acceptor_http1())),
    };
    let serving =
        listen::run(listener, apps, limits, state.closing.subscribe(), state.metrics.clone());
    let result = tokio::select! {
        () = serving => Ok(()),
        Ok(reason) = stopped.wait_for(Option::is_some) => {
            let reason = reason.clone().unwrap_or_default();
            tracing::error!(%reason, "the store can no longer write; exiting so that a supervisor restarts Reveille");
            Err(std::io::Error::other(reason))
        }
    };
    worker.abort();
    pruner.abort();
    reporter.abort();
    signal.abort();
    for task in [pusher, reloader, webhooks, notifier].into_iter().flatten() {
        task.abort();
    }
    result
}
