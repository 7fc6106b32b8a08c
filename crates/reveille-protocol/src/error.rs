//! The one error body of Reveille's own API: a stable code and a human message.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// Stable error codes; clients match on these, never on the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidBody,
    Unauthorized,
    Forbidden,
    NotFound,
    /// The path exists but not with this HTTP method.
    MethodNotAllowed,
    /// The request is valid but the incident's state refuses it.
    Conflict,
    PayloadTooLarge,
    RateLimited,
    Unavailable,
    Internal,
}

/// `{"code": "...", "message": "...", "field": "..."}`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
    /// The offending field of the request body, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}
