//! The web console's files, built from `web/` by Vite and embedded in the binary (a release
//! build carries them inside; a debug build reads `web/dist` as it is now).
//!
//! Every console response carries a strict Content-Security-Policy: scripts and styles only from
//! this server, no inline code, no framing of the console, and runbooks only inside sandboxed
//! frames. The console is a client of the public API like any other.

use axum::Router;
use axum::extract::Path;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rust_embed::RustEmbed;

use crate::AppState;

#[derive(RustEmbed)]
#[folder = "../../web/dist"]
#[allow_missing = true]
struct Assets;

/// The console's Content-Security-Policy.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; frame-src 'self'; worker-src 'self'; \
    manifest-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/index.html", get(index))
        .route("/sw.js", get(|| file("sw.js")))
        .route("/assets/{*path}", get(|Path(path): Path<String>| file(format!("assets/{path}"))))
}

async fn index() -> Response {
    file("index.html").await
}

async fn file(path: impl AsRef<str>) -> Response {
    let path = path.as_ref();
    let Some(found) = Assets::get(path) else {
        if path == "index.html" {
            let text = "The web console was not built into this server: run `npm run build` in \
                        web/ and build the server again.";
            return (StatusCode::NOT_FOUND, text).into_response();
        }
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let mime = found.metadata.mimetype().to_owned();
    // Vite names assets after their contents: they never change. The page and the service
    // worker must be looked at again on every load.
    let cache = if path.starts_with("assets/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let mut response = found.data.into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_str(&mime).unwrap_or(octet()));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static(cache));
    secure_headers(headers);
    if path == "sw.js" {
        headers.insert(
            HeaderName::from_static("service-worker-allowed"),
            HeaderValue::from_static("/"),
        );
    }
    response
}

fn octet() -> HeaderValue {
    HeaderValue::from_static("application/octet-stream")
}

/// The headers every console page and file carries.
pub fn secure_headers(headers: &mut axum::http::HeaderMap) {
    for (name, value) in [
        ("content-security-policy", CSP),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("x-frame-options", "DENY"),
        ("cross-origin-opener-policy", "same-origin"),
    ] {
        headers.insert(HeaderName::from_static(name), HeaderValue::from_static(value));
    }
}
