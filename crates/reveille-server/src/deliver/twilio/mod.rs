//! Twilio, for teams that have it: calls ([`call`]) and texts ([`text`]) through its REST API
//! (`2010-04-01`, HTTP basic auth with the account SID and auth token), and its webhooks
//! ([`hooks`]: what a call says, its keys, its progress, texts and calls coming in), each
//! checked with `X-Twilio-Signature` (HMAC-SHA1 of the URL and the sorted form, keyed with the
//! auth token) before anything is done.
//!
//! A call's context (who, about which incidents, what to say) is kept in the database under a
//! random token in the webhooks' URLs, so any node of a cluster answers them; whoever placed
//! the call follows it to its end by asking the API for its status.

pub mod hooks;

use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, Mac};
use reveille_protocol::Incident;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha1::Sha1;

use crate::AppState;
use crate::deliver::notify::Failure;
use crate::deliver::voice::{Outcome, words};

/// How often a placed call's status is asked for.
const FOLLOW: Duration = Duration::from_secs(1);
/// The longest a call is followed after its ring time.
const LONGEST_CALL: Duration = Duration::from_secs(10 * 60);

/// The REST client, made from `[twilio]` with the token read now.
pub struct Client {
    http: reqwest::Client,
    api: String,
    sid: String,
    token: String,
    pub from: String,
}

impl Client {
    pub fn new(state: &AppState) -> Result<Self, Failure> {
        let settings = state.settings();
        let twilio =
            settings.twilio.as_ref().ok_or_else(|| Failure::permanent("[twilio] is not set"))?;
        let token = settings.twilio_token().map_err(Failure::permanent)?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .map_err(|e| Failure::permanent(e.to_string()))?;
        Ok(Self {
            http,
            api: twilio.api.trim_end_matches('/').to_owned(),
            sid: twilio.account_sid.clone(),
            token,
            from: twilio.from.clone(),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/2010-04-01/Accounts/{}/{path}", self.api, self.sid)
    }

    /// Twilio's answer as JSON; a 4xx is final (with Twilio's code and message), a 429, 5xx or
    /// network error may pass.
    async fn answer(&self, sent: reqwest::Result<reqwest::Response>) -> Result<Value, Failure> {
        let response =
            sent.map_err(|e| Failure::transient(format!("Twilio: {}", e.without_url())))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or_default();
        if status.is_success() {
            return Ok(body);
        }
        let why = format!(
            "Twilio {status}: {} (code {})",
            body["message"].as_str().unwrap_or("no message"),
            body["code"].as_i64().unwrap_or_default()
        );
        if status.as_u16() == 429 || status.is_server_error() {
            Err(Failure::transient(why))
        } else {
            Err(Failure::permanent(why))
        }
    }

    async fn post(&self, path: &str, form: &[(&str, String)]) -> Result<Value, Failure> {
        let sent = self
            .http
            .post(self.url(path))
            .basic_auth(&self.sid, Some(&self.token))
            .form(form)
            .send()
            .await;
        self.answer(sent).await
    }

    /// Places a call that fetches what to say from `url`; its SID.
    pub async fn call(
        &self,
        to: &str,
        url: &str,
        status: &str,
        ring: u64,
    ) -> Result<String, Failure> {
        let form = [
            ("To", to.to_owned()),
            ("From", self.from.clone()),
            ("Url", url.to_owned()),
            ("Method", "POST".into()),
            ("StatusCallback", status.to_owned()),
            ("StatusCallbackMethod", "POST".into()),
            ("StatusCallbackEvent", "ringing".into()),
            ("StatusCallbackEvent", "answered".into()),
            ("StatusCallbackEvent", "completed".into()),
            ("Timeout", ring.to_string()),
        ];
        let answer = self.post("Calls.json", &form).await?;
        answer["sid"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| Failure::transient("Twilio gave no call SID"))
    }

    /// A call's status: queued, ringing, in-progress, completed, busy, no-answer, failed, canceled.
    pub async fn status(&self, sid: &str) -> Result<String, Failure> {
        let sent = self
            .http
            .get(self.url(&format!("Calls/{sid}.json")))
            .basic_auth(&self.sid, Some(&self.token))
            .send()
            .await;
        let answer = self.answer(sent).await?;
        Ok(answer["status"].as_str().unwrap_or_default().to_owned())
    }

    /// Sends a text; its SID.
    pub async fn message(&self, to: &str, body: &str) -> Result<String, Failure> {
        let form = [("To", to.to_owned()), ("From", self.from.clone()), ("Body", body.to_owned())];
        let answer = self.post("Messages.json", &form).await?;
        answer["sid"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| Failure::transient("Twilio gave no message SID"))
    }
}

/// `X-Twilio-Signature` of a request to `url` with form `params`: Base64 of HMAC-SHA1, keyed
/// with the auth token, of the URL followed by each parameter's name and value, sorted.
pub fn signature(token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted = params.to_vec();
    sorted.sort();
    let mut mac =
        Hmac::<Sha1>::new_from_slice(token.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(url.as_bytes());
    for (name, value) in &sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// What a call placed through Twilio is about, kept under its token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Context {
    pub user: String,
    pub number: String,
    pub incidents: Vec<i64>,
    pub said: String,
    /// A test call (`reveille notify-test`), about no incident.
    #[serde(default)]
    pub test: bool,
    /// A key that ended the call, for a test.
    #[serde(default)]
    pub key: Option<String>,
}

fn key(token: &str) -> String {
    format!("twilio:call:{token}")
}

pub async fn context(state: &AppState, token: &str) -> reveille_store::Result<Option<Context>> {
    let stored = state.store.meta(&key(token)).await?;
    Ok(stored.and_then(|s| serde_json::from_str(&s).ok()))
}

pub async fn save(state: &AppState, token: &str, context: &Context) -> reveille_store::Result<()> {
    state.store.set_meta(&key(token), &serde_json::to_string(context).expect("plain data")).await
}

fn hooks_url(state: &AppState, path: &str) -> String {
    format!("{}/hooks/twilio/{path}", state.settings().server.base_url.trim_end_matches('/'))
}

/// Places one call through Twilio and follows it to its end.
async fn place(state: &AppState, client: &Client, context: Context) -> Outcome {
    let token: String =
        crate::http::auth::random::<16>().iter().map(|b| format!("{b:02x}")).collect();
    if let Err(e) = save(state, &token, &context).await {
        return Outcome::Failed(Failure::transient(format!("cannot keep the call's context: {e}")));
    }
    let ring = state.settings().sip.as_ref().map_or(30, |s| s.ring_seconds);
    let url = hooks_url(state, &format!("voice/{token}"));
    let status = hooks_url(state, &format!("status/{token}"));
    let sid = match client.call(&context.number, &url, &status, ring).await {
        Ok(sid) => sid,
        Err(f) => return Outcome::Failed(f),
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(ring) + LONGEST_CALL;
    loop {
        tokio::time::sleep(FOLLOW).await;
        let status = match client.status(&sid).await {
            Ok(status) => status,
            Err(f) if !f.transient => return Outcome::Failed(f),
            Err(_) => continue,
        };
        let why = format!("Twilio call {sid}: {status}");
        match status.as_str() {
            "completed" => return Outcome::Answered,
            "busy" => return Outcome::Busy(why),
            "no-answer" | "canceled" => return Outcome::NoAnswer(why),
            "failed" => return Outcome::Failed(Failure::transient(why)),
            _ if tokio::time::Instant::now() > deadline => {
                return Outcome::Failed(Failure::transient(format!("{why} for too long")));
            }
            _ => {}
        }
    }
}

/// Calls `user` about `pages` through Twilio, number after number until one answers.
pub async fn call(
    state: &AppState,
    user: &str,
    numbers: &[String],
    pages: &[Incident],
) -> Vec<(String, Outcome)> {
    let client = match Client::new(state) {
        Ok(client) => client,
        Err(f) => return vec![(numbers.join(", "), Outcome::Failed(f))],
    };
    let said = format!("{} {}", words::GREETING, words::call(pages, state.clock.now()));
    let mut tried = Vec::new();
    for number in numbers {
        let context = Context {
            user: user.to_owned(),
            number: number.clone(),
            incidents: pages.iter().map(|i| i.id).collect(),
            said: said.clone(),
            test: false,
            key: None,
        };
        let outcome = place(state, &client, context).await;
        let answered = matches!(outcome, Outcome::Answered);
        tried.push((number.clone(), outcome));
        if answered {
            break;
        }
    }
    tried
}

/// A test call through Twilio.
pub async fn test_call(state: &AppState, user: &str, number: &str) -> Result<String, String> {
    let client = Client::new(state).map_err(|f| f.why)?;
    let context = Context {
        user: user.to_owned(),
        number: number.to_owned(),
        incidents: Vec::new(),
        said: words::test_call(user),
        test: true,
        key: None,
    };
    match place(state, &client, context).await {
        Outcome::Answered => Ok(format!("{number} answered")),
        Outcome::NoAnswer(why) => Err(format!("{number} did not answer ({why})")),
        Outcome::Busy(why) => Err(format!("{number} was busy ({why})")),
        Outcome::Failed(f) => Err(format!("{number}: {}", f.why)),
    }
}

/// Sends a text through Twilio; its SID.
pub async fn text(state: &AppState, to: &str, body: &str) -> Result<String, Failure> {
    Client::new(state)?.message(to, body).await
}

#[cfg(test)]
mod tests {
    #[test]
    fn signatures_match_twilios_documented_example() {
        // https://www.twilio.com/docs/usage/security#validating-requests
        let params = [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        assert_eq!(super::signature("12345", url, &params), "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
    }
}
