//! Client commands against a running server: page, ack, resolve, snooze, incidents, incident.

use anyhow::{Context, Result};
use clap::Args;
use jiff::{Timestamp, Unit};
use reveille_protocol::api::{EventAccepted, GenericEvent, IncidentList, SnoozeRequest};
use reveille_protocol::{Incident, IncidentState};
use serde::Serialize;

use reveille_client::Api;

use crate::Remote;

/// The server's API for `remote`: the one typed client of `reveille-client`, as the desktop uses.
pub fn api(remote: &Remote) -> Result<Api> {
    let token = remote.token.clone().filter(|t| !t.is_empty()).context(
        "no token: pass --token or set REVEILLE_TOKEN (create one with `reveille token create`)",
    )?;
    Ok(Api::new(&remote.server, &token, concat!("reveille/", env!("CARGO_PKG_VERSION")))?)
}

/// Prints `value` as JSON, or as `text` renders it.
pub fn output<T: Serialize>(value: &T, json: bool, text: impl FnOnce(&T)) -> Result<()> {
    if json {
        return print_json(value);
    }
    text(value);
    Ok(())
}

pub fn print_json(value: &impl Serialize) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

fn print_incident(incident: &Incident, json: bool) -> Result<()> {
    if json {
        return print_json(incident);
    }
    println!("{}", line(incident));
    Ok(())
}

pub use reveille_protocol::postmortem::clean;

/// One line per incident.
pub fn line(i: &Incident) -> String {
    let age = Timestamp::now()
        .since(i.created_at)
        .ok()
        .and_then(|span| span.round(Unit::Second).ok())
        .map_or(String::new(), |span| format!(" {span:#}"));
    let who = match i.state {
        IncidentState::Acknowledged => {
            i.acknowledged_by.as_deref().map(|b| format!(" by {}", clean(b)))
        }
        IncidentState::Resolved => i.resolved_by.as_deref().map(|b| format!(" by {}", clean(b))),
        IncidentState::Snoozed => i.snoozed_until.map(|t| format!(" until {t}")),
        IncidentState::Triggered => None,
    }
    .unwrap_or_default();
    format!(
        "#{:<5} {:<12} {:<8} {:<14} {}{who} (age{age})",
        i.id,
        i.state.as_str(),
        i.severity.as_str(),
        clean(&i.service),
        clean(&i.summary)
    )
}

#[derive(Args)]
pub struct PageArgs {
    #[arg(long)]
    service: String,
    #[arg(long)]
    summary: String,
    /// critical, error, warning or info (default: the service's default severity).
    #[arg(long)]
    severity: Option<String>,
    /// A runbook URL for this page.
    #[arg(long)]
    runbook: Option<String>,
    /// Pages with the same key merge into one open incident.
    #[arg(long)]
    dedup_key: Option<String>,
    #[arg(long)]
    source: Option<String>,
    #[command(flatten)]
    remote: Remote,
}

pub async fn page(args: PageArgs) -> Result<()> {
    let api = api(&args.remote)?;
    let event = GenericEvent {
        service: Some(args.service),
        summary: Some(args.summary),
        severity: args.severity,
        runbook: args.runbook,
        dedup_key: args.dedup_key,
        source: args.source.or_else(|| Some("reveille-cli".into())),
        ..GenericEvent::default()
    };
    let accepted: EventAccepted = api.post("/api/v1/events", &event).await?;
    if args.remote.json {
        return print_json(&accepted);
    }
    match accepted.incident_id {
        Some(id) => println!("Paged: incident #{id} (dedup key {})", accepted.dedup_key),
        None => println!("Accepted (dedup key {})", accepted.dedup_key),
    }
    Ok(())
}

#[derive(Args)]
pub struct IdArgs {
    /// The incident's number.
    pub id: i64,
    #[command(flatten)]
    pub remote: Remote,
}

pub async fn command(args: IdArgs, verb: &str) -> Result<()> {
    let api = api(&args.remote)?;
    let incident: Incident =
        api.post(&format!("/api/v1/incidents/{}/{verb}", args.id), &()).await?;
    print_incident(&incident, args.remote.json)
}

#[derive(Args)]
pub struct SnoozeArgs {
    id: i64,
    /// How long to stay quiet.
    #[arg(long, default_value_t = 15)]
    minutes: u64,
    #[command(flatten)]
    remote: Remote,
}

pub async fn snooze(args: SnoozeArgs) -> Result<()> {
    let api = api(&args.remote)?;
    let body = SnoozeRequest { seconds: args.minutes * 60 };
    let incident: Incident =
        api.post(&format!("/api/v1/incidents/{}/snooze", args.id), &body).await?;
    print_incident(&incident, args.remote.json)
}

#[derive(Args)]
pub struct ListArgs {
    /// Include resolved incidents.
    #[arg(long)]
    all: bool,
    /// Only incidents you were paged for.
    #[arg(long)]
    mine: bool,
    #[command(flatten)]
    remote: Remote,
}

pub async fn list(args: ListArgs) -> Result<()> {
    let api = api(&args.remote)?;
    let list: IncidentList =
        api.get(&format!("/api/v1/incidents?all={}&mine={}", args.all, args.mine)).await?;
    if args.remote.json {
        return print_json(&list);
    }
    if list.incidents.is_empty() {
        println!("No {}incidents.", if args.all { "" } else { "open " });
    }
    for incident in &list.incidents {
        println!("{}", line(incident));
    }
    Ok(())
}
