//! Native push to phone apps (FCM for Android, APNs for iOS) and Web Push to browsers.
//!
//! The dispatcher reads every committed feed entry from the store, in order, from a cursor kept
//! in the database, so a restart resumes where it stopped; pages go only to incidents still
//! waiting for someone. Each delivery retries 429 and 5xx answers with backoff (Retry-After wins
//! when longer), removes a device whose token the provider says is gone, and writes every attempt
//! and outcome on the incident's timeline.

mod apns;
pub mod browsers;
pub mod devices;
mod fcm;
pub mod webpush;

use std::sync::Arc;
use std::time::Duration;

use reveille_core::Command;
use reveille_protocol::{FeedEvent, FeedKind, IncidentState, Urgency};
use reveille_store::DeviceRecord;

use crate::AppState;

pub use apns::Apns;
pub use fcm::Fcm;
pub use webpush::WebPush;

/// What a phone is told.
#[derive(Debug, Clone)]
pub struct Push {
    pub kind: FeedKind,
    pub incident_id: i64,
    pub title: String,
    pub body: String,
    pub state: IncidentState,
    pub urgency: Urgency,
    pub drill: bool,
    /// A signed link that acknowledges the incident (pages only).
    pub ack_url: Option<String>,
    /// Sent again after this node stopped without recording whether it had sent it.
    pub again: Option<String>,
}

/// How one attempt went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Delivered(String),
    /// The provider says this token will never work again: forget the device.
    InvalidToken(String),
    /// Try again, after at least this long if the provider said so.
    Retry {
        after: Option<Duration>,
        reason: String,
    },
    /// A configuration problem or a refusal that retrying will not fix.
    Failed(String),
}

/// The configured providers.
#[derive(Clone, Default)]
pub struct Providers {
    pub fcm: Option<Arc<Fcm>>,
    pub apns: Option<Arc<Apns>>,
    pub webpush: Option<Arc<WebPush>>,
}

impl Providers {
    /// Builds the providers the configuration names, Web Push with the cluster's `vapid` key;
    /// an error names what is wrong.
    pub fn from_settings(
        settings: &crate::config::Settings,
        vapid: Option<&p256::SecretKey>,
    ) -> Result<Self, String> {
        let push = &settings.push;
        if push.fcm.is_none() && push.apns.is_none() && !push.webpush.enabled {
            return Ok(Self::default());
        }
        let ca = match &push.ca_file {
            Some(ca) => {
                let pem = std::fs::read(settings.dir.join(ca))
                    .map_err(|e| format!("push.ca_file: {e}"))?;
                Some(
                    reqwest::Certificate::from_pem(&pem)
                        .map_err(|e| format!("push.ca_file: {e}"))?,
                )
            }
            None => None,
        };
        let builder = || {
            let http = reqwest::Client::builder().timeout(Duration::from_secs(30));
            match &ca {
                Some(cert) => http.add_root_certificate(cert.clone()),
                None => http,
            }
        };
        let fcm = match &push.fcm {
            Some(f) => {
                let client = builder().build().map_err(|e| e.to_string())?;
                Some(Arc::new(Fcm::new(client, f, &settings.dir)?))
            }
            None => None,
        };
        let apns = match &push.apns {
            Some(a) => {
                // APNs speaks HTTP/2 only.
                let client =
                    builder().http2_prior_knowledge().build().map_err(|e| e.to_string())?;
                Some(Arc::new(Apns::new(client, a, &settings.dir)?))
            }
            None => None,
        };
        let webpush = match (push.webpush.enabled, vapid) {
            (true, Some(vapid)) => {
                // A push service answers; it never sends the server elsewhere.
                let client = builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .map_err(|e| e.to_string())?;
                Some(Arc::new(WebPush::new(client, settings, vapid)?))
            }
            _ => None,
        };
        Ok(Self { fcm, apns, webpush })
    }

    pub fn is_empty(&self) -> bool {
        self.fcm.is_none() && self.apns.is_none() && self.webpush.is_none()
    }

    async fn send(&self, device: &DeviceRecord, push: &Push) -> Outcome {
        match (device.platform.as_str(), &self.fcm, &self.apns) {
            ("fcm", Some(fcm), _) => fcm.send(&device.token, push).await,
            ("apns", _, Some(apns)) => apns.send(&device.token, push).await,
            ("webpush", _, _) if let Some(webpush) = &self.webpush => {
                webpush.send(&device.token, push).await
            }
            (platform, _, _) => {
                Outcome::Failed(format!("{platform} push is not configured on this server"))
            }
        }
    }
}

/// Whether the configuration asks for any push at all.
pub fn wanted(settings: &crate::config::Settings) -> bool {
    let push = &settings.push;
    push.fcm.is_some() || push.apns.is_some() || push.webpush.enabled
}

/// What the push outbox hands every entry to: pushes each page and change to the person's
/// registered devices. With several nodes, one of them pushes (it holds a lease), and another
/// takes over when it stops. The providers are built at its first entry: a configuration that
/// cannot be used turns push off, saying why; without a usable VAPID key browsers get nothing
/// (said loudly), and phones still get their pushes.
#[derive(Default)]
pub struct Dispatcher {
    providers: Option<Providers>,
    /// Deliveries in flight at once: when all are busy the dispatcher waits, so a provider that
    /// hangs slows push down instead of piling up tasks (each retries for a while on its own).
    pool: Option<Arc<tokio::sync::Semaphore>>,
    devices: Devices,
    /// The deliveries' tasks: stopping push stops them too.
    tasks: tokio::task::JoinSet<()>,
}

impl Dispatcher {
    async fn providers(&mut self, state: &AppState) -> Providers {
        if let Some(providers) = &self.providers {
            return providers.clone();
        }
        let settings = state.settings();
        let vapid = match settings.push.webpush.enabled {
            false => None,
            true => match webpush::vapid_key(state).await {
                Ok(key) => Some(key),
                Err(e) => {
                    tracing::error!(error = %e, "browser notifications are OFF: no usable Web Push key");
                    None
                }
            },
        };
        let providers = Providers::from_settings(&settings, vapid.as_ref()).unwrap_or_else(|e| {
            tracing::error!(error = %e, "native push is OFF: its configuration cannot be used");
            Providers::default()
        });
        self.pool = Some(Arc::new(tokio::sync::Semaphore::new(settings.push.concurrency())));
        self.providers.insert(providers).clone()
    }
}

/// Every registered device by user, read again at most every [`Devices::FRESH`]: the feed's
/// entries come thousands a second in a storm, and most people have no device to push to.
#[derive(Default)]
struct Devices {
    read: Option<(std::time::Instant, std::collections::HashMap<String, Vec<DeviceRecord>>)>,
}

impl Devices {
    /// A device registered this long before a page may not get it.
    const FRESH: Duration = Duration::from_secs(1);

    async fn of(
        &mut self,
        state: &AppState,
        user: &str,
    ) -> reveille_store::Result<Vec<DeviceRecord>> {
        let stale = self.read.as_ref().is_none_or(|(at, _)| at.elapsed() >= Self::FRESH);
        if stale {
            let all = state.store.devices(None).await?;
            let mut by_user: std::collections::HashMap<String, Vec<DeviceRecord>> =
                Default::default();
            for device in all {
                by_user.entry(device.user.clone()).or_default().push(device);
            }
            self.read = Some((std::time::Instant::now(), by_user));
        }
        let by_user = self.read.as_ref().map(|(_, by_user)| by_user.get(user));
        Ok(by_user.flatten().cloned().unwrap_or_default())
    }
}

impl crate::deliver::outbox::Handler for Dispatcher {
    // What a stopped node may have sent without recording it is sent again: the phone shows it
    // once (same collapse id), and the timeline says so.
    async fn handle(
        &mut self,
        state: &AppState,
        user: &str,
        entry: &FeedEvent,
        again: Option<&str>,
    ) -> reveille_store::Result<()> {
        let devices = self.devices.of(state, user).await?;
        if devices.is_empty() {
            return Ok(());
        }
        let providers = self.providers(state).await;
        while self.tasks.try_join_next().is_some() {}
        let pool = self.pool.clone().expect("made with the providers");
        dispatch(state, &providers, &pool, &mut self.tasks, user, devices, entry, again).await
    }

    fn reset(&mut self) {
        self.tasks.abort_all();
    }
}

#[expect(clippy::too_many_arguments, reason = "one entry's whole context, passed once")]
async fn dispatch(
    state: &AppState,
    providers: &Providers,
    pool: &Arc<tokio::sync::Semaphore>,
    tasks: &mut tokio::task::JoinSet<()>,
    user: &str,
    devices: Vec<DeviceRecord>,
    entry: &FeedEvent,
    again: Option<&str>,
) -> reveille_store::Result<()> {
    if devices.is_empty() {
        return Ok(());
    }
    let incident = &entry.incident;
    if entry.kind == FeedKind::Page {
        // A page the incident has moved past (acknowledged meanwhile) must not ring a phone.
        match state.store.incident(incident.id).await {
            Ok(detail) if detail.incident.state == IncidentState::Triggered => {}
            Ok(_) | Err(reveille_store::Error::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    let ack_url = match entry.kind {
        FeedKind::Page => crate::http::links::ack_url_for(state, incident.id, user).await.ok(),
        FeedKind::Incident => None,
    };
    let push = Push {
        kind: entry.kind,
        incident_id: incident.id,
        title: match entry.kind {
            FeedKind::Page => format!("[{}] {}", incident.severity.as_str(), incident.service),
            FeedKind::Incident => format!("{} {}", incident.service, incident.state.as_str()),
        },
        body: incident.summary.clone(),
        state: incident.state,
        urgency: incident.urgency,
        drill: incident.drill,
        ack_url,
        again: again.map(str::to_owned),
    };
    for device in devices {
        let Ok(slot) = pool.clone().acquire_owned().await else { return Ok(()) };
        let (state, providers, push) = (state.clone(), providers.clone(), push.clone());
        tasks.spawn(async move {
            deliver(&state, &providers, &device, &push).await;
            drop(slot);
        });
    }
    Ok(())
}

/// Sends one push to one device, retrying as the provider allows; notes every attempt.
pub async fn deliver(state: &AppState, providers: &Providers, device: &DeviceRecord, push: &Push) {
    let attempts = state.settings().push.attempts();
    let mut delay = Duration::from_millis(state.settings().push.retry_base_ms());
    let who = format!("{} ({}, device {})", device.name, device.platform, device.id);
    for attempt in 1..=attempts {
        let outcome = providers.send(device, push).await;
        let (kind, message) = match &outcome {
            Outcome::Delivered(id) => {
                let again = push.again.as_ref().map_or_else(String::new, |node| {
                    format!("; sent again after node {node} stopped (the phone shows it once)")
                });
                ("push_delivered", format!("Push to {who} accepted by the provider ({id}){again}"))
            }
            Outcome::InvalidToken(why) => {
                ("push_failed", format!("Push to {who} refused: {why}; the device is removed"))
            }
            Outcome::Retry { after, reason } if attempt < attempts => {
                let wait = after.map_or(delay, |a| a.max(delay));
                let message =
                    format!("Push to {who} attempt {attempt}: {reason}; retrying in {wait:?}");
                note(state, push.incident_id, "push_retry", message).await;
                tokio::time::sleep(wait).await;
                delay *= 2;
                continue;
            }
            Outcome::Retry { reason, .. } => {
                ("push_failed", format!("Push to {who} gave up after {attempt} attempts: {reason}"))
            }
            Outcome::Failed(why) => ("push_failed", format!("Push to {who} failed: {why}")),
        };
        let ok = matches!(outcome, Outcome::Delivered(_));
        if let Err(e) = state.store.set_push_ok(device.id, ok).await {
            tracing::error!(error = %e, "cannot record how a push went");
        }
        // Removed before the timeline says so, so nobody reads "removed" of a device still there.
        if let Outcome::InvalidToken(_) = outcome
            && let Err(e) = state.store.remove_device(device.id).await
        {
            tracing::error!(error = %e, "cannot remove a device with a dead token");
        }
        note(state, push.incident_id, kind, message).await;
        return;
    }
}

async fn note(state: &AppState, incident: i64, kind: &str, message: String) {
    let command = Command::Note { kind: kind.into(), message };
    if let Err(e) = state.store.command(incident, "push", command, state.clock.now()).await {
        tracing::error!(error = %e, "cannot write a push attempt on the timeline");
    }
}

/// Reads `Retry-After` as seconds (the HTTP-date form counts as no hint), at most a minute: a
/// delivery waiting holds one of the pool's slots, and a page an hour late is no page.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let seconds: u64 =
        headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(seconds.min(60)))
}
