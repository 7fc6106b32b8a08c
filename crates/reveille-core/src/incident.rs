//! The incident state machine: triggered → acknowledged / snoozed → resolved.
//!
//! Dedup is per service and per dedup key among *open* incidents, so a trigger after a resolve
//! opens a new incident. Acknowledge and resolve are idempotent: repeating them changes nothing
//! and produces no effect.

use jiff::Timestamp;
use reveille_protocol::{
    Action, AlertEvent, Escalation, Incident, IncidentState, Receipt, ReceiptKind, TimelineEntry,
};

use crate::service::ServiceRules;

/// What should happen, for the store to carry out in one transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Create this incident (its `id` is assigned by the store).
    Open(Box<Incident>),
    /// Move the incident to a new state.
    SetState { state: IncidentState, by: Option<String>, snoozed_until: Option<Timestamp> },
    /// Append a line to the incident's timeline.
    Timeline(TimelineEntry),
    /// Write a `page` entry to each user's feed and remember them as paged.
    Page { users: Vec<String> },
    /// Write an `incident` entry (the new state) to the feed of every paged user.
    Notify,
    /// Move on the escalation ladder.
    Escalation(Escalation),
    /// A user's device can (false) or cannot (true) make sound for this page.
    Silent { user: String, silent: bool },
}

/// A person's request about an incident.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Acknowledge,
    Resolve,
    Snooze {
        until: Timestamp,
    },
    Receipt(Receipt),
    /// Record something that happened to the incident elsewhere (a push attempt, say).
    Note {
        kind: String,
        message: String,
    },
}

/// Why a command cannot apply to an incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub String);

pub(crate) fn entry(now: Timestamp, actor: &str, kind: &str, message: String) -> Effect {
    Effect::Timeline(TimelineEntry {
        at: now,
        actor: actor.to_owned(),
        kind: kind.to_owned(),
        message,
        data: serde_json::Value::Null,
    })
}

/// Decides what an alert event does, given the open incident with the same dedup key, if any.
pub fn on_alert(
    open: Option<&Incident>,
    rules: &ServiceRules,
    event: &AlertEvent,
    source: &str,
    now: Timestamp,
) -> Vec<Effect> {
    match (event.action, open) {
        (Action::Trigger, None) => {
            let urgency = rules.urgency.urgency(event.severity);
            let incident = Incident {
                id: 0,
                service: rules.name.clone(),
                dedup_key: event.dedup_key.clone(),
                state: IncidentState::Triggered,
                urgency,
                severity: event.severity,
                summary: event.summary.clone(),
                source: event.source.clone(),
                details: event.details.clone(),
                links: event.links.clone(),
                runbook_url: event.runbook_url.clone().or_else(|| rules.runbook_url.clone()),
                created_at: now,
                updated_at: now,
                acknowledged_by: None,
                resolved_by: None,
                snoozed_until: None,
                paged: Vec::new(),
                escalation: None,
                drill: rules.drill,
                silent: Vec::new(),
            };
            let triggered = format!(
                "Triggered ({}, {} urgency): {}",
                event.severity.as_str(),
                urgency.as_str(),
                event.summary
            );
            let mut effects =
                vec![Effect::Open(Box::new(incident)), entry(now, source, "triggered", triggered)];
            effects.extend(crate::escalation::page_from(rules, 0, 0, now, None));
            effects
        }
        (Action::Trigger, Some(_)) => vec![entry(
            now,
            source,
            "deduplicated",
            format!("Repeated trigger merged into this incident: {}", event.summary),
        )],
        (Action::Acknowledge, Some(inc)) => {
            transition(inc, IncidentState::Acknowledged, source, now)
        }
        (Action::Resolve, Some(inc)) => transition(inc, IncidentState::Resolved, source, now),
        (Action::Acknowledge | Action::Resolve, None) => Vec::new(),
    }
}

fn transition(inc: &Incident, to: IncidentState, actor: &str, now: Timestamp) -> Vec<Effect> {
    let from = inc.state;
    let changes = match to {
        IncidentState::Acknowledged => {
            matches!(from, IncidentState::Triggered | IncidentState::Snoozed)
        }
        IncidentState::Resolved => from.is_open(),
        IncidentState::Triggered | IncidentState::Snoozed => false,
    };
    if !changes {
        return Vec::new();
    }
    let verb = if to == IncidentState::Resolved { "Resolved" } else { "Acknowledged" };
    vec![
        Effect::SetState { state: to, by: Some(actor.to_owned()), snoozed_until: None },
        entry(now, actor, to.as_str(), format!("{verb} by {actor}")),
        Effect::Notify,
    ]
}

/// Decides what a person's command does to an incident.
pub fn on_command(
    inc: &Incident,
    actor: &str,
    command: &Command,
    now: Timestamp,
) -> Result<Vec<Effect>, Refusal> {
    match command {
        Command::Acknowledge => Ok(transition(inc, IncidentState::Acknowledged, actor, now)),
        Command::Resolve => Ok(transition(inc, IncidentState::Resolved, actor, now)),
        Command::Snooze { until } => {
            if !inc.state.is_open() {
                return Err(Refusal(format!("incident {} is resolved", inc.id)));
            }
            if *until <= now {
                return Err(Refusal("snooze must end in the future".into()));
            }
            Ok(vec![
                Effect::SetState {
                    state: IncidentState::Snoozed,
                    by: Some(actor.to_owned()),
                    snoozed_until: Some(*until),
                },
                entry(now, actor, "snoozed", format!("Snoozed by {actor} until {until}")),
                Effect::Notify,
            ])
        }
        Command::Note { kind, message } => Ok(vec![entry(now, actor, kind, message.clone())]),
        Command::Receipt(receipt) => {
            let mut effects = vec![receipt_entry(receipt, actor, now)];
            if let (ReceiptKind::Ringing, Some(muted)) = (receipt.kind, receipt.muted) {
                effects.push(Effect::Silent { user: actor.to_owned(), silent: muted });
            }
            Ok(effects)
        }
    }
}

fn receipt_entry(r: &Receipt, actor: &str, now: Timestamp) -> Effect {
    let mut message = format!("{} on {}", r.kind.as_str(), r.device);
    if r.kind == ReceiptKind::Ringing {
        if let Some(v) = r.volume {
            message.push_str(&format!(" at {:.0}% volume", v * 100.0));
        }
        if r.muted == Some(true) {
            message.push_str(", SILENT: output muted or missing");
        }
        if let Some(out) = &r.output {
            message.push_str(&format!(" through {out}"));
        }
    }
    Effect::Timeline(TimelineEntry {
        at: now,
        actor: actor.to_owned(),
        kind: "receipt".into(),
        message,
        data: serde_json::to_value(r).unwrap_or_default(),
    })
}

/// Decides what the passing of time does: a snooze that has ended pages again and restarts the
/// escalation ladder where it was.
pub fn on_wake(inc: &Incident, rules: Option<&ServiceRules>, now: Timestamp) -> Vec<Effect> {
    match (inc.state, inc.snoozed_until) {
        (IncidentState::Snoozed, Some(until)) if until <= now => {
            let mut effects = vec![
                Effect::SetState { state: IncidentState::Triggered, by: None, snoozed_until: None },
                entry(now, "reveille", "snooze_ended", "Snooze ended; paging again".into()),
                Effect::Page { users: inc.paged.clone() },
            ];
            if let (Some(rules), Some(esc)) = (rules, inc.escalation) {
                let next_at = rules.policy.due(esc.level, esc.round, now);
                effects.push(Effect::Escalation(Escalation { next_at, ..esc }));
            }
            effects
        }
        _ => Vec::new(),
    }
}

/// Applies the state effects to an in-memory incident; feeds and timeline are the store's job.
pub fn apply(inc: &mut Incident, effects: &[Effect], now: Timestamp) {
    for effect in effects {
        match effect {
            Effect::Open(new) => *inc = (**new).clone(),
            Effect::SetState { state, by, snoozed_until } => {
                inc.state = *state;
                if *state != IncidentState::Triggered
                    && let Some(esc) = &mut inc.escalation
                {
                    // Acknowledged, snoozed or resolved: the ladder stops.
                    esc.next_at = None;
                }
                inc.snoozed_until = *snoozed_until;
                inc.updated_at = now;
                match state {
                    IncidentState::Acknowledged => inc.acknowledged_by = by.clone(),
                    IncidentState::Resolved => inc.resolved_by = by.clone(),
                    IncidentState::Triggered | IncidentState::Snoozed => {}
                }
            }
            Effect::Page { users } => {
                for user in users {
                    if !inc.paged.contains(user) {
                        inc.paged.push(user.clone());
                    }
                }
            }
            Effect::Escalation(esc) => inc.escalation = Some(*esc),
            Effect::Silent { user, silent } => {
                inc.silent.retain(|u| u != user);
                if *silent {
                    inc.silent.push(user.clone());
                }
            }
            Effect::Timeline(_) | Effect::Notify => {}
        }
    }
}

#[cfg(test)]
mod tests;
