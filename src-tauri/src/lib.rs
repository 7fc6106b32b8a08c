//! The Reveille desktop companion: a tray app that follows the person's feed (in Rust, with or
//! without a window), rings louder until a page is acknowledged, shows the runbook, keeps the
//! token in the OS keyring, and says loudly when it cannot hear the server.
//!
//! This crate is adapters only: `reveille-client` decides what rings, `reveille-alarm` makes the
//! sound, and the commands here are thin.

mod commands;
mod device;
mod error;
mod output;
mod pagers;
mod secrets;
mod settings;
mod tray;
mod windows;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reveille_client::desktop::{Event, Look, Sound, State};
use reveille_client::outbox::Request;
use reveille_client::{Config, Subscriber};
use reveille_protocol::Incident;
use tauri::{AppHandle, Emitter, Manager, RunEvent, Runtime};

use crate::settings::Settings;
use crate::tray::StatusLine;

/// Set when the app started itself again with `GDK_GL=disable` (main.rs), which is then not
/// passed on to the programs it starts.
pub const WITHOUT_GL: &str = "REVEILLE_WITHOUT_GL";

/// What the app shares between the tray, the commands and the subscriber's device.
pub struct Shared<R: Runtime> {
    pub dir: PathBuf,
    pub settings: Mutex<Settings>,
    /// None when this machine has no audio output: pages are then silent here, and say so.
    pub alarm: Option<reveille_alarm::Alarm>,
    pub subscriber: Mutex<Option<Subscriber>>,
    /// The signed-in user's token, in memory only (its home is the keyring).
    pub token: Mutex<Option<String>>,
    pub user: Mutex<Option<String>>,
    pub incidents: Mutex<HashMap<i64, Incident>>,
    pub notifications: Mutex<HashMap<i64, u32>>,
    /// The storm summary: ringing pages without a window of their own.
    pub waiting: device::Waiting,
    /// The pagers besides Reveille being followed.
    pub sources: Mutex<Vec<reveille_client::sources::Handle>>,
    /// The slot given to the source added last.
    pub last_slot: Mutex<u8>,
    /// The tray's line for each of them.
    pub source_lines: Mutex<Vec<(u8, tauri::menu::MenuItem<R>)>>,
    /// Signed in, on duty, ringing, feed lost, testing: what the tray and speakers follow.
    state: Mutex<State>,
    /// The output's mute and volume before "make sure I hear it" raised them.
    pub saved_output: Mutex<Option<output::Saved>>,
    /// Why the token cannot be read from the keyring now (locked, no keyring); retried.
    pub keyring_problem: Mutex<Option<String>>,
    pub status_line: Mutex<Option<StatusLine<R>>>,
    quit_armed: Mutex<Option<Instant>>,
    /// A status event is being sent; changes meanwhile are sent with the next one.
    emitting: std::sync::atomic::AtomicBool,
}

/// What the app shares, from anywhere that has the app.
pub fn shared<R: Runtime>(app: &AppHandle<R>) -> Arc<Shared<R>> {
    app.state::<Arc<Shared<R>>>().inner().clone()
}

pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl<R: Runtime> Shared<R> {
    /// The state now.
    pub fn state(&self) -> State {
        *lock(&self.state)
    }

    /// Applies an event to the state, then plays what it calls for and shows its look.
    pub fn apply(&self, app: &AppHandle<R>, event: Event) {
        let look = {
            let mut state = lock(&self.state);
            let before = *state;
            state.on(event);
            // Under the lock: two events never reach the speakers out of order.
            if state.sound() != before.sound() {
                self.play(state.sound());
            }
            (state.look() != before.look()).then(|| state.look())
        };
        if let Some(look) = look {
            self.look(app, look);
        }
        self.changed(app);
    }

    fn play(&self, sound: Sound) {
        let Some(alarm) = &self.alarm else { return };
        match sound {
            Sound::Nothing => alarm.stop(),
            Sound::Page | Sound::Test => alarm.play(lock(&self.settings).page_sound()),
            Sound::FeedLost => alarm.play(reveille_alarm::Sound::FeedLost),
        }
    }

    pub fn look(&self, app: &AppHandle<R>, look: Look) {
        // Clone the menu line out of the lock: showing waits for the main thread.
        let line = lock(&self.status_line).as_ref().map(|l| StatusLine(l.0.clone()));
        if let Some(line) = line {
            tray::show(app, &line, look);
        }
    }

    /// Shows the look the state calls for now.
    pub fn refresh_look(&self, app: &AppHandle<R>) {
        self.look(app, self.state().look());
    }

    /// Tells the windows that what they show has changed (a `status` event with the whole
    /// view). A storm's thousands of changes are sent as at most ten events a second.
    pub fn changed(&self, app: &AppHandle<R>) {
        use std::sync::atomic::Ordering;
        if self.emitting.swap(true, Ordering::SeqCst) {
            return;
        }
        let app = app.clone();
        tauri::async_runtime::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let shared = shared(&app);
            shared.emitting.store(false, Ordering::SeqCst);
            let _ = app.emit("status", commands::view(&shared));
        });
    }

    pub fn remember(&self, incident: &Incident) {
        lock(&self.incidents).insert(incident.id, incident.clone());
    }

    /// The person acted on a page (from a notification, the tray or a window): the Reveille
    /// server's, or a source's (its id says which).
    pub fn act(self: &Arc<Self>, incident: i64, request: Request) {
        if let Some(slot) = reveille_client::sources::slot_of(incident) {
            let shared = self.clone();
            tauri::async_runtime::spawn(async move {
                let commands =
                    lock(&shared.sources).iter().find(|h| h.slot == slot).map(|h| h.commands());
                if let Some(commands) = commands {
                    commands.act(incident, request).await;
                }
            });
        } else if let Some(subscriber) = lock(&self.subscriber).clone() {
            tauri::async_runtime::spawn(async move { subscriber.act(incident, request).await });
        }
    }

    /// The person acts on every page ringing now, from every source (the tray's Acknowledge and
    /// Snooze).
    pub fn act_all(&self, request: Request) {
        if let Some(subscriber) = lock(&self.subscriber).clone() {
            tauri::async_runtime::spawn(async move { subscriber.act_all(request).await });
        }
        for commands in lock(&self.sources).iter().map(|h| h.commands()) {
            tauri::async_runtime::spawn(async move { commands.act_all(request).await });
        }
    }

    /// Starts following the feed with the signed-in token.
    pub fn subscribe(self: &Arc<Self>, app: &AppHandle<R>) -> std::io::Result<()> {
        // A summary from the previous subscriber's storm would never be updated again.
        self.waiting.clear(app, 0);
        let settings = lock(&self.settings).clone();
        let Some(token) = lock(&self.token).clone() else { return Ok(()) };
        let policy = settings.policy();
        let config = Config {
            server: settings.server.trim_end_matches('/').to_owned(),
            token,
            device: settings.device.clone(),
            outbox: self.dir.join("outbox.json"),
            policy,
            agent: commands::AGENT.into(),
            receipts: true,
            resume: None,
        };
        let device =
            Arc::new(device::Desktop { app: app.clone(), shared: self.clone(), source: 0 });
        let subscriber = Subscriber::start(config, device)?;
        // The windows hear of every change of the subscriber's status.
        let (mut status, app_events) = (subscriber.status.clone(), app.clone());
        let shared = self.clone();
        tauri::async_runtime::spawn(async move {
            while status.changed().await.is_ok() {
                shared.changed(&app_events);
            }
        });
        *lock(&self.subscriber) = Some(subscriber);
        self.apply(app, Event::Added(0));
        Ok(())
    }
}

/// Reads the saved token and starts following the feed. A keyring that cannot be read now (one
/// still locked after login, say) is not the same as no token: the person is told, in words and
/// with a notification, that this computer will not ring, and it is read again until it works.
async fn sign_in_from_keyring<R: Runtime>(app: AppHandle<R>, shared: Arc<Shared<R>>) {
    let server = lock(&shared.settings).server.clone();
    if !server.is_empty() {
        read_reveille_token(&app, &shared, server).await;
    }
    // The keyring answers now: the other pagers' credentials can be read.
    pagers::start_saved(app, shared).await;
}

async fn read_reveille_token<R: Runtime>(
    app: &AppHandle<R>,
    shared: &Arc<Shared<R>>,
    server: String,
) {
    let load = move || secrets::load(&server).map_err(|e| e.to_string());
    let reporting = shared.clone();
    let report_app = app.clone();
    let report = move |problem: Option<String>| {
        let fresh = problem.is_some() && lock(&reporting.keyring_problem).is_none();
        *lock(&reporting.keyring_problem) = problem.clone();
        reporting.apply(&report_app, Event::KeyringProblem(problem.is_some()));
        if let Some(problem) = problem.filter(|_| fresh) {
            tracing::warn!(%problem, "cannot read the token from the keyring; trying again");
            let _ = notify_rust::Notification::new()
                .appname("Reveille")
                .summary("Reveille cannot read your sign-in")
                .body(&format!("{problem} Until then this computer will NOT ring."))
                .urgency(notify_rust::Urgency::Critical)
                .show();
            windows::settings(&report_app);
        }
    };
    let patience = reveille_client::signin::Patience::default();
    match reveille_client::signin::read_token(load, report, patience).await {
        Some(token) => {
            *lock(&shared.token) = Some(token);
            if let Err(e) = shared.subscribe(app) {
                tracing::error!(error = %e, "cannot start following the feed");
            }
        }
        None if lock(&shared.settings).sources.is_empty() => windows::settings(app),
        None => {}
    }
}

/// What the tray menu does.
pub fn on_menu<R: Runtime>(app: &AppHandle<R>, id: &str) {
    let shared = shared(app);
    match id {
        "incidents" | "settings" => windows::settings(app),
        "ack" => shared.act_all(Request::Ack),
        "snooze" => {
            let seconds = lock(&shared.settings).snooze_minutes * 60;
            shared.act_all(Request::Snooze { seconds });
        }
        "test" => commands::test_alarm_now(app, &shared),
        "off-duty" => {
            let on_duty = {
                let mut settings = lock(&shared.settings);
                settings.on_duty = !settings.on_duty;
                let _ = settings.save(&shared.dir);
                settings.on_duty
            };
            shared.apply(app, Event::OnDuty(on_duty));
        }
        "quit" => {
            let on_duty = lock(&shared.settings).on_duty;
            let mut armed = lock(&shared.quit_armed);
            // While on duty, quitting needs a second click within ten seconds.
            if !on_duty || armed.is_some_and(|t| t.elapsed() < Duration::from_secs(10)) {
                app.exit(0);
            } else {
                *armed = Some(Instant::now());
                let _ = notify_rust::Notification::new()
                    .appname("Reveille")
                    .summary("You are on duty")
                    .body("Quitting means this computer will not ring for pages. Choose Quit again to quit.")
                    .show();
            }
        }
        _ => {}
    }
}

/// The app on any Tauri runtime: its commands, and what it sets up at start. `session` is a
/// person's desktop session: the tray, the speakers, the keyring read and the first window at
/// start. Without it (the commands' tests on Tauri's mock runtime) only the state is made.
pub fn app<R: Runtime>(builder: tauri::Builder<R>, session: bool) -> tauri::Builder<R> {
    builder
        .invoke_handler(tauri::generate_handler![
            commands::status,
            commands::sign_in,
            commands::sign_out,
            commands::incident,
            commands::runbook,
            commands::act,
            commands::test_alarm,
            commands::stop_alarm,
            commands::save_settings,
            commands::add_source,
            commands::remove_source,
        ])
        .setup(move |app| Ok(start(app.handle(), session)?))
}

/// Makes the app's state (and, in a person's session, the tray, the speakers, the keyring read
/// and the first window). Tauri calls it once at start; the commands' tests call it themselves.
pub fn start<R: Runtime>(app: &AppHandle<R>, session: bool) -> tauri::Result<()> {
    let dir = app.path().app_data_dir()?;
    let settings = Settings::load(&dir);
    // The login entry names this program where it is now (a package may have moved it).
    if session
        && settings.autostart
        && let Err(e) = output::autostart(true)
    {
        tracing::warn!(error = %e, "cannot write the autostart entry");
    }
    let alarm = session.then(reveille_alarm::Alarm::open).and_then(|opened| {
        opened
            .map_err(|e| {
                tracing::warn!(error = %e, "no audio output: pages will be silent here");
            })
            .ok()
    });
    let line = match session {
        true => Some(tray::build(app, settings.on_duty)?.1),
        false => None,
    };
    let shared = Arc::new(Shared {
        dir,
        settings: Mutex::new(settings.clone()),
        alarm,
        subscriber: Mutex::default(),
        token: Mutex::default(),
        user: Mutex::default(),
        incidents: Mutex::default(),
        notifications: Mutex::default(),
        waiting: device::Waiting::default(),
        sources: Mutex::default(),
        last_slot: Mutex::default(),
        source_lines: Mutex::default(),
        state: Mutex::new(State::new(settings.on_duty)),
        saved_output: Mutex::default(),
        keyring_problem: Mutex::default(),
        status_line: Mutex::new(line),
        quit_armed: Mutex::default(),
        emitting: Default::default(),
    });
    app.manage(shared.clone());
    if !session {
        return Ok(());
    }
    if settings.server.is_empty() && settings.sources.is_empty() {
        windows::settings(app);
    } else {
        tauri::async_runtime::spawn(sign_in_from_keyring(app.clone(), shared));
    }
    Ok(())
}

pub fn run() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("REVEILLE_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .init();
    let builder = tauri::Builder::default()
        .plugin(tauri_plugin_single_instance::init(|app, _args, _cwd| windows::settings(app)));
    app(builder, true).build(tauri::generate_context!()).expect("cannot start Reveille").run(
        |_app, event| {
            // A tray app stays when its last window closes.
            if let RunEvent::ExitRequested { api, code: None, .. } = event {
                api.prevent_exit();
            }
        },
    );
}
