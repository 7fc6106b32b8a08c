//! Phones: the ntfy-compatible feed and native push (FCM, APNs) in the configuration.
//! Only paths to key files live here, never the keys.

use std::path::PathBuf;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PhoneSettings {
    /// How long the Acknowledge button of a phone notification works.
    pub ack_link_hours: u32,
    /// Seconds between keepalives on ntfy streams (the ntfy app gives up after 77 s).
    pub keepalive_seconds: u64,
}

impl Default for PhoneSettings {
    fn default() -> Self {
        Self { ack_link_hours: 24, keepalive_seconds: 45 }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PushSettings {
    pub fcm: Option<FcmSettings>,
    pub apns: Option<ApnsSettings>,
    /// Extra root certificate (PEM) to trust for the providers, e.g. behind an inspecting proxy.
    pub ca_file: Option<PathBuf>,
    /// Attempts per push before giving up on 429 and 5xx answers.
    pub attempts: u32,
    /// First retry delay in milliseconds; doubles each time, and Retry-After wins when longer.
    pub retry_base_ms: u64,
    /// Deliveries in flight at once (0: 32). When all are busy, push waits for one to finish, so
    /// a provider that hangs slows push down instead of piling up work.
    pub concurrency: usize,
    /// Browser notifications from the web console (Web Push with this server's own VAPID key).
    pub webpush: WebPushSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebPushSettings {
    pub enabled: bool,
    /// Who runs this server, for the push services (a `mailto:` or `https:` URL); the server's
    /// `base_url` when unset.
    pub subject: Option<String>,
    /// Accept push endpoints that are not `https:` (only for testing with a local push service).
    pub insecure_endpoints: bool,
}

impl Default for WebPushSettings {
    fn default() -> Self {
        Self { enabled: true, subject: None, insecure_endpoints: false }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FcmSettings {
    /// The Firebase service-account JSON file (relative to the config file).
    pub service_account: PathBuf,
    /// Where messages are sent; the FCM v1 API unless testing.
    #[serde(default = "fcm_endpoint")]
    pub endpoint: String,
    /// Overrides the service account's token_uri (for testing).
    #[serde(default)]
    pub token_uri: Option<String>,
}

fn fcm_endpoint() -> String {
    "https://fcm.googleapis.com".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApnsSettings {
    /// The .p8 signing key from Apple (relative to the config file).
    pub key_file: PathBuf,
    pub key_id: String,
    pub team_id: String,
    /// The app's bundle id.
    pub topic: String,
    #[serde(default = "apns_endpoint")]
    pub endpoint: String,
    /// The app has Apple's critical-alerts entitlement: pages break through silent mode.
    #[serde(default)]
    pub critical: bool,
}

fn apns_endpoint() -> String {
    "https://api.push.apple.com".into()
}

impl PushSettings {
    pub fn attempts(&self) -> u32 {
        if self.attempts == 0 { 5 } else { self.attempts }
    }

    pub fn retry_base_ms(&self) -> u64 {
        if self.retry_base_ms == 0 { 1000 } else { self.retry_base_ms }
    }

    pub fn concurrency(&self) -> usize {
        if self.concurrency == 0 { 32 } else { self.concurrency }
    }
}
