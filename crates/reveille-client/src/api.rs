//! The one typed client of Reveille's REST API, shared by the desktop, the subscriber and the
//! command line: a token, a base address, and Reveille's error body turned into an [`ApiError`]
//! a person can read.

use std::time::Duration;

use reveille_protocol::api::{BulkAnswer, IncidentList};
use reveille_protocol::{ErrorBody, ErrorCode, IncidentDetail, Receipt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::outbox::Request;

/// Why a call did not work.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The server could not be reached, or the connection broke: try again later.
    #[error("cannot reach the server: {0}")]
    Unreachable(String),
    /// 401 or 403: the token is unknown, revoked, or may not do this.
    #[error("the server refused the token: {message}")]
    Refused { status: u16, message: String },
    /// Any other answer that is not a success, with the server's words.
    #[error("{message} ({status})")]
    Answered { status: u16, code: Option<ErrorCode>, message: String },
    /// A success whose body is not what this client expects.
    #[error("the server's answer is not what this client expects: {0}")]
    Unexpected(String),
}

impl ApiError {
    /// The HTTP status the server answered, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Refused { status, .. } | Self::Answered { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A client for one server and token.
#[derive(Debug, Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

/// How long any call may take, except the feed stream once it is open.
pub const TIMEOUT: Duration = Duration::from_secs(10);

impl Api {
    /// `agent` names the program in the User-Agent (`reveille-desktop/0.1.0`, `reveille/0.1.0`):
    /// the server tells desktops from terminals by it.
    pub fn new(server: &str, token: &str, agent: &str) -> Result<Self, ApiError> {
        let http = reqwest::Client::builder()
            .user_agent(agent)
            .connect_timeout(TIMEOUT)
            .build()
            .map_err(|e| ApiError::Unexpected(e.to_string()))?;
        Ok(Self {
            http,
            base: server.trim().trim_end_matches('/').to_owned(),
            token: token.to_owned(),
        })
    }

    pub fn server(&self) -> &str {
        &self.base
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    /// The HTTP client under it (for a runbook, say).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// A request to `path` with the token; no timeout (the feed stream uses it).
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}{path}", self.base)).bearer_auth(&self.token)
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ApiError> {
        answer(self.request(reqwest::Method::GET, path).timeout(TIMEOUT)).await
    }

    pub async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> Result<T, ApiError> {
        answer(self.request(reqwest::Method::POST, path).timeout(TIMEOUT).json(body)).await
    }

    pub async fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T, ApiError> {
        answer(self.request(reqwest::Method::DELETE, path).timeout(TIMEOUT)).await
    }

    /// Who the token belongs to (`GET /api/v1/whoami`).
    pub async fn whoami(&self) -> Result<serde_json::Value, ApiError> {
        self.get("/api/v1/whoami").await
    }

    pub async fn incident(&self, id: i64) -> Result<IncidentDetail, ApiError> {
        self.get(&format!("/api/v1/incidents/{id}")).await
    }

    /// What is open for the token's user now, newest first.
    pub async fn my_open_incidents(&self) -> Result<IncidentList, ApiError> {
        self.get("/api/v1/incidents?mine=true&limit=1000").await
    }

    /// One request for many incidents in one call, as `device`.
    pub async fn act_many(
        &self,
        request: Request,
        ids: &[i64],
        device: &str,
    ) -> Result<BulkAnswer, ApiError> {
        let (path, body) = request.call_many(ids, device);
        self.post(path, &body).await
    }

    /// One request for one incident (the calls of a server without bulk actions).
    pub async fn act(&self, request: Request, id: i64) -> Result<serde_json::Value, ApiError> {
        let (path, body) = request.call(id);
        self.post(&path, &body).await
    }

    pub async fn receipt(&self, id: i64, receipt: &Receipt) -> Result<serde_json::Value, ApiError> {
        self.post(&format!("/api/v1/incidents/{id}/receipts"), receipt).await
    }
}

/// Sends the request; turns Reveille's error body into an [`ApiError`].
pub async fn answer<T: DeserializeOwned>(request: reqwest::RequestBuilder) -> Result<T, ApiError> {
    read(request.send().await.map_err(|e| ApiError::Unreachable(e.to_string()))?).await
}

/// Reads an answer: its JSON on success, an [`ApiError`] with the server's words otherwise.
pub async fn read<T: DeserializeOwned>(response: reqwest::Response) -> Result<T, ApiError> {
    let status = response.status();
    let bytes = response.bytes().await.map_err(|e| ApiError::Unreachable(e.to_string()))?;
    if status.is_success() {
        // An empty success (204) reads as JSON null.
        let bytes = if bytes.is_empty() { &b"null"[..] } else { &bytes[..] };
        return serde_json::from_slice(bytes).map_err(|e| ApiError::Unexpected(e.to_string()));
    }
    let body = serde_json::from_slice::<ErrorBody>(&bytes).ok();
    let message = body.as_ref().map_or_else(
        || {
            let text = String::from_utf8_lossy(&bytes);
            format!("the server answered {status}: {}", text.chars().take(300).collect::<String>())
        },
        |e| e.message.clone(),
    );
    let status = status.as_u16();
    if status == 401 || status == 403 {
        return Err(ApiError::Refused { status, message });
    }
    Err(ApiError::Answered { status, code: body.map(|e| e.code), message })
}
