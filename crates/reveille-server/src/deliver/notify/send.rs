//! One attempt at one message on one channel: a mail through the mailer, a Matrix message (and
//! the edits of earlier ones) through the bot, a call, a text. Each incident in the message
//! gets its fate: the receipt to write (none when the channel wrote its own as it went), or
//! why it was not told and whether trying again may work.

use reveille_core::notify::Channel;
use reveille_protocol::Incident;

use super::{Channels, Outgoing, kinds};
use crate::AppState;
use crate::deliver::email::Item;

/// How long a Matrix message waits for the bot to connect before it is tried again later.
const CONNECTING: std::time::Duration = std::time::Duration::from_secs(10);

/// Why a message did not go, and whether it may go later.
#[derive(Debug, Clone)]
pub struct Failure {
    /// A 4xx from a mail server (greylisting, a full mailbox), a network error, a Matrix 5xx:
    /// trying again may work. A 5xx from a mail server, a Matrix 4xx: it will not.
    pub transient: bool,
    pub why: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.why)
    }
}

impl From<Failure> for String {
    fn from(failure: Failure) -> Self {
        failure.why
    }
}

impl Failure {
    pub fn transient(why: impl Into<String>) -> Self {
        Self { transient: true, why: why.into() }
    }

    pub fn permanent(why: impl Into<String>) -> Self {
        Self { transient: false, why: why.into() }
    }
}

/// How one incident of a message fared: the receipt (kind, message) still to write, or why it
/// was not told.
pub struct Fate {
    pub incident: i64,
    pub outcome: Result<Option<(String, String)>, Failure>,
}

/// Tries the message once on its channel.
pub async fn attempt(
    state: &AppState,
    channels: &Channels,
    user: &str,
    out: &Outgoing,
) -> Vec<Fate> {
    match out.channel {
        Channel::Email => by_email(channels, user, out).await,
        Channel::Matrix => by_matrix(state, channels, user, out).await,
        Channel::Call => crate::deliver::voice::call(state, channels, user, out).await,
        Channel::Sms => crate::deliver::sms::text(state, user, out).await,
    }
}

fn several(out: &Outgoing) -> String {
    let n = out.items.len();
    if n > 1 { format!(" (one message about {n})") } else { String::new() }
}

async fn by_email(channels: &Channels, user: &str, out: &Outgoing) -> Vec<Fate> {
    let [sent, update, _] = kinds(Channel::Email);
    let outcome = match (&channels.email, out.to.parse()) {
        (Some(mailer), Ok(to)) => match mailer.compose(to, user, &out.items) {
            Ok(mail) => mailer.send(mail).await,
            Err(e) => Err(Failure::permanent(e)),
        },
        (None, _) => Err(Failure::permanent("email is not configured")),
        (_, Err(e)) => Err(Failure::permanent(format!("{}: {e}", out.to))),
    };
    let several = several(out);
    out.items
        .iter()
        .map(|item| {
            let i = item.incident();
            let outcome = match (&outcome, item) {
                (Ok(answer), Item::Page { .. }) => Ok(Some((
                    sent.clone(),
                    format!("Email to {} accepted{several}: {answer}", out.to),
                ))),
                (Ok(answer), Item::Update(_)) => Ok(Some((
                    update.clone(),
                    format!(
                        "Email to {} that it is now {}{several}: {answer}",
                        out.to,
                        i.state.as_str()
                    ),
                ))),
                (Err(failure), _) => Err(failure.clone()),
            };
            Fate { incident: i.id, outcome }
        })
        .collect()
}

async fn by_matrix(state: &AppState, channels: &Channels, user: &str, out: &Outgoing) -> Vec<Fate> {
    let [sent, update, _] = kinds(Channel::Matrix);
    // A page that comes while the bot is still connecting (at start) waits for it a little.
    let connecting = tokio::time::timeout(CONNECTING, channels.matrix.wait()).await;
    let Ok(bot) = connecting else {
        let failure = Failure::transient("the Matrix bot is not connected");
        return out
            .items
            .iter()
            .map(|i| Fate { incident: i.incident().id, outcome: Err(failure.clone()) })
            .collect();
    };
    let mut fates = Vec::new();
    let pages: Vec<Incident> = out.pages();
    if !pages.is_empty() {
        let several = several(out);
        let posted = bot.post(&pages, &out.to).await;
        fates.extend(pages.iter().map(|i| {
            let outcome = match &posted {
                Ok(event) => Ok(Some((
                    sent.clone(),
                    format!("Matrix message {event} in {} mentions {}{several}", bot.room, out.to),
                ))),
                Err(failure) => Err(failure.clone()),
            };
            Fate { incident: i.id, outcome }
        }));
    }
    for item in &out.items {
        let Item::Update(incident) = item else { continue };
        let detail = match state.store.incident(incident.id).await {
            Ok(detail) => detail,
            Err(reveille_store::Error::NotFound(_)) => continue,
            Err(e) => {
                let failure = Failure::transient(format!("cannot read the incident: {e}"));
                fates.push(Fate { incident: incident.id, outcome: Err(failure) });
                continue;
            }
        };
        let events: Vec<String> = detail
            .timeline
            .iter()
            .filter(|e| e.kind == sent && e.actor == user)
            .filter_map(|e| {
                e.message.split_whitespace().find(|w| w.starts_with('$')).map(str::to_owned)
            })
            .collect();
        for event in events {
            let outcome = match bot.refresh(state, &event).await {
                Ok(()) => Ok(Some((
                    update.clone(),
                    format!("Matrix message {event} edited: now {}", incident.state.as_str()),
                ))),
                Err(failure) => {
                    Err(Failure { why: format!("the edit of {event}: {}", failure.why), ..failure })
                }
            };
            fates.push(Fate { incident: incident.id, outcome });
        }
    }
    fates
}
