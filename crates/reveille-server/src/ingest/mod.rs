//! Ingest adapters: each speaks one existing format, validates it into
//! [`reveille_protocol::AlertEvent`]s naming any field at fault, and hands them to the store.
//! An answer of 2xx is sent only after the store has committed and synced the events.

pub mod alertmanager;
pub mod generic;
pub mod ntfy;
pub mod opsgenie;
pub mod pagerduty;
pub mod ratelimit;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Request};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::post;
use reveille_protocol::limits::{self, Part};
use reveille_protocol::{AlertEvent, ErrorCode};
use reveille_store::{IngestBatch, Landed};

use crate::AppState;
use crate::error::{ApiError, ApiResult, quoted};

/// PagerDuty's documented limit, used for every single-event format.
pub const EVENT_LIMIT: usize = 512 * 1024;
/// Alertmanager and Grafana send whole groups at once.
pub const BATCH_LIMIT: usize = 8 * 1024 * 1024;

pub fn routes() -> Router<AppState> {
    let single = Router::new()
        .route("/v2/enqueue", post(pagerduty::enqueue))
        .route("/v2/alerts", post(opsgenie::create))
        .route("/v2/alerts/{identifier}/acknowledge", post(opsgenie::acknowledge))
        .route("/v2/alerts/{identifier}/close", post(opsgenie::close))
        .route("/api/v1/events", post(generic::event))
        .route("/", post(ntfy::publish_json))
        .route("/{topic}", post(ntfy::publish).put(ntfy::publish))
        .layer(DefaultBodyLimit::max(EVENT_LIMIT));
    let batches = Router::new()
        .route("/api/v1/alertmanager", post(alertmanager::alertmanager))
        .route("/api/v1/alertmanager/{key}", post(alertmanager::alertmanager_keyed))
        .route("/api/v1/grafana", post(alertmanager::grafana).put(alertmanager::grafana))
        .route(
            "/api/v1/grafana/{key}",
            post(alertmanager::grafana_keyed).put(alertmanager::grafana_keyed),
        )
        .layer(DefaultBodyLimit::max(BATCH_LIMIT));
    single.merge(batches)
}

/// One problem with a request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// The field, as a path: `payload.severity`, `alerts[2].status`.
    pub field: String,
    pub message: String,
}

impl Invalid {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }

    /// `field: message`, or the message alone when no one field is at fault.
    pub fn with_field(&self) -> String {
        if self.field.is_empty() {
            self.message.clone()
        } else {
            format!("{}: {}", self.field, self.message)
        }
    }
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// The first problem, as Reveille's own error body.
pub fn first_problem(problems: Vec<Invalid>) -> ApiError {
    let all: Vec<String> = problems.iter().map(ToString::to_string).collect();
    let field = problems.into_iter().next().map(|p| p.field).unwrap_or_default();
    ApiError::invalid(field, all.join("; "))
}

/// Parses a JSON body into `T`, naming the field of a type error.
pub fn json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Invalid> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(Invalid::new("", "the request body is empty; send a JSON object"));
    }
    crate::http::incidents::parse_json(body)
        .map_err(|e| Invalid::new(e.field.unwrap_or_default(), e.message))
}

/// The request's headers and body, read only now that its sender is authenticated: without a
/// valid key nobody makes the server read, or wait for, a body. (PagerDuty's routing key travels
/// inside the body, so `/v2/enqueue` alone reads a bounded body first.)
pub async fn read_body(request: Request) -> ApiResult<(HeaderMap, Bytes)> {
    let headers = request.headers().clone();
    match Bytes::from_request(request, &()).await {
        Ok(body) => Ok((headers, body)),
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            Err(ApiError::new(
                ErrorCode::PayloadTooLarge,
                "the request body is larger than this endpoint accepts",
            ))
        }
        Err(rejection) => Err(ApiError::invalid("", rejection.body_text())),
    }
}

/// Refuses bodies that declare a content type other than JSON (a form post from `curl -d`
/// without `-H 'Content-Type: application/json'`, for example).
pub fn require_json(headers: &HeaderMap) -> Result<(), Invalid> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let kind =
        value.to_str().unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if kind == "application/json" || kind.ends_with("+json") || kind == "text/plain" {
        Ok(())
    } else {
        Err(Invalid::new(
            "Content-Type",
            format!("Content-Type is {}; send the body as application/json", quoted(&kind)),
        ))
    }
}

/// Refuses an event Reveille would not store whole (see [`limits`]), naming the field at fault
/// in the sender's own words with `field`.
pub fn bounded(event: AlertEvent, field: impl Fn(Part) -> String) -> Result<AlertEvent, Invalid> {
    match limits::check(&event) {
        Ok(()) => Ok(event),
        Err(out) => {
            let name = field(out.part);
            let message = format!("'{name}' is out of bounds: {}", out.message);
            Err(Invalid::new(name, message))
        }
    }
}

/// Truncates to at most `max` characters (not bytes), keeping UTF-8 intact.
pub fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => text[..at].to_owned(),
        None => text.to_owned(),
    }
}

/// Refuses the request if `key_hash` has used up its rate.
pub async fn rate_limit(state: &AppState, source: &str, key_hash: &str) -> ApiResult<()> {
    let checked = state.limiter.check(state.store.as_ref(), key_hash, state.clock.now()).await;
    checked.map_err(|retry_after| {
        state.metrics.event(source, "rate_limited", 1);
        let message = format!("rate limit exceeded; retry in {retry_after} s");
        ApiError {
            retry_after: Some(retry_after),
            ..ApiError::new(ErrorCode::RateLimited, message)
        }
    })
}

/// The batch of one request's events for `service`, with the service's rules as they are now.
pub fn batch(
    state: &AppState,
    service: &str,
    source: &str,
    events: Vec<AlertEvent>,
) -> ApiResult<IngestBatch> {
    let rules = state
        .directory()
        .service(service)
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("service {service:?} is not configured")))?;
    Ok(IngestBatch { rules, source: source.to_owned(), events, received_at: state.clock.now() })
}

/// Stores the events of one request for `service`; `Ok` once they are durable.
pub async fn submit(
    state: &AppState,
    service: &str,
    source: &str,
    events: Vec<AlertEvent>,
) -> ApiResult<Vec<Landed>> {
    let count = events.len() as u64;
    match state.store.ingest(batch(state, service, source, events)?).await {
        Ok(landed) => {
            state.metrics.event(source, "accepted", count);
            Ok(landed)
        }
        Err(e) => {
            state.metrics.event(source, "unavailable", count);
            Err(e.into())
        }
    }
}

/// Counts a refused request and passes the error on.
pub fn refused(state: &AppState, source: &str, outcome: &str, error: ApiError) -> ApiError {
    state.metrics.event(source, outcome, 1);
    error
}
