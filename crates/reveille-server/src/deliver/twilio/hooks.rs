//! Twilio's webhooks, each refused (403) unless its `X-Twilio-Signature` is right for this
//! server's public URL (`[server] base_url`) and the form it carries:
//! - `POST /hooks/twilio/voice/{token}`: what a call says (TwiML `<Gather>` around `<Say>`),
//!   round after round;
//! - `POST /hooks/twilio/keys/{token}`: the key pressed (4, 6, 9), acted on as on a SIP call;
//! - `POST /hooks/twilio/status/{token}`: a call's progress (ringing goes on the timeline);
//! - `POST /hooks/twilio/sms`: a text to the Twilio number, answered in TwiML `<Message>`;
//! - `POST /hooks/twilio/incoming`: a call to the Twilio number (the hotline).

use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{Context, context, save, signature};
use crate::AppState;
use crate::deliver::voice::{Key, hotline, keypad, note};

/// A round of a call, from the query string.
#[derive(Debug, Default, Deserialize)]
pub struct Round {
    #[serde(default)]
    round: Option<u32>,
}

/// Escapes text for XML: sender text is text.
fn xml(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

fn twiml(verbs: &str) -> Response {
    let body = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response>{verbs}</Response>");
    ([(header::CONTENT_TYPE, "text/xml; charset=utf-8")], body).into_response()
}

/// A request refused: its status and why.
type Refused = (StatusCode, &'static str);

/// The form of a request whose signature is right.
fn verified(
    state: &AppState,
    uri: &OriginalUri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Vec<(String, String)>, Refused> {
    let settings = state.settings();
    if settings.twilio.is_none() {
        return Err((StatusCode::NOT_FOUND, "[twilio] is not configured"));
    }
    let token = settings.twilio_token().map_err(|e| {
        tracing::error!(error = %e, "cannot read Twilio's auth token");
        (StatusCode::SERVICE_UNAVAILABLE, "the auth token cannot be read")
    })?;
    let params: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
        .map_err(|_| (StatusCode::BAD_REQUEST, "the body is not a form"))?;
    let path = uri.0.path_and_query().map_or("/", |p| p.as_str());
    let url = format!("{}{path}", settings.server.base_url.trim_end_matches('/'));
    let given = headers.get("x-twilio-signature").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let expected = signature(&token, &url, &params);
    let same = given.len() == expected.len()
        && given.bytes().zip(expected.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
    if !same {
        tracing::warn!(%url, "a Twilio webhook with a wrong X-Twilio-Signature was refused");
        return Err((StatusCode::FORBIDDEN, "X-Twilio-Signature does not match"));
    }
    Ok(params)
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> &'a str {
    params.iter().find(|(n, _)| n == name).map_or("", |(_, v)| v.as_str())
}

fn hooks(state: &AppState, path: &str) -> String {
    super::hooks_url(state, path)
}

async fn load(state: &AppState, token: &str) -> Result<Option<Context>, Refused> {
    context(state, token).await.map_err(|e| {
        tracing::error!(error = %e, "cannot read a Twilio call's context");
        (StatusCode::SERVICE_UNAVAILABLE, "the database cannot be read now")
    })
}

fn rounds(state: &AppState) -> u32 {
    state.settings().sip.as_ref().map_or(3, |s| s.rounds)
}

/// What a call says in round `round`.
pub async fn voice(
    State(state): State<AppState>,
    Path(token): Path<String>,
    Query(Round { round }): Query<Round>,
    uri: OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(refusal) = verified(&state, &uri, &headers, &body) {
        return refusal.into_response();
    }
    let context = match load(&state, &token).await {
        Ok(Some(context)) => context,
        Ok(None) => return twiml("<Say>This call has ended.</Say><Hangup/>"),
        Err(refusal) => return refusal.into_response(),
    };
    let round = round.unwrap_or(1);
    let number = &context.number;
    if round == 1 && !context.test {
        let answered = format!("{number} answered; said: \"{}\"", context.said);
        note(&state, &context.user, &context.incidents, "call_answered", &answered).await;
    }
    if round > rounds(&state) {
        if !context.test {
            let message = format!(
                "Call to {number} ended: the page was said {} times and no key acted on it",
                round - 1
            );
            note(&state, &context.user, &context.incidents, "call_ended", &message).await;
        }
        return twiml("<Say>Goodbye.</Say><Hangup/>");
    }
    let keys = xml(&hooks(&state, &format!("keys/{token}?round={round}")));
    let again = xml(&hooks(&state, &format!("voice/{token}?round={}", round + 1)));
    twiml(&format!(
        "<Gather input=\"dtmf\" numDigits=\"1\" timeout=\"6\" action=\"{keys}\" method=\"POST\"><Say>{}</Say></Gather><Redirect method=\"POST\">{again}</Redirect>",
        xml(&context.said)
    ))
}

/// The key pressed in round `round`.
pub async fn keys(
    State(state): State<AppState>,
    Path(token): Path<String>,
    Query(Round { round }): Query<Round>,
    uri: OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = match verified(&state, &uri, &headers, &body) {
        Ok(params) => params,
        Err(refusal) => return refusal.into_response(),
    };
    let mut context = match load(&state, &token).await {
        Ok(Some(context)) => context,
        Ok(None) => return twiml("<Say>This call has ended.</Say><Hangup/>"),
        Err(refusal) => return refusal.into_response(),
    };
    let round = round.unwrap_or(1);
    let again = |round: u32| {
        twiml(&format!(
            "<Redirect method=\"POST\">{}</Redirect>",
            xml(&hooks(&state, &format!("voice/{token}?round={round}")))
        ))
    };
    let digit = param(&params, "Digits");
    if context.test {
        context.key = Some(digit.to_owned());
        if let Err(e) = save(&state, &token, &context).await {
            tracing::warn!(error = %e, "cannot keep a test call's key");
        }
        return twiml("<Say>Thank you. Goodbye.</Say><Hangup/>");
    }
    let key = match digit {
        "4" => Key::Acknowledge,
        "6" => Key::Escalate,
        _ => return again(round + 1),
    };
    match keypad(&state, &context.user, &context.number, &context.incidents, key, None).await {
        Ok(said) => twiml(&format!("<Say>{}</Say><Hangup/>", xml(&said))),
        Err(sorry) => twiml(&format!(
            "<Say>{}</Say><Redirect method=\"POST\">{}</Redirect>",
            xml(&sorry),
            xml(&hooks(&state, &format!("voice/{token}?round={round}")))
        )),
    }
}

/// A call's progress: ringing goes on the timeline (how it ended, the caller learns from the
/// API).
pub async fn status(
    State(state): State<AppState>,
    Path(token): Path<String>,
    uri: OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = match verified(&state, &uri, &headers, &body) {
        Ok(params) => params,
        Err(refusal) => return refusal.into_response(),
    };
    if param(&params, "CallStatus") == "ringing"
        && let Ok(Some(context)) = load(&state, &token).await
        && !context.test
    {
        let message = format!("Calling {}: ringing", context.number);
        note(&state, &context.user, &context.incidents, "call_ringing", &message).await;
    }
    StatusCode::NO_CONTENT.into_response()
}

/// A text to the Twilio number.
pub async fn sms(
    State(state): State<AppState>,
    uri: OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = match verified(&state, &uri, &headers, &body) {
        Ok(params) => params,
        Err(refusal) => return refusal.into_response(),
    };
    let (from, text) = (param(&params, "From"), param(&params, "Body"));
    match crate::deliver::sms::replies::handle(&state, from, text.trim(), "twilio").await {
        Ok(Some(answer)) => twiml(&format!("<Message>{}</Message>", xml(&answer))),
        Ok(None) => twiml(""),
        Err(e) => {
            tracing::error!(error = %e, "cannot act on a text now");
            (StatusCode::SERVICE_UNAVAILABLE, "the database cannot act now").into_response()
        }
    }
}

/// A call to the Twilio number: the hotline.
pub async fn incoming(
    State(state): State<AppState>,
    uri: OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = match verified(&state, &uri, &headers, &body) {
        Ok(params) => params,
        Err(refusal) => return refusal.into_response(),
    };
    if state.settings().hotline.is_none() {
        return twiml("<Reject reason=\"rejected\"/>");
    }
    match hotline::open(&state, param(&params, "From"), "twilio").await {
        Ok(said) => twiml(&format!("<Say>{}</Say><Hangup/>", xml(&said))),
        Err(e) => {
            tracing::error!(error = %e, "a call to the hotline could not open an incident");
            twiml(
                "<Say>This is Reveille. Sorry, your call could not be recorded. Please try another way.</Say><Hangup/>",
            )
        }
    }
}
