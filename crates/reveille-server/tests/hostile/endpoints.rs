//! The ingest endpoints the hostile corpus is aimed at: how each is reached, a valid body from
//! its vendor's documentation, and which of its fields are required or typed.

use serde_json::{Value, json};

use crate::common::fixture;

/// The kind of value a field must hold; each kind knows values of the wrong type for it.
#[derive(Clone, Copy)]
pub enum Kind {
    Text,
    Map,
    List,
    Struct,
    Count,
    Integer,
    Action,
    Object,
}

impl Kind {
    pub fn wrong(self) -> &'static [&'static str] {
        match self {
            Kind::Text => &["5", "true", "[]", "{}"],
            Kind::Map => &["\"labels\"", "5", "[]", r#"{"k": 5}"#, r#"{"k": null}"#],
            Kind::List => &["\"x\"", "5", "{}"],
            Kind::Struct => &["\"x\"", "5", "[]", "true"],
            Kind::Count => &["-1", "1.5", "\"7\"", "18446744073709551616", "1e400"],
            Kind::Integer => &["1.5", "\"1\"", "9223372036854775808", "-1e400"],
            Kind::Action => &["\"explode\"", "5", "true", "\"TRIGGER\""],
            Kind::Object => &["\"x\"", "5", "[]", "true"],
        }
    }
}

/// How an endpoint is reached and what a valid body for it looks like.
pub struct Endpoint {
    pub name: &'static str,
    pub path: String,
    pub auth: Option<String>,
    pub base: Value,
    pub limit: usize,
    /// An empty body is a valid request (Opsgenie's acknowledge and close).
    pub empty_ok: bool,
    /// JSON pointers of keys a body must have (refused when missing or null).
    pub required: Vec<&'static str>,
    /// JSON pointers of typed fields.
    pub fields: Vec<(&'static str, Kind)>,
    /// Fields where a giant string is refused (not merely truncated).
    pub giant: Vec<&'static str>,
}

pub fn endpoints(key: &str) -> Vec<Endpoint> {
    let pagerduty: Value =
        serde_json::from_str(&fixture("pagerduty_trigger.json").replace("ROUTING_KEY", key))
            .unwrap();
    let without_group_status = |name: &str| {
        let mut body: Value = serde_json::from_str(&fixture(name)).unwrap();
        body.as_object_mut().unwrap().remove("status");
        body
    };
    let alertmanager_fields = vec![
        ("/version", Kind::Text),
        ("/groupKey", Kind::Text),
        ("/receiver", Kind::Text),
        ("/externalURL", Kind::Text),
        ("/truncatedAlerts", Kind::Count),
        ("/groupLabels", Kind::Map),
        ("/commonLabels", Kind::Map),
        ("/commonAnnotations", Kind::Map),
        ("/alerts", Kind::List),
        ("/alerts/0", Kind::Struct),
        ("/alerts/0/status", Kind::Text),
        ("/alerts/0/labels", Kind::Map),
        ("/alerts/0/annotations", Kind::Map),
        ("/alerts/0/startsAt", Kind::Text),
        ("/alerts/0/endsAt", Kind::Text),
        ("/alerts/0/generatorURL", Kind::Text),
        ("/alerts/0/fingerprint", Kind::Text),
    ];
    let mut grafana_fields = alertmanager_fields.clone();
    grafana_fields.extend([
        ("/orgId", Kind::Integer),
        ("/title", Kind::Text),
        ("/state", Kind::Text),
        ("/message", Kind::Text),
        ("/alerts/1/silenceURL", Kind::Text),
        ("/alerts/1/dashboardURL", Kind::Text),
        ("/alerts/1/panelURL", Kind::Text),
        ("/alerts/1/imageURL", Kind::Text),
    ]);
    let opsgenie_action = |action: &str| Endpoint {
        name: if action == "acknowledge" { "opsgenie acknowledge" } else { "opsgenie close" },
        path: format!("/v2/alerts/Life%20is%20too%20short/{action}?identifierType=alias"),
        auth: Some(format!("GenieKey {key}")),
        base: serde_json::from_str(&fixture("opsgenie_ack.json")).unwrap(),
        limit: reveille_server::ingest::EVENT_LIMIT,
        empty_ok: true,
        required: vec![],
        fields: vec![("/user", Kind::Text), ("/source", Kind::Text), ("/note", Kind::Text)],
        giant: vec![],
    };
    vec![
        Endpoint {
            name: "pagerduty",
            path: "/v2/enqueue".into(),
            auth: None,
            base: pagerduty,
            limit: reveille_server::ingest::EVENT_LIMIT,
            empty_ok: false,
            required: vec![
                "/routing_key",
                "/event_action",
                "/payload",
                "/payload/summary",
                "/payload/source",
                "/payload/severity",
            ],
            fields: vec![
                ("/routing_key", Kind::Text),
                ("/event_action", Kind::Text),
                ("/dedup_key", Kind::Text),
                ("/client", Kind::Text),
                ("/client_url", Kind::Text),
                ("/payload", Kind::Struct),
                ("/payload/summary", Kind::Text),
                ("/payload/source", Kind::Text),
                ("/payload/severity", Kind::Text),
                ("/payload/timestamp", Kind::Text),
                ("/payload/component", Kind::Text),
                ("/payload/group", Kind::Text),
                ("/payload/class", Kind::Text),
                ("/images", Kind::List),
                ("/links", Kind::List),
                ("/links/0", Kind::Struct),
                ("/links/0/href", Kind::Text),
                ("/links/0/text", Kind::Text),
            ],
            giant: vec!["/routing_key", "/event_action", "/dedup_key", "/payload/severity"],
        },
        Endpoint {
            name: "alertmanager",
            path: "/api/v1/alertmanager".into(),
            auth: Some(format!("Bearer {key}")),
            base: without_group_status("alertmanager_firing.json"),
            limit: reveille_server::ingest::BATCH_LIMIT,
            empty_ok: false,
            required: vec!["/alerts", "/alerts/0/status"],
            fields: alertmanager_fields,
            giant: vec!["/alerts/0/status"],
        },
        Endpoint {
            name: "grafana",
            path: format!("/api/v1/grafana/{key}"),
            auth: None,
            base: without_group_status("grafana_firing.json"),
            limit: reveille_server::ingest::BATCH_LIMIT,
            empty_ok: false,
            required: vec!["/alerts", "/alerts/0/status", "/alerts/1/status"],
            fields: grafana_fields,
            giant: vec!["/alerts/1/status"],
        },
        Endpoint {
            name: "opsgenie create",
            path: "/v2/alerts".into(),
            auth: Some(format!("GenieKey {key}")),
            base: serde_json::from_str(&fixture("opsgenie_create.json")).unwrap(),
            limit: reveille_server::ingest::EVENT_LIMIT,
            empty_ok: false,
            required: vec!["/message"],
            fields: vec![
                ("/message", Kind::Text),
                ("/alias", Kind::Text),
                ("/description", Kind::Text),
                ("/entity", Kind::Text),
                ("/source", Kind::Text),
                ("/priority", Kind::Text),
                ("/user", Kind::Text),
                ("/note", Kind::Text),
                ("/responders", Kind::List),
                ("/visibleTo", Kind::List),
                ("/actions", Kind::List),
                ("/actions/0", Kind::Text),
                ("/tags", Kind::List),
                ("/tags/1", Kind::Text),
                ("/details", Kind::Map),
            ],
            giant: vec!["/alias", "/priority"],
        },
        opsgenie_action("acknowledge"),
        opsgenie_action("close"),
        Endpoint {
            name: "generic",
            path: "/api/v1/events".into(),
            auth: Some(format!("Bearer {key}")),
            base: json!({
                "action": "trigger", "summary": "Disk full on db-1", "severity": "critical",
                "dedup_key": "disk-db-1", "source": "db-1", "details": {"mount": "/var"},
                "links": [{"href": "https://grafana.example/d/1", "text": "Dashboard"}],
                "runbook": "https://runbooks.example/disk"
            }),
            limit: reveille_server::ingest::EVENT_LIMIT,
            empty_ok: false,
            required: vec!["/summary", "/links/0/href"],
            fields: vec![
                ("/action", Kind::Action),
                ("/summary", Kind::Text),
                ("/severity", Kind::Text),
                ("/dedup_key", Kind::Text),
                ("/source", Kind::Text),
                ("/service", Kind::Text),
                ("/runbook", Kind::Text),
                ("/details", Kind::Object),
                ("/links", Kind::List),
                ("/links/0", Kind::Struct),
                ("/links/0/href", Kind::Text),
                ("/links/0/text", Kind::Text),
            ],
            giant: vec!["/dedup_key", "/severity", "/service"],
        },
    ]
}
