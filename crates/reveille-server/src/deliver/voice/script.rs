//! A page call, from placing it to hanging up: the numbers of the person in order until one
//! answers; then the page said (again on 9, up to `[sip] rounds` times) until a key acts on it:
//! 4 acknowledges every incident in the call, 6 moves each to its next level. What happens goes
//! on the timeline of each incident, as the person, as it happens: `call_ringing`,
//! `call_answered` (with what was said), `call_ack`, `escalate_requested`, `call_ended`; or, if
//! nobody answered, one `call_no_answer`, `call_busy` or `call_failed` line for the step, and
//! the person's next steps come at once.

use std::time::Duration;

use jiff::Timestamp;

use reveille_core::Command;
use reveille_core::notify::Channel;
use reveille_protocol::Incident;
use reveille_voice::{Call, Dialed, Heard, Line, Unanswered, Voice};
use tokio::sync::oneshot;

use super::keypad::{Key, keypad};
use super::words;
use crate::AppState;
use crate::config::telephony::Carrier;
use crate::deliver::notify::{Channels, Failure, Fate, Outgoing};

/// How long a page waits for the line to open (at start) before trying again later.
const OPENING: Duration = Duration::from_secs(10);
/// How long a call listens for a key after saying the page.
pub const KEY_WAIT: Duration = Duration::from_secs(6);
/// The keys a page call acts on: 4 acknowledges, 6 escalates, 9 says it again.
const KEYS: &str = "469";

/// How one number's call went.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Someone answered: what happened then is on the timeline already.
    Answered,
    NoAnswer(String),
    Busy(String),
    Failed(Failure),
}

/// Calls `user` about the pages of `out`.
pub async fn call(state: &AppState, channels: &Channels, user: &str, out: &Outgoing) -> Vec<Fate> {
    let pages = out.pages();
    let settings = state.settings();
    let numbers =
        settings.users.iter().find(|u| u.name == user).map(|u| u.phone.list()).unwrap_or_default();
    let tried = match settings.calls_by() {
        Some(Carrier::Sip) => by_sip(state, user, &numbers, &pages, out.due).await,
        Some(Carrier::Twilio) => crate::deliver::twilio::call(state, user, &numbers, &pages).await,
        _ => {
            vec![(out.to.clone(), Outcome::Failed(Failure::permanent("calls are not configured")))]
        }
    };
    finish(channels, user, &pages, &tried)
}

/// The step's one closing line per incident, unless someone answered; and the person's rules
/// move on.
fn finish(
    channels: &Channels,
    user: &str,
    pages: &[Incident],
    tried: &[(String, Outcome)],
) -> Vec<Fate> {
    let answered = tried.iter().any(|(_, o)| matches!(o, Outcome::Answered));
    let outcome: Result<Option<(String, String)>, Failure> = if answered {
        Ok(None)
    } else {
        let _ = channels.moved_on.send((user.to_owned(), pages.iter().map(|i| i.id).collect()));
        let each: Vec<String> = tried
            .iter()
            .map(|(number, o)| match o {
                Outcome::Answered => format!("{number} answered"),
                Outcome::NoAnswer(why) => format!("{number} not answered ({why})"),
                Outcome::Busy(why) => format!("{number} busy ({why})"),
                Outcome::Failed(f) => format!("{number} failed: {}", f.why),
            })
            .collect();
        let said = each.join("; ");
        if tried.iter().any(|(_, o)| matches!(o, Outcome::Busy(_))) {
            Ok(Some(("call_busy".into(), format!("Call: {said}"))))
        } else if tried.iter().any(|(_, o)| matches!(o, Outcome::NoAnswer(_))) {
            Ok(Some(("call_no_answer".into(), format!("Call: {said}"))))
        } else {
            let transient =
                tried.iter().any(|(_, o)| matches!(o, Outcome::Failed(f) if f.transient));
            Err(Failure {
                transient,
                why: if said.is_empty() { "no phone number".into() } else { said },
            })
        }
    };
    pages.iter().map(|i| Fate { incident: i.id, outcome: outcome.clone() }).collect()
}

/// A line on the timeline of each incident, as the person.
pub async fn note(state: &AppState, user: &str, ids: &[i64], kind: &str, message: &str) {
    let now = state.clock.now();
    for &id in ids {
        let command = Command::Note { kind: kind.into(), message: message.to_owned() };
        if let Err(e) = state.store.command(id, user, command, now).await {
            tracing::error!(error = %e, incident = id, "cannot write a call's progress on the timeline");
        }
    }
}

fn ids(pages: &[Incident]) -> Vec<i64> {
    pages.iter().map(|i| i.id).collect()
}

fn voice(state: &AppState) -> Voice {
    let settings = state.settings();
    let sip = settings.sip.as_ref();
    Voice {
        voice: sip.map_or_else(|| "en-us".into(), |s| s.voice.clone()),
        words_per_minute: sip.map_or(160, |s| s.words_per_minute),
    }
}

/// `text` as the line's voice says it (a few at a time: a storm's hundred calls must not starve
/// the calls being placed of the CPU).
pub async fn render(state: &AppState, text: &str) -> reveille_voice::Result<Vec<i16>> {
    let _turn = state.line.rendering.acquire().await;
    voice(state).render(text).await
}

/// Why a call that was refused failed, and whether another try may work.
fn refusal(why: String) -> Failure {
    let status: Option<u16> = why.split_whitespace().next().and_then(|s| s.parse().ok());
    match status {
        Some(401 | 403 | 407) => {
            Failure::permanent(format!("{why} (is the [sip] user and password_file right?)"))
        }
        Some(500..=599) => Failure::transient(why),
        Some(_) => Failure::permanent(why),
        // A phone that answers with nothing we can use will do so again; a server that did
        // not answer may be back.
        None if why.starts_with("answered") => Failure::permanent(why),
        None => Failure::transient(why),
    }
}

/// Places a call to `number` over the line, saying when it rings on the timeline.
async fn dial(
    state: &AppState,
    line: &Line,
    user: &str,
    number: &str,
    pages: &[Incident],
    due: Option<Timestamp>,
) -> Result<Call, Outcome> {
    let ring = Duration::from_secs(state.settings().sip.as_ref().map_or(30, |s| s.ring_seconds));
    let (ringing, rang) = oneshot::channel();
    let dialing = line.dial(number, ring, move || {
        let _ = ringing.send(());
    });
    tokio::pin!(dialing);
    let mut rang = Some(rang);
    let dialed = loop {
        tokio::select! {
            dialed = &mut dialing => break dialed,
            Ok(()) = async { rang.as_mut().expect("guarded").await }, if rang.is_some() => {
                rang = None;
                if let Some(due) = due {
                    let after = state.clock.now().duration_since(due).unsigned_abs();
                    state.metrics.phone("ringing", after);
                }
                note(state, user, &ids(pages), "call_ringing", &format!("Calling {number}: ringing")).await;
            }
        }
    };
    match dialed {
        Ok(Dialed::Answered(call)) => Ok(call),
        Ok(Dialed::Unanswered(Unanswered::NoAnswer(why))) => Err(Outcome::NoAnswer(why)),
        Ok(Dialed::Unanswered(Unanswered::Busy(why))) => Err(Outcome::Busy(why)),
        Ok(Dialed::Unanswered(Unanswered::Failed(why))) => Err(Outcome::Failed(refusal(why))),
        Err(e) => Err(Outcome::Failed(Failure::transient(e.to_string()))),
    }
}

async fn by_sip(
    state: &AppState,
    user: &str,
    numbers: &[String],
    pages: &[Incident],
    due: Timestamp,
) -> Vec<(String, Outcome)> {
    let Some(line) = state.line.wait(OPENING).await else {
        let failure = Failure::transient("the SIP line is not open (see the server's log)");
        return vec![(numbers.join(", "), Outcome::Failed(failure))];
    };
    let body = words::call(pages, state.clock.now());
    // Rendered while the phone rings; the greeting (rendered once) is said while it finishes.
    let mut speech = Speech::Rendering(tokio::spawn({
        let (state, body) = (state.clone(), body.clone());
        async move { render(&state, &body).await.map_err(|e| e.to_string()) }
    }));
    let greeting = match state.line.greeting(&voice(state)).await {
        Ok(greeting) => greeting,
        Err(e) => {
            return vec![(numbers.join(", "), Outcome::Failed(Failure::permanent(e.to_string())))];
        }
    };
    let mut tried = Vec::new();
    for number in numbers {
        match dial(state, &line, user, number, pages, Some(due)).await {
            Ok(call) => {
                let said = format!("{} {body}", words::GREETING);
                let outcome =
                    talk(state, user, number, pages, call, &greeting, &mut speech, &said).await;
                tried.push((number.clone(), outcome));
                break;
            }
            Err(outcome) => tried.push((number.clone(), outcome)),
        }
    }
    if let Speech::Rendering(rendering) = speech {
        rendering.abort();
    }
    tried
}

/// A call's page as speech: being rendered, or ready.
enum Speech {
    Rendering(tokio::task::JoinHandle<Result<Vec<i16>, String>>),
    Ready(Vec<i16>),
}

impl Speech {
    async fn samples(&mut self) -> Result<&[i16], String> {
        if let Self::Rendering(rendering) = self {
            let rendered = rendering.await.map_err(|e| e.to_string())??;
            *self = Self::Ready(rendered);
        }
        match self {
            Self::Ready(samples) => Ok(samples),
            Self::Rendering(_) => unreachable!("rendered just above"),
        }
    }
}

/// Once answered: says the page and acts on the keys.
#[expect(clippy::too_many_arguments, reason = "one call's whole context, passed once")]
async fn talk(
    state: &AppState,
    user: &str,
    number: &str,
    pages: &[Incident],
    mut call: Call,
    greeting: &[i16],
    speech: &mut Speech,
    said: &str,
) -> Outcome {
    let answered = format!("{number} answered; said: \"{said}\"");
    let rounds = state.settings().sip.as_ref().map_or(3, |s| s.rounds);
    let mut round = 0;
    while round < rounds {
        round += 1;
        // The audio starts at once (the greeting); the timeline's line is written meanwhile.
        let incidents = ids(pages);
        let noting = async {
            if round == 1 {
                note(state, user, &incidents, "call_answered", &answered).await;
            }
        };
        let ((), greeted) = tokio::join!(noting, call.say(greeting, KEYS));
        if round == 1
            && let Some(took) = call.first_audio()
        {
            state.metrics.phone("first_audio", took);
        }
        let mut heard = greeted;
        if heard == Heard::Nothing {
            heard = match speech.samples().await {
                Ok(samples) => call.say(samples, KEYS).await,
                Err(why) => {
                    call.hang_up().await;
                    return Outcome::Failed(Failure::permanent(why));
                }
            };
        }
        if heard == Heard::Nothing {
            heard = call.listen(KEY_WAIT, KEYS).await;
        }
        let acted = match heard {
            Heard::Key('4') => {
                keypad(state, user, number, &ids(pages), Key::Acknowledge, call.key_heard()).await
            }
            Heard::Key('6') => {
                keypad(state, user, number, &ids(pages), Key::Escalate, call.key_heard()).await
            }
            Heard::Key(_) | Heard::Nothing => continue,
            Heard::HungUp => {
                let message = format!(
                    "{number} hung up after {} s without pressing 4 or 6",
                    call.said().as_secs()
                );
                note(state, user, &ids(pages), "call_ended", &message).await;
                return Outcome::Answered;
            }
        };
        match acted {
            Ok(reply) => {
                if let Ok(samples) = render(state, &reply).await {
                    call.say(&samples, "").await;
                }
                call.hang_up().await;
                return Outcome::Answered;
            }
            // Not done (the database could not commit): said, and the keys still work.
            Err(sorry) => {
                if let Ok(samples) = render(state, &sorry).await {
                    call.say(&samples, "").await;
                }
                round -= 1;
            }
        }
    }
    let others = match call.ignored() {
        0 => String::new(),
        n => format!(" ({n} other keys pressed)"),
    };
    let message = format!(
        "Call to {number} ended: the page was said {round} times and no key acted on it{others}"
    );
    note(state, user, &ids(pages), "call_ended", &message).await;
    call.hang_up().await;
    Outcome::Answered
}

/// A test call or text to `user` through the same path as a page, for `reveille notify-test`:
/// its outcome in words, recorded for the readiness board.
pub async fn test_call(state: &AppState, user: &str, channel: Channel) -> Result<String, String> {
    let settings = state.settings();
    let person = settings
        .users
        .iter()
        .find(|u| u.name == user)
        .ok_or_else(|| format!("{user} is not a user here"))?;
    let numbers = person.phone.list();
    if numbers.is_empty() {
        return Err(format!("{user} has no phone number"));
    }
    let outcome = match channel {
        Channel::Call => test_by_call(state, user, &numbers).await,
        Channel::Sms => crate::deliver::sms::test(state, user, &numbers[0]).await,
        other => Err(format!("{} cannot be tested here", other.as_str())),
    };
    let failure = outcome.as_ref().err().map(String::as_str);
    crate::deliver::notify::record_test(state, user, channel, failure).await;
    outcome
}

async fn test_by_call(state: &AppState, user: &str, numbers: &[String]) -> Result<String, String> {
    let settings = state.settings();
    if settings.calls_by() == Some(Carrier::Twilio) {
        return crate::deliver::twilio::test_call(state, user, &numbers[0]).await;
    }
    let line = state.line.wait(OPENING).await.ok_or("the SIP line is not open")?;
    let prompt = voice(state).render(&words::test_call(user)).await.map_err(|e| e.to_string())?;
    let number = &numbers[0];
    match dial(state, &line, user, number, &[], None).await {
        Ok(mut call) => {
            let mut heard = Heard::Nothing;
            for _ in 0..2 {
                heard = call.say(&prompt, "0123456789*#").await;
                if heard == Heard::Nothing {
                    heard = call.listen(KEY_WAIT, "0123456789*#").await;
                }
                if heard != Heard::Nothing {
                    break;
                }
            }
            let outcome = match heard {
                Heard::Key('4') => Ok(format!("{number} answered and pressed 4")),
                Heard::Key(k) => Ok(format!("{number} answered and pressed {k}")),
                Heard::HungUp => Ok(format!("{number} answered and hung up")),
                Heard::Nothing => Ok(format!("{number} answered; no key was pressed")),
            };
            if heard != Heard::HungUp {
                if let Ok(bye) = voice(state).render("Thank you. Goodbye.").await {
                    call.say(&bye, "").await;
                }
                call.hang_up().await;
            }
            outcome
        }
        Err(Outcome::NoAnswer(why)) => Err(format!("{number} did not answer ({why})")),
        Err(Outcome::Busy(why)) => Err(format!("{number} was busy ({why})")),
        Err(Outcome::Failed(f)) => Err(format!("{number}: {}", f.why)),
        Err(Outcome::Answered) => Ok(format!("{number} answered")),
    }
}
