//! What Reveille stores of one alert event, at most, and the bounded view of an incident that a
//! feed entry carries.
//!
//! Every ingest adapter checks its events with [`check`] before anything is stored, so no sender
//! can make a row that a reader cannot decode again (serde_json refuses input nested deeper than
//! 128) or a feed entry that copies half a megabyte to every paged user. [`feed_view`] is the
//! incident as feeds show it: details past [`FEED_DETAILS_BYTES`] are left out, with a note
//! saying where the whole incident can be read.

use serde_json::{Map, Value, json};

use crate::alert::AlertEvent;
use crate::incident::Incident;

/// Deepest nesting of objects and arrays accepted in an event's details.
pub const MAX_DEPTH: usize = 32;
/// Longest dedup key: Opsgenie's alias limit (PagerDuty's adapter keeps PagerDuty's own 255; an
/// Alertmanager fingerprint is 16 hex digits).
pub const MAX_KEY: usize = 512;
/// Longest summary, in characters (PagerDuty keeps the first 1024; adapters truncate to it).
pub const MAX_SUMMARY: usize = 1024;
/// Longest `source`, link, link text or runbook URL, in characters.
pub const MAX_TEXT: usize = 2048;
/// Most links on one event.
pub const MAX_LINKS: usize = 64;
/// Largest encoded details of one event, in bytes (PagerDuty's whole-event limit).
pub const MAX_DETAILS_BYTES: usize = 512 * 1024;
/// Most alerts of one Alertmanager or Grafana notification that become incidents of their own;
/// the rest are gathered into one (see the Alertmanager adapter).
pub const MAX_GROUP_ALERTS: usize = 1000;
/// Largest encoded details a feed entry carries; past it the device reads the incident itself.
pub const FEED_DETAILS_BYTES: usize = 16 * 1024;

/// Which part of an event is out of bounds; each adapter names it in its own format's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    DedupKey,
    Summary,
    Source,
    Details,
    /// The link at this index.
    Link(usize),
    RunbookUrl,
}

/// An event part that is out of bounds, with a message for the sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutOfBounds {
    pub part: Part,
    pub message: String,
}

/// Refuses an event Reveille would not store whole.
pub fn check(event: &AlertEvent) -> Result<(), OutOfBounds> {
    let too_long = |part, what: &str, text: &str, max: usize| {
        let n = text.chars().count();
        if n > max {
            Err(OutOfBounds { part, message: format!("{what} is {n} characters; at most {max}") })
        } else {
            Ok(())
        }
    };
    too_long(Part::DedupKey, "the dedup key", &event.dedup_key, MAX_KEY)?;
    too_long(Part::Summary, "the summary", &event.summary, MAX_SUMMARY)?;
    too_long(Part::Source, "the source", &event.source, MAX_TEXT)?;
    if event.links.len() > MAX_LINKS {
        let message = format!("{} links; at most {MAX_LINKS}", event.links.len());
        return Err(OutOfBounds { part: Part::Link(MAX_LINKS), message });
    }
    for (i, link) in event.links.iter().enumerate() {
        too_long(Part::Link(i), "the link", &link.href, MAX_TEXT)?;
        too_long(Part::Link(i), "the link text", link.text.as_deref().unwrap_or(""), MAX_TEXT)?;
    }
    too_long(
        Part::RunbookUrl,
        "the runbook URL",
        event.runbook_url.as_deref().unwrap_or(""),
        MAX_TEXT,
    )?;
    let depth = depth(&event.details);
    if depth > MAX_DEPTH {
        let message = format!("the details nest {depth} levels deep; at most {MAX_DEPTH}");
        return Err(OutOfBounds { part: Part::Details, message });
    }
    let bytes = encoded_len(&event.details);
    if bytes > MAX_DETAILS_BYTES {
        let message = format!("the details take {bytes} bytes; at most {MAX_DETAILS_BYTES}");
        return Err(OutOfBounds { part: Part::Details, message });
    }
    Ok(())
}

/// The incident as a feed entry carries it: everything but details too large to copy to every
/// device, which are replaced by a note.
pub fn feed_view(incident: &Incident) -> Incident {
    let bytes = encoded_len(&incident.details);
    let mut view = incident.clone();
    if bytes > FEED_DETAILS_BYTES || depth(&incident.details) > MAX_DEPTH {
        let mut note = Map::new();
        note.insert(
            "omitted".into(),
            json!(format!(
                "{bytes} bytes of details; read them at /api/v1/incidents/{}",
                incident.id
            )),
        );
        view.details = Value::Object(note);
    }
    view
}

/// How deeply objects and arrays nest in `value` (a scalar is 0), without recursion.
pub fn depth(value: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(value, 0)];
    while let Some((value, level)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match value {
            Value::Array(items) => Box::new(items.iter()),
            Value::Object(map) => Box::new(map.values()),
            _ => continue,
        };
        deepest = deepest.max(level + 1);
        stack.extend(children.map(|child| (child, level + 1)));
    }
    deepest
}

/// Bytes of `value` encoded as JSON, without building the text.
fn encoded_len(value: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing a Value to a counter cannot fail.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Action, Severity};

    fn event(details: Value) -> AlertEvent {
        AlertEvent {
            action: Action::Trigger,
            dedup_key: "k".into(),
            summary: "disk full".into(),
            severity: Severity::Critical,
            source: "db1".into(),
            details,
            links: vec![],
            runbook_url: None,
            occurred_at: None,
        }
    }

    fn nested(levels: usize) -> Value {
        (0..levels).fold(json!(1), |inner, _| json!({ "a": inner }))
    }

    #[test]
    fn depth_counts_objects_and_arrays() {
        assert_eq!(depth(&json!(1)), 0);
        assert_eq!(depth(&json!({})), 1);
        assert_eq!(depth(&json!({"a": [1, {"b": []}]})), 4);
        assert_eq!(depth(&nested(125)), 125);
    }

    #[test]
    fn details_nested_past_the_limit_are_refused_and_at_the_limit_accepted() {
        assert_eq!(check(&event(nested(MAX_DEPTH))), Ok(()));
        let refused = check(&event(nested(MAX_DEPTH + 1))).unwrap_err();
        assert_eq!(refused.part, Part::Details);
        assert!(refused.message.contains("33 levels"), "{}", refused.message);
    }

    #[test]
    fn a_long_dedup_key_is_refused() {
        let mut e = event(json!({}));
        e.dedup_key = "f".repeat(10_000);
        assert_eq!(check(&e).unwrap_err().part, Part::DedupKey);
    }

    #[test]
    fn a_feed_entry_leaves_out_large_details_and_keeps_small_ones() {
        let incident = |details| Incident {
            id: 7,
            service: "db".into(),
            dedup_key: "k".into(),
            state: crate::IncidentState::Triggered,
            urgency: crate::Urgency::High,
            severity: Severity::Critical,
            summary: "disk full".into(),
            source: "db1".into(),
            details,
            links: vec![],
            runbook_url: None,
            created_at: jiff::Timestamp::UNIX_EPOCH,
            updated_at: jiff::Timestamp::UNIX_EPOCH,
            acknowledged_by: None,
            resolved_by: None,
            snoozed_until: None,
            paged: vec!["alice".into()],
            escalation: None,
            drill: false,
            silent: vec![],
        };
        let small = incident(json!({"host": "db1"}));
        assert_eq!(feed_view(&small), small);
        let large = incident(json!({"log": "x".repeat(FEED_DETAILS_BYTES)}));
        let view = feed_view(&large);
        assert_eq!(view.summary, "disk full");
        let note = view.details["omitted"].as_str().unwrap();
        assert!(note.contains("/api/v1/incidents/7"), "{note}");
    }
}
