//! The postmortem write-up of an incident as markdown (`reveille incident export`, and the web
//! console's download), and [`clean`], which makes sender text safe to print.

use jiff::Unit;

use crate::IncidentDetail;

/// Text from a sender, made safe for a terminal: control characters (escape sequences that could
/// rewrite the screen, newlines that could forge lines) and bidirectional overrides are shown as
/// `\u{..}` instead of being obeyed.
pub fn clean(text: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| {
        c.is_control()
            || matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
    };
    if !text.chars().any(unsafe_char) {
        return text.into();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out.into()
}

fn second(t: jiff::Timestamp) -> jiff::Timestamp {
    t.round(Unit::Second).unwrap_or(t)
}

/// The postmortem view: a heading, the facts, and the timeline as a table.
pub fn markdown(detail: &IncidentDetail) -> String {
    let i = &detail.incident;
    let cell = |s: &str| clean(&s.replace('|', "\\|").replace('\n', " ")).into_owned();
    let mut out = format!("# Incident #{}: {}\n\n", i.id, cell(&i.summary));
    let drill = if i.drill { " (drill)" } else { "" };
    out += &format!("- **Service:** {}{drill}\n", cell(&i.service));
    out += &format!("- **Severity:** {} ({} urgency)\n", i.severity.as_str(), i.urgency.as_str());
    out += &format!("- **State:** {}\n", i.state.as_str());
    out += &format!("- **Opened:** {}\n", second(i.created_at));
    let rounding = jiff::SpanRound::new().largest(Unit::Hour).smallest(Unit::Second);
    let first = |kind: &str| detail.timeline.iter().find(|e| e.kind == kind);
    for (label, kind) in [("Acknowledged", "acknowledged"), ("Resolved", "resolved")] {
        if let Some(e) = first(kind) {
            let after = e.at.since(i.created_at).ok().and_then(|s| s.round(rounding).ok());
            let after = after.map_or(String::new(), |s| format!(", {s:#} after opening"));
            out += &format!("- **{label}:** {} by {}{after}\n", second(e.at), cell(&e.actor));
        }
    }
    out += &format!("- **Paged:** {}\n", i.paged.join(", "));
    if let Some(runbook) = &i.runbook_url {
        out += &format!("- **Runbook:** <{}>\n", cell(runbook));
    }
    out += "\n## Timeline\n\n| Time (UTC) | Who | What | Details |\n| --- | --- | --- | --- |\n";
    for e in &detail.timeline {
        out += &format!(
            "| {} | {} | {} | {} |\n",
            second(e.at),
            cell(&e.actor),
            cell(&e.kind),
            cell(&e.message)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::{Incident, TimelineEntry};

    use super::*;

    #[test]
    fn the_markdown_export_has_the_facts_and_an_escaped_timeline() {
        let at = |s: i64| jiff::Timestamp::from_second(1_800_000_000 + s).unwrap();
        let incident: Incident = serde_json::from_value(serde_json::json!({
            "id": 7, "service": "db", "dedup_key": "k", "state": "resolved", "urgency": "high",
            "severity": "critical", "summary": "Disk | full", "source": "db-1", "details": {},
            "links": [], "runbook_url": null, "created_at": at(0), "updated_at": at(90),
            "acknowledged_by": "alice", "resolved_by": "bob", "snoozed_until": null,
            "paged": ["alice"]
        }))
        .unwrap();
        let entry = |s, actor: &str, kind: &str, message: &str| TimelineEntry {
            at: at(s),
            actor: actor.into(),
            kind: kind.into(),
            message: message.into(),
            data: serde_json::Value::Null,
        };
        let detail = IncidentDetail {
            incident,
            timeline: vec![
                entry(0, "pagerduty", "triggered", "Triggered"),
                entry(75, "alice", "acknowledged", "Acknowledged by alice"),
                entry(90, "bob", "resolved", "Resolved by bob"),
            ],
        };
        let md = markdown(&detail);
        assert!(md.starts_with("# Incident #7: Disk \\| full\n"), "{md}");
        assert!(
            md.contains(
                "- **Acknowledged:** 2027-01-15T08:01:15Z by alice, 1m 15s after opening\n"
            ),
            "{md}"
        );
        assert!(
            md.contains("| 2027-01-15T08:01:30Z | bob | resolved | Resolved by bob |\n"),
            "{md}"
        );
    }
}
