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

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use reveille_core::Command;
use reveille_core::notify::Channel;
use reveille_protocol::{FeedEvent, FeedKind, Incident, IncidentState};

use crate::AppState;
use crate::email::{Item, Mailer};
use crate::matrix::Bot;

/// The channels this server can send on. The Matrix bot arrives once it has connected.
#[derive(Default)]
pub struct Channels {
    pub email: Option<Mailer>,
    pub matrix: OnceLock<Bot>,
}

/// The least time between two messages to one person on one channel.
pub const COALESCE: SignedDuration = SignedDuration::from_secs(60);
/// Attempts per message; a failed one waits 5 s, then 10 s.
const ATTEMPTS: u32 = 3;

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
    channels: Arc<Channels>,
    planned: Vec<Planned>,
    queues: HashMap<(String, Channel), Queue>,
    /// Messages being sent now, by a number of their own: the oldest feed id in each.
    sending: Arc<Mutex<BTreeMap<u64, i64>>>,
    next: u64,
}

/// Plans and sends until aborted; connects the Matrix bot (retrying) and follows its room.
pub async fn run(state: AppState, email: Option<Mailer>) {
    let channels = Arc::new(Channels { email, matrix: OnceLock::new() });
    if state.settings.matrix.is_some() {
        let (state, channels) = (state.clone(), channels.clone());
        tokio::spawn(async move {
            let bot = loop {
                match Bot::connect(&state).await {
                    Ok(Some(bot)) => break bot,
                    Ok(None) => return,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot connect to Matrix; retrying in 10 s");
                        tokio::time::sleep(Duration::from_secs(10)).await;
                    }
                }
            };
            tracing::info!(room = %bot.room, bot = %bot.me, "Matrix bot connected");
            let bot = channels.matrix.get_or_init(|| bot);
            bot.listen(state).await;
        });
    }
    let notifier = Notifier {
        channels,
        planned: Vec::new(),
        queues: HashMap::new(),
        sending: Arc::default(),
        next: 0,
    };
    crate::outbox::NOTIFY.run(state, notifier).await;
}

fn kinds(channel: Channel) -> [String; 3] {
    let c = channel.as_str();
    [format!("{c}_sent"), format!("{c}_update"), format!("{c}_failed")]
}

impl crate::outbox::Handler for Notifier {
    async fn handle(
        &mut self,
        state: &AppState,
        user: &str,
        entry: &FeedEvent,
        _again: Option<&str>,
    ) {
        let incident = &entry.incident;
        if incident.drill {
            return;
        }
        match entry.kind {
            FeedKind::Page => {
                let rules = state.notify_rules(user).await;
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
                let Ok(detail) = state.store.incident(incident.id).await else { return };
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
            if let Some(message) = self.gather(state, &user, channel, &items).await {
                self.queues.get_mut(&key).expect("listed above").last_sent = Some(now);
                let oldest = items.iter().map(|(f, _, _)| *f).min().unwrap_or(0);
                self.next += 1;
                let (id, sending) = (self.next, self.sending.clone());
                sending.lock().unwrap_or_else(|p| p.into_inner()).insert(id, oldest);
                let (state, channels) = (state.clone(), self.channels.clone());
                tokio::spawn(async move {
                    deliver(&state, &channels, &user, message).await;
                    sending.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
                });
            }
        }
    }

    fn waiting(&self) -> Option<i64> {
        let planned = self.planned.iter().map(|p| p.feed_id);
        let queued = self.queues.values().flat_map(|q| q.items.iter().map(|(f, _, _)| *f));
        let sending = self.sending.lock().unwrap_or_else(|p| p.into_inner());
        planned.chain(queued).chain(sending.values().copied()).min()
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
    /// What of `items` is still worth saying, as a message: pages of incidents still waiting
    /// and not told already, and changes not told already.
    async fn gather(
        &self,
        state: &AppState,
        user: &str,
        channel: Channel,
        items: &[(i64, i64, bool)],
    ) -> Option<Outgoing> {
        let person = state.settings.users.iter().find(|u| u.name == user)?;
        let to = match channel {
            Channel::Email => person.email.clone()?,
            Channel::Matrix => person.matrix.clone()?,
        };
        let [sent, update, _] = kinds(channel);
        let mut chosen = Vec::new();
        let mut told = Vec::new();
        for (_, id, page) in items {
            if told.contains(&(*id, *page)) {
                continue;
            }
            let Ok(detail) = state.store.incident(*id).await else { continue };
            let incident = detail.incident;
            let mine =
                |kind: &str| detail.timeline.iter().any(|e| e.kind == kind && e.actor == user);
            let item = if *page {
                if incident.state != IncidentState::Triggered || mine(&sent) {
                    continue;
                }
                let ack_url = crate::links::ack_url_for(state, incident.id, user).await.ok();
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
            return None;
        }
        Some(Outgoing { channel, incidents: told, to, items: chosen })
    }
}

/// Sends one message, retrying what failed of it (never again what went), and notes how it went
/// on every incident in it.
async fn deliver(state: &AppState, channels: &Channels, user: &str, mut out: Outgoing) {
    let failed = kinds(out.channel)[2].clone();
    let mut wait = Duration::from_secs(5);
    let mut notes = Vec::new();
    for attempt in 1..=ATTEMPTS {
        let tried = match out.channel {
            Channel::Email => by_email(channels, user, &out).await,
            Channel::Matrix => by_matrix(state, channels, user, &out).await,
        };
        let again: Vec<i64> =
            tried.iter().filter(|(_, kind, _)| *kind == failed).map(|(id, _, _)| *id).collect();
        let last = attempt == ATTEMPTS || again.is_empty();
        notes.extend(tried.into_iter().filter(|(_, kind, _)| last || *kind != failed));
        if last {
            break;
        }
        out.items.retain(|i| again.contains(&i.incident().id));
        out.incidents.retain(|(id, _)| again.contains(id));
        tokio::time::sleep(wait).await;
        wait *= 2;
    }
    for (id, kind, message) in notes {
        let command = Command::Note { kind, message };
        if let Err(e) = state.store.command(id, user, command, state.clock.now()).await {
            tracing::error!(error = %e, "cannot write a receipt on the timeline");
        }
    }
}

/// A receipt to write: incident, kind, message.
type Note = (i64, String, String);

fn several(out: &Outgoing) -> String {
    let n = out.incidents.len();
    if n > 1 { format!(" (one message about {n})") } else { String::new() }
}

async fn by_email(channels: &Channels, user: &str, out: &Outgoing) -> Vec<Note> {
    let [sent, update, failed] = kinds(Channel::Email);
    let outcome = match (&channels.email, out.to.parse()) {
        (Some(mailer), Ok(to)) => match mailer.compose(to, user, &out.items) {
            Ok(mail) => mailer.send(mail).await,
            Err(e) => Err(e),
        },
        (None, _) => Err("email is not configured".into()),
        (_, Err(e)) => Err(format!("{}: {e}", out.to)),
    };
    let several = several(out);
    out.items
        .iter()
        .map(|item| {
            let i = item.incident();
            let (kind, message) = match (&outcome, item) {
                (Ok(answer), Item::Page { .. }) => {
                    (&sent, format!("Email to {} accepted{several}: {answer}", out.to))
                }
                (Ok(answer), Item::Update(_)) => (
                    &update,
                    format!(
                        "Email to {} that it is now {}{several}: {answer}",
                        out.to,
                        i.state.as_str()
                    ),
                ),
                (Err(why), _) => (&failed, format!("Email to {} failed: {why}", out.to)),
            };
            (i.id, kind.clone(), message)
        })
        .collect()
}

async fn by_matrix(state: &AppState, channels: &Channels, user: &str, out: &Outgoing) -> Vec<Note> {
    let [sent, update, failed] = kinds(Channel::Matrix);
    let Some(bot) = channels.matrix.get() else {
        let why = "the Matrix bot is not connected";
        return out
            .items
            .iter()
            .map(|i| (i.incident().id, failed.clone(), why.to_owned()))
            .collect();
    };
    let mut notes = Vec::new();
    let pages: Vec<Incident> = out
        .items
        .iter()
        .filter_map(|i| match i {
            Item::Page { incident, .. } => Some(incident.clone()),
            Item::Update(_) => None,
        })
        .collect();
    if !pages.is_empty() {
        let several = several(out);
        match bot.post(&pages, &out.to).await {
            Ok(event) => notes.extend(pages.iter().map(|i| {
                let message =
                    format!("Matrix message {event} in {} mentions {}{several}", bot.room, out.to);
                (i.id, sent.clone(), message)
            })),
            Err(why) => notes.extend(
                pages
                    .iter()
                    .map(|i| (i.id, failed.clone(), format!("Matrix message failed: {why}"))),
            ),
        }
    }
    for item in &out.items {
        let Item::Update(incident) = item else { continue };
        let Ok(detail) = state.store.incident(incident.id).await else { continue };
        let events: Vec<String> = detail
            .timeline
            .iter()
            .filter(|e| e.kind == sent && e.actor == user)
            .filter_map(|e| {
                e.message.split_whitespace().find(|w| w.starts_with('$')).map(str::to_owned)
            })
            .collect();
        for event in events {
            let note = match bot.refresh(state, &event).await {
                Ok(()) => (
                    update.clone(),
                    format!("Matrix message {event} edited: now {}", incident.state.as_str()),
                ),
                Err(why) => (failed.clone(), format!("Matrix edit of {event} failed: {why}")),
            };
            notes.push((incident.id, note.0, note.1));
        }
    }
    notes
}
