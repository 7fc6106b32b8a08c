//! The escalation ladder: page level 0, and if nobody acknowledges within the level's delay, the
//! next level, round after round as the policy says; stop on ack, resolve or snooze. A level
//! whose every primary cannot hear the page (no live device, or a device that reported it is
//! silent) is left early, and the timeline says why.

use jiff::Timestamp;
use reveille_protocol::{Escalation, Incident, IncidentState};

use crate::incident::{Effect, Refusal, entry};
use crate::service::ServiceRules;

/// Pages the first step from (`level`, `round`) on that has anyone on call.
pub(crate) fn page_from(
    rules: &ServiceRules,
    level: usize,
    round: u32,
    now: Timestamp,
    reason: Option<&str>,
) -> Vec<Effect> {
    let policy = &rules.policy;
    let mut step = Some((level, round));
    let mut empty = Vec::new();
    while let Some((l, r)) = step {
        let users = policy.paging(l, &rules.schedules, now).everyone();
        if users.is_empty() {
            empty.push(format!("level {} has nobody on call", l + 1));
            step = policy.after(l, r);
            continue;
        }
        let mut why: Vec<String> = reason.map(str::to_owned).into_iter().collect();
        why.extend(empty);
        let message = match (reason, l, r) {
            (None, 0, 0) if why.is_empty() => format!("Paged {}", users.join(", ")),
            _ => format!(
                "Escalated to level {} (round {}): paged {}",
                l + 1,
                r + 1,
                users.join(", ")
            ),
        };
        let message =
            if why.is_empty() { message } else { format!("{message} — {}", why.join("; ")) };
        let kind = if reason.is_none() && l == 0 && r == 0 { "paged" } else { "escalated" };
        return vec![
            entry(now, "reveille", kind, message),
            Effect::Page { users },
            Effect::Escalation(Escalation { level: l, round: r, next_at: policy.due(l, r, now) }),
        ];
    }
    vec![
        entry(
            now,
            "reveille",
            "nobody_on_call",
            "NOBODY IS ON CALL for this service: nobody was paged".into(),
        ),
        Effect::Escalation(Escalation { level, round, next_at: None }),
    ]
}

/// Decides whether the ladder moves on now. `deafness` says why a user cannot hear a page
/// (no live device for too long), or None if they can.
pub fn on_escalate(
    inc: &Incident,
    rules: &ServiceRules,
    deafness: &dyn Fn(&str) -> Option<String>,
    now: Timestamp,
) -> Vec<Effect> {
    let Some(esc) = inc.escalation.filter(|_| inc.state == IncidentState::Triggered) else {
        return Vec::new();
    };
    let Some(due) = esc.next_at else {
        return Vec::new();
    };
    let policy = &rules.policy;
    let reason = if due <= now {
        let delay = policy.levels.get(esc.level).map(|l| l.delay).unwrap_or_default();
        format!("level {} did not acknowledge within {delay:#}", esc.level + 1)
    } else {
        let current = policy.paging(esc.level, &rules.schedules, now);
        let deaf: Vec<String> = current
            .primaries
            .iter()
            .filter_map(|u| {
                if inc.silent.contains(u) {
                    Some(format!("{u}'s device reported it cannot make sound"))
                } else {
                    deafness(u).map(|why| format!("{u} {why}"))
                }
            })
            .collect();
        let everyone_deaf = !current.primaries.is_empty() && deaf.len() == current.primaries.len();
        // Moving on early never starts a new round: rounds advance only by the clock.
        if !everyone_deaf || esc.level + 1 >= policy.levels.len() {
            return Vec::new();
        }
        deaf.join("; ")
    };
    match policy.after(esc.level, esc.round) {
        Some((level, round)) => page_from(rules, level, round, now, Some(&reason)),
        None => vec![
            entry(
                now,
                "reveille",
                "escalation_ended",
                format!(
                    "Nobody acknowledged after {} round(s) of the escalation policy; the ladder has ended ({reason})",
                    esc.round + 1
                ),
            ),
            Effect::Escalation(Escalation { next_at: None, ..esc }),
        ],
    }
}

/// A person asks for the next level now (pressing 6 on a call, say): the ladder moves on at
/// once, as if the level's time had run out, and the timeline says who asked and how (`how`:
/// " by pressing 6 on a call"). Refused when nobody is being waited for, or there is no next
/// level.
pub fn on_request(
    inc: &Incident,
    rules: &ServiceRules,
    actor: &str,
    how: &str,
    now: Timestamp,
) -> Result<Vec<Effect>, Refusal> {
    if inc.state != IncidentState::Triggered {
        return Err(Refusal(format!("incident {} is {}", inc.id, inc.state.as_str())));
    }
    let esc = inc.escalation.unwrap_or(Escalation { level: 0, round: 0, next_at: None });
    let Some((level, round)) = rules.policy.after(esc.level, esc.round) else {
        return Err(Refusal("there is no next level: the escalation policy has ended".into()));
    };
    let asked = format!("{actor} asked for the next level{how}");
    let mut effects = vec![entry(now, actor, "escalate_requested", asked.clone())];
    effects.extend(page_from(rules, level, round, now, Some(&asked)));
    Ok(effects)
}

#[cfg(test)]
mod tests;
