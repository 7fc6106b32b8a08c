//! The last connection slots ([`crate::http::listen`]) serve only requests with a working credential,
//! one per connection, so a flood from many hosts still leaves room for the senders and devices
//! Reveille exists for. A credential is checked as its handler would (tokens, keys, sessions);
//! what can only be checked in the body or by its handler (PagerDuty's `routing_key`, a signed
//! link's signature) is let through to it, within the usual body limits.

use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, CONNECTION, CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;

use crate::AppState;
use crate::http::auth::{bearer, caller, key_service};

/// Serves the request if it carries a working credential, and closes the connection after it.
pub async fn credentials_only(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let (headers, uri) = (request.headers().clone(), request.uri().clone());
    if !credential_works(&state, &headers, &uri).await {
        let body = r#"{"code":"unavailable","message":"the server is nearly full: only requests with credentials are served now; retry shortly"}"#;
        let mut response = (StatusCode::SERVICE_UNAVAILABLE, body).into_response();
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("5"));
        headers.insert(CONNECTION, HeaderValue::from_static("close"));
        return response;
    }
    let mut response = next.run(request).await;
    response.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
    response
}

async fn credential_works(state: &AppState, headers: &HeaderMap, uri: &Uri) -> bool {
    let path = uri.path();
    // Checked in the body, or by the handler itself.
    if path == "/v2/enqueue" || path.starts_with("/api/v1/links/") {
        return true;
    }
    // Alertmanager's and Grafana's key in the URL.
    for prefix in ["/api/v1/alertmanager/", "/api/v1/grafana/"] {
        if let Some(key) = path.strip_prefix(prefix) {
            return key_service(state, key).await.is_ok_and(|s| s.is_some());
        }
    }
    let mut secrets = Vec::new();
    secrets.extend(bearer(headers));
    let authorization = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok());
    secrets.extend(authorization.and_then(|v| v.strip_prefix("GenieKey ")).map(str::to_owned));
    // ntfy's `?auth=`: an Authorization header, base64url.
    let query = uri.query().unwrap_or("");
    for value in query.split('&').filter_map(|pair| pair.strip_prefix("auth=")) {
        let decoded =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(value.trim_end_matches('='));
        let header =
            decoded.ok().and_then(|d| String::from_utf8(d).ok()).and_then(|h| h.parse().ok());
        if let Some(header) = header {
            let mut given = HeaderMap::new();
            given.insert(AUTHORIZATION, header);
            secrets.extend(bearer(&given));
        }
    }
    for secret in secrets {
        if caller(state, &secret).await.is_ok_and(|c| c.is_some())
            || key_service(state, &secret).await.is_ok_and(|s| s.is_some())
        {
            return true;
        }
    }
    false
}
