//! The Matrix bot: posts pages to the team's room mentioning the person paged, edits them as the
//! incidents change, and acknowledges when someone mapped to a Reveille user (`users[].matrix`)
//! replies `ack` to one or reacts ✅. It speaks the Client-Server API over plain HTTP (send,
//! edit with `m.replace`, `/sync`); each message names its incidents in `org.reveille.incidents`,
//! so a reply or reaction is understood after a restart too.

use std::time::Duration;

use reveille_core::Command;
use reveille_protocol::{Incident, IncidentState};
use serde_json::{Value, json};

use crate::AppState;
use crate::deliver::notify::Failure;

/// Where the message's incidents are listed in its content.
const INCIDENTS: &str = "org.reveille.incidents";
/// Where the sync position is kept.
const SINCE: &str = "matrix_since";
/// Events one sync brings at most; more make it `limited`, and the gap is read from history.
const TIMELINE: usize = 100;
/// The most events of one gap read from history.
const MAX_GAP: usize = 5_000;

pub struct Bot {
    http: reqwest::Client,
    homeserver: String,
    token: String,
    /// The room's ID (joined at start, also when configured by alias).
    pub room: String,
    /// The bot's own Matrix ID.
    pub me: String,
}

/// Percent-encodes one path segment (room and event IDs hold `!`, `$`, `:`, `#`).
fn url_escape(part: &str) -> String {
    part.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Bot {
    /// Signs in with the configured token, learns who it is, and joins the room.
    pub async fn connect(state: &AppState) -> Result<Option<Self>, String> {
        let Some(settings) = &state.settings().matrix else { return Ok(None) };
        let token = state.settings().matrix_token()?.unwrap_or_default();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| e.to_string())?;
        let mut bot = Self {
            http,
            homeserver: settings.homeserver.trim_end_matches('/').to_owned(),
            token,
            room: String::new(),
            me: String::new(),
        };
        let whoami = bot.call(reqwest::Method::GET, "/account/whoami", None).await?;
        bot.me = whoami["user_id"].as_str().unwrap_or_default().to_owned();
        let joined = bot
            .call(
                reqwest::Method::POST,
                &format!("/join/{}", url_escape(&settings.room)),
                Some(json!({})),
            )
            .await?;
        bot.room = joined["room_id"].as_str().unwrap_or(&settings.room).to_owned();
        Ok(Some(bot))
    }

    /// One call of the Client-Server API. A refusal (4xx, but 429) is final; the homeserver not
    /// answering, a 429 or a 5xx may pass.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, Failure> {
        let url = format!("{}/_matrix/client/v3{path}", self.homeserver);
        let mut request = self.http.request(method, url).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response =
            request.send().await.map_err(|e| Failure::transient(e.without_url().to_string()))?;
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(answer);
        }
        let why = format!("{status}: {}", answer["error"].as_str().unwrap_or(""));
        let transient = status.is_server_error() || status.as_u16() == 429;
        Err(Failure { transient, why })
    }

    async fn send(&self, content: Value) -> Result<String, Failure> {
        let txn = crate::http::auth::random::<12>()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>();
        let path = format!("/rooms/{}/send/m.room.message/{txn}", url_escape(&self.room));
        let answer = self.call(reqwest::Method::PUT, &path, Some(content)).await?;
        Ok(answer["event_id"].as_str().unwrap_or_default().to_owned())
    }

    /// Posts the pages of `incidents` for `mention`; the new event's ID.
    pub async fn post(&self, incidents: &[Incident], mention: &str) -> Result<String, Failure> {
        self.send(content(incidents, mention)).await
    }

    /// Edits a message of the bot's to show its incidents as they are now.
    pub async fn refresh(&self, state: &AppState, event: &str) -> Result<(), Failure> {
        let original = self.event(event).await?;
        let mention =
            original["content"]["m.mentions"]["user_ids"][0].as_str().unwrap_or("").to_owned();
        let mut incidents = Vec::new();
        for id in ids(&original) {
            if let Ok(detail) = state.store.incident(id).await {
                incidents.push(detail.incident);
            }
        }
        let fresh = content(&incidents, &mention);
        let edit = json!({
            "msgtype": "m.text",
            "body": format!("* {}", fresh["body"].as_str().unwrap_or("")),
            "m.new_content": fresh,
            "m.relates_to": {"rel_type": "m.replace", "event_id": event},
        });
        self.send(edit).await.map(|_| ())
    }

    async fn event(&self, event: &str) -> Result<Value, Failure> {
        let path = format!("/rooms/{}/event/{}", url_escape(&self.room), url_escape(event));
        self.call(reqwest::Method::GET, &path, None).await
    }

    /// The filter of the bot's syncs: its room's timeline, nothing else.
    fn filter(&self) -> String {
        json!({
            "room": {"rooms": [self.room], "timeline": {"limit": TIMELINE}, "state": {"lazy_load_members": true}},
            "presence": {"not_types": ["*"]},
            "account_data": {"not_types": ["*"]},
        })
        .to_string()
    }

    /// One sync from the saved position: every new event handled, then the position saved.
    async fn follow(&self, state: &AppState) -> Result<(), Failure> {
        let filter = self.filter();
        let stored = state.store.meta(SINCE).await;
        let since = stored.map_err(|e| Failure::transient(e.to_string()))?.unwrap_or_default();
        // The first sync only learns where "now" is: what was said before is not replayed.
        let timeout = if since.is_empty() { 0 } else { 30_000 };
        let mut path = format!("/sync?timeout={timeout}&filter={}", url_escape(&filter));
        if !since.is_empty() {
            path.push_str(&format!("&since={}", url_escape(&since)));
        }
        let synced = self.call(reqwest::Method::GET, &path, None).await?;
        if !since.is_empty() {
            let timeline = &synced["rooms"]["join"][&self.room]["timeline"];
            let mut events = Vec::new();
            if timeline["limited"].as_bool() == Some(true) {
                let from = timeline["prev_batch"].as_str().unwrap_or_default();
                events = self.missed(from, &since).await?;
            }
            events.extend(timeline["events"].as_array().cloned().unwrap_or_default());
            for event in &events {
                self.heard(state, event).await?;
            }
        }
        let next = synced["next_batch"].as_str().unwrap_or_default();
        let saved = state.store.set_meta(SINCE, next).await;
        saved.map_err(|e| Failure::transient(format!("cannot save the sync position: {e}")))
    }

    /// The room's events a limited sync skipped: from `from` back to `since`, oldest first.
    async fn missed(&self, from: &str, since: &str) -> Result<Vec<Value>, Failure> {
        let mut gap = Vec::new();
        let mut from = from.to_owned();
        while gap.len() < MAX_GAP {
            let path = format!(
                "/rooms/{}/messages?dir=b&limit=100&from={}&to={}",
                url_escape(&self.room),
                url_escape(&from),
                url_escape(since)
            );
            let page = self.call(reqwest::Method::GET, &path, None).await?;
            let chunk = page["chunk"].as_array().cloned().unwrap_or_default();
            if chunk.is_empty() {
                break;
            }
            gap.extend(chunk);
            match page["end"].as_str() {
                Some(end) if end != from => from = end.to_owned(),
                _ => break,
            }
        }
        if gap.len() >= MAX_GAP {
            tracing::warn!(
                events = gap.len(),
                "Matrix: a very long gap; only its newest events are read"
            );
        }
        gap.reverse();
        Ok(gap)
    }

    /// One event of the room: an `ack` reply or a ✅ reaction to one of the bot's messages. An
    /// error means it could not be handled now and must be read again.
    async fn heard(&self, state: &AppState, event: &Value) -> Result<(), Failure> {
        let sender = event["sender"].as_str().unwrap_or_default();
        if sender == self.me {
            return Ok(());
        }
        let Some(target) = asks_ack(event) else { return Ok(()) };
        let original = match self.event(&target).await {
            Ok(original) => original,
            Err(failure) if failure.transient => return Err(failure),
            // Not an event this bot can see (redacted, another room's): nothing to do.
            Err(_) => return Ok(()),
        };
        if original["sender"].as_str() != Some(self.me.as_str()) {
            return Ok(());
        }
        let settings = state.settings();
        let Some(user) = settings.users.iter().find(|u| u.matrix.as_deref() == Some(sender)) else {
            let notice = json!({
                "msgtype": "m.notice",
                "body": format!("{sender} is not a Reveille user here: nothing was acknowledged."),
                "m.relates_to": {"m.in_reply_to": {"event_id": event["event_id"]}},
            });
            if let Err(e) = self.send(notice).await {
                tracing::warn!(error = %e.why, "cannot answer in the Matrix room");
            }
            return Ok(());
        };
        for id in ids(&original) {
            let now = state.clock.now();
            match state.store.command(id, &user.name, Command::Acknowledge, now).await {
                Ok(_) => {
                    let message = format!("Acknowledged from Matrix by {sender}");
                    let note = Command::Note { kind: "matrix_ack".into(), message };
                    let _ = state.store.command(id, &user.name, note, now).await;
                }
                // Already acknowledged or resolved, or gone: the ack is moot.
                Err(reveille_store::Error::Refused(_) | reveille_store::Error::NotFound(_)) => {}
                Err(e) => return Err(Failure::transient(format!("cannot acknowledge: {e}"))),
            }
        }
        Ok(())
    }
}

/// Following the room, as a job ([`crate::jobs`]): connects the bot (again after an error),
/// then syncs while this node holds the Matrix lease. One node of a cluster follows at a time,
/// so each ack is answered once. The sync position is saved only once every event up to it was
/// handled: an event that could not be handled (the homeserver or the database failing) is read
/// again. A sync that skipped events (`limited`: more came than its timeline holds) is filled in
/// from the room's history first.
#[derive(Default)]
pub struct Listening {
    bot: Option<Bot>,
    /// Waiting after an error, or for the lease.
    wait: Option<Duration>,
}

#[async_trait::async_trait]
impl crate::jobs::Job for Listening {
    fn name(&self) -> &'static str {
        "matrix"
    }

    async fn step(&mut self, state: &AppState) -> Result<(), String> {
        self.wait = Some(Duration::from_secs(10));
        if self.bot.is_none() {
            let bot =
                Bot::connect(state).await.map_err(|e| format!("cannot connect to Matrix: {e}"))?;
            self.bot = bot;
        }
        let Some(bot) = &self.bot else { return Ok(()) };
        let holding =
            crate::deliver::outbox::hold(state, crate::deliver::outbox::MATRIX_LEASE).await;
        if !matches!(holding, crate::deliver::outbox::Holding::Ours { .. }) {
            self.wait = Some(crate::deliver::outbox::RENEW);
            return Ok(());
        }
        let lease = crate::deliver::outbox::MATRIX_LEASE;
        match crate::deliver::outbox::while_held(state, lease, bot.follow(state)).await {
            Some(Ok(())) => self.wait = None,
            Some(Err(e)) => return Err(format!("cannot follow the room now: {e}")),
            None => tracing::info!("Matrix: another node follows the room now"),
        }
        Ok(())
    }

    async fn until_due(&mut self, _state: &AppState) {
        if let Some(wait) = self.wait {
            tokio::time::sleep(wait).await;
        }
    }
}

/// The message an `ack` reply or ✅ reaction points at, if the event is one.
pub fn asks_ack(event: &Value) -> Option<String> {
    let content = &event["content"];
    match event["type"].as_str()? {
        "m.reaction" => {
            let relates = &content["m.relates_to"];
            let key = relates["key"].as_str()?;
            (relates["rel_type"] == "m.annotation" && key.trim_end_matches('\u{fe0f}') == "✅")
                .then(|| relates["event_id"].as_str().map(str::to_owned))?
        }
        "m.room.message" => {
            let target = content["m.relates_to"]["m.in_reply_to"]["event_id"].as_str()?;
            // Older clients quote the message they reply to as "> " lines first.
            let said: Vec<&str> = content["body"]
                .as_str()?
                .lines()
                .filter(|l| !l.starts_with('>') && !l.trim().is_empty())
                .collect();
            (said.len() == 1 && said[0].trim().eq_ignore_ascii_case("ack"))
                .then(|| target.to_owned())
        }
        _ => None,
    }
}

fn ids(event: &Value) -> Vec<i64> {
    let listed = event["content"][INCIDENTS].as_array().cloned().unwrap_or_default();
    listed.iter().filter_map(Value::as_i64).collect()
}

/// A message about `incidents` for `mention`, as plain text and HTML, naming its incidents.
pub fn content(incidents: &[Incident], mention: &str) -> Value {
    let mut body = format!("{mention}: paged by Reveille\n");
    let mut html = format!(
        "<p><a href=\"https://matrix.to/#/{m}\">{m}</a>: paged by Reveille</p><ul>",
        m = escape(mention)
    );
    for i in incidents {
        let (mark, state) = match i.state {
            IncidentState::Triggered => ("🔴", "triggered".to_owned()),
            IncidentState::Acknowledged => (
                "🟡",
                format!("acknowledged by {}", i.acknowledged_by.as_deref().unwrap_or("someone")),
            ),
            IncidentState::Snoozed => ("💤", "snoozed".to_owned()),
            IncidentState::Resolved => {
                ("✅", format!("resolved by {}", i.resolved_by.as_deref().unwrap_or("someone")))
            }
        };
        let line = format!("[{}] {}: {} (#{})", i.severity.as_str(), i.service, i.summary, i.id);
        body.push_str(&format!("{mark} {line} — {state}\n"));
        html.push_str(&format!("<li>{mark} {} — <b>{state}</b></li>", escape(&line)));
    }
    body.push_str("Reply \"ack\" to this message or react ✅ to acknowledge.");
    html.push_str("</ul><p>Reply <code>ack</code> to this message or react ✅ to acknowledge.</p>");
    let ids: Vec<i64> = incidents.iter().map(|i| i.id).collect();
    json!({
        "msgtype": "m.text",
        "body": body,
        "format": "org.matrix.custom.html",
        "formatted_body": html,
        "m.mentions": {"user_ids": [mention]},
        INCIDENTS: ids,
    })
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ack_is_a_lone_ack_reply_or_a_check_mark_reaction() {
        let reply = |body: &str| {
            json!({"type": "m.room.message", "content": {"body": body,
            "m.relates_to": {"m.in_reply_to": {"event_id": "$page"}}}})
        };
        assert_eq!(asks_ack(&reply("ack")), Some("$page".into()));
        assert_eq!(asks_ack(&reply("> <@bot:x> Disk full\n\n ACK ")), Some("$page".into()));
        assert_eq!(asks_ack(&reply("ack later, busy")), None);
        let plain = json!({"type": "m.room.message", "content": {"body": "ack"}});
        assert_eq!(asks_ack(&plain), None, "not a reply: which page?");
        let react = |key: &str| {
            json!({"type": "m.reaction", "content": {"m.relates_to":
            {"rel_type": "m.annotation", "event_id": "$page", "key": key}}})
        };
        assert_eq!(asks_ack(&react("✅")), Some("$page".into()));
        assert_eq!(asks_ack(&react("✅\u{fe0f}")), Some("$page".into()));
        assert_eq!(asks_ack(&react("👀")), None);
    }

    #[test]
    fn room_and_event_ids_are_escaped_in_paths() {
        assert_eq!(url_escape("!abc:example.org"), "%21abc%3Aexample.org");
        assert_eq!(url_escape("$ev/1+2"), "%24ev%2F1%2B2");
    }
}
