//! `reveille watch`: follows the token's feed in a terminal, printing each page and change, with
//! the desktop's subscriber (`reveille-client`); a refused token ends it.

use std::sync::Arc;

use anyhow::{Result, bail};
use clap::Args;
use reveille_client::conn::Policy;
use reveille_client::{Api, Config, Device, Sound, Subscriber};
use reveille_protocol::api::IncidentList;
use reveille_protocol::{FeedEvent, FeedKind, Incident, IncidentState, Urgency};

use crate::Remote;
use crate::client::{api, line};

#[derive(Args)]
pub struct WatchArgs {
    /// Replay the feed after this id instead of starting with what is new.
    #[arg(long)]
    since: Option<i64>,
    #[command(flatten)]
    remote: Remote,
}

/// The terminal as a device: it prints every feed entry, says when the feed is lost, and stops
/// when the token is refused. It sends no receipts: a terminal is not a pager.
struct Terminal {
    json: bool,
    refused: tokio::sync::mpsc::UnboundedSender<String>,
}

impl Device for Terminal {
    fn ring(&self) {}
    fn silence(&self) {}
    fn notify(&self, _: &Incident) {}
    fn show(&self, _: &Incident) {}
    fn withdraw(&self, _: i64) {}

    fn entry(&self, entry: &FeedEvent) {
        if self.json {
            println!("{}", serde_json::to_string(entry).unwrap_or_default());
        } else {
            show(entry);
        }
    }

    fn feed_lost(&self, lost: bool) {
        if lost {
            eprintln!("FEED LOST: no contact with the server; still trying (you may miss pages)");
        } else {
            eprintln!("feed back");
        }
    }

    fn refused(&self, message: &str) {
        let _ = self.refused.send(message.to_owned());
    }

    fn sound(&self) -> Sound {
        Sound { volume: None, silent: true, output: None }
    }
}

/// Follows the feed with the same subscriber as the desktop (backoff with jitter, a watchdog of
/// three heartbeats, a fresh connection after the machine slept, resuming from the last id).
pub async fn watch(args: WatchArgs) -> Result<()> {
    let api = api(&args.remote)?;
    let json = args.remote.json;
    show_open(&api, json).await?;
    let (refused_tx, mut refused) = tokio::sync::mpsc::unbounded_channel();
    let config = Config {
        server: api.server().to_owned(),
        token: api.token().to_owned(),
        device: "terminal".into(),
        // Never written: a terminal acknowledges with `reveille ack`.
        outbox: std::env::temp_dir().join(format!("reveille-watch-{}.json", std::process::id())),
        policy: Policy::default(),
        agent: concat!("reveille/", env!("CARGO_PKG_VERSION")).into(),
        receipts: false,
        resume: args.since,
    };
    let subscriber = Subscriber::start(config, Arc::new(Terminal { json, refused: refused_tx }))?;
    let mut status = subscriber.status.clone();
    tokio::select! {
        connected = status.wait_for(|s| s.connected) => {
            connected?;
            eprintln!("watching your pages (Ctrl-C to stop)");
        }
        message = refused.recv() => bail!("{}", message.unwrap_or_default()),
    }
    let message = refused.recv().await.unwrap_or_default();
    bail!("{message}")
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
