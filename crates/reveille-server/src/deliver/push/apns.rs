//! Apple Push Notification service with token authentication: an ES256 provider JWT (reused for
//! forty minutes), HTTP/2, and a critical alert when the app holds Apple's entitlement.

use std::path::Path;
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reveille_protocol::{FeedKind, Urgency};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use super::{Outcome, Push, retry_after};
use crate::config::phone::ApnsSettings;

/// Apple refuses tokens older than an hour and throttles ones renewed within twenty minutes.
const JWT_LIFETIME: Duration = Duration::from_secs(40 * 60);

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    iat: i64,
}

pub struct Apns {
    http: reqwest::Client,
    key: EncodingKey,
    key_id: String,
    team_id: String,
    topic: String,
    endpoint: String,
    critical: bool,
    jwt: Mutex<Option<(String, Instant)>>,
}

impl Apns {
    pub fn new(http: reqwest::Client, settings: &ApnsSettings, dir: &Path) -> Result<Self, String> {
        let file = dir.join(&settings.key_file);
        let pem = std::fs::read(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        let key = EncodingKey::from_ec_pem(&pem)
            .map_err(|e| format!("{}: not a .p8 key: {e}", file.display()))?;
        Ok(Self {
            http,
            key,
            key_id: settings.key_id.clone(),
            team_id: settings.team_id.clone(),
            topic: settings.topic.clone(),
            endpoint: settings.endpoint.trim_end_matches('/').to_owned(),
            critical: settings.critical,
            jwt: Mutex::new(None),
        })
    }

    async fn jwt(&self) -> Result<String, Outcome> {
        let mut cached = self.jwt.lock().await;
        if let Some((jwt, made)) = cached.as_ref()
            && made.elapsed() < JWT_LIFETIME
        {
            return Ok(jwt.clone());
        }
        let mut header = Header::new(Algorithm::ES256);
        header.typ = None;
        header.kid = Some(self.key_id.clone());
        let claims = Claims { iss: &self.team_id, iat: jiff::Timestamp::now().as_second() };
        let jwt = jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|e| Outcome::Failed(format!("cannot sign the APNs provider token: {e}")))?;
        *cached = Some((jwt.clone(), Instant::now()));
        Ok(jwt)
    }

    fn payload(&self, push: &Push) -> Value {
        let aps = match (push.kind, push.urgency) {
            (FeedKind::Page, Urgency::High) if self.critical => json!({
                "alert": { "title": push.title, "body": push.body },
                "sound": { "critical": 1, "name": "default", "volume": 1.0 },
                "interruption-level": "critical",
            }),
            (FeedKind::Page, Urgency::High) => json!({
                "alert": { "title": push.title, "body": push.body },
                "sound": "default",
                "interruption-level": "time-sensitive",
            }),
            (FeedKind::Page, Urgency::Low) => json!({
                "alert": { "title": push.title, "body": push.body },
                "sound": "default",
                "interruption-level": "active",
            }),
            // Replaces the page's notification (same collapse id), silently.
            (FeedKind::Incident, _) => json!({
                "alert": { "title": push.title, "body": push.body },
                "interruption-level": "passive",
            }),
        };
        let mut payload = json!({ "aps": aps, "incident_id": push.incident_id, "state": push.state.as_str(), "drill": push.drill });
        if let Some(url) = &push.ack_url {
            payload["ack_url"] = json!(url);
        }
        payload
    }

    pub async fn send(&self, device: &str, push: &Push) -> Outcome {
        let jwt = match self.jwt().await {
            Ok(jwt) => jwt,
            Err(outcome) => return outcome,
        };
        let expires = jiff::Timestamp::now().as_second() + 3600;
        let priority = if push.kind == FeedKind::Page { "10" } else { "5" };
        let sent = self
            .http
            .post(format!("{}/3/device/{device}", self.endpoint))
            .header("authorization", format!("bearer {jwt}"))
            .header("apns-topic", &self.topic)
            .header("apns-push-type", "alert")
            .header("apns-priority", priority)
            .header("apns-expiration", expires.to_string())
            .header("apns-collapse-id", format!("incident-{}", push.incident_id))
            .json(&self.payload(push))
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(e) => {
                return Outcome::Retry { after: None, reason: format!("cannot reach APNs: {e}") };
            }
        };
        let status = response.status().as_u16();
        let after = retry_after(response.headers());
        let apns_id =
            response.headers().get("apns-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body: Value = response.json().await.unwrap_or_default();
        let reason = format!("{status} {}", body["reason"].as_str().unwrap_or(""));
        match (status, body["reason"].as_str().unwrap_or("")) {
            (200, _) => Outcome::Delivered(apns_id.unwrap_or_else(|| "sent".into())),
            (410, _) | (400, "BadDeviceToken" | "DeviceTokenNotForTopic") => {
                Outcome::InvalidToken(reason)
            }
            (403, "ExpiredProviderToken") => {
                *self.jwt.lock().await = None;
                Outcome::Retry { after: None, reason }
            }
            (429 | 500 | 503, _) => Outcome::Retry { after, reason },
            _ => Outcome::Failed(reason),
        }
    }
}
