//! One task per source: looks at what the vendor says is open (every `poll_seconds`, or at once
//! when a stream wakes it), rings and withdraws through [`Pages`] exactly as for the Reveille feed,
//! carries out the person's actions through a durable outbox, and reports its health.
//!
//! What the person answered here is held back from ringing again while the vendor catches up
//! (an Opsgenie ack is processed a moment after its 202): until the vendor no longer lists it, or
//! for [`CATCH_UP`] at most, after which a page still open rings again. A snooze holds it for the
//! snooze's length, here only: the vendors are not told.

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{Notify, mpsc, watch};

use super::{Failure, Found, SourceConfig, local_id};
use crate::device::Device;
use crate::outbox::{Outbox, Pending, Request};
use crate::pages::{Effect, Pages};

/// How long an answer made here holds a page that the vendor still lists as open.
pub const CATCH_UP: Duration = Duration::from_secs(300);

/// A vendor's API, as a source needs it.
pub(crate) trait Api: Send + Sync + 'static {
    /// What is open now and waits for the person.
    fn open(&self) -> impl Future<Output = Result<Vec<Found>, Failure>> + Send;
    /// Carries out the person's answer to `found`; what to show of it, if anything (the
    /// silence an Alertmanager ack made).
    fn act(
        &self,
        found: &Found,
        request: Request,
    ) -> impl Future<Output = Result<Option<String>, Failure>> + Send;
    /// Woken when there is something new to look at (a stream's message), if the API streams.
    fn wake(&self) -> Option<Arc<Notify>> {
        None
    }
}

/// How a source is doing, for the tray and the settings window.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Health {
    /// None until the first look.
    pub ok: Option<bool>,
    /// What went wrong, or what was found.
    pub message: String,
    /// Pages open there for the person.
    pub open: usize,
    /// Failing for longer than the feed-lost threshold.
    pub lost: bool,
    /// Answers waiting to be delivered.
    pub pending: usize,
    /// What the last answer did there (the silence an Alertmanager ack made).
    pub note: Option<String>,
}

enum Command {
    Act(i64, Request),
    ActAll(Request),
}

/// A running source; dropping it stops the task, which withdraws its pages.
pub struct Handle {
    pub slot: u8,
    pub config: SourceConfig,
    pub health: watch::Receiver<Health>,
    commands: mpsc::Sender<Command>,
    task: tokio::task::JoinHandle<()>,
}

impl Handle {
    /// Stops the source and waits until its pages are withdrawn (at most `patience`): its slot
    /// and ids may then be given to another source without the old one acting on them.
    pub async fn stop(self, patience: Duration) {
        let Handle { commands, task, .. } = self;
        drop(commands);
        let _ = tokio::time::timeout(patience, task).await;
    }

    pub async fn act(&self, incident: i64, request: Request) {
        self.commands().act(incident, request).await;
    }

    /// A way to reach the source's task without holding the handle (which owns it).
    pub fn commands(&self) -> Commands {
        Commands(self.commands.clone())
    }
}

/// The person's answers, for a source's task.
#[derive(Clone)]
pub struct Commands(mpsc::Sender<Command>);

impl Commands {
    pub async fn act(&self, incident: i64, request: Request) {
        let _ = self.0.send(Command::Act(incident, request)).await;
    }

    /// The same for every page of the source ringing now.
    pub async fn act_all(&self, request: Request) {
        let _ = self.0.send(Command::ActAll(request)).await;
    }
}

/// How often a source is looked at, and how long it may fail before its feed counts as lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub interval: Duration,
    pub lost_after: Duration,
}

/// Starts following `config` with its credential; `outbox` keeps its answers across restarts.
pub fn start(
    slot: u8,
    config: SourceConfig,
    secret: String,
    device: Arc<dyn Device>,
    outbox: PathBuf,
    timing: Timing,
) -> std::io::Result<Handle> {
    let outbox = Outbox::open(outbox)?;
    let (commands, rx) = mpsc::channel(32);
    let (health_tx, health) = watch::channel(Health::default());
    let http = reqwest::Client::builder()
        .user_agent(concat!("reveille-desktop/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(20))
        .build()
        .map_err(std::io::Error::other)?;
    let state = Poller {
        slot,
        config: config.clone(),
        device,
        pages: Pages::default(),
        found: HashMap::new(),
        ids: HashMap::new(),
        next: 0,
        held: HashMap::new(),
        outbox,
        health: health_tx,
        failing_since: None,
        attempt: 0,
        timing,
        looked_once: false,
    };
    use super::Kind;
    let task = match config.kind {
        Kind::PagerDuty => {
            tokio::spawn(state.run(super::pagerduty::Api::new(http, &config, secret), rx))
        }
        Kind::Opsgenie => {
            tokio::spawn(state.run(super::opsgenie::Api::new(http, &config, secret), rx))
        }
        Kind::Alertmanager => {
            tokio::spawn(state.run(super::alertmanager::Api::new(http, &config, secret), rx))
        }
        Kind::Ntfy => tokio::spawn(state.run(super::ntfy::Api::start(&config, secret)?, rx)),
    };
    Ok(Handle { slot, config, health, commands, task })
}

struct Poller {
    slot: u8,
    config: SourceConfig,
    device: Arc<dyn Device>,
    pages: Pages,
    /// What the last look found, by local id.
    found: HashMap<i64, Found>,
    /// Local ids of the vendor's keys.
    ids: HashMap<String, i64>,
    next: u32,
    /// Pages answered here, held back from ringing until this moment.
    held: HashMap<String, Instant>,
    outbox: Outbox<String>,
    health: watch::Sender<Health>,
    failing_since: Option<Instant>,
    attempt: u32,
    timing: Timing,
    /// A look has succeeded: `found` says what is open.
    looked_once: bool,
}

impl Poller {
    async fn run<A: Api>(mut self, api: A, mut commands: mpsc::Receiver<Command>) {
        let wake = api.wake().unwrap_or_default();
        // Answers kept from before a restart hold their pages as a fresh answer would.
        let now = Instant::now();
        for item in self.outbox.pending() {
            self.held.insert(item.incident.clone(), now + CATCH_UP);
        }
        loop {
            // A look, unless the person answers first: an answer is taken at once, never after
            // a slow vendor's look (the look is started again after it).
            let opened = tokio::select! {
                opened = api.open() => opened,
                command = commands.recv() => match command {
                    Some(command) => {
                        self.command(&api, command).await;
                        continue;
                    }
                    None => break,
                },
            };
            let wait = self.looked(&api, opened).await;
            tokio::select! {
                command = commands.recv() => match command {
                    Some(command) => self.command(&api, command).await,
                    None => break,
                },
                () = tokio::time::sleep(wait) => {}
                () = wake.notified() => {}
            }
        }
        // Removed or signed out: nothing of this source may keep ringing or stay on screen.
        let effects = self.pages.on_resync(&[]);
        self.perform(effects);
        self.device.feed_lost(false);
    }

    /// Takes in what a look found; returns how long to wait before the next look.
    async fn looked<A: Api>(&mut self, api: &A, opened: Result<Vec<Found>, Failure>) -> Duration {
        let now = Instant::now();
        match opened {
            Ok(found) => {
                self.attempt = 0;
                if self.failing_since.take().is_some() {
                    self.device.feed_lost(false);
                }
                let count = found.len();
                self.update(found, now);
                self.report(Some(true), format!("{count} open"), count);
                // What is open is known now: the answers kept can be delivered.
                self.flush(api).await;
                self.timing.interval
            }
            Err(failure) => {
                let since = *self.failing_since.get_or_insert(now);
                let lost = now.duration_since(since) >= self.timing.lost_after;
                if lost && !self.health.borrow().lost {
                    self.device.feed_lost(true);
                }
                let open = self.health.borrow().open;
                self.report(Some(false), failure.to_string(), open);
                self.health.send_modify(|h| h.lost = lost);
                self.attempt += 1;
                // A quarter of the interval, doubling on each failure, up to the interval.
                let backoff = (self.timing.interval / 4 * (1u32 << self.attempt.min(6)))
                    .min(self.timing.interval);
                match failure {
                    Failure::RateLimited(Some(wait)) => wait.max(backoff),
                    Failure::RateLimited(None) | Failure::Down(_) => backoff,
                    Failure::Refused(_) => self.timing.interval,
                }
            }
        }
    }

    /// What is open now replaces what was ringing; answered pages stay held while they last.
    fn update(&mut self, found: Vec<Found>, now: Instant) {
        let listed: std::collections::HashSet<&str> =
            found.iter().map(|f| f.key.as_str()).collect();
        // The vendor no longer lists it: it agrees with the answer, and the hold is done. A hold
        // that ran out on a page still listed lets it ring again, delivered or not.
        self.held.retain(|key, until| listed.contains(key.as_str()) && *until > now);
        let mut incidents = Vec::new();
        let mut kept = HashMap::new();
        let mut ids = HashMap::new();
        for item in found {
            let id = match self.ids.get(&item.key) {
                Some(&id) => id,
                None => {
                    self.next = self.next.wrapping_add(1);
                    local_id(self.slot, self.next)
                }
            };
            ids.insert(item.key.clone(), id);
            if !self.held.contains_key(&item.key) {
                incidents.push(item.incident(id, &self.config));
            }
            kept.insert(id, item);
        }
        self.ids = ids;
        self.found = kept;
        self.looked_once = true;
        let effects = self.pages.on_resync(&incidents);
        self.perform(effects);
    }

    async fn command<A: Api>(&mut self, api: &A, command: Command) {
        let (ids, request) = match command {
            Command::Act(id, request) => (vec![id], request),
            Command::ActAll(request) => (self.pages.ringing().map(|i| i.id).collect(), request),
        };
        let hold = match request {
            Request::Snooze { seconds } => Duration::from_secs(seconds),
            Request::Ack | Request::Resolve => CATCH_UP,
        };
        let now = Instant::now();
        let at = jiff::Timestamp::now();
        let mut items = Vec::new();
        for id in ids {
            // The person has answered: silent here at once, whatever the vendor says.
            let effects = self.pages.on_local(id);
            self.perform(effects);
            let Some(found) = self.found.get(&id) else { continue };
            self.held.insert(found.key.clone(), now + hold);
            if !matches!(request, Request::Snooze { .. }) {
                items.push(Pending { incident: found.key.clone(), request, at });
            }
        }
        if let Err(e) = self.outbox.push_all(items) {
            tracing::error!(error = %e, source = %self.config.name, "cannot keep the answer on disk");
        }
        self.flush(api).await;
    }

    /// Delivers the answers kept; stops at the first the vendor cannot take now. Only once a look
    /// has said what is open: an answer to a page no longer listed is then done.
    async fn flush<A: Api>(&mut self, api: &A) {
        if !self.looked_once {
            return;
        }
        for item in self.outbox.pending().to_vec() {
            let found = self.found.values().find(|f| f.key == item.incident).cloned();
            let outcome = match &found {
                Some(found) => api.act(found, item.request).await,
                // No longer open there: nothing left to answer.
                None => Ok(None),
            };
            match outcome {
                Ok(note) => {
                    if note.is_some() {
                        self.health.send_modify(|h| h.note = note);
                    }
                }
                Err(Failure::Refused(why)) => {
                    tracing::warn!(source = %self.config.name, %why, "the answer was refused");
                    // Still open, and not answered: it rings again at the next look.
                    self.held.remove(&item.incident);
                }
                Err(_) => break,
            }
            if let Err(e) = self.outbox.done(item.incident, item.request) {
                tracing::error!(error = %e, "cannot update the outbox");
            }
        }
        let pending = self.outbox.pending().len();
        self.health.send_modify(|h| h.pending = pending);
    }

    fn report(&self, ok: Option<bool>, message: String, open: usize) {
        self.health.send_modify(|h| {
            h.ok = ok;
            h.message = message;
            h.open = open;
        });
    }

    fn perform(&self, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::Notify(incident) => self.device.notify(&incident),
                Effect::Show(incident) => self.device.show(&incident),
                Effect::Ring => self.device.ring(),
                Effect::Silence => self.device.silence(),
                Effect::Withdraw(id) => self.device.withdraw(id),
                Effect::Waiting(count) => self.device.waiting(count),
                // Receipts are Reveille's: the vendors have none.
                Effect::Receipt { .. } => {}
            }
        }
    }
}
