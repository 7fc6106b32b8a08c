//! The pagers besides Reveille (PagerDuty, Opsgenie, Alertmanager, ntfy) on this desktop: each
//! with its credential in the OS keyring, followed by a `reveille_client::sources` poller whose
//! device is this app under the source's own slot, and with its health on a tray line and in the
//! settings window.

use std::sync::Arc;
use std::time::Duration;

use reveille_client::desktop::{Event, SOURCES};
use reveille_client::sources::{self, Handle, Health, Kind, SourceConfig, Timing};
use serde::Serialize;
use tauri::{AppHandle, Runtime};

use crate::error::{Error, Result};
use crate::{Shared, device, lock, secrets, tray};

/// The name of the source in `slot`, if one is followed there.
pub fn name<R: Runtime>(shared: &Shared<R>, slot: u8) -> Option<String> {
    lock(&shared.sources).iter().find(|h| h.slot == slot).map(|h| h.config.name.clone())
}

/// A source as the settings window shows it.
#[derive(Debug, Clone, Serialize)]
pub struct SourceView {
    pub name: String,
    pub kind: Kind,
    pub url: String,
    pub health: Health,
    /// The tray's line for it.
    pub line: String,
}

/// The keyring account of a source's credential.
fn account(name: &str) -> String {
    format!("source:{name}")
}

/// What the tray says of a source.
pub fn line(config: &SourceConfig, health: &Health) -> String {
    let state = match health.ok {
        None => "connecting…".to_owned(),
        Some(true) if health.open == 0 => "OK, all quiet".to_owned(),
        Some(true) => format!("OK, {} open", health.open),
        Some(false) if health.lost => format!("LOST: {}", health.message),
        Some(false) => format!("failing: {}", health.message),
    };
    let text = format!("{} ({}): {state}", config.name, config.kind.label());
    match text.char_indices().nth(90) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text,
    }
}

pub fn views<R: Runtime>(shared: &Shared<R>) -> Vec<SourceView> {
    lock(&shared.sources)
        .iter()
        .map(|h| {
            let health = h.health.borrow().clone();
            SourceView {
                name: h.config.name.clone(),
                kind: h.config.kind,
                url: h.config.url.clone(),
                line: line(&h.config, &health),
                health,
            }
        })
        .collect()
}

/// Starts following a source whose credential is at hand.
fn start<R: Runtime>(
    app: &AppHandle<R>,
    shared: &Arc<Shared<R>>,
    config: SourceConfig,
    secret: String,
) -> Result<()> {
    let handle = {
        let mut running = lock(&shared.sources);
        // Slots are given in turn, not the lowest free one: a source removed a moment ago may
        // still be withdrawing its pages under its slot.
        let mut last = lock(&shared.last_slot);
        let slot = (1..SOURCES)
            .map(|step| (*last + step - 1) % (SOURCES - 1) + 1)
            .find(|s| running.iter().all(|h| h.slot != *s))
            .ok_or_else(|| Error::Server("no more sources can be followed".into()))?;
        *last = slot;
        drop(last);
        let device =
            Arc::new(device::Desktop { app: app.clone(), shared: shared.clone(), source: slot });
        let timing = Timing {
            interval: config.interval(),
            lost_after: Duration::from_secs(lock(&shared.settings).feed_lost_seconds.max(5)),
        };
        // The name's bytes in hex: one file per name, whatever characters it has.
        let file: String = config.name.bytes().map(|b| format!("{b:02x}")).collect();
        let outbox = shared.dir.join("sources").join(format!("{file}.json"));
        let handle = sources::start(slot, config, secret, device, outbox, timing)?;
        let health = handle.health.clone();
        running.push(handle);
        (slot, health)
    };
    let (slot, mut health) = handle;
    let (app_events, shared_events) = (app.clone(), shared.clone());
    tauri::async_runtime::spawn(async move {
        while health.changed().await.is_ok() {
            tray::refresh_sources(&shared_events);
            shared_events.changed(&app_events);
        }
    });
    shared.apply(app, Event::Added(slot));
    tray::rebuild(app, shared);
    Ok(())
}

/// Follows the sources saved in the settings, reading each credential from the keyring (waiting,
/// as for the Reveille token, while the keyring is locked).
pub async fn start_saved<R: Runtime>(app: AppHandle<R>, shared: Arc<Shared<R>>) {
    let saved = lock(&shared.settings).sources.clone();
    for config in saved {
        let name = account(&config.name);
        let load = move || secrets::load(&name).map_err(|e| e.to_string());
        let report = |problem: Option<String>| {
            if let Some(problem) = problem {
                tracing::warn!(%problem, "cannot read a source's credential yet");
            }
        };
        let patience = reveille_client::signin::Patience::default();
        let secret = reveille_client::signin::read_token(load, report, patience).await;
        let name = config.name.clone();
        if let Err(e) = start(&app, &shared, config, secret.unwrap_or_default()) {
            tracing::error!(error = %e, source = %name, "cannot follow a source");
        }
    }
}

/// Checks, keeps (credential in the keyring, the rest in the settings) and follows a new source.
pub fn add<R: Runtime>(
    app: &AppHandle<R>,
    shared: &Arc<Shared<R>>,
    mut config: SourceConfig,
    secret: &str,
) -> Result<()> {
    config.name = config.name.trim().to_owned();
    config.url = config.url.trim().trim_end_matches('/').to_owned();
    config.matchers.retain(|m| !m.trim().is_empty());
    if let Some(problem) = config.problem() {
        return Err(Error::Server(problem));
    }
    if lock(&shared.settings).sources.iter().any(|s| s.name == config.name) {
        return Err(Error::Server(format!("name: a source is already called {:?}", config.name)));
    }
    if secret.trim().is_empty() && matches!(config.kind, Kind::PagerDuty | Kind::Opsgenie) {
        return Err(Error::Server(format!("secret: {} needs its API key", config.kind.label())));
    }
    secrets::save(&account(&config.name), secret.trim())?;
    {
        let mut settings = lock(&shared.settings);
        settings.sources.push(config.clone());
        settings.save(&shared.dir)?;
    }
    start(app, shared, config, secret.trim().to_owned())
}

/// Stops following a source and forgets it, credential included.
pub async fn remove<R: Runtime>(
    app: &AppHandle<R>,
    shared: &Arc<Shared<R>>,
    name: &str,
) -> Result<()> {
    let handle: Option<Handle> = {
        let mut running = lock(&shared.sources);
        let at = running.iter().position(|h| h.config.name == name);
        at.map(|at| running.remove(at))
    };
    if let Some(handle) = handle {
        let slot = handle.slot;
        // Its poller withdraws what it showed; only then is the slot free for another source.
        handle.stop(Duration::from_secs(30)).await;
        shared.apply(app, Event::Removed(slot));
    }
    {
        let mut settings = lock(&shared.settings);
        settings.sources.retain(|s| s.name != name);
        settings.save(&shared.dir)?;
    }
    tray::rebuild(app, shared);
    secrets::forget(&account(name))
}
