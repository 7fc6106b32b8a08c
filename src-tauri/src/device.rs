//! The desktop as a `reveille_client::Device`: the alarm through rodio, native notifications with
//! Acknowledge and Open actions, the tray's look, and the alarm window.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use notify_rust::{Hint, Notification, Timeout, Urgency as NotifyUrgency};
use reveille_client::outbox::Request;
use reveille_client::{Device, Sound};
use reveille_protocol::{Incident, Urgency};
use tauri::{AppHandle, Manager, Runtime};

use reveille_client::desktop::{Event, Look, Source};

use crate::Shared;

pub struct Desktop<R: Runtime> {
    pub app: AppHandle<R>,
    pub shared: Arc<Shared<R>>,
    /// Which source this device rings for: 0 is the Reveille server.
    pub source: Source,
}

impl<R: Runtime> Device for Desktop<R> {
    fn ring(&self) {
        let settings = self.shared.settings.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if settings.make_sure_i_hear_it {
            let mut saved = self.shared.saved_output.lock().unwrap_or_else(|p| p.into_inner());
            if saved.is_none() {
                *saved = crate::output::raise();
            }
        }
        self.shared.apply(&self.app, Event::Ring(self.source));
        if self.shared.alarm.is_none() {
            tracing::warn!(
                "no audio output: this page is SILENT here; flashing the tray and repeating the notification"
            );
            self.flash_and_repeat();
        }
    }

    fn silence(&self) {
        self.shared.apply(&self.app, Event::Silence(self.source));
        // The output goes back as it was only when no source rings any more.
        if self.shared.state().ringing() {
            return;
        }
        if let Some(saved) =
            self.shared.saved_output.lock().unwrap_or_else(|p| p.into_inner()).take()
        {
            crate::output::restore(&saved);
        }
    }

    fn notify(&self, incident: &Incident) {
        self.shared.remember(incident);
        let (app, shared, incident) = (self.app.clone(), self.shared.clone(), incident.clone());
        std::thread::spawn(move || {
            let critical = incident.urgency == Urgency::High;
            let shown = Notification::new()
                .appname("Reveille")
                .summary(&format!("[{}] {}", incident.severity.as_str(), incident.service))
                .body(&incident.summary)
                .urgency(if critical { NotifyUrgency::Critical } else { NotifyUrgency::Normal })
                .action("default", "Open")
                .action("ack", "Acknowledge")
                .action("open", "Open")
                .hint(Hint::Resident(true))
                .timeout(if critical { Timeout::Never } else { Timeout::Default })
                .show();
            match shown {
                Ok(handle) => {
                    shared
                        .notifications
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(incident.id, handle.id());
                    handle.wait_for_action(|action| match action {
                        "ack" => shared.act(incident.id, Request::Ack),
                        "open" | "default" => crate::windows::alarm(&app, incident.id),
                        _ => {}
                    });
                }
                Err(e) => tracing::error!(error = %e, "cannot show a notification"),
            }
        });
    }

    fn show(&self, incident: &Incident) {
        self.shared.remember(incident);
        crate::windows::alarm(&self.app, incident.id);
    }

    fn withdraw(&self, incident: i64) {
        let page =
            self.shared.incidents.lock().unwrap_or_else(|p| p.into_inner()).remove(&incident);
        let id =
            self.shared.notifications.lock().unwrap_or_else(|p| p.into_inner()).remove(&incident);
        if let Some(id) = id {
            // Replace the page's notification with a short, quiet one.
            let _ = Notification::new()
                .id(id)
                .appname("Reveille")
                .summary("Page answered")
                .body(&match page {
                    Some(page) if incident < 0 => format!("{} no longer needs you.", page.summary),
                    _ => format!("Incident #{incident} no longer needs you."),
                })
                .urgency(NotifyUrgency::Low)
                .timeout(Timeout::Milliseconds(4000))
                .show();
        }
        if let Some(window) = self.app.get_webview_window(&format!("alarm-{incident}")) {
            let _ = window.destroy();
        }
    }

    fn waiting(&self, count: usize) {
        let waiting = &self.shared.waiting;
        // One summary for every source: the sum of what each has waiting.
        let total: usize = {
            let mut counts = waiting.counts.lock().unwrap_or_else(|p| p.into_inner());
            counts.insert(self.source, count);
            counts.values().sum()
        };
        waiting.count.store(total, Ordering::SeqCst);
        // One thread shows the newest count; a storm's thousands of updates collapse into it.
        if waiting.busy.swap(true, Ordering::SeqCst) {
            return;
        }
        let (app, shared) = (self.app.clone(), self.shared.clone());
        std::thread::spawn(move || {
            let waiting = &shared.waiting;
            loop {
                let count = waiting.count.load(Ordering::SeqCst);
                summarise(&app, waiting, count);
                waiting.busy.store(false, Ordering::SeqCst);
                if waiting.count.load(Ordering::SeqCst) == count
                    || waiting.busy.swap(true, Ordering::SeqCst)
                {
                    return;
                }
            }
        });
    }

    fn feed_lost(&self, lost: bool) {
        self.shared.apply(&self.app, Event::FeedLost(self.source, lost));
        if lost && self.shared.state().on_duty {
            let summary = match crate::pagers::name(&self.shared, self.source) {
                Some(name) => format!("Reveille cannot reach {name}"),
                None => "Reveille cannot reach the server".to_owned(),
            };
            let _ = Notification::new()
                .appname("Reveille")
                .summary(&summary)
                .body("While this lasts you will NOT hear pages on this computer.")
                .urgency(NotifyUrgency::Critical)
                .show();
        }
    }

    fn sound(&self) -> Sound {
        use crate::output::Heard;
        let Some(alarm) = &self.shared.alarm else {
            return Sound { volume: None, silent: true, output: None };
        };
        let status = alarm.status();
        let volume = Some(status.gain);
        // The output could not be reached for this sound: nobody hears it.
        if status.failed {
            return Sound { volume, silent: true, output: None };
        }
        match crate::output::heard() {
            Heard::Output { name, muted } => Sound { volume, silent: muted, output: Some(name) },
            Heard::Nothing => Sound { volume, silent: true, output: None },
            Heard::Unknown => {
                Sound { volume, silent: false, output: Some("default output".into()) }
            }
        }
    }
}

impl<R: Runtime> Desktop<R> {
    /// With no sound: the tray flashes, and the notifications come back every 30 s.
    fn flash_and_repeat(&self) {
        let (app, shared) = (self.app.clone(), self.shared.clone());
        std::thread::spawn(move || {
            let mut tick = 0u32;
            while shared.state().ringing() {
                if tick.is_multiple_of(2) {
                    shared.look(&app, Look::Ringing)
                } else {
                    shared.look(&app, Look::Quiet)
                }
                if tick > 0 && tick.is_multiple_of(60) {
                    let pages: Vec<Incident> = shared
                        .incidents
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .values()
                        .cloned()
                        .collect();
                    let desktop = Desktop { app: app.clone(), shared: shared.clone(), source: 0 };
                    for page in pages
                        .iter()
                        .filter(|i| i.state == reveille_protocol::IncidentState::Triggered)
                    {
                        desktop.notify(page);
                    }
                }
                tick += 1;
                std::thread::sleep(std::time::Duration::from_millis(500));
            }
            shared.refresh_look(&app);
        });
    }
}

/// The one notification that stands for every ringing page without an alarm window.
#[derive(Default)]
pub struct Waiting {
    /// What each source has waiting.
    counts: std::sync::Mutex<std::collections::HashMap<Source, usize>>,
    count: std::sync::atomic::AtomicUsize,
    busy: std::sync::atomic::AtomicBool,
    note: std::sync::Mutex<Option<u32>>,
}

/// Shows, updates or retires the summary; its Open action opens the list of what is ringing.
fn summarise<R: Runtime>(app: &AppHandle<R>, waiting: &Waiting, count: usize) {
    let mut note = waiting.note.lock().unwrap_or_else(|p| p.into_inner());
    let mut summary = Notification::new();
    summary.appname("Reveille");
    if let Some(id) = *note {
        summary.id(id);
    }
    if count == 0 {
        if note.take().is_some() {
            let _ = summary
                .summary("No more pages are waiting")
                .urgency(NotifyUrgency::Low)
                .timeout(Timeout::Milliseconds(4000))
                .show();
        }
        return;
    }
    let shown = summary
        .summary(&format!("{count} more pages wait for you"))
        .body("Answer the open alarm windows and notifications: each answer brings up the next.")
        .urgency(NotifyUrgency::Critical)
        .action("default", "Open")
        .hint(Hint::Resident(true))
        .timeout(Timeout::Never)
        .show();
    match shown {
        Ok(handle) => {
            let previous = note.replace(handle.id());
            drop(note);
            if previous == Some(handle.id()) {
                return; // Updated in place: its listener hears the actions.
            }
            let app = app.clone();
            std::thread::spawn(move || {
                handle.wait_for_action(|action| {
                    if action == "default" {
                        crate::windows::settings(&app);
                    }
                });
            });
        }
        Err(e) => tracing::error!(error = %e, "cannot show the storm summary"),
    }
}

impl Waiting {
    /// Retires a source's part of the summary: the person signed out, or another subscriber
    /// takes over.
    pub fn clear<R: Runtime>(&self, app: &AppHandle<R>, source: Source) {
        let total: usize = {
            let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
            counts.remove(&source);
            counts.values().sum()
        };
        self.count.store(total, Ordering::SeqCst);
        summarise(app, self, total);
    }
}
