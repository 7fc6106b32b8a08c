//! Prometheus Alertmanager webhook (version 4), and Grafana's webhook, which extends it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One webhook notification: a group of alerts.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Message {
    pub version: Option<String>,
    #[serde(rename = "groupKey")]
    pub group_key: Option<String>,
    #[serde(rename = "truncatedAlerts", default)]
    pub truncated_alerts: u64,
    pub status: Option<String>,
    pub receiver: Option<String>,
    #[serde(rename = "groupLabels", default)]
    pub group_labels: BTreeMap<String, String>,
    #[serde(rename = "commonLabels", default)]
    pub common_labels: BTreeMap<String, String>,
    #[serde(rename = "commonAnnotations", default)]
    pub common_annotations: BTreeMap<String, String>,
    #[serde(rename = "externalURL")]
    pub external_url: Option<String>,
    pub alerts: Option<Vec<Alert>>,
    // Grafana's additions.
    #[serde(rename = "orgId")]
    pub org_id: Option<i64>,
    pub title: Option<String>,
    pub state: Option<String>,
    pub message: Option<String>,
}

/// One alert of the group.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Alert {
    pub status: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(rename = "startsAt")]
    pub starts_at: Option<String>,
    #[serde(rename = "endsAt")]
    pub ends_at: Option<String>,
    #[serde(rename = "generatorURL")]
    pub generator_url: Option<String>,
    pub fingerprint: Option<String>,
    // Grafana's additions.
    pub values: Option<serde_json::Value>,
    #[serde(rename = "silenceURL")]
    pub silence_url: Option<String>,
    #[serde(rename = "dashboardURL")]
    pub dashboard_url: Option<String>,
    #[serde(rename = "panelURL")]
    pub panel_url: Option<String>,
    #[serde(rename = "imageURL")]
    pub image_url: Option<String>,
}
