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
//!
//! Calls and texts go the same way, with three differences. A person has at most one call in
//! flight, and what comes due meanwhile is one call after it (not a call a minute). Each call or text step of the person's rules is its own attempt (a second `call`
//! step calls again), counted on the timeline so a restart does not repeat one. And a call
//! nobody answered (busy, no answer, failed) moves the person's rules on: their next steps for
//! those incidents come due at once.

mod gather;
mod reach;
mod retry;
pub mod rules;
mod send;
pub mod trial;

use retry::{Retry, Tries, deliver};

pub use gather::Outgoing;
pub use reach::{Reach, reach, record_test, tested};
pub use send::{Failure, Fate};

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use jiff::{SignedDuration, Timestamp};
use reveille_core::notify::Channel;
use reveille_protocol::{FeedEvent, FeedKind};
use tokio::sync::mpsc;

use crate::AppState;
use crate::deliver::email::Mailer;
use crate::deliver::matrix::Bot;

/// The channels this server can send on. The Matrix bot arrives once it has connected.
pub struct Channels {
    pub email: Option<Mailer>,
    pub matrix: tokio::sync::SetOnce<Bot>,
    /// Tells the notifier a person's rules move on now for these incidents (a call not
    /// answered).
    pub moved_on: mpsc::UnboundedSender<MovedOn>,
}

/// A person whose rules move on now for these incidents.
pub type MovedOn = (String, Vec<i64>);

/// Whether anything reaches people beyond their devices, so the notifier runs.
pub fn wanted(settings: &crate::config::Settings) -> bool {
    settings.email.is_some()
        || settings.matrix.is_some()
        || settings.calls_by().is_some()
        || settings.texts_by().is_some()
}

/// Messages gathered at once in one tick.
const GATHERING: usize = 16;

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
    user: String,
    channel: Channel,
    item: Waiting,
    due: Timestamp,
}

/// A page or a change waiting to be told on one channel: its feed entry, its incident, and,
/// for a page, which step of this channel in the person's rules it is (0: the first).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Waiting {
    feed: i64,
    incident: i64,
    page: bool,
    nth: usize,
    /// When it came due, and when its entry was read from the committed feed: a step can go
    /// no sooner than both.
    due: Timestamp,
    seen: Timestamp,
}

/// What one person's channel still has to say.
#[derive(Default)]
struct Queue {
    items: Vec<Waiting>,
    last_sent: Option<Timestamp>,
}

pub struct Notifier {
    /// Made at their first use ([`Notifier::channels`]).
    channels: Option<Arc<Channels>>,
    planned: Vec<Planned>,
    queues: HashMap<(String, Channel), Queue>,
    /// Messages being sent now, by a number of their own: the oldest feed id in each.
    sending: Arc<Mutex<BTreeMap<u64, i64>>>,
    /// People with a call in flight.
    calling: Arc<Mutex<HashSet<String>>>,
    next: u64,
    /// Messages to try again, and where the attempts say so.
    retrying: Vec<Retry>,
    deferred: (mpsc::UnboundedSender<Retry>, mpsc::UnboundedReceiver<Retry>),
    moved_on: (mpsc::UnboundedSender<MovedOn>, mpsc::UnboundedReceiver<MovedOn>),
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
            calling: Arc::default(),
            next: 0,
            retrying: Vec::new(),
            deferred: mpsc::unbounded_channel(),
            moved_on: mpsc::unbounded_channel(),
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
        let channels = Arc::new(Channels {
            email,
            matrix: tokio::sync::SetOnce::new(),
            moved_on: self.moved_on.0.clone(),
        });
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
        let seen = state.clock.now();
        match entry.kind {
            FeedKind::Page => {
                let rules = state.notify_rules(user).await?;
                let mut steps: HashMap<Channel, usize> = HashMap::new();
                for (channel, due) in rules.plan(incident.urgency, entry.at) {
                    let nth = steps.entry(channel).or_default();
                    let (feed, id) = (entry.id, incident.id);
                    let item = Waiting { feed, incident: id, page: true, nth: *nth, due, seen };
                    *nth += 1;
                    self.planned.push(Planned { user: user.to_owned(), channel, item, due });
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
                        let (feed, id, due) = (entry.id, incident.id, entry.at);
                        let item = Waiting { feed, incident: id, page: false, nth: 0, due, seen };
                        queue.items.push(item);
                    }
                }
            }
        }
        Ok(())
    }

    async fn tick(&mut self, state: &AppState) {
        let now = state.clock.now();
        // A call nobody answered: the person's next steps for those incidents are due now.
        while let Ok((user, incidents)) = self.moved_on.1.try_recv() {
            for p in &mut self.planned {
                if p.user == user && incidents.contains(&p.item.incident) && p.due > now {
                    p.due = now;
                }
            }
        }
        let (due, later): (Vec<Planned>, Vec<Planned>) =
            std::mem::take(&mut self.planned).into_iter().partition(|p| p.due <= now);
        self.planned = later;
        for p in due {
            self.queues.entry((p.user, p.channel)).or_default().items.push(p.item);
        }
        let calling = self.calling.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let ready: Vec<(String, Channel)> = self
            .queues
            .iter()
            .filter(|(_, q)| !q.items.is_empty())
            // A call waits for the person's call in flight instead (what comes meanwhile is
            // one call after it).
            .filter(|((user, channel), q)| match channel {
                Channel::Call => !calling.contains(user),
                _ => q.last_sent.is_none_or(|t| now.duration_since(t) >= COALESCE),
            })
            .map(|(k, _)| k.clone())
            .collect();
        // Each message is gathered (its incidents read) at once with the others: in a storm
        // the hundredth person's call must not wait for 99 reads.
        let taken: Vec<((String, Channel), Vec<Waiting>)> = ready
            .into_iter()
            .map(|key| {
                let queue = self.queues.get_mut(&key).expect("listed above");
                (key, std::mem::take(&mut queue.items))
            })
            .collect();
        let gathered: Vec<_> = futures_util::stream::iter(taken)
            .map(|((user, channel), items)| async move {
                let gathered = gather::message(state, &user, channel, &items).await;
                ((user, channel), items, gathered)
            })
            .buffer_unordered(GATHERING)
            .collect()
            .await;
        for ((user, channel), items, gathered) in gathered {
            let key = (user.clone(), channel);
            let gathered = match gathered {
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
                let oldest = items.iter().map(|w| w.feed).min().unwrap_or(0);
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
        self.calling.lock().unwrap_or_else(|p| p.into_inner()).clear();
        while self.moved_on.1.try_recv().is_ok() {}
        while self.deferred.1.try_recv().is_ok() {}
        self.sending.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    fn next_due(&self) -> Option<Timestamp> {
        let planned = self.planned.iter().map(|p| p.due);
        planned.chain(self.retrying.iter().map(|r| r.due)).min()
    }

    fn waiting(&self) -> Option<i64> {
        let planned = self.planned.iter().map(|p| p.item.feed);
        let queued = self.queues.values().flat_map(|q| q.items.iter().map(|w| w.feed));
        let retrying = self.retrying.iter().map(|r| r.oldest);
        let sending = self.sending.lock().unwrap_or_else(|p| p.into_inner());
        planned.chain(queued).chain(retrying).chain(sending.values().copied()).min()
    }
}

impl Notifier {
    /// Attempts a message on a task of its own. One to try again comes back through `deferred`
    /// still counted as being sent, so the cursor never passes it in between.
    fn spawn(&mut self, state: &AppState, attempt: Retry) {
        let channels = self.channels(state);
        let state = state.clone();
        let (sending, deferred) = (self.sending.clone(), self.deferred.0.clone());
        let calling = (attempt.out.channel == Channel::Call).then(|| {
            self.calling.lock().unwrap_or_else(|p| p.into_inner()).insert(attempt.user.clone());
            (self.calling.clone(), attempt.user.clone())
        });
        while self.tasks.try_join_next().is_some() {}
        self.tasks.spawn(async move {
            let number = attempt.number;
            let outcome = deliver(&state, &channels, attempt).await;
            if let Some((calling, user)) = calling {
                calling.lock().unwrap_or_else(|p| p.into_inner()).remove(&user);
            }
            match outcome {
                Some(retry) => {
                    let _ = deferred.send(retry);
                }
                None => {
                    sending.lock().unwrap_or_else(|p| p.into_inner()).remove(&number);
                }
            }
        });
    }
}
