//! Messages tried again: one that a channel could not take for a reason that may pass waits,
//! on the server's clock, and goes again with only what is still worth saying; after
//! [`RETRY_FOR`] of failures, or at a refusal that will not pass, it is final.

use jiff::{SignedDuration, Timestamp};
use reveille_core::Command;
use reveille_core::notify::Channel;
use reveille_protocol::IncidentState;

use super::gather::told;
use super::{Channels, FIRST_WAIT, LONGEST_WAIT, Outgoing, RETRY_FOR, reach, send};
use crate::AppState;
use crate::deliver::email::Item;

/// A message whose last attempt failed for a reason that may pass.
pub(super) struct Retry {
    /// The number it was sent under (its entry in `sending` is kept until it is taken back).
    pub number: u64,
    pub oldest: i64,
    pub user: String,
    pub out: Outgoing,
    pub due: Timestamp,
    pub tries: Tries,
}

/// Since when a message has failed, and the wait before its next attempt.
#[derive(Debug, Clone, Copy)]
pub(super) struct Tries {
    first_failed: Option<Timestamp>,
    wait: SignedDuration,
}

impl Tries {
    pub const FRESH: Tries = Tries { first_failed: None, wait: FIRST_WAIT };
}

/// Attempts a message once and notes how it went on the timeline of each incident in it, and in
/// the person's reach; what may go through later comes back as a retry.
pub(super) async fn deliver(
    state: &AppState,
    channels: &Channels,
    attempt: Retry,
) -> Option<Retry> {
    let Retry { number, oldest, user, mut out, tries, .. } = attempt;
    if tries.first_failed.is_some() {
        // Tried again later: only what is still worth saying (a page acknowledged meanwhile is
        // not mailed an hour late; one told another way since is not told twice).
        match still_worth(state, &user, &mut out).await {
            Ok(true) => {}
            Ok(false) => return None,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read what to tell; trying again shortly");
                let due = state.clock.now() + FIRST_WAIT;
                return Some(Retry { number, oldest, user, out, due, tries });
            }
        }
    }
    let fates = send::attempt(state, channels, &user, &out).await;
    let now = state.clock.now();
    let first_failed = tries.first_failed.unwrap_or(now);
    let giving_up = now.duration_since(first_failed) >= RETRY_FOR;
    let c = out.channel.as_str();
    let mut again = Vec::new();
    let mut last_failure = None;
    let mut notes = Vec::new();
    for send::Fate { incident, outcome } in fates {
        let (kind, message) = match outcome {
            Ok(Some(told)) => told,
            // Said on the timeline already, as it happened (a call's progress).
            Ok(None) => continue,
            Err(failure) if failure.transient && !giving_up => {
                again.push(incident);
                let message = format!(
                    "{} to {} deferred: {}; trying again in {}",
                    title(out.channel),
                    out.to,
                    failure.why,
                    words(tries.wait)
                );
                last_failure = Some(format!("deferred: {}", failure.why));
                (format!("{c}_retry"), message)
            }
            Err(failure) => {
                let after = if failure.transient {
                    format!(" (still failing after {})", words(now.duration_since(first_failed)))
                } else {
                    String::new()
                };
                last_failure = Some(failure.why.clone());
                let message =
                    format!("{} to {} failed{after}: {}", title(out.channel), out.to, failure.why);
                (format!("{c}_failed"), message)
            }
        };
        notes.push((incident, Command::Note { kind, message }));
    }
    // The reach first: whoever reads the timeline's line finds the readiness board agreeing.
    reach::record(state, &user, out.channel, last_failure.as_deref()).await;
    for (incident, note) in notes {
        if let Err(e) = state.store.command(incident, &user, note, now).await {
            tracing::error!(error = %e, "cannot write a receipt on the timeline");
        }
    }
    if again.is_empty() {
        return None;
    }
    out.retain(&again);
    let due = now + tries.wait;
    let tries =
        Tries { first_failed: Some(first_failed), wait: (tries.wait * 2).min(LONGEST_WAIT) };
    Some(Retry { number, oldest, user, out, due, tries })
}

/// Drops from `out` the pages no longer waiting for anyone, or told on this channel already;
/// false when nothing is left.
async fn still_worth(
    state: &AppState,
    user: &str,
    out: &mut Outgoing,
) -> reveille_store::Result<bool> {
    let mut keep = Vec::new();
    for item in &out.items {
        let Item::Page { incident, .. } = item else {
            keep.push(item.incident().id);
            continue;
        };
        let detail = match state.store.incident(incident.id).await {
            Ok(detail) => detail,
            Err(reveille_store::Error::NotFound(_) | reveille_store::Error::Corrupt(_)) => continue,
            Err(e) => return Err(e),
        };
        let done = told(&detail.timeline, user, out.channel, out.nth(incident.id));
        if detail.incident.state == IncidentState::Triggered && !done {
            keep.push(incident.id);
        }
    }
    out.retain(&keep);
    Ok(!out.items.is_empty())
}

/// A wait in words: "30 s", "2 min".
fn words(wait: SignedDuration) -> String {
    let secs = wait.as_secs();
    if secs < 120 { format!("{secs} s") } else { format!("{} min", secs / 60) }
}

/// The channel's name at the start of a sentence.
fn title(channel: Channel) -> &'static str {
    match channel {
        Channel::Email => "Email",
        Channel::Matrix => "Matrix message",
        Channel::Call => "Call",
        Channel::Sms => "Text",
    }
}
