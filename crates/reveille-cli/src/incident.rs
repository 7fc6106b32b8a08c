//! `reveille incident show ID` (the incident with its timeline) and `reveille incident export ID
//! --format markdown` (the timeline written up for a postmortem).

use anyhow::Result;
use clap::{Subcommand, ValueEnum};
use jiff::Unit;
use reveille_protocol::IncidentDetail;
use reveille_protocol::postmortem::markdown;

use crate::client::{IdArgs, api, clean, line, output};

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
    Ok(api(&args.remote)?.incident(args.id).await?)
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

#[cfg(test)]
mod tests {
    use reveille_protocol::{Incident, TimelineEntry};

    use super::*;

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
