//! `reveille incident show ID` (the incident with its timeline) and `reveille incident export ID
//! --format markdown` (the timeline written up for a postmortem).

use anyhow::Result;
use clap::{Subcommand, ValueEnum};
use jiff::Unit;
use reveille_protocol::IncidentDetail;

use crate::client::{Api, IdArgs, clean, line, output};

#[derive(Subcommand)]
pub enum IncidentCommand {
    /// Show one incident with its timeline.
    Show(IdArgs),
    /// Write an incident's timeline for a postmortem.
    Export {
        #[command(flatten)]
        args: IdArgs,
        #[arg(long, value_enum, default_value = "markdown")]
        format: Format,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Markdown,
}

pub async fn run(command: IncidentCommand) -> Result<()> {
    match command {
        IncidentCommand::Show(args) => {
            let detail = fetch(&args).await?;
            output(&detail, args.remote.json, |d| print!("{}", text(d)))
        }
        IncidentCommand::Export { args, format: Format::Markdown } => {
            print!("{}", markdown(&fetch(&args).await?));
            Ok(())
        }
    }
}

async fn fetch(args: &IdArgs) -> Result<IncidentDetail> {
    Api::new(&args.remote)?.get(&format!("/api/v1/incidents/{}", args.id)).await
}

fn second(t: jiff::Timestamp) -> jiff::Timestamp {
    t.round(Unit::Second).unwrap_or(t)
}

/// The terminal view.
pub fn text(detail: &IncidentDetail) -> String {
    let i = &detail.incident;
    let mut out = format!("{}\n", line(i));
    out += &format!(
        "  urgency {}, source {}, paged {}\n",
        i.urgency.as_str(),
        clean(&i.source),
        clean(&i.paged.join(", "))
    );
    if let Some(runbook) = &i.runbook_url {
        out += &format!("  runbook {}\n", clean(runbook));
    }
    for link in &i.links {
        let text = link.text.as_deref().unwrap_or("");
        out += &format!("  link {} {}\n", clean(text), clean(&link.href));
    }
    for e in &detail.timeline {
        let (kind, actor) = (clean(&e.kind), clean(&e.actor));
        out += &format!("  {}  {kind:<16} {actor:<12} {}\n", second(e.at), clean(&e.message));
    }
    out
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
    use reveille_protocol::{Incident, TimelineEntry};

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

    #[test]
    fn sender_text_cannot_drive_the_terminal() {
        let hostile = "Disk\u{1b}]0;pwned\u{7}\u{1b}[2J\nPAGE  #1 fake\u{202e}txt.exe\u{9b}31m";
        let incident: Incident = serde_json::from_value(serde_json::json!({
            "id": 7, "service": "db\u{1b}[31m", "dedup_key": "k", "state": "acknowledged",
            "urgency": "high", "severity": "critical", "summary": hostile, "source": hostile,
            "details": {}, "links": [{"href": hostile, "text": hostile}], "runbook_url": hostile,
            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
            "acknowledged_by": hostile, "resolved_by": null, "snoozed_until": null,
            "paged": ["alice"]
        }))
        .unwrap();
        let entry = TimelineEntry {
            at: incident.created_at,
            actor: hostile.into(),
            kind: hostile.into(),
            message: hostile.into(),
            data: serde_json::Value::Null,
        };
        let detail = IncidentDetail { incident, timeline: vec![entry] };
        for out in [text(&detail), markdown(&detail)] {
            let forbidden =
                |c: char| (c.is_control() && c != '\n') || ('\u{202a}'..='\u{202e}').contains(&c);
            assert!(!out.chars().any(forbidden), "{out:?}");
            assert!(out.contains("\\u{1b}"), "shown, not obeyed: {out}");
            assert!(!out.lines().any(|l| l.starts_with("PAGE")), "no forged line: {out}");
        }
    }
}
