//! The page pipeline every backend shares: load the state, ask `reveille-core` what should happen,
//! and carry out its effects (the incident's new state, its timeline, who was paged, and an entry
//! in each paged user's feed), all inside one transaction the backend provides through [`Tx`].
//!
//! The engine decides nothing itself and knows no SQL: the rules are the core's, the storage the
//! backend's. A backend's [`Tx`] locks what it loads for the rest of its transaction, so that
//! writers on several nodes never act on the same incident at once.

use jiff::Timestamp;
use reveille_core::{Command, Effect};
use reveille_protocol::limits::feed_view;
use reveille_protocol::{AlertEvent, FeedEvent, FeedKind, Incident, TimelineEntry};

use crate::{Deafness, Error, IngestBatch, Landed, Result, Rules};

/// What the engine needs of a backend's write transaction.
pub trait Tx {
    /// Keeps the raw event as it was received.
    fn record_event(&mut self, batch: &IngestBatch, event: &AlertEvent) -> Result<()>;
    /// The open incident of `service` with this dedup key, locked for this transaction.
    fn open_incident(&mut self, service: &str, dedup_key: &str) -> Result<Option<Incident>>;
    /// The incident with this id, locked for this transaction; `NotFound` if there is none.
    fn incident(&mut self, id: i64) -> Result<Incident>;
    /// Snoozed incidents whose snooze ended by `now`, locked; one another writer holds is
    /// skipped (it is acting on it), and so is one that cannot be read.
    fn snoozes_due(&mut self, now: Timestamp) -> Result<Vec<Incident>>;
    /// Incidents whose escalation ladder is running, locked, skipping as [`Tx::snoozes_due`] does.
    fn ladders(&mut self, now: Timestamp) -> Result<Vec<Incident>>;
    /// Stores a new incident and returns its id.
    fn insert_incident(&mut self, incident: &Incident) -> Result<i64>;
    /// Stores an incident's new state.
    fn save_incident(&mut self, incident: &Incident) -> Result<()>;
    fn add_timeline(&mut self, incident: i64, entry: &TimelineEntry) -> Result<()>;
    /// Records that `user` was paged for the incident (again is nothing).
    fn add_paged(&mut self, incident: i64, user: &str) -> Result<()>;
    /// Appends an entry to `user`'s feed, published once the transaction has committed. The
    /// backend gives it its feed id, in commit order.
    fn append_feed(&mut self, user: &str, entry: FeedEvent) -> Result<()>;
}

/// Applies one request's alert events.
pub fn ingest(tx: &mut impl Tx, batch: &IngestBatch) -> Result<Vec<Landed>> {
    let now = batch.received_at;
    let mut landed = Vec::with_capacity(batch.events.len());
    for event in &batch.events {
        tx.record_event(batch, event)?;
        let open = tx.open_incident(&batch.rules.name, &event.dedup_key)?;
        let effects =
            reveille_core::on_alert(open.as_ref(), &batch.rules, event, &batch.source, now);
        let id = perform(tx, open, &effects, now)?;
        landed.push(Landed { dedup_key: event.dedup_key.clone(), incident_id: id });
    }
    Ok(landed)
}

/// Applies a person's command; returns the incident as it now is.
pub fn command(
    tx: &mut impl Tx,
    id: i64,
    actor: &str,
    command: &Command,
    now: Timestamp,
) -> Result<Incident> {
    command_one(tx, id, actor, command, now)
}

fn command_one(
    tx: &mut impl Tx,
    id: i64,
    actor: &str,
    command: &Command,
    now: Timestamp,
) -> Result<Incident> {
    let incident = tx.incident(id)?;
    let effects = reveille_core::on_command(&incident, actor, command, now)
        .map_err(|refusal| Error::Refused(refusal.0))?;
    perform(tx, Some(incident.clone()), &effects, now)?;
    if effects.is_empty() { Ok(incident) } else { tx.incident(id) }
}

/// Applies a person's commands, in order, to each of several incidents, in one transaction
/// ("acknowledge all" in a storm). An incident that is gone or refuses a command gets its own
/// error and the others go on; a failure of the database fails the whole.
pub fn command_many(
    tx: &mut impl Tx,
    ids: &[i64],
    actor: &str,
    commands: &[Command],
    now: Timestamp,
) -> Result<Vec<(i64, Result<Incident>)>> {
    let mut answers = Vec::with_capacity(ids.len());
    for &id in ids {
        let mut answer = Err(Error::Refused("no command".into()));
        for command in commands {
            answer = command_one(tx, id, actor, command, now);
            match &answer {
                Ok(_) => {}
                Err(Error::NotFound(_) | Error::Refused(_) | Error::Corrupt(_)) => break,
                Err(_) => return answer.map(|_| Vec::new()),
            }
        }
        answers.push((id, answer));
    }
    Ok(answers)
}

/// Moves the incident's ladder to its next level now, at a person's request.
pub fn escalate_now(
    tx: &mut impl Tx,
    id: i64,
    actor: &str,
    how: &str,
    rules: &Rules,
    now: Timestamp,
) -> Result<Incident> {
    let incident = tx.incident(id)?;
    let Some(service) = rules.get(&incident.service) else {
        return Err(Error::Refused(format!("service {} is not configured", incident.service)));
    };
    let effects = reveille_core::escalation::on_request(&incident, service, actor, how, now)
        .map_err(|refusal| Error::Refused(refusal.0))?;
    perform(tx, Some(incident), &effects, now)?;
    tx.incident(id)
}

/// Wakes the snoozes that have ended; returns how many incidents changed.
pub fn wake_due(tx: &mut impl Tx, now: Timestamp, rules: &Rules) -> Result<usize> {
    let mut changed = 0;
    for incident in tx.snoozes_due(now)? {
        let effects = reveille_core::on_wake(&incident, rules.get(&incident.service), now);
        changed += usize::from(!effects.is_empty());
        perform(tx, Some(incident), &effects, now)?;
    }
    Ok(changed)
}

/// Moves on the ladders that are due, or whose current level cannot hear the page; returns how
/// many incidents changed.
pub fn escalate(tx: &mut impl Tx, now: Timestamp, rules: &Rules, deaf: &Deafness) -> Result<usize> {
    let deafness = |user: &str| deaf.get(user).cloned();
    let mut changed = 0;
    // Every live ladder, not only the due ones: a deaf level is left before its time.
    for incident in tx.ladders(now)? {
        let Some(service) = rules.get(&incident.service) else {
            continue;
        };
        let effects = reveille_core::on_escalate(&incident, service, &deafness, now);
        changed += usize::from(!effects.is_empty());
        perform(tx, Some(incident), &effects, now)?;
    }
    Ok(changed)
}

/// Carries out the effects; returns the incident's id, if there is an incident.
fn perform(
    tx: &mut impl Tx,
    current: Option<Incident>,
    effects: &[Effect],
    now: Timestamp,
) -> Result<Option<i64>> {
    let Some(mut incident) = current.or_else(|| opened(effects)) else {
        return Ok(None);
    };
    if effects.is_empty() {
        return Ok(Some(incident.id));
    }
    reveille_core::apply(&mut incident, effects, now);
    if incident.id == 0 {
        incident.id = tx.insert_incident(&incident)?;
    }
    tx.save_incident(&incident)?;
    let id = incident.id;
    // What feeds carry: the incident with its details bounded, made once for every paged user.
    let mut view = None;
    for effect in effects {
        match effect {
            Effect::Timeline(entry) => tx.add_timeline(id, entry)?,
            Effect::Page { users } => {
                for user in users {
                    tx.add_paged(id, user)?;
                    let view = view.get_or_insert_with(|| feed_view(&incident));
                    tx.append_feed(user, entry(FeedKind::Page, view, now))?;
                }
            }
            Effect::Notify => {
                let view = view.get_or_insert_with(|| feed_view(&incident));
                for user in &incident.paged {
                    tx.append_feed(user, entry(FeedKind::Incident, view, now))?;
                }
            }
            Effect::Open(_)
            | Effect::SetState { .. }
            | Effect::Escalation(_)
            | Effect::Silent { .. } => {}
        }
    }
    Ok(Some(id))
}

fn entry(kind: FeedKind, incident: &Incident, at: Timestamp) -> FeedEvent {
    FeedEvent { id: 0, kind, at, incident: incident.clone() }
}

fn opened(effects: &[Effect]) -> Option<Incident> {
    effects.iter().find_map(|e| match e {
        Effect::Open(incident) => Some((**incident).clone()),
        _ => None,
    })
}
