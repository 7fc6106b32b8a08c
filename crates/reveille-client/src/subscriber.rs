//! The subscriber: one task that keeps the feed connection, rings and silences the device, sends
//! receipts, and delivers the person's acknowledgements through the durable outbox.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use reveille_protocol::feed::FeedOpen;
use reveille_protocol::sse::Parser;
use reveille_protocol::{FeedEvent, FeedKind, Incident, Receipt, ReceiptKind};
use tokio::sync::{mpsc, oneshot, watch};

use crate::api::Api;
use crate::conn::{Connection, Effect as Link, Event, Now, Policy};
use crate::device::Device;
use crate::outbox::{Outbox, Pending, Request};
use crate::pages::{Effect, Pages};

/// Where and how to subscribe.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: String,
    pub token: String,
    /// How this device names itself in receipts, e.g. `alice-laptop`.
    pub device: String,
    pub outbox: PathBuf,
    pub policy: Policy,
    /// The User-Agent: the server tells desktops (`reveille-desktop/…`) from terminals by it.
    pub agent: String,
    /// Whether to send receipts (`delivered`, `ringing`): a device that can ring does; a
    /// terminal that only shows the feed does not.
    pub receipts: bool,
    /// Replay the feed after this id at the start (`reveille watch --since`); None starts with
    /// what is new, and rings for what is open.
    pub resume: Option<i64>,
}

/// What the app can show.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Status {
    pub connected: bool,
    pub lost: bool,
    /// The oldest incidents ringing, at most [`LISTED`] of them.
    pub ringing: Vec<Incident>,
    /// How many incidents are ringing.
    pub ringing_total: usize,
    /// Acknowledgements waiting for the server.
    pub pending: usize,
}

enum Command {
    Act(i64, Request),
    ActAll(Request),
    Configure { device: String, policy: Policy },
}

/// A handle on a running subscriber; dropping every handle stops it.
#[derive(Clone)]
pub struct Subscriber {
    commands: mpsc::Sender<Command>,
    pub status: watch::Receiver<Status>,
}

impl Subscriber {
    /// Starts following the feed.
    pub fn start(config: Config, device: Arc<dyn Device>) -> std::io::Result<Self> {
        let outbox = Outbox::open(&config.outbox)?;
        let (commands, rx) = mpsc::channel(32);
        let (status_tx, status) = watch::channel(Status::default());
        let api = Api::new(&config.server, &config.token, &config.agent)
            .map_err(std::io::Error::other)?;
        let task = Task {
            config,
            device,
            api,
            outbox,
            pages: Pages::default(),
            status: status_tx,
            started: Instant::now(),
            told_silent: None,
        };
        tokio::spawn(task.run(rx));
        Ok(Self { commands, status })
    }

    /// The person acknowledges, resolves or snoozes: kept on disk until the server has it.
    pub async fn act(&self, incident: i64, request: Request) {
        let _ = self.commands.send(Command::Act(incident, request)).await;
    }

    /// The same for every page ringing now, however many a storm brought.
    pub async fn act_all(&self, request: Request) {
        let _ = self.commands.send(Command::ActAll(request)).await;
    }

    /// New settings, taken at once: the device's name in receipts, and the connection's policy
    /// (the feed-lost threshold); the connection itself stays.
    pub async fn configure(&self, device: String, policy: Policy) {
        let _ = self.commands.send(Command::Configure { device, policy }).await;
    }
}

type Body = BoxStream<'static, reqwest::Result<bytes::Bytes>>;

struct Task {
    config: Config,
    device: Arc<dyn Device>,
    api: Api,
    outbox: Outbox,
    pages: Pages,
    status: watch::Sender<Status>,
    started: Instant,
    /// Whether the last `ringing` receipts said this device is silent.
    told_silent: Option<bool>,
}

impl Task {
    fn now(&self) -> Now {
        Now { mono: self.started.elapsed(), wall: jiff::Timestamp::now() }
    }

    async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let fresh = true;
        let (mut conn, first) =
            Connection::start(self.config.policy, self.config.resume, self.now());
        let mut connecting: Option<oneshot::Receiver<Option<Body>>> = None;
        let mut body: Option<Body> = None;
        let mut parser = Parser::default();
        let mut first_open = fresh;
        // What the first list of open incidents rang for, as the list saw each one: the stream
        // after its head may carry the same pages, which must not notify twice.
        let mut listed: BTreeMap<i64, jiff::Timestamp> = BTreeMap::new();
        // Entries committed before the stream opened (up to its `open` head), held until the
        // replay is over: a page answered while this device was away must not ring, not even
        // for an instant, so only each incident's last word is acted on.
        let mut replay_head: i64 = 0;
        let mut backlog = Backlog::default();
        let mut pending_effects = vec![first];
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        let mut ticks: u64 = 0;
        loop {
            for effect in std::mem::take(&mut pending_effects) {
                match effect {
                    Link::Connect { after } => connecting = Some(self.connect(after)),
                    Link::Drop => {
                        body = None;
                        self.settle(&mut backlog);
                    }
                    Link::Lost => self.device.feed_lost(true),
                    Link::Restored => self.device.feed_lost(false),
                }
            }
            self.publish(&conn);
            let random = jitter();
            tokio::select! {
                command = commands.recv() => match command {
                    Some(Command::Act(incident, request)) => self.act(&[incident], request).await,
                    Some(Command::ActAll(request)) => {
                        let ringing: Vec<i64> = self.pages.ringing().map(|i| i.id).collect();
                        self.act(&ringing, request).await;
                    }
                    Some(Command::Configure { device, policy }) => {
                        self.config.device = device;
                        self.config.policy = policy;
                        conn.set_policy(policy);
                    }
                    None => return,
                },
                opened = async { connecting.as_mut().expect("guarded").await }, if connecting.is_some() => {
                    connecting = None;
                    let now = self.now();
                    match opened.ok().flatten() {
                        Some(stream) => {
                            body = Some(stream);
                            parser = Parser::default();
                            pending_effects = conn.on(Event::Opened, now, random);
                            // What was acknowledged offline goes first, so it does not ring again.
                            self.flush().await;
                        }
                        None => pending_effects = conn.on(Event::Closed, now, random),
                    }
                }
                chunk = async { body.as_mut().expect("guarded").next().await }, if body.is_some() => {
                    let now = self.now();
                    match chunk {
                        Some(Ok(bytes)) => {
                            for frame in parser.push(&bytes) {
                                if frame.event == "open" {
                                    let Ok(open) = serde_json::from_str::<FeedOpen>(&frame.data) else {
                                        continue;
                                    };
                                    // Resuming from before what retention removed: entries are
                                    // missing, so what is open now is the truth.
                                    let behind = conn.last_id.is_some_and(|after| after < open.pruned_through);
                                    replay_head = open.head;
                                    pending_effects.extend(conn.on(Event::Head(open.head), now, random));
                                    // Only now is it known where the stream resumes: ring for what
                                    // was open before that point.
                                    if first_open && let Some(rang) = self.ring_for_open().await {
                                        first_open = false;
                                        listed = rang;
                                    } else if behind {
                                        self.resync().await;
                                    }
                                    continue;
                                }
                                let entry = match frame.event.as_str() {
                                    "page" | "incident" => serde_json::from_str::<FeedEvent>(&frame.data).ok(),
                                    _ => None,
                                };
                                let id = entry.as_ref().map(|e| e.id);
                                pending_effects.extend(conn.on(Event::Frame { id }, now, random));
                                if let Some(entry) = &entry {
                                    self.device.entry(entry);
                                }
                                let Some(entry) = entry else {
                                    // A heartbeat: the server sends one as soon as a replay is over.
                                    self.settle(&mut backlog);
                                    continue;
                                };
                                let shown = listed.remove(&entry.incident.id).is_some_and(|seen| {
                                    entry.kind == FeedKind::Page && entry.incident.updated_at <= seen
                                });
                                if shown {
                                    continue;
                                }
                                if entry.id <= replay_head {
                                    backlog.push(entry, now.mono);
                                } else {
                                    self.settle(&mut backlog);
                                    let effects = self.pages.on_entry(&entry);
                                    self.perform(effects);
                                }
                            }
                        }
                        Some(Err(_)) | None => {
                            body = None;
                            self.settle(&mut backlog);
                            pending_effects = conn.on(Event::Closed, now, random);
                        }
                    }
                }
                _ = tick.tick() => {
                    pending_effects = conn.on(Event::Tick, self.now(), random);
                    // A replay whose end was never marked is not held longer than a moment.
                    if backlog.since.is_some_and(|t| self.now().mono.saturating_sub(t) >= HOLD) {
                        self.settle(&mut backlog);
                    }
                    // Retry what the server could not take yet, every few seconds while up.
                    ticks += 1;
                    if ticks.is_multiple_of(20) && body.is_some() && !self.outbox.pending().is_empty() {
                        self.flush().await;
                    }
                    if ticks.is_multiple_of(SOUND_TICKS) {
                        self.watch_sound();
                    }
                }
            }
        }
    }

    /// Acts on what the replay held back: each incident's last entry only.
    fn settle(&mut self, backlog: &mut Backlog) {
        backlog.since = None;
        let entries = std::mem::take(&mut backlog.entries);
        if !entries.is_empty() {
            let effects = self.pages.on_replay(&entries);
            self.perform(effects);
        }
    }

    /// Opens the SSE stream in the background; the answer is the body, or None on failure.
    fn connect(&self, after: Option<i64>) -> oneshot::Receiver<Option<Body>> {
        let (tx, rx) = oneshot::channel();
        let mut request = self.api.request(reqwest::Method::GET, "/api/v1/feed");
        if let Some(id) = after {
            request = request.header("last-event-id", id.to_string());
        }
        let device = self.device.clone();
        tokio::spawn(async move {
            // A server that accepts the connection but never answers counts as down.
            let answer = tokio::time::timeout(REQUEST_TIMEOUT, request.send()).await;
            let body = match answer.unwrap_or_else(|_| Err(timeout_error())) {
                Ok(r) if r.status().is_success() => Some(r.bytes_stream().boxed()),
                Ok(r) => {
                    tracing::warn!(status = %r.status(), "the server refused the feed");
                    if matches!(r.status().as_u16(), 401 | 403) {
                        let refused = crate::api::read::<serde_json::Value>(r).await;
                        device.refused(&refused.err().map(|e| e.to_string()).unwrap_or_default());
                    }
                    None
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot reach the server");
                    None
                }
            };
            let _ = tx.send(body);
        });
        rx
    }

    /// On the first stream: ring for what was already open for this person. Returns each
    /// incident listed, as of when it was listed; None if the list cannot be had now.
    async fn ring_for_open(&mut self) -> Option<BTreeMap<i64, jiff::Timestamp>> {
        let list = self.api.my_open_incidents().await.ok()?;
        let effects = self.pages.on_open(&list.incidents);
        self.perform(effects);
        Some(list.incidents.iter().map(|i| (i.id, i.updated_at)).collect())
    }

    /// The stream resumed from before entries retention removed: what is open now replaces
    /// what this device was ringing for.
    async fn resync(&mut self) {
        if let Ok(list) = self.api.my_open_incidents().await {
            let effects = self.pages.on_resync(&list.incidents);
            self.perform(effects);
        }
    }

    /// After a refusal: ring again if the incident still waits for someone.
    async fn ring_if_waiting(&mut self, incident: i64) {
        if let Ok(detail) = self.api.incident(incident).await {
            let effects = self.pages.on_open(&[detail.incident]);
            self.perform(effects);
        }
    }

    fn perform(&mut self, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::Notify(incident) => self.device.notify(&incident),
                Effect::Show(incident) => self.device.show(&incident),
                Effect::Ring => {
                    self.device.ring();
                    self.tell_ringing(self.device.sound());
                }
                Effect::Silence => self.device.silence(),
                Effect::Withdraw(id) => self.device.withdraw(id),
                Effect::Waiting(count) => self.device.waiting(count),
                Effect::Receipt { incident, kind } => self.receipt(incident, kind),
            }
        }
    }

    /// While ringing: if the device has fallen silent (its output went away or was muted) or can
    /// be heard again, the server is told at once, so it pages someone else while nobody hears.
    fn watch_sound(&mut self) {
        if !self.pages.is_ringing() {
            self.told_silent = None;
            return;
        }
        let sound = self.device.sound();
        if self.told_silent != Some(sound.silent) {
            self.tell_ringing(sound);
        }
    }

    /// A `ringing` receipt, with how it sounds now, for every page ringing.
    fn tell_ringing(&mut self, sound: crate::device::Sound) {
        self.told_silent = Some(sound.silent);
        for incident in self.pages.ringing().map(|i| i.id).collect::<Vec<_>>() {
            self.send_receipt(incident, ReceiptKind::Ringing, &sound);
        }
    }

    /// Sends a receipt in the background; receipts are best effort.
    fn receipt(&self, incident: i64, kind: ReceiptKind) {
        let quiet = crate::device::Sound { volume: None, silent: false, output: None };
        self.send_receipt(incident, kind, &quiet);
    }

    fn send_receipt(&self, incident: i64, kind: ReceiptKind, sound: &crate::device::Sound) {
        if !self.config.receipts {
            return;
        }
        let ringing = kind == ReceiptKind::Ringing;
        let sound = sound.clone();
        let receipt = Receipt {
            kind,
            device: self.config.device.clone(),
            volume: if ringing { sound.volume } else { None },
            muted: ringing.then_some(sound.silent),
            output: if ringing { sound.output } else { None },
        };
        let api = self.api.clone();
        tokio::spawn(async move {
            if let Err(e) = api.receipt(incident, &receipt).await {
                tracing::debug!(error = %e, "receipt not sent");
            }
        });
    }

    async fn act(&mut self, incidents: &[i64], request: Request) {
        // The person has acted: this device stops ringing now, whatever the network says.
        let at = jiff::Timestamp::now();
        let mut items = Vec::with_capacity(incidents.len());
        for &incident in incidents {
            let effects = self.pages.on_local(incident);
            self.perform(effects);
            items.push(Pending { incident, request, at });
        }
        if let Err(e) = self.outbox.push_all(items) {
            tracing::error!(error = %e, "cannot keep the acknowledgement on disk");
        }
        self.flush().await;
    }

    /// Sends what the outbox holds, each kind of request for many incidents in one call; keeps
    /// what the server could not take yet.
    async fn flush(&mut self) {
        let mut groups: Vec<(Request, Vec<i64>)> = Vec::new();
        for item in self.outbox.pending() {
            match groups.iter_mut().find(|(request, _)| *request == item.request) {
                Some((_, ids)) => ids.push(item.incident),
                None => groups.push((item.request, vec![item.incident])),
            }
        }
        for (request, ids) in groups {
            for chunk in ids.chunks(BATCH) {
                if !self.send_many(request, chunk).await {
                    return;
                }
            }
        }
    }

    /// One bulk call; false when the server could not take it now (it stays in the outbox).
    async fn send_many(&mut self, request: Request, ids: &[i64]) -> bool {
        let refused: Vec<i64> = match self.api.act_many(request, ids, &self.config.device).await {
            Ok(answer) => answer.refused.into_iter().map(|r| r.id).collect(),
            // A server from before bulk actions: one call per incident.
            Err(e) if matches!(e.status(), Some(404 | 405)) => {
                return self.send_each(request, ids).await;
            }
            Err(e) if e.status().is_some_and(refused_for_good) => ids.to_vec(),
            Err(_) => return false,
        };
        if let Err(e) = self.outbox.done_many(request, ids) {
            tracing::error!(error = %e, "cannot update the ack outbox");
        }
        if !refused.is_empty() {
            // Refused for good: what still waits for someone rings again (one list, however many).
            tracing::warn!(count = refused.len(), "the server refused actions");
            if let Ok(list) = self.api.my_open_incidents().await {
                let open: Vec<_> =
                    list.incidents.into_iter().filter(|i| refused.contains(&i.id)).collect();
                let effects = self.pages.on_open(&open);
                self.perform(effects);
            }
        }
        true
    }

    /// The calls of a server without bulk actions, one incident at a time.
    async fn send_each(&mut self, request: Request, ids: &[i64]) -> bool {
        for &incident in ids {
            let refused = match self.api.act(request, incident).await {
                Ok(_) => false,
                Err(e) if e.status().is_some_and(refused_for_good) => true,
                Err(_) => return false,
            };
            if let Err(e) = self.outbox.done(incident, request) {
                tracing::error!(error = %e, "cannot update the ack outbox");
            }
            if refused {
                tracing::warn!(incident, "the server refused an action");
                self.ring_if_waiting(incident).await;
            }
        }
        true
    }

    fn publish(&self, conn: &Connection) {
        let status = Status {
            connected: matches!(conn.link, crate::conn::Link::Up { .. }),
            lost: conn.is_lost(),
            // A storm can ring thousands: copying them all at every step would make it slow.
            ringing: self.pages.ringing().take(LISTED).cloned().collect(),
            ringing_total: self.pages.ringing_count(),
            pending: self.outbox.pending().len(),
        };
        self.status.send_if_modified(|s| {
            let changed = *s != status;
            *s = status;
            changed
        });
    }
}

/// Replayed entries not yet acted on, and since when.
#[derive(Default)]
struct Backlog {
    entries: Vec<FeedEvent>,
    since: Option<Duration>,
}

impl Backlog {
    fn push(&mut self, entry: FeedEvent, now: Duration) {
        self.since.get_or_insert(now);
        self.entries.push(entry);
    }
}

/// The longest a replay is held back when the server does not mark its end.
const HOLD: Duration = Duration::from_secs(1);

/// Incidents named in one bulk call (the server takes up to 10,000).
const BATCH: usize = 5_000;

/// Gone, resolved, not allowed: sending it again will not change the answer.
fn refused_for_good(status: u16) -> bool {
    (400..500).contains(&status) && status != 429 && status != 408
}

/// Ticks (of 250 ms) between two looks at whether a ringing device can still be heard.
const SOUND_TICKS: u64 = 8;

/// Ringing incidents listed in [`Status`].
pub const LISTED: usize = 50;

/// How long any request may take, except the feed stream itself once it is open.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

fn timeout_error() -> reqwest::Error {
    // reqwest has no public constructor for errors; a request to an invalid URL makes one.
    reqwest::Client::new().get("http://[").build().expect_err("an invalid URL")
}

/// A number in [0, 1) for backoff jitter; the low bits of the clock are random enough for that.
fn jitter() -> f64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    f64::from(nanos % 1_000_000) / 1_000_000.0
}
