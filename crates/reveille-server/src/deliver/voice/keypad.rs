//! The keys that act on a call's incidents, whoever carried the call (our SIP line or
//! Twilio): 4 acknowledges every incident of the call as the person, 6 moves each to its next
//! level; each on the timeline, and what the caller hears next.

use reveille_core::Command;

use super::script::note;
use super::words;
use crate::AppState;

/// A key that acts on a call's incidents.
#[derive(Debug, Clone, Copy)]
pub enum Key {
    Acknowledge,
    Escalate,
}

/// Acts on a key for every incident of the call: what to say then, or (when nothing could be
/// saved) what to say instead.
pub async fn keypad(
    state: &AppState,
    user: &str,
    number: &str,
    ids: &[i64],
    key: Key,
    heard: Option<std::time::Instant>,
) -> Result<String, String> {
    let ids = ids.to_vec();
    let now = state.clock.now();
    let mut done = 0;
    let mut refused = Vec::new();
    match key {
        Key::Acknowledge => {
            let answers =
                state.store.command_many(ids, user, vec![Command::Acknowledge], now).await;
            let answers = answers.map_err(|e| {
                tracing::error!(error = %e, "a call's acknowledgement could not be saved");
                "Sorry, the acknowledgement could not be saved. Press 4 to try again.".to_owned()
            })?;
            if let Some(heard) = heard {
                state.metrics.phone("key", heard.elapsed());
            }
            for (id, answer) in answers {
                match answer {
                    Ok(incident) if incident.acknowledged_by.as_deref() == Some(user) => {
                        done += 1;
                        let message = format!("Acknowledged by pressing 4 on the call to {number}");
                        note(state, user, &[id], "call_ack", &message).await;
                    }
                    Ok(incident) => refused.push(format!(
                        "Incident {id} is {} already{}",
                        incident.state.as_str(),
                        incident.acknowledged_by.map(|b| format!(" by {b}")).unwrap_or_default()
                    )),
                    Err(e) => refused.push(format!("Incident {id}: {e}")),
                }
            }
            Ok(words::after_key("Acknowledged", done, &refused))
        }
        Key::Escalate => {
            let rules = state.directory().rules.clone();
            let how = format!(" by pressing 6 on the call to {number}");
            for id in ids {
                match state.store.escalate_now(id, user, &how, rules.clone(), now).await {
                    Ok(_) => {
                        done += 1;
                        if let Some(heard) = heard.filter(|_| done == 1) {
                            state.metrics.phone("key", heard.elapsed());
                        }
                    }
                    Err(
                        reveille_store::Error::Refused(why) | reveille_store::Error::NotFound(why),
                    ) => {
                        refused.push(format!("Incident {id} was not escalated: {why}"));
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "a call's escalation could not be saved");
                        return Err(
                            "Sorry, the escalation could not be saved. Press 6 to try again."
                                .into(),
                        );
                    }
                }
            }
            Ok(words::after_key("Escalated to the next level", done, &refused))
        }
    }
}
