//! What a message says: the waiting pages and changes of one person on one channel, read
//! again when the message goes ([`message`]), so an incident acknowledged meanwhile, or a step
//! already told (the timeline counts each call and text step), is left out.

use jiff::Timestamp;
use reveille_core::notify::Channel;
use reveille_protocol::{Incident, IncidentState, TimelineEntry};

use super::{Waiting, kinds};
use crate::AppState;
use crate::deliver::email::Item;

/// The timeline lines that end one call or text step (one of them per step).
fn step_ends(channel: Channel) -> &'static [&'static str] {
    match channel {
        Channel::Call => &["call_answered", "call_no_answer", "call_busy", "call_failed"],
        Channel::Sms => &["sms_sent", "sms_failed"],
        Channel::Email => &["email_sent"],
        Channel::Matrix => &["matrix_sent"],
    }
}

/// Whether a page's step was told already: email and Matrix tell a page once; calls and texts
/// count their steps.
pub(super) fn told(timeline: &[TimelineEntry], user: &str, channel: Channel, nth: usize) -> bool {
    let ends = step_ends(channel);
    let done = timeline.iter().filter(|e| e.actor == user && ends.contains(&e.kind.as_str()));
    match channel {
        Channel::Call | Channel::Sms => done.count() > nth,
        Channel::Email | Channel::Matrix => done.count() > 0,
    }
}

/// A message ready to go: the address, what it says, and for each page which step of the
/// channel it is.
pub struct Outgoing {
    pub channel: Channel,
    pub to: String,
    pub items: Vec<Item>,
    nths: Vec<(i64, usize)>,
    /// When the last of it came due: its step's time, or the moment its page was read from the
    /// committed feed if that was later (what the phases in the metrics count from).
    pub due: Timestamp,
}

impl Outgoing {
    /// The pages in it.
    pub fn pages(&self) -> Vec<Incident> {
        self.items
            .iter()
            .filter_map(|i| match i {
                Item::Page { incident, .. } => Some(incident.clone()),
                Item::Update(_) => None,
            })
            .collect()
    }

    /// Which step of the channel the page of `incident` is.
    pub(super) fn nth(&self, incident: i64) -> usize {
        self.nths.iter().find(|(id, _)| *id == incident).map_or(0, |(_, n)| *n)
    }

    pub(super) fn retain(&mut self, keep: &[i64]) {
        self.items.retain(|i| keep.contains(&i.incident().id));
        self.nths.retain(|(id, _)| keep.contains(id));
    }
}

/// What of `items` is still worth saying, as a message: pages of incidents still waiting
/// and not told already, and changes not told already.
pub(super) async fn message(
    state: &AppState,
    user: &str,
    channel: Channel,
    items: &[Waiting],
) -> reveille_store::Result<Option<Outgoing>> {
    let settings = state.settings();
    let Some(person) = settings.users.iter().find(|u| u.name == user) else {
        return Ok(None);
    };
    let to = match channel {
        Channel::Email => person.email.clone(),
        Channel::Matrix => person.matrix.clone(),
        Channel::Call | Channel::Sms => person.phone.list().first().cloned(),
    };
    let Some(to) = to else { return Ok(None) };
    let [_, update, _] = kinds(channel);
    let mut chosen = Vec::new();
    let mut nths = Vec::new();
    let mut taken: Vec<(i64, bool)> = Vec::new();
    for w in items {
        if taken.contains(&(w.incident, w.page)) {
            continue;
        }
        let detail = match state.store.incident(w.incident).await {
            Ok(detail) => detail,
            Err(reveille_store::Error::NotFound(_)) => continue,
            Err(e) => return Err(e),
        };
        let incident = detail.incident;
        let item = if w.page {
            let done = told(&detail.timeline, user, channel, w.nth);
            if incident.state != IncidentState::Triggered || done {
                continue;
            }
            let ack_url = match channel {
                Channel::Email | Channel::Matrix => {
                    crate::http::links::ack_url_for(state, incident.id, user).await.ok()
                }
                Channel::Call | Channel::Sms => None,
            };
            nths.push((incident.id, w.nth));
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
        taken.push((w.incident, w.page));
        chosen.push(item);
    }
    if chosen.is_empty() {
        return Ok(None);
    }
    let due = items.iter().map(|w| w.due.max(w.seen)).max().unwrap_or_else(|| state.clock.now());
    Ok(Some(Outgoing { channel, to, items: chosen, nths, due }))
}
