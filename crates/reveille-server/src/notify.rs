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
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use reveille_core::Command;
use reveille_core::notify::Channel;
use reveille_protocol::{FeedEvent, FeedKind, IncidentState};

use crate::AppState;
use crate::email::{Item, Mailer};

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
    mailer: Arc<Mailer>,
    planned: Vec<Planned>,
    queues: HashMap<(String, Channel), Queue>,
    /// Messages being sent now, by a number of their own: the oldest feed id in each.
    sending: Arc<Mutex<BTreeMap<u64, i64>>>,
    next: u64,
}

/// Plans and sends until aborted.
pub async fn run(state: AppState, mailer: Mailer) {
    let notifier = Notifier {
        mailer: Arc::new(mailer),
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
                let rules = state.settings.notify_rules(user);
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
                let (state, mailer) = (state.clone(), self.mailer.clone());
                tokio::spawn(async move {
                    deliver(&state, &mailer, &user, message).await;
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

/// A message ready to go: the incidents in it (with whether each is a page) and the mail.
struct Outgoing {
    channel: Channel,
    incidents: Vec<(i64, bool)>,
    to: String,
    mail: lettre::Message,
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
        let to = person.email.clone()?;
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
        let mailbox = to.parse().ok()?;
        let mail = match self.mailer.compose(mailbox, user, &chosen) {
            Ok(mail) => mail,
            Err(e) => {
                tracing::error!(error = %e, "cannot compose a mail");
                return None;
            }
        };
        Some(Outgoing { channel, incidents: told, to, mail })
    }
}

/// Sends one message, retrying a failed one, and notes how it went on every incident in it.
async fn deliver(state: &AppState, mailer: &Mailer, user: &str, out: Outgoing) {
    let [sent, update, failed] = kinds(out.channel);
    let mut wait = Duration::from_secs(5);
    let mut outcome = Err(String::new());
    for attempt in 1..=ATTEMPTS {
        outcome = mailer.send(out.mail.clone()).await;
        if outcome.is_ok() || attempt == ATTEMPTS {
            break;
        }
        tokio::time::sleep(wait).await;
        wait *= 2;
    }
    let several = if out.incidents.len() > 1 {
        format!(" (one digest of {})", out.incidents.len())
    } else {
        String::new()
    };
    for (id, page) in &out.incidents {
        let state_now = match state.store.incident(*id).await {
            Ok(d) => d.incident.state.as_str(),
            Err(_) => "",
        };
        let (kind, message) = match (&outcome, page) {
            (Ok(answer), true) => {
                (&sent, format!("Email to {} accepted{several}: {answer}", out.to))
            }
            (Ok(answer), false) => (
                &update,
                format!("Email to {} that it is now {state_now}{several}: {answer}", out.to),
            ),
            (Err(why), _) => {
                (&failed, format!("Email to {} failed after {ATTEMPTS} attempts: {why}", out.to))
            }
        };
        let command = Command::Note { kind: kind.clone(), message };
        if let Err(e) = state.store.command(*id, user, command, state.clock.now()).await {
            tracing::error!(error = %e, "cannot write an email receipt on the timeline");
        }
    }
}
