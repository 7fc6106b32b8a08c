//! Answers to texts, from any carrier: `4 12`, `ack 12`, `6 12`, `escalate 12` (a bare `4`:
//! the incidents of the last text). A reply acts as the person whose number sent it, on
//! incidents they were paged for; from another number it does nothing but a log line and a
//! timeline note. Every outcome is said back in a text (never to an unknown number).

use reveille_core::Command;

use crate::AppState;
use crate::config::telephony::normalise;

/// What a text asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    Acknowledge(Option<i64>),
    Escalate(Option<i64>),
}

/// Reads a reply; None when it asks nothing we know.
pub fn parse(text: &str) -> Option<Ask> {
    let text = text.to_lowercase().replace(['#', '.', ',', '!'], " ");
    let mut words = text.split_whitespace();
    let verb = words.next()?;
    let id = match words.next() {
        None => None,
        Some(n) => Some(n.parse::<i64>().ok().filter(|n| *n > 0)?),
    };
    if words.next().is_some() {
        return None;
    }
    match verb {
        "4" | "a" | "ack" | "acknowledge" => Some(Ask::Acknowledge(id)),
        "6" | "e" | "esc" | "escalate" => Some(Ask::Escalate(id)),
        _ => None,
    }
}

/// Acts on a text from `from`; what to text back. An error: the database could not act now
/// (the text is read again later).
pub async fn handle(
    state: &AppState,
    from: &str,
    text: &str,
    via: &str,
) -> reveille_store::Result<Option<String>> {
    let settings = state.settings();
    let ask = parse(text);
    let quoted: String = text.chars().take(60).collect();
    let Some(person) = settings.user_by_phone(from) else {
        tracing::warn!(%from, %via, text = %quoted, "a text from a number that is nobody's here; ignored");
        if let Some(Ask::Acknowledge(Some(id)) | Ask::Escalate(Some(id))) = ask {
            let message = format!(
                "A text from {from} (no one's number here) said \"{quoted}\"; nothing was done"
            );
            let note = Command::Note { kind: "sms_ignored".into(), message };
            match state.store.command(id, "sms", note, state.clock.now()).await {
                Ok(_)
                | Err(reveille_store::Error::NotFound(_) | reveille_store::Error::Refused(_)) => {}
                Err(e) => return Err(e),
            }
        }
        return Ok(None);
    };
    let user = person.name.clone();
    let from = normalise(from);
    tracing::info!(%user, %from, %via, text = %quoted, "a text from a person");
    let Some(ask) = ask else {
        return Ok(Some("Reveille did not understand. Reply 4 <n> to acknowledge incident n, 6 <n> to escalate it.".into()));
    };
    let (Ask::Acknowledge(id) | Ask::Escalate(id)) = ask;
    let ids = match id {
        Some(id) => vec![id],
        None => super::last_texted(state, &user).await?,
    };
    if ids.is_empty() {
        return Ok(Some("Which incident? Reply 4 <n> to acknowledge incident n.".into()));
    }
    let now = state.clock.now();
    let mut said = Vec::new();
    for id in ids {
        let incident = match state.store.incident(id).await {
            Ok(detail) => detail.incident,
            Err(reveille_store::Error::NotFound(_)) => {
                said.push(format!("#{id} does not exist."));
                continue;
            }
            Err(e) => return Err(e),
        };
        let verb = match ask {
            Ask::Acknowledge(_) => "acknowledge",
            Ask::Escalate(_) => "escalate",
        };
        if !incident.paged.contains(&user) {
            let message = format!(
                "A text from {user} ({from}) asked to {verb} #{id}, which was not paged to {user}; nothing was done"
            );
            tracing::warn!(%user, incident = id, "{message}");
            let note = Command::Note { kind: "sms_refused".into(), message };
            state.store.command(id, &user, note, now).await?;
            said.push(format!("#{id} was not paged to you; nothing was done."));
            continue;
        }
        let done = match ask {
            Ask::Acknowledge(_) => state.store.command(id, &user, Command::Acknowledge, now).await,
            Ask::Escalate(_) => {
                let how = format!(" by a text from {from}");
                state
                    .store
                    .escalate_now(id, &user, &how, state.directory().rules.clone(), now)
                    .await
            }
        };
        match done {
            Ok(incident) => match ask {
                Ask::Acknowledge(_)
                    if incident.acknowledged_by.as_deref() == Some(user.as_str()) =>
                {
                    let message = format!("Acknowledged by a text from {from}");
                    let note = Command::Note { kind: "sms_ack".into(), message };
                    state.store.command(id, &user, note, now).await?;
                    said.push(format!("Acknowledged #{id}."));
                }
                Ask::Acknowledge(_) => {
                    said.push(format!("#{id} is {} already.", incident.state.as_str()))
                }
                Ask::Escalate(_) => said.push(format!("Escalated #{id}.")),
            },
            Err(reveille_store::Error::Refused(why)) => said.push(format!("#{id}: {why}.")),
            Err(e) => return Err(e),
        }
    }
    Ok(Some(crate::deliver::voice::words::gsm7(&said.join(" ")).chars().take(160).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_read_the_ways_people_write_them() {
        let cases = [
            ("4 12", Some(Ask::Acknowledge(Some(12)))),
            ("ACK #12", Some(Ask::Acknowledge(Some(12)))),
            ("  4  ", Some(Ask::Acknowledge(None))),
            ("6 12", Some(Ask::Escalate(Some(12)))),
            ("escalate 7.", Some(Ask::Escalate(Some(7)))),
            ("4 twelve", None),
            ("4 12 13", None),
            ("4 -1", None),
            ("yes", None),
            ("", None),
        ];
        for (text, ask) in cases {
            assert_eq!(parse(text), ask, "{text:?}");
        }
    }
}
