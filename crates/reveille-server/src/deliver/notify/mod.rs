//! Reaching people beyond their devices: each page in the committed feed is planned by the
//! person's rules ([`reveille_core::notify`]); a step that comes due goes out only if the
//! incident is still waiting for someone, so an acknowledgement anywhere stops every step left.
//!
//! Coalescing: each person gets at most one message per channel per [`COALESCE`]. The first page
//! goes out at once; what comes due meanwhile (pages and state changes) waits and goes out as one
//! digest, so a storm of 10,000 alerts is a mail a minute, not 10,000 mails. Every message is a
//! receipt on the timeline of each incident in it (`email_sent`, `email_update`, `email_failed`,
//! recorded as the person). Steps waiting in memory keep the outbox cursor before their page, so
//! after a restart they are planned again from the page's own time; the timeline says what was
//! sent already.
//!
//! A message a channel could not take for a reason that may pass (a mail server's 4xx such as
//! greylisting, a network error, a Matrix 5xx) is tried again, waiting from [`FIRST_WAIT`] and
//! doubling to [`LONGEST_WAIT`], on the server's clock, for [`RETRY_FOR`] (`email_retry` on the
//! timeline each time); a refusal that will not pass (a 5xx, an address that does not exist)
//! is final at once (`email_failed`). How each person's channels last fared is kept for the
//! readiness board ([`reach`]).

mod reach;
mod retry;
pub mod rules;
mod send;

use retry::{Retry, Tries, deliver};

pub use reach::{Reach, reach};
pub use send::Failure;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use reveille_core::notify::Channel;
use reveille_protocol::{FeedEvent, FeedKind, IncidentState};
use tokio::sync::mpsc;

use crate::AppState;
use crate::deliver::email::{Item, Mailer};
use crate::deliver::matrix::Bot;

/// The channels this server can send on. The Matrix bot arrives once it has connected.
#[derive(Default)]
pub struct Channels {
    pub email: Option<Mailer>,
    pub matrix: tokio::sync::SetOnce<Bot>,
}

/// The least time between two messages to one person on one channel.
pub const COALESCE: SignedDuration = SignedDuration::from_secs(60);
/// How long a message that failed for a reason that may pass is tried again.
pub const RETRY_FOR: SignedDuration = SignedDuration::from_hours(1);
/// The first wait before trying a message again; it doubles up to [`LONGEST_WAIT`].
pub const FIRST_WAIT: SignedDuration = SignedDuration::from_secs(30);
pub const LONGEST_WAIT: SignedDuration = SignedDuration::from_mins(15);

/// A step planned for a page.
#[derive(Debug, Clone)]
struct Planned {
    feed_id: i64,
    user: String,
    channel: Channel,
    incident: i64,
    due: Timestamp,
}

/// What one person's channel still has to say: feed id, incident, whether it is a page.
#[derive(Default)]
struct Queue {
    items: Vec<(i64, i64, bool)>,
    last_sent: Option<Timestamp>,
}

pub struct Notifier {
    /// Made at their first use ([`Notifier::channels`]).
    channels: Option<Arc<Channels>>,
    planned: Vec<Planned>,
    queues: HashMap<(String, Channel), Queue>,
    /// Messages being sent now, by a number of their own: the oldest feed id in each.
    sending: Arc<Mutex<BTreeMap<u64, i64>>>,
    next: u64,
    /// Messages to try again, and where the attempts say so.
    retrying: Vec<Retry>,
    deferred: (mpsc::UnboundedSender<Retry>, mpsc::UnboundedReceiver<Retry>),
    /// The attempts' tasks: stopping the notifier stops them too.
    tasks: tokio::task::JoinSet<()>,
}

impl Default for Notifier {
    fn default() -> Self {
        Self {
            channels: None,
            planned: Vec::new(),
            queues: HashMap::new(),
            sending: Arc::default(),
            next: 0,
            retrying: Vec::new(),
            deferred: mpsc::unbounded_channel(),
            tasks: tokio::task::JoinSet::new(),
        }
    }
}

impl Notifier {
    /// The channels, made at their first use: the mailer from `[email]`, and the Matrix bot,
    /// connecting (and retrying) on a task of the notifier's own.
    fn channels(&mut self, state: &AppState) -> Arc<Channels> {
        if let Some(channels) = &self.channels {
            return channels.clone();
        }
        let settings = state.settings();
        let email = Mailer::from_settings(&settings).unwrap_or_else(|e| {
            tracing::error!(error = %e, "email is OFF: its configuration cannot be used");
            None
        });
        let channels = Arc::new(Channels { email, matrix: tokio::sync::SetOnce::new() });
        if settings.matrix.is_some() {
            let (state, connecting) = (state.clone(), channels.clone());
            self.tasks.spawn(async move {
                loop {
                    match Bot::connect(&state).await {
                        Ok(Some(bot)) => {
                            tracing::info!(room = %bot.room, bot = %bot.me, "Matrix bot connected");
                            let _ = connecting.matrix.set(bot);
                            return;
                        }
                        Ok(None) => return,
                        Err(e) => {
                            tracing::error!(error = %e, "cannot connect to Matrix; retrying in 10 s");
                            tokio::time::sleep(Duration::from_secs(10)).await;
                        }
                    }
                }
            });
        }
        self.channels.insert(channels).clone()
    }
}

fn kinds(channel: Channel) -> [String; 3] {
    let c = channel.as_str();
    [format!("{c}_sent"), format!("{c}_update"), format!("{c}_failed")]
}

impl crate::deliver::outbox::Handler for Notifier {
    async fn handle(
        &mut self,
        state: &AppState,
        user: &str,
        entry: &FeedEvent,
        _again: Option<&str>,
    ) -> reveille_store::Result<()> {
        let incident = &entry.incident;
        if incident.drill {
            return Ok(());
        }
        match entry.kind {
            FeedKind::Page => {
                let rules = state.notify_rules(user).await?;
                for (channel, due) in rules.plan(incident.urgency, entry.at) {
                    self.planned.push(Planned {
                        feed_id: entry.id,
                        user: user.to_owned(),
                        channel,
                        incident: incident.id,
                        due,
                    });
                }
            }
            FeedKind::Incident => {
                // A change is told on the channels the person was told of the page on.
                let detail = match state.store.incident(incident.id).await {
                    Ok(detail) => detail,
                    Err(reveille_store::Error::NotFound(_)) => return Ok(()),
                    Err(e) => return Err(e),
                };
                for channel in [Channel::Email, Channel::Matrix] {
                    let [sent, _, _] = kinds(channel);
                    let told = detail.timeline.iter().any(|e| e.kind == sent && e.actor == user);
                    if told {
                        let queue = self.queues.entry((user.to_owned(), channel)).or_default();
                        queue.items.push((entry.id, incident.id, false));
                    }
                }
            }
        }
        Ok(())
    }

    async fn tick(&mut self, state: &AppState) {
        let now = state.clock.now();
        let (due, later): (Vec<Planned>, Vec<Planned>) =
            std::mem::take(&mut self.planned).into_iter().partition(|p| p.due <= now);
        self.planned = later;
        for p in due {
            let queue = self.queues.entry((p.user, p.channel)).or_default();
            queue.items.push((p.feed_id, p.incident, true));
        }
        let ready: Vec<(String, Channel)> = self
            .queues
            .iter()
            .filter(|(_, q)| !q.items.is_empty())
            .filter(|(_, q)| q.last_sent.is_none_or(|t| now.duration_since(t) >= COALESCE))
            .map(|(k, _)| k.clone())
            .collect();
        for (user, channel) in ready {
            let key = (user.clone(), channel);
            let items = std::mem::take(&mut self.queues.get_mut(&key).expect("listed above").items);
            let gathered = match self.gather(state, &user, channel, &items).await {
                Ok(gathered) => gathered,
                Err(e) => {
                    // Tried again at the next tick: nothing of it is dropped.
                    tracing::warn!(error = %e, %user, "cannot read what to tell; trying again shortly");
                    self.queues.get_mut(&key).expect("listed above").items.splice(0..0, items);
                    continue;
                }
            };
            if let Some(message) = gathered {
                self.queues.get_mut(&key).expect("listed above").last_sent = Some(now);
                let oldest = items.iter().map(|(f, _, _)| *f).min().unwrap_or(0);
                self.next += 1;
                let number = self.next;
                self.sending.lock().unwrap_or_else(|p| p.into_inner()).insert(number, oldest);
                self.spawn(
                    state,
                    Retry { number, oldest, user, out: message, due: now, tries: Tries::FRESH },
                );
            }
        }
        // Messages to try again: those whose attempt just failed are scheduled, those due go.
        while let Ok(retry) = self.deferred.1.try_recv() {
            self.retrying.push(retry);
        }
        let (due, later): (Vec<Retry>, Vec<Retry>) =
            std::mem::take(&mut self.retrying).into_iter().partition(|r| r.due <= now);
        self.retrying = later;
        for retry in due {
            self.spawn(state, retry);
        }
    }

    fn reset(&mut self) {
        self.tasks.abort_all();
        self.channels = None;
        self.planned.clear();
        self.queues.clear();
        self.retrying.clear();
        while self.deferred.1.try_recv().is_ok() {}
        self.sending.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    fn waiting(&self) -> Option<i64> {
        let planned = self.planned.iter().map(|p| p.feed_id);
        let queued = self.queues.values().flat_map(|q| q.items.iter().map(|(f, _, _)| *f));
        let retrying = self.retrying.iter().map(|r| r.oldest);
        let sending = self.sending.lock().unwrap_or_else(|p| p.into_inner());
        planned.chain(queued).chain(retrying).chain(sending.values().copied()).min()
    }
}

/// A message ready to go: the incidents in it (with whether each is a page), the address.
struct Outgoing {
    channel: Channel,
    incidents: Vec<(i64, bool)>,
    to: String,
    items: Vec<Item>,
}

impl Notifier {
    /// Attempts a message on a task of its own. One to try again comes back through `deferred`
    /// still counted as being sent, so the cursor never passes it in between.
    fn spawn(&mut self, state: &AppState, attempt: Retry) {
        let channels = self.channels(state);
        let state = state.clone();
        let (sending, deferred) = (self.sending.clone(), self.deferred.0.clone());
        while self.tasks.try_join_next().is_some() {}
        self.tasks.spawn(async move {
            let number = attempt.number;
            match deliver(&state, &channels, attempt).await {
                Some(retry) => {
                    let _ = deferred.send(retry);
                }
                None => {
                    sending.lock().unwrap_or_else(|p| p.into_inner()).remove(&number);
                }
            }
        });
    }

    /// What of `items` is still worth saying, as a message: pages of incidents still waiting
    /// and not told already, and changes not told already.
    async fn gather(
        &self,
        state: &AppState,
        user: &str,
        channel: Channel,
        items: &[(i64, i64, bool)],
    ) -> reveille_store::Result<Option<Outgoing>> {
        let settings = state.settings();
        let Some(person) = settings.users.iter().find(|u| u.name == user) else {
            return Ok(None);
        };
        let to = match channel {
            Channel::Email => person.email.clone(),
            Channel::Matrix => person.matrix.clone(),
        };
        let Some(to) = to else { return Ok(None) };
        let [sent, update, _] = kinds(channel);
        let mut chosen = Vec::new();
        let mut told = Vec::new();
        for (_, id, page) in items {
            if told.contains(&(*id, *page)) {
                continue;
            }
            let detail = match state.store.incident(*id).await {
                Ok(detail) => detail,
                Err(reveille_store::Error::NotFound(_)) => continue,
                Err(e) => return Err(e),
            };
            let incident = detail.incident;
            let mine =
                |kind: &str| detail.timeline.iter().any(|e| e.kind == kind && e.actor == user);
            let item = if *page {
                if incident.state != IncidentState::Triggered || mine(&sent) {
                    continue;
                }
                let ack_url = crate::http::links::ack_url_for(state, incident.id, user).await.ok();
                Item::Page { incident, ack_url }
            } else {
                let said = format!("now {}", incident.state.as_str());
                let already = detail
                    .timeline
                    .iter()
                    .any(|e| e.kind == update && e.actor == user && e.message.contains(&said));
                if already {
                    continue;
                }
                Item::Update(incident)
            };
            told.push((*id, *page));
            chosen.push(item);
        }
        if chosen.is_empty() {
            return Ok(None);
        }
        Ok(Some(Outgoing { channel, incidents: told, to, items: chosen }))
    }
}
