//! The commands the windows may call: thin, over `Shared` and `reveille-client`.

use std::sync::Arc;

use reveille_client::outbox::Request;
use reveille_client::runbook;
use reveille_protocol::Incident;
use serde::Serialize;
use tauri::{AppHandle, Manager, Runtime};

use reveille_client::desktop::Event;
use reveille_client::{Api, ApiError};

use crate::error::{Error, Result};
use crate::settings::Settings;
use crate::{Shared, lock, secrets};

/// Everything the settings window shows.
#[derive(Debug, Clone, Serialize)]
pub struct View {
    pub signed_in: bool,
    pub user: Option<String>,
    pub connected: bool,
    pub lost: bool,
    pub ringing: Vec<Incident>,
    pub ringing_total: usize,
    pub pending: usize,
    pub audio: bool,
    pub settings: Settings,
    /// Why the saved sign-in cannot be read from the keyring now, while it is retried.
    pub keyring_problem: Option<String>,
    /// The pagers besides Reveille, with their health.
    pub sources: Vec<crate::pagers::SourceView>,
}

pub fn view<R: Runtime>(shared: &Shared<R>) -> View {
    let status =
        lock(&shared.subscriber).as_ref().map(|s| s.status.borrow().clone()).unwrap_or_default();
    let state = shared.state();
    View {
        signed_in: lock(&shared.token).is_some(),
        user: lock(&shared.user).clone(),
        connected: status.connected,
        lost: state.lost(),
        ringing: status.ringing,
        ringing_total: status.ringing_total,
        pending: status.pending,
        audio: shared.alarm.is_some(),
        settings: lock(&shared.settings).clone(),
        keyring_problem: lock(&shared.keyring_problem).clone(),
        sources: crate::pagers::views(shared),
    }
}

#[tauri::command]
pub fn status<R: Runtime>(app: AppHandle<R>) -> View {
    let shared = crate::shared(&app);
    view(&shared)
}

/// Checks the token against the server, keeps it in the keyring, and starts following the feed.
#[tauri::command]
pub async fn sign_in<R: Runtime>(app: AppHandle<R>, server: String, token: String) -> Result<View> {
    let shared = crate::shared(&app);
    let server = server.trim().trim_end_matches('/').to_owned();
    let token = token.trim().to_owned();
    if !(server.starts_with("http://") || server.starts_with("https://")) {
        return Err(Error::Server("The server address must start with http:// or https://".into()));
    }
    let api = Api::new(&server, &token, AGENT).map_err(|e| Error::Server(e.to_string()))?;
    let who = api.whoami().await.map_err(|e| {
        Error::Server(match e {
            ApiError::Refused { .. } => {
                "The server refused this token: it is unknown or revoked.".into()
            }
            ApiError::Unreachable(e) => format!("Cannot reach {server}: {e}"),
            e => format!("That does not look like a Reveille server: {e}"),
        })
    })?;
    secrets::save(&server, &token)?;
    {
        let mut settings = lock(&shared.settings);
        settings.server = server;
        settings.save(&shared.dir)?;
    }
    *lock(&shared.token) = Some(token);
    *lock(&shared.user) = who["user"].as_str().map(str::to_owned);
    shared.subscribe(&app)?;
    Ok(view(&shared))
}

/// Forgets the token (keyring included) and stops following the feed.
#[tauri::command]
pub fn sign_out<R: Runtime>(app: AppHandle<R>) -> Result<View> {
    let shared = crate::shared(&app);
    let server = lock(&shared.settings).server.clone();
    *lock(&shared.subscriber) = None;
    *lock(&shared.token) = None;
    *lock(&shared.user) = None;
    // Signed out, this computer no longer rings: leave nothing sounding or raised.
    shared.apply(&app, Event::Removed(0));
    if let Some(saved) = lock(&shared.saved_output).take() {
        crate::output::restore(&saved);
    }
    for (label, window) in app.webview_windows() {
        if label.starts_with("alarm-") {
            let _ = window.destroy();
        }
    }
    shared.waiting.clear(&app, 0);
    secrets::forget(&server)?;
    Ok(view(&shared))
}

/// What the alarm window shows first: the incident, at once. A runbook the server keeps follows
/// from [`runbook`]; one elsewhere is a link for the browser.
#[derive(Debug, Serialize)]
pub struct IncidentView {
    pub incident: Incident,
    /// The server keeps this incident's runbook: ask [`runbook`] for it.
    pub runbook_here: bool,
    /// A runbook elsewhere on the web, opened in the browser rather than shown.
    pub runbook_link: Option<String>,
}

/// How this app names itself to the server.
pub const AGENT: &str = concat!("reveille-desktop/", env!("CARGO_PKG_VERSION"));

/// The API of the server signed in to.
fn api<R: Runtime>(shared: &Shared<R>) -> Result<Api> {
    let server = lock(&shared.settings).server.clone();
    let token = lock(&shared.token).clone().ok_or(Error::SignedOut)?;
    Api::new(&server, &token, AGENT).map_err(|e| Error::Server(e.to_string()))
}

/// How long the window waits for the server before showing what the feed brought.
const QUICK: std::time::Duration = std::time::Duration::from_secs(3);

/// The incident as the server has it now, or as the feed brought it when the server is slow; a
/// source's incident as its last look found it.
async fn load_incident<R: Runtime>(shared: &Shared<R>, id: i64) -> Result<Incident> {
    if reveille_client::sources::slot_of(id).is_some() {
        let kept = lock(&shared.incidents).get(&id).cloned();
        return kept.ok_or_else(|| Error::Server(format!("This page (#{id}) is no longer open")));
    }
    let fetched = tokio::time::timeout(QUICK, api(shared)?.incident(id)).await;
    let incident = fetched.ok().and_then(Result::ok).map(|d| d.incident);
    incident
        .or_else(|| lock(&shared.incidents).get(&id).cloned())
        .ok_or_else(|| Error::Server(format!("Incident #{id} cannot be loaded")))
}

#[tauri::command]
pub async fn incident<R: Runtime>(app: AppHandle<R>, id: i64) -> Result<IncidentView> {
    let shared = crate::shared(&app);
    let incident = load_incident(&shared, id).await?;
    let server = lock(&shared.settings).server.clone();
    let (runbook_here, runbook_link) = match runbook::source(&server, &incident) {
        runbook::Source::Server(_) => (true, None),
        runbook::Source::Elsewhere(url) => (false, Some(url)),
        runbook::Source::None => (false, None),
    };
    Ok(IncidentView { incident, runbook_here, runbook_link })
}

/// The incident's runbook from the server, rendered and sanitised; the copy kept from the last
/// time when the server cannot be reached. Only ever the incident's own service's runbook.
#[tauri::command]
pub async fn runbook<R: Runtime>(app: AppHandle<R>, id: i64) -> Result<Option<String>> {
    let shared = crate::shared(&app);
    let incident = load_incident(&shared, id).await?;
    let server = lock(&shared.settings).server.clone();
    let runbook::Source::Server(url) = runbook::source(&server, &incident) else {
        return Ok(None);
    };
    let api = api(&shared)?;
    let dir = shared.dir.join("runbooks");
    let cache = dir.join(format!("{}.md", incident.service));
    let fetched = runbook::fetch(api.http(), &url, api.token(), std::time::Duration::from_secs(10));
    let text = match fetched.await {
        Ok(text) => {
            let _ = std::fs::create_dir_all(&dir);
            let _ = std::fs::write(&cache, &text);
            text
        }
        // Runbooks of pages seen are kept for reading offline.
        Err(e) => std::fs::read_to_string(&cache).map_err(|_| Error::Server(e.to_string()))?,
    };
    Ok(Some(runbook::render(&text)))
}

#[tauri::command]
pub fn act<R: Runtime>(app: AppHandle<R>, id: i64, action: String) -> Result<()> {
    let shared = crate::shared(&app);
    let request = match action.as_str() {
        "ack" => Request::Ack,
        "resolve" => Request::Resolve,
        "snooze" => Request::Snooze { seconds: lock(&shared.settings).snooze_minutes * 60 },
        other => return Err(Error::Server(format!("unknown action {other:?}"))),
    };
    shared.act(id, request);
    Ok(())
}

/// Plays the page sound for ten seconds, unless a real page is ringing.
pub fn test_alarm_now<R: Runtime>(app: &AppHandle<R>, shared: &Arc<Shared<R>>) {
    if shared.alarm.is_none() || shared.state().ringing() {
        return;
    }
    shared.apply(app, Event::TestStarted);
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_secs(10)).await;
        let shared = crate::shared(&app);
        shared.apply(&app, Event::TestEnded);
    });
}

#[tauri::command]
pub fn test_alarm<R: Runtime>(app: AppHandle<R>) -> bool {
    let shared = crate::shared(&app);
    test_alarm_now(&app, &shared);
    shared.alarm.is_some()
}

/// Stops the test alarm; a real page is only stopped by acknowledging or snoozing it.
#[tauri::command]
pub fn stop_alarm<R: Runtime>(app: AppHandle<R>) {
    let shared = crate::shared(&app);
    shared.apply(&app, Event::TestEnded);
}

/// Saves the settings, and they take effect at once: the device's name and the feed-lost
/// threshold on the running subscriber, on duty on the tray, the sound at the next alarm.
#[tauri::command]
pub async fn save_settings<R: Runtime>(app: AppHandle<R>, settings: Settings) -> Result<View> {
    let shared = crate::shared(&app);
    let device = settings.device.trim();
    if device.is_empty() || device.len() > 128 {
        return Err(Error::Server(
            "device: name this device in 1 to 128 characters (it is on every receipt)".into(),
        ));
    }
    let settings = Settings { device: device.to_owned(), ..settings };
    // The login entry is written or removed only when the choice changes.
    if settings.autostart != lock(&shared.settings).autostart {
        crate::output::autostart(settings.autostart)?;
    }
    let saved = {
        let mut current = lock(&shared.settings);
        // The server only changes by signing in, the sources by adding and removing them.
        let server = current.server.clone();
        let sources = current.sources.clone();
        *current = Settings { server, sources, ..settings };
        current.save(&shared.dir)?;
        current.clone()
    };
    shared.apply(&app, Event::OnDuty(saved.on_duty));
    let subscriber = lock(&shared.subscriber).clone();
    if let Some(subscriber) = subscriber {
        subscriber.configure(saved.device.clone(), saved.policy()).await;
    }
    Ok(view(&shared))
}

/// Adds a pager besides Reveille: its credential goes to the keyring, the rest to the settings.
#[tauri::command]
pub async fn add_source<R: Runtime>(
    app: AppHandle<R>,
    source: reveille_client::sources::SourceConfig,
    secret: String,
) -> Result<View> {
    let shared = crate::shared(&app);
    crate::pagers::add(&app, &shared, source, &secret)?;
    Ok(view(&shared))
}

/// Stops following a pager and forgets it, credential included.
#[tauri::command]
pub async fn remove_source<R: Runtime>(app: AppHandle<R>, name: String) -> Result<View> {
    let shared = crate::shared(&app);
    crate::pagers::remove(&app, &shared, &name).await?;
    Ok(view(&shared))
}
