//! Prometheus metrics: ingest outcomes, feed connections, incidents by state, and how long a page
//! takes from ingest to a feed frame.
//!
//! `/metrics` needs no credentials, so what it costs is bounded: the page is made at most once
//! per [`FRESH`] (a count over the incidents and an encoding) and served as it is to every scrape
//! in between, however many come.

use std::sync::Mutex;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::AppState;
use crate::error::ApiResult;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    pub source: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    pub phase: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobLabels {
    pub job: String,
    pub outcome: String,
}

/// How long one rendering of the page is served.
pub const FRESH: std::time::Duration = std::time::Duration::from_secs(1);

pub struct Metrics {
    registry: Mutex<Registry>,
    /// The page as last made, and when.
    page: tokio::sync::Mutex<Option<(std::time::Instant, String)>>,
    /// How many times the page was made.
    pub renders: std::sync::atomic::AtomicU64,
    pub events: Family<EventLabels, Counter>,
    pub feed_connections: Gauge,
    pub incidents: Family<StateLabels, Gauge>,
    pub ingest_to_feed: Histogram,
    pub feed_resyncs: Counter,
    pub unreadable_rows: Gauge,
    pub feed_closed_stalled: Counter,
    pub health_failures: Counter,
    pub connections: Gauge,
    pub connections_refused: Counter,
    pub tls_reload_failures: Counter,
    pub config_reload_failures: Counter,
    /// Steps of background jobs, by job and outcome (`ok`, `error`, `panic`).
    pub job_steps: Family<JobLabels, Counter>,
    /// Calls and texts, by phase: `ringing` (page to 180), `first_audio` (answer to the first
    /// RTP packet), `key` (a key heard to its effect committed), `sms_handoff` (a text's step
    /// due to its hand-over).
    pub phone: Family<PhaseLabels, Histogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        let events = Family::<EventLabels, Counter>::default();
        let feed_connections = Gauge::default();
        let incidents = Family::<StateLabels, Gauge>::default();
        let buckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];
        let ingest_to_feed = Histogram::new(buckets);
        let feed_resyncs = Counter::default();
        let unreadable_rows = Gauge::default();
        let feed_closed_stalled = Counter::default();
        let health_failures = Counter::default();
        let connections = Gauge::default();
        let connections_refused = Counter::default();
        let tls_reload_failures = Counter::default();
        let config_reload_failures = Counter::default();
        let job_steps = Family::<JobLabels, Counter>::default();
        let phone = Family::<PhaseLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.0,
            ])
        });
        let mut registry = Registry::with_prefix("reveille");
        registry.register(
            "config_reload_failures",
            "Configuration reloads refused because the file had mistakes (the last good one stays)",
            config_reload_failures.clone(),
        );
        registry.register(
            "job_steps",
            "Steps of background jobs, by job and outcome (ok, error, panic)",
            job_steps.clone(),
        );
        registry.register(
            "phone_phase_seconds",
            "Calls and texts by phase: ringing (page to 180), first_audio (answer to the first RTP packet), key (key to effect), sms_handoff (due to handed over)",
            phone.clone(),
        );
        registry.register(
            "unreadable_rows",
            "Stored rows that could not be decoded and that every reader skips",
            unreadable_rows.clone(),
        );
        registry.register(
            "feed_closed_stalled",
            "Feed connections closed because the device stopped reading them",
            feed_closed_stalled.clone(),
        );
        registry.register(
            "health_failures",
            "Health checks that found the database unable to commit in time",
            health_failures.clone(),
        );
        registry.register("connections", "Open HTTP connections", connections.clone());
        registry.register(
            "connections_refused",
            "Connections answered 503 because server.max_connections were open",
            connections_refused.clone(),
        );
        registry.register(
            "tls_reload_failures",
            "Changed TLS certificates that could not be used (the old one stays in use)",
            tls_reload_failures.clone(),
        );
        registry.register(
            "feed_resyncs",
            "Times a feed connection fell behind the live channel and caught up from the store",
            feed_resyncs.clone(),
        );
        registry.register(
            "ingest_events",
            "Alert events received, by source and outcome",
            events.clone(),
        );
        registry.register("feed_connections", "Open feed connections", feed_connections.clone());
        registry.register("incidents", "Incidents by state", incidents.clone());
        registry.register(
            "ingest_to_feed_seconds",
            "Time from an event's ingest to its frame on a live feed connection",
            ingest_to_feed.clone(),
        );
        Self {
            registry: Mutex::new(registry),
            page: tokio::sync::Mutex::new(None),
            renders: Default::default(),
            events,
            feed_connections,
            incidents,
            ingest_to_feed,
            feed_resyncs,
            unreadable_rows,
            feed_closed_stalled,
            health_failures,
            connections,
            connections_refused,
            tls_reload_failures,
            config_reload_failures,
            job_steps,
            phone,
        }
    }
}

impl Metrics {
    /// One step of a background job, and how it ended.
    pub fn job_step(&self, job: &str, outcome: &str, _took: std::time::Duration) {
        let labels = JobLabels { job: job.into(), outcome: outcome.into() };
        self.job_steps.get_or_create(&labels).inc();
    }

    /// A phase of a call or text took `took`.
    pub fn phone(&self, phase: &str, took: std::time::Duration) {
        self.phone.get_or_create(&PhaseLabels { phase: phase.into() }).observe(took.as_secs_f64());
    }

    pub fn event(&self, source: &str, outcome: &str, n: u64) {
        let labels = EventLabels { source: source.into(), outcome: outcome.into() };
        self.events.get_or_create(&labels).inc_by(n);
    }
}

/// `GET /metrics`
pub async fn scrape(State(state): State<AppState>) -> ApiResult<impl IntoResponse> {
    // Scrapes that come while the page is being made wait for it, then share it.
    let mut page = state.metrics.page.lock().await;
    let text = match page.as_ref() {
        Some((at, text)) if at.elapsed() < FRESH => text.clone(),
        _ => {
            let text = render(&state).await?;
            *page = Some((std::time::Instant::now(), text.clone()));
            text
        }
    };
    Ok(([(CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text))
}

async fn render(state: &AppState) -> ApiResult<String> {
    state.metrics.renders.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    for (incident_state, n) in state.store.count_by_state().await? {
        let labels = StateLabels { state: incident_state.as_str().into() };
        state.metrics.incidents.get_or_create(&labels).set(n as i64);
    }
    state.metrics.unreadable_rows.set(state.store.unreadable_rows() as i64);
    let mut text = String::new();
    let registry = state.metrics.registry.lock().unwrap_or_else(|p| p.into_inner());
    encode(&mut text, &registry).expect("writing to a String cannot fail");
    Ok(text)
}
