//! Opsgenie Alert API v2 (`POST /v2/alerts`, `.../acknowledge`, `.../close`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Body of "Create Alert".
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateAlert {
    pub message: Option<String>,
    pub alias: Option<String>,
    pub description: Option<String>,
    #[serde(default)]
    pub responders: Vec<serde_json::Value>,
    #[serde(default)]
    pub visible_to: Vec<serde_json::Value>,
    #[serde(default)]
    pub actions: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub details: BTreeMap<String, String>,
    pub entity: Option<String>,
    pub source: Option<String>,
    pub priority: Option<String>,
    pub user: Option<String>,
    pub note: Option<String>,
}

/// Body of "Acknowledge Alert" and "Close Alert"; all optional.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AlertAction {
    pub user: Option<String>,
    pub source: Option<String>,
    pub note: Option<String>,
}

/// The 202 answer: `{"result":"Request will be processed","took":0.302,"requestId":"..."}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Accepted {
    pub result: String,
    pub took: f64,
    pub request_id: String,
}

/// Opsgenie's error answer: `{"message":"...","took":0.0,"requestId":"..."}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Failure {
    pub message: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub errors: BTreeMap<String, String>,
    pub took: f64,
    pub request_id: String,
}
