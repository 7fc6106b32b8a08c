//! `reveille watch`: follows the token's feed in a terminal, printing each page and change.
//! Reconnects with capped backoff and resumes from the last id; a refused token ends it.

use std::time::Duration;

use anyhow::{Result, bail};
use clap::Args;
use futures_util::StreamExt;
use reveille_protocol::api::IncidentList;
use reveille_protocol::feed::FeedOpen;
use reveille_protocol::{FeedEvent, FeedKind, IncidentState, Urgency};

use crate::Remote;
use crate::client::{Api, line};
use reveille_protocol::sse::Parser;

#[derive(Args)]
pub struct WatchArgs {
    /// Replay the feed after this id instead of starting with what is new.
    #[arg(long)]
    since: Option<i64>,
    #[command(flatten)]
    remote: Remote,
}

/// With heartbeats every 15 s, three missed ones mean the connection is dead.
const SILENCE: Duration = Duration::from_secs(45);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Why a connection ended: the link broke, after or before the stream opened.
struct Lost {
    why: String,
    opened: bool,
}

pub async fn watch(args: WatchArgs) -> Result<()> {
    let api = Api::new(&args.remote)?;
    let mut last = args.since;
    let mut backoff = Duration::from_secs(1);
    loop {
        let lost = follow(&api, &mut last, args.remote.json).await?;
        if lost.opened {
            backoff = Duration::from_secs(1);
        }
        eprintln!("feed lost ({}); reconnecting in {}s", lost.why, backoff.as_secs());
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

async fn follow(api: &Api, last: &mut Option<i64>, json: bool) -> Result<Lost> {
    let lost = |why: String, opened| Ok(Lost { why, opened });
    let mut request = api.request(reqwest::Method::GET, "/api/v1/feed");
    if let Some(id) = last {
        request = request.header("Last-Event-ID", id.to_string());
    }
    let response = match request.send().await {
        Ok(response) => response,
        Err(e) => return lost(e.to_string(), false),
    };
    let status = response.status();
    if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
        let body = response.text().await.unwrap_or_default();
        let message =
            serde_json::from_str::<reveille_protocol::ErrorBody>(&body).map_or(body, |e| e.message);
        bail!("the server refused the token: {message}");
    }
    if !status.is_success() {
        return lost(format!("server answered {status}"), false);
    }
    let mut body = response.bytes_stream();
    let mut parser = Parser::default();
    loop {
        let chunk = match tokio::time::timeout(SILENCE, body.next()).await {
            Err(_) => return lost("no heartbeat for 45 s".into(), true),
            Ok(None) => return lost("the server closed the stream".into(), true),
            Ok(Some(Err(e))) => return lost(e.to_string(), true),
            Ok(Some(Ok(chunk))) => chunk,
        };
        for event in parser.push(&chunk) {
            match event.event.as_str() {
                "open" if last.is_none() => {
                    let open: FeedOpen = serde_json::from_str(&event.data)?;
                    // Resume from here after a drop, so nothing sent meanwhile is missed.
                    *last = Some(open.head);
                    show_open(api, json).await?;
                    eprintln!("watching your pages (Ctrl-C to stop)");
                }
                "page" | "incident" => {
                    let entry: FeedEvent = serde_json::from_str(&event.data)?;
                    *last = Some(entry.id);
                    if json {
                        println!("{}", event.data);
                    } else {
                        show(&entry);
                    }
                }
                _ => {}
            }
        }
    }
}

/// What was already open when watching started: pages do not wait for the watcher.
async fn show_open(api: &Api, json: bool) -> Result<()> {
    let list: IncidentList = api.get("/api/v1/incidents?mine=true").await?;
    for incident in list.incidents.iter().rev() {
        if json {
            println!("{}", serde_json::json!({ "kind": "open", "incident": incident }));
        } else {
            println!("OPEN  {}", line(incident));
        }
    }
    Ok(())
}

fn show(entry: &FeedEvent) {
    let i = &entry.incident;
    match entry.kind {
        FeedKind::Page => {
            let bell = if i.urgency == Urgency::High { "\x07" } else { "" };
            println!("{bell}PAGE  {}", line(i));
            if let Some(runbook) = &i.runbook_url {
                println!("      runbook: {}", crate::client::clean(runbook));
            }
            println!("      acknowledge: reveille ack {}", i.id);
        }
        FeedKind::Incident => {
            let label = match i.state {
                IncidentState::Acknowledged => "ACKED",
                IncidentState::Resolved => "DONE ",
                IncidentState::Snoozed => "SNOOZ",
                IncidentState::Triggered => "OPEN ",
            };
            println!("{label} {}", line(i));
        }
    }
}
