//! A corpus of malformed and hostile bodies, made by crossing classes of damage with the fields
//! of every ingest endpoint (PagerDuty, Alertmanager, Grafana, Opsgenie create / acknowledge /
//! close, the generic events API). Every one must be answered 4xx with a JSON message that names
//! the field at fault where there is one, must store nothing, and must not panic the server.
//! Requests go through [`reveille_server::router`] in-process with `oneshot`.

mod common;
#[path = "hostile/endpoints.rs"]
mod endpoints;

use axum::body::Body;
use axum::http::{Request, header};
use common::Harness;
use endpoints::{Endpoint, Kind, endpoints};
use reveille_store::IncidentFilter;
use serde_json::{Value, json};
use tower::ServiceExt;

/// Stands for the raw bytes a case splices into an otherwise valid body.
const HOLE: &str = "@@HOLE@@";

struct Case {
    endpoint: usize,
    class: &'static str,
    body: Vec<u8>,
    content_type: &'static str,
    /// A name the answer must mention.
    names: Option<String>,
}

/// The last named (non-index) segment of a JSON pointer: what an answer must mention.
fn leaf(pointer: &str) -> String {
    pointer.rsplit('/').find(|s| s.parse::<usize>().is_err()).unwrap_or_default().to_owned()
}

/// `base` with the value at `pointer` replaced by `raw` bytes (None: the key removed).
fn with(base: &Value, pointer: &str, raw: Option<&[u8]>) -> Vec<u8> {
    let mut body = base.clone();
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let parent = body.pointer_mut(parent).unwrap_or_else(|| panic!("no {parent} in the base"));
    match (parent, raw) {
        (Value::Object(map), None) => {
            map.remove(key);
        }
        (Value::Object(map), Some(_)) => {
            map.insert(key.to_owned(), json!(HOLE));
        }
        (Value::Array(items), Some(_)) => items[key.parse::<usize>().unwrap()] = json!(HOLE),
        (other, _) => panic!("cannot edit {pointer} in {other}"),
    }
    splice(&body.to_string(), raw.unwrap_or_default())
}

/// Replaces the quoted hole in `text` by `raw`.
fn splice(text: &str, raw: &[u8]) -> Vec<u8> {
    let quoted = format!("\"{HOLE}\"");
    let Some(at) = text.find(&quoted) else {
        return text.as_bytes().to_vec();
    };
    [&text.as_bytes()[..at], raw, &text.as_bytes()[at + quoted.len()..]].concat()
}

/// Every class of damage, for every endpoint.
fn corpus(endpoints: &[Endpoint]) -> Vec<Case> {
    let mut cases = Vec::new();
    for (endpoint, e) in endpoints.iter().enumerate() {
        let text = e.base.to_string();
        let mut add = |class, body: Vec<u8>, names: Option<String>| {
            cases.push(Case { endpoint, class, body, content_type: "application/json", names });
        };
        if !e.empty_ok {
            add("empty body", Vec::new(), None);
            add("blank body", b" \r\n\t ".to_vec(), None);
        }
        for cut in [1, text.len() / 3, text.len() / 2, text.len() - 1] {
            add("truncated", text.as_bytes()[..cut].to_vec(), None);
        }
        let (text_field, _) = *e.fields.iter().find(|(_, k)| matches!(k, Kind::Text)).unwrap();
        let named = Some(leaf(text_field));
        for bad in [&b"\"caf\xe9\""[..], b"\"\xff\xfe\"", b"\"\xc0\x80\"", b"\"\xed\xa0\x80\""] {
            add("invalid UTF-8", with(&e.base, text_field, Some(bad)), named.clone());
        }
        add("NUL in a string", with(&e.base, text_field, Some(b"\"a\0b\"")), named.clone());
        let stray = Some(&b"\"\xff\xfe\""[..]);
        add("invalid UTF-8 in an unknown field", with(&e.base, "/comment", stray), None);
        add("NUL before the body", [b"\0".as_slice(), text.as_bytes()].concat(), None);
        add("control character", with(&e.base, text_field, Some(b"\"a\x07\nb\"")), named);
        for top in ["null", "true", "42", "\"an alert\"", "[]", "[{}]"] {
            add("not an object", top.as_bytes().to_vec(), None);
        }
        add("not an object", format!("[{text}]").into_bytes(), None);
        add("trailing garbage", format!("{text}}}").into_bytes(), None);
        add("two bodies", format!("{text}{text}").into_bytes(), None);
        add("not JSON", b"<alert severity=\"critical\"/>".to_vec(), None);
        add("form fields", b"summary=disk+full&severity=critical".to_vec(), None);
        add("deep nesting", "[".repeat(100_000).into_bytes(), None);
        add("deep nesting", "{\"a\":".repeat(50_000).into_bytes(), None);
        let deep = format!("{}{}", "[".repeat(5_000), "]".repeat(5_000));
        let (first, _) = e.fields[0];
        add("deep nesting in a field", with(&e.base, first, Some(deep.as_bytes())), None);
        let (key, value) = e.base.as_object().unwrap().iter().next().unwrap();
        let duplicated = format!("{{\"{key}\":{value},{}", &text[1..]);
        add("duplicate key", duplicated.into_bytes(), Some(key.clone()));
        let pad = format!("{{\"padding\":\"{}\",{}", "x".repeat(e.limit), &text[1..]);
        add("over the size limit", pad.into_bytes(), None);
        for &(pointer, kind) in &e.fields {
            for wrong in kind.wrong() {
                add(
                    "wrong type",
                    with(&e.base, pointer, Some(wrong.as_bytes())),
                    Some(leaf(pointer)),
                );
            }
        }
        for &pointer in &e.required {
            add("missing key", with(&e.base, pointer, None), Some(leaf(pointer)));
            add("null", with(&e.base, pointer, Some(b"null")), Some(leaf(pointer)));
            add("blank", with(&e.base, pointer, Some(b"\"  \"")), Some(leaf(pointer)));
        }
        let giant = format!("\"{}\"", "Z".repeat(200_000));
        let typed = e.fields.iter().find(|(_, kind)| !matches!(kind, Kind::Text));
        for &pointer in e.giant.iter().chain(typed.map(|(pointer, _)| pointer)) {
            add(
                "giant string",
                with(&e.base, pointer, Some(giant.as_bytes())),
                Some(leaf(pointer)),
            );
        }
        let valid = text.into_bytes();
        for content_type in
            ["text/html", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"]
        {
            cases.push(Case {
                endpoint,
                class: "wrong Content-Type",
                body: valid.clone(),
                content_type,
                names: Some("Content-Type".into()),
            });
        }
    }
    cases
}

/// What must not change: every incident, the feed's head, the raw events.
async fn stored(h: &Harness, side: &rusqlite::Connection) -> (usize, i64, i64) {
    let filter = IncidentFilter { limit: 1000, ..Default::default() };
    let incidents = h.store().incidents(filter).await.unwrap().len();
    let head = h.store().feed_head().await.unwrap();
    let events: i64 = side.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0)).unwrap();
    (incidents, head, events)
}

#[tokio::test]
async fn hostile_bodies_are_refused_with_a_clear_message_and_nothing_is_stored() {
    let config = common::CONFIG.replace("rate_per_minute = 1000", "rate_per_minute = 1000000");
    let h = Harness::with_config(&config).await;
    let side = rusqlite::Connection::open(&h.db).unwrap();
    let app = reveille_server::router(h.state.clone());
    let endpoints = endpoints(&h.key);
    let cases = corpus(&endpoints);
    let mut before = stored(&h, &side).await;
    let mut failures = Vec::new();
    for case in &cases {
        let e = &endpoints[case.endpoint];
        let mut request = Request::post(&e.path).header(header::CONTENT_TYPE, case.content_type);
        if let Some(auth) = &e.auth {
            request = request.header(header::AUTHORIZATION, auth);
        }
        let request = request.body(Body::from(case.body.clone())).unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let answer = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        let answer: Value = serde_json::from_slice(&answer).unwrap_or(Value::Null);
        let message = answer["message"].as_str().unwrap_or_default();
        let text = answer.to_string();
        let now = stored(&h, &side).await;
        let changed = std::mem::replace(&mut before, now) != now;
        let problem = if !status.is_client_error() {
            Some(format!("answered {status}"))
        } else if changed {
            Some(format!("{status} but something was stored"))
        } else if message.trim().is_empty() || message.starts_with(':') {
            Some(format!("{status} without a clear message: {text}"))
        } else if text.len() > 2_000 {
            Some(format!("{status} with a message of {} bytes", text.len()))
        } else {
            let unnamed = case.names.as_ref().filter(|n| !text.contains(n.as_str()));
            unnamed.map(|name| format!("{status} does not name {name:?}: {text}"))
        };
        if let Some(problem) = problem {
            let shown =
                String::from_utf8_lossy(&case.body[..case.body.len().min(160)]).into_owned();
            failures.push(format!("{} / {}: {problem}\n    body: {shown}", e.name, case.class));
        }
    }
    let classes: std::collections::BTreeSet<&str> = cases.iter().map(|c| c.class).collect();
    println!(
        "hostile: {} bodies ({} classes of damage) over {} endpoints: {} refused as they should be, {} not",
        cases.len(),
        classes.len(),
        endpoints.len(),
        cases.len() - failures.len(),
        failures.len()
    );
    assert!(cases.len() >= 200, "the corpus has only {} bodies", cases.len());
    assert!(
        failures.is_empty(),
        "{} of {} bodies:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert_eq!(stored(&h, &side).await, before, "nothing stored");
}
