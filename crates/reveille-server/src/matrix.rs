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

/// Where the message's incidents are listed in its content.
const INCIDENTS: &str = "org.reveille.incidents";

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
        let Some(settings) = &state.settings.matrix else { return Ok(None) };
        let token = state.settings.matrix_token()?.unwrap_or_default();
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

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let url = format!("{}/_matrix/client/v3{path}", self.homeserver);
        let mut request = self.http.request(method, url).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| e.without_url().to_string())?;
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            Ok(answer)
        } else {
            Err(format!("{status}: {}", answer["error"].as_str().unwrap_or("")))
        }
    }

    async fn send(&self, content: Value) -> Result<String, String> {
        let txn =
            crate::auth::random::<12>().iter().map(|b| format!("{b:02x}")).collect::<String>();
        let path = format!("/rooms/{}/send/m.room.message/{txn}", url_escape(&self.room));
        let answer = self.call(reqwest::Method::PUT, &path, Some(content)).await?;
        Ok(answer["event_id"].as_str().unwrap_or_default().to_owned())
    }

    /// Posts the pages of `incidents` for `mention`; the new event's ID.
    pub async fn post(&self, incidents: &[Incident], mention: &str) -> Result<String, String> {
        self.send(content(incidents, mention)).await
    }

    /// Edits a message of the bot's to show its incidents as they are now.
    pub async fn refresh(&self, state: &AppState, event: &str) -> Result<(), String> {
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

    async fn event(&self, event: &str) -> Result<Value, String> {
        let path = format!("/rooms/{}/event/{}", url_escape(&self.room), url_escape(event));
        self.call(reqwest::Method::GET, &path, None).await
    }

    /// Follows the room and acknowledges what people ask; runs until aborted.
    pub async fn listen(&self, state: AppState) {
        let filter = json!({
            "room": {"rooms": [self.room], "timeline": {"limit": 100}, "state": {"lazy_load_members": true}},
            "presence": {"not_types": ["*"]},
            "account_data": {"not_types": ["*"]},
        })
        .to_string();
        let mut since = state.store.meta_or_insert("matrix_since", "").await.unwrap_or_default();
        loop {
            // The first sync only learns where "now" is: what was said before is not replayed.
            let timeout = if since.is_empty() { 0 } else { 30_000 };
            let mut path = format!("/sync?timeout={timeout}&filter={}", url_escape(&filter));
            if !since.is_empty() {
                path.push_str(&format!("&since={}", url_escape(&since)));
            }
            let synced = match self.call(reqwest::Method::GET, &path, None).await {
                Ok(synced) => synced,
                Err(e) => {
                    tracing::warn!(error = %e, "Matrix sync failed; retrying in 5 s");
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    continue;
                }
            };
            if !since.is_empty() {
                let events =
                    synced["rooms"]["join"][&self.room]["timeline"]["events"].as_array().cloned();
                for event in events.unwrap_or_default() {
                    self.heard(&state, &event).await;
                }
            }
            since = synced["next_batch"].as_str().unwrap_or_default().to_owned();
            if let Err(e) = state.store.set_meta("matrix_since", &since).await {
                tracing::error!(error = %e, "cannot save the Matrix sync position");
            }
        }
    }

    /// One event of the room: an `ack` reply or a ✅ reaction to one of the bot's messages.
    async fn heard(&self, state: &AppState, event: &Value) {
        let sender = event["sender"].as_str().unwrap_or_default();
        if sender == self.me {
            return;
        }
        let Some(target) = asks_ack(event) else { return };
        let Ok(original) = self.event(&target).await else { return };
        if original["sender"].as_str() != Some(self.me.as_str()) {
            return;
        }
        let Some(user) = state.settings.users.iter().find(|u| u.matrix.as_deref() == Some(sender))
        else {
            let notice = json!({
                "msgtype": "m.notice",
                "body": format!("{sender} is not a Reveille user here: nothing was acknowledged."),
                "m.relates_to": {"m.in_reply_to": {"event_id": event["event_id"]}},
            });
            if let Err(e) = self.send(notice).await {
                tracing::warn!(error = %e, "cannot answer in the Matrix room");
            }
            return;
        };
        for id in ids(&original) {
            let now = state.clock.now();
            if state.store.command(id, &user.name, Command::Acknowledge, now).await.is_ok() {
                let message = format!("Acknowledged from Matrix by {sender}");
                let note = Command::Note { kind: "matrix_ack".into(), message };
                let _ = state.store.command(id, &user.name, note, now).await;
            }
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
