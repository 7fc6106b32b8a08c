use axum::http::HeaderValue;

use super::*;

fn publish(headers: &[(&'static str, &str)], query: &[(&str, &str)], body: &str) -> Published {
    try_publish(headers, query, body).unwrap()
}

fn try_publish(
    headers: &[(&'static str, &str)],
    query: &[(&str, &str)],
    body: &str,
) -> Result<Published, NtfyError> {
    let mut map = HeaderMap::new();
    for (k, v) in headers {
        map.insert(*k, HeaderValue::from_str(v).unwrap());
    }
    let query: Vec<(String, String)> =
        query.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    from_params("alerts", &Params { headers: &map, query: &query }, body.as_bytes())
}

#[test]
fn every_name_ntfy_reads_a_parameter_by() {
    for (name, in_query) in
        [("x-title", false), ("title", false), ("t", false), ("title", true), ("t", true)]
    {
        let p = if in_query {
            publish(&[], &[(name, "Disk full")], "x")
        } else {
            publish(&[(name, "Disk full")], &[], "x")
        };
        assert_eq!(p.title, "Disk full", "{name} (query: {in_query})");
    }
    for name in ["x-priority", "priority", "prio", "p"] {
        assert_eq!(publish(&[(name, "urgent")], &[], "x").priority, 5, "{name}");
    }
    for name in ["x-tags", "tags", "tag", "ta"] {
        assert_eq!(publish(&[(name, "warning, skull,")], &[], "x").tags, ["warning", "skull"]);
    }
    assert_eq!(publish(&[], &[("click", "https://x.example")], "x").click, "https://x.example");
    assert_eq!(publish(&[("x-sequence-id", "db-1")], &[], "x").sequence_id, "db-1");
    // A header wins over the query, as in ntfy.
    assert_eq!(publish(&[("title", "header")], &[("title", "query")], "x").title, "header");
}

#[test]
fn the_body_is_the_message_and_an_empty_one_is_triggered() {
    assert_eq!(publish(&[], &[], "Backup failed\non db1").message, "Backup failed\non db1");
    assert_eq!(publish(&[], &[("message", "from\\nquery")], "").message, "from\nquery");
    assert_eq!(publish(&[], &[], "").message, "triggered");
}

#[test]
fn rfc_2047_headers_are_decoded_as_ntfy_does() {
    // "Platte voll ✅" base64-encoded.
    let p = publish(&[("title", "=?UTF-8?B?UGxhdHRlIHZvbGwg4pyF?=")], &[], "x");
    assert_eq!(p.title, "Platte voll ✅");
}

#[test]
fn priorities_four_and_five_ring_the_rest_notify() {
    let urgency = |p: &str| {
        let event = publish(&[("priority", p)], &[], "x").to_alert().unwrap();
        reveille_core::UrgencyRule::FromSeverity.urgency(event.severity)
    };
    use reveille_protocol::Urgency::{High, Low};
    for (p, expected) in [
        ("5", High),
        ("max", High),
        ("4", High),
        ("high", High),
        ("3", Low),
        ("", Low),
        ("2", Low),
        ("min", Low),
    ] {
        assert_eq!(urgency(p), expected, "priority {p:?}");
    }
}

#[test]
fn bad_parameters_are_refused_naming_them() {
    let error = |r: Result<Published, NtfyError>| serde_json::to_value(r.unwrap_err()).unwrap();
    let e = error(try_publish(&[("priority", "9")], &[], "x"));
    assert_eq!(e["code"], 40007);
    assert!(e["error"].as_str().unwrap().contains("X-Priority \"9\""), "{e}");
    let e = error(try_publish(&[("actions", "jump, Go, https://x")], &[], "x"));
    assert_eq!((e["code"].as_u64(), e["http"].as_u64()), (Some(40018), Some(400)));
    let e = error(try_publish(&[("delay", "30m")], &[], "x"));
    assert!(e["error"].as_str().unwrap().contains("X-Delay"), "{e}");
    let long = "s".repeat(256);
    let e = serde_json::to_value(
        publish(&[("x-sequence-id", &long)], &[], "x").to_alert().unwrap_err(),
    )
    .unwrap();
    assert!(e["error"].as_str().unwrap().contains("X-Sequence-ID"), "{e}");
}

#[test]
fn the_key_is_the_sequence_id_or_the_exact_text() {
    let key = |h: &[(&'static str, &str)], body: &str| {
        publish(h, &[], body).to_alert().unwrap().dedup_key
    };
    assert_eq!(key(&[("sid", "db-1")], "one"), key(&[("sid", "db-1")], "two"));
    assert_eq!(key(&[("title", "Disk")], "full"), key(&[("title", "Disk")], "full"));
    assert_ne!(key(&[("title", "Disk")], "full"), key(&[("title", "Disk")], "fuller"));
    assert_ne!(key(&[("title", "Disk")], "full"), key(&[("title", "Disk full")], ""));
}

#[test]
fn a_resolving_tag_resolves() {
    let p = publish(&[("sid", "db-1"), ("tags", "White_Check_Mark")], &[], "ok again");
    let event = p.to_alert().unwrap();
    assert_eq!(event.action, EventAction::Resolve);
    assert_eq!(event.dedup_key, "ntfy/alerts/db-1");
    assert_eq!(
        publish(&[("tags", "warning")], &[], "x").to_alert().unwrap().action,
        EventAction::Trigger
    );
}

#[test]
fn click_view_actions_and_attachments_become_links() {
    let p = publish(
        &[
            ("click", "https://grafana.example/d/1"),
            (
                "actions",
                "view, Dashboard, https://grafana.example; http, Restart, https://x.example",
            ),
            ("attach", "https://x.example/graph.png"),
            ("title", "CPU"),
        ],
        &[],
        "load 40",
    );
    let event = p.to_alert().unwrap();
    let links: Vec<(&str, Option<&str>)> =
        event.links.iter().map(|l| (l.href.as_str(), l.text.as_deref())).collect();
    assert_eq!(
        links,
        [
            ("https://grafana.example/d/1", Some("Open")),
            ("https://grafana.example", Some("Dashboard")),
            ("https://x.example/graph.png", Some("Attachment")),
        ]
    );
    assert_eq!(event.summary, "CPU");
    assert_eq!(event.details["ntfy"]["message"], "load 40");
    assert_eq!(event.details["ntfy"]["actions"][1]["label"], "Restart");
}

#[test]
fn json_publishing_wins_over_headers_and_names_its_fields() {
    let mut headers = HeaderMap::new();
    headers.insert("x-priority", HeaderValue::from_static("5"));
    headers.insert("x-title", HeaderValue::from_static("from header"));
    let params = Params { headers: &headers, query: &[] };
    let body = br#"{"topic":"alerts","title":"from JSON","message":"m","tags":["a"],
        "actions":[{"action":"view","label":"Open","url":"https://x.example"}]}"#;
    let p = from_json(&params, body).unwrap();
    assert_eq!((p.title.as_str(), p.priority, p.message.as_str()), ("from JSON", 5, "m"));
    assert_eq!(p.actions.len(), 1);
    let e =
        serde_json::to_value(from_json(&params, br#"{"topic":"a","priority":"x"}"#).unwrap_err())
            .unwrap();
    assert!(e["error"].as_str().unwrap().contains("priority"), "{e}");
    let e = serde_json::to_value(from_json(&params, br#"{"topic":"a b"}"#).unwrap_err()).unwrap();
    assert_eq!(e["code"], 40009);
}
