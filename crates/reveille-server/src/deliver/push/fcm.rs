//! Firebase Cloud Messaging, HTTP v1: a service-account JWT exchanged for an OAuth2 access token,
//! then a high-priority data message that the app turns into a ringing page.

use std::path::Path;
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reveille_protocol::FeedKind;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use super::{Outcome, Push, retry_after};
use crate::config::phone::FcmSettings;

const SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";

#[derive(Deserialize)]
struct ServiceAccount {
    project_id: String,
    private_key_id: String,
    private_key: String,
    client_email: String,
    token_uri: String,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
}

pub struct Fcm {
    http: reqwest::Client,
    project_id: String,
    client_email: String,
    key_id: String,
    key: EncodingKey,
    token_uri: String,
    send_url: String,
    /// The access token and when it stops being usable.
    token: Mutex<Option<(String, Instant)>>,
}

impl Fcm {
    pub fn new(http: reqwest::Client, settings: &FcmSettings, dir: &Path) -> Result<Self, String> {
        let file = dir.join(&settings.service_account);
        let text =
            std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        let account: ServiceAccount = serde_json::from_str(&text)
            .map_err(|e| format!("{}: not a service account: {e}", file.display()))?;
        let key = EncodingKey::from_rsa_pem(account.private_key.as_bytes())
            .map_err(|e| format!("{}: private_key: {e}", file.display()))?;
        let endpoint = settings.endpoint.trim_end_matches('/');
        Ok(Self {
            http,
            send_url: format!("{endpoint}/v1/projects/{}/messages:send", account.project_id),
            token_uri: settings.token_uri.clone().unwrap_or(account.token_uri),
            project_id: account.project_id,
            client_email: account.client_email,
            key_id: account.private_key_id,
            key,
            token: Mutex::new(None),
        })
    }

    async fn access_token(&self) -> Result<String, Outcome> {
        let mut cached = self.token.lock().await;
        if let Some((token, until)) = cached.as_ref()
            && Instant::now() < *until
        {
            return Ok(token.clone());
        }
        let now = jiff::Timestamp::now().as_second();
        let claims = Claims {
            iss: &self.client_email,
            scope: SCOPE,
            aud: &self.token_uri,
            iat: now,
            exp: now + 3600,
        };
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.key_id.clone());
        let assertion = jsonwebtoken::encode(&header, &claims, &self.key).map_err(|e| {
            Outcome::Failed(format!("cannot sign the service-account assertion: {e}"))
        })?;
        let form = [
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", &assertion),
        ];
        let response = self.http.post(&self.token_uri).form(&form).send().await.map_err(|e| {
            Outcome::Retry { after: None, reason: format!("cannot reach the token endpoint: {e}") }
        })?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or_default();
        if !status.is_success() {
            let reason = format!("token endpoint answered {status}: {body}");
            return Err(if status.is_server_error() || status.as_u16() == 429 {
                Outcome::Retry { after: None, reason }
            } else {
                Outcome::Failed(reason)
            });
        }
        let token = body["access_token"].as_str().unwrap_or_default().to_owned();
        let lifetime = body["expires_in"].as_u64().unwrap_or(3600).saturating_sub(60);
        *cached = Some((token.clone(), Instant::now() + Duration::from_secs(lifetime)));
        Ok(token)
    }

    fn message(&self, device: &str, push: &Push) -> Value {
        let mut data = json!({
            "type": push.kind.as_str(),
            "incident_id": push.incident_id.to_string(),
            "title": push.title,
            "body": push.body,
            "state": push.state.as_str(),
            "urgency": push.urgency.as_str(),
            "drill": push.drill.to_string(),
        });
        if let Some(url) = &push.ack_url {
            data["ack_url"] = json!(url);
        }
        // A page must wake the phone now; a state change may wait a little.
        let ttl = if push.kind == FeedKind::Page { "3600s" } else { "600s" };
        // One notification per incident on the phone, however often it is sent.
        let collapse = format!("incident-{}", push.incident_id);
        json!({ "message": { "token": device, "data": data,
            "android": { "priority": "high", "ttl": ttl, "collapse_key": collapse } } })
    }

    pub async fn send(&self, device: &str, push: &Push) -> Outcome {
        let token = match self.access_token().await {
            Ok(token) => token,
            Err(outcome) => return outcome,
        };
        let sent = self
            .http
            .post(&self.send_url)
            .bearer_auth(token)
            .json(&self.message(device, push))
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(e) => {
                return Outcome::Retry { after: None, reason: format!("cannot reach FCM: {e}") };
            }
        };
        let status = response.status().as_u16();
        let after = retry_after(response.headers());
        let body: Value = response.json().await.unwrap_or_default();
        if status == 200 {
            return Outcome::Delivered(body["name"].as_str().unwrap_or("sent").to_owned());
        }
        let error = &body["error"];
        let fcm_code = error["details"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|d| d["@type"] == "type.googleapis.com/google.firebase.fcm.v1.FcmError")
            .and_then(|d| d["errorCode"].as_str());
        let reason = format!(
            "{status} {} {}",
            fcm_code.or(error["status"].as_str()).unwrap_or(""),
            error["message"].as_str().unwrap_or("")
        );
        match (status, fcm_code) {
            (404, _) | (_, Some("UNREGISTERED")) => Outcome::InvalidToken(reason),
            // INVALID_ARGUMENT from FCM itself (not a payload BadRequest) means the token is bad.
            (400, Some("INVALID_ARGUMENT")) | (403, Some("SENDER_ID_MISMATCH")) => {
                Outcome::InvalidToken(reason)
            }
            (401, _) => {
                *self.token.lock().await = None;
                Outcome::Retry { after: None, reason }
            }
            (429 | 500 | 502 | 503 | 504, _) => Outcome::Retry { after, reason },
            _ => Outcome::Failed(format!("{reason} (project {})", self.project_id)),
        }
    }
}
