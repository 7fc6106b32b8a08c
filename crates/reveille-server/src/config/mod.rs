//! The server's settings: defaults, then the config file, then `REVEILLE_*` environment overrides.
//!
//! Loading never writes anything. Every mistake is reported with the file, line and key it is
//! about, all at once, so `reveille check-config` can list them.

mod check;
mod env;
pub mod oncall;
pub mod outbound;
pub mod phone;
pub mod reload;
pub mod telephony;

use std::fmt;
use std::path::{Path, PathBuf};

use reveille_core::UrgencyRule;
use reveille_protocol::{Severity, Urgency};
use serde::Deserialize;

/// The commented example printed by `reveille default-config`.
pub const EXAMPLE: &str = include_str!("example.toml");

/// Everything the server is configured with.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default)]
    pub server: ServerSettings,
    #[serde(default)]
    pub database: DatabaseSettings,
    #[serde(default)]
    pub ingest: IngestSettings,
    #[serde(default)]
    pub users: Vec<User>,
    #[serde(default)]
    pub services: Vec<Service>,
    #[serde(default)]
    pub escalation: oncall::EscalationSettings,
    #[serde(default)]
    pub schedules: Vec<oncall::ScheduleSettings>,
    #[serde(default)]
    pub policies: Vec<oncall::PolicySettings>,
    #[serde(default)]
    pub heartbeats: Vec<oncall::HeartbeatSettings>,
    #[serde(default)]
    pub phone: phone::PhoneSettings,
    #[serde(default)]
    pub push: phone::PushSettings,
    #[serde(default)]
    pub retention: RetentionSettings,
    #[serde(default)]
    pub webhooks: Vec<outbound::Webhook>,
    #[serde(default)]
    pub email: Option<outbound::EmailSettings>,
    #[serde(default)]
    pub matrix: Option<outbound::MatrixSettings>,
    #[serde(default)]
    pub sip: Option<telephony::SipSettings>,
    #[serde(default)]
    pub sms: Option<telephony::SmsSettings>,
    #[serde(default)]
    pub twilio: Option<telephony::TwilioSettings>,
    #[serde(default)]
    pub hotline: Option<telephony::HotlineSettings>,
    /// The directory relative paths are resolved against (the config file's).
    #[serde(skip)]
    pub dir: PathBuf,
    /// The config file itself, read again on a reload.
    #[serde(skip)]
    pub path: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    pub listen: String,
    pub base_url: String,
    pub heartbeat_seconds: u64,
    /// How long a shutdown waits for connections to finish before it closes them.
    pub shutdown_seconds: u64,
    /// Connections served at once; one more is answered 503 and closed.
    pub max_connections: usize,
    /// Connections one address may hold at once (0: no limit, as behind a reverse proxy);
    /// default a quarter of `max_connections`.
    pub max_connections_per_ip: Option<usize>,
    /// The last connection slots, served only to requests with a credential; default a tenth
    /// of `max_connections`.
    pub reserved_connections: Option<usize>,
    /// Feed streams (SSE, ntfy, WebSocket) one user may hold open at once.
    pub max_streams_per_user: usize,
    /// Longest wait for a complete request head, idle keep-alive time included.
    pub idle_timeout_seconds: u64,
    /// Longest wait for a request's body once its head has arrived.
    pub body_timeout_seconds: u64,
    /// PEM certificate chain and private key (relative to the config file): serve HTTPS.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Hours a web console session lasts before its person signs in again.
    pub session_hours: u32,
}

impl ServerSettings {
    /// Connections one address may hold (0: no limit).
    pub fn per_ip(&self) -> usize {
        self.max_connections_per_ip.unwrap_or(self.max_connections / 4)
    }

    /// The slots kept for requests with a credential.
    pub fn reserved(&self) -> usize {
        self.reserved_connections.unwrap_or(self.max_connections / 10)
    }
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            base_url: "http://127.0.0.1:8080".into(),
            heartbeat_seconds: 15,
            shutdown_seconds: 10,
            max_connections: 10_000,
            max_connections_per_ip: None,
            reserved_connections: None,
            max_streams_per_user: 20,
            idle_timeout_seconds: 30,
            body_timeout_seconds: 30,
            tls_cert: None,
            tls_key: None,
            session_hours: 12,
        }
    }
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSettings {
    pub url: String,
    /// The key that signs acknowledge links: a 0600 file every node of a cluster shares. Default:
    /// beside the SQLite database, or `reveille.link-key` beside the config file.
    pub link_key_file: Option<PathBuf>,
    /// PostgreSQL: how long a statement waits for a lock another node holds.
    pub lock_timeout_ms: u64,
    /// PostgreSQL: how long one statement may run.
    pub statement_timeout_ms: u64,
    /// PostgreSQL: how long a node may leave its transaction idle before the database ends it
    /// (and releases its locks): what frees the cluster from a frozen node.
    pub idle_in_transaction_timeout_ms: u64,
    /// PostgreSQL: silence on a connection before TCP keepalive probes start.
    pub tcp_keepalive_seconds: u64,
    /// PostgreSQL: unacknowledged data on a connection this long drops it.
    pub tcp_user_timeout_seconds: u64,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: "sqlite://reveille.db".into(),
            link_key_file: None,
            lock_timeout_ms: 2_000,
            statement_timeout_ms: 30_000,
            idle_in_transaction_timeout_ms: 3_000,
            tcp_keepalive_seconds: 5,
            tcp_user_timeout_seconds: 10,
        }
    }
}

/// A database URL may carry a password: it is never printed.
impl fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = match self.url.split_once("://").zip(self.url.split_once('@')) {
            Some(((scheme, _), (_, host))) => format!("{scheme}://…@{host}"),
            None => self.url.clone(),
        };
        f.debug_struct("DatabaseSettings")
            .field("url", &url)
            .field("link_key_file", &self.link_key_file)
            .field("lock_timeout_ms", &self.lock_timeout_ms)
            .field("statement_timeout_ms", &self.statement_timeout_ms)
            .field("idle_in_transaction_timeout_ms", &self.idle_in_transaction_timeout_ms)
            .field("tcp_keepalive_seconds", &self.tcp_keepalive_seconds)
            .field("tcp_user_timeout_seconds", &self.tcp_user_timeout_seconds)
            .finish()
    }
}

/// Which database the server runs on, from `database.url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// The embedded default: one node, this file.
    Sqlite(PathBuf),
    /// Several nodes on one PostgreSQL database; the URL as given.
    Postgres(String),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestSettings {
    pub rate_per_minute: u32,
}

impl Default for IngestSettings {
    fn default() -> Self {
        Self { rate_per_minute: 600 }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionSettings {
    /// Days of history kept: resolved incidents, feed entries, raw events, used links (0: all).
    pub days: u32,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        Self { days: 90 }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
    /// The person's Matrix ID (`@alice:example.org`): mentioned in the room, and the account
    /// whose `ack` counts as theirs.
    #[serde(default)]
    pub matrix: Option<String>,
    /// The person's own clock (IANA name), for their quiet hours; the server's UTC otherwise.
    #[serde(default)]
    pub time_zone: Option<String>,
    /// How this person is reached besides their devices (see `outbound::NotifySettings`).
    #[serde(default)]
    pub notify: Option<outbound::NotifySettings>,
    /// The person's phone numbers (E.164), for calls and texts, tried in order.
    #[serde(default)]
    pub phone: telephony::Phones,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    pub name: String,
    /// Shorthand for a one-level policy that pages these users.
    #[serde(default)]
    pub page: Vec<String>,
    /// The escalation policy to page through (instead of `page`).
    #[serde(default)]
    pub policy: Option<String>,
    #[serde(default)]
    pub runbook: Option<String>,
    #[serde(default = "default_urgency")]
    pub urgency: String,
    #[serde(default = "default_severity")]
    pub default_severity: String,
    /// ntfy topics whose published messages become this service's alerts.
    #[serde(default)]
    pub ntfy_topics: Vec<String>,
}

fn default_urgency() -> String {
    "severity".into()
}

fn default_severity() -> String {
    "critical".into()
}

/// One mistake in the configuration, located as precisely as possible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file, or the environment variable, the mistake is in.
    pub origin: String,
    pub line: Option<usize>,
    /// The dotted key, e.g. `services[0].page[1]`.
    pub key: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.origin)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// All the mistakes found in a configuration.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ConfigError(pub Vec<Problem>);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&lines.join("\n"))
    }
}

impl Settings {
    /// Reads, overrides from the process environment and validates the config file at `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError(vec![Problem {
                origin: path.display().to_string(),
                line: None,
                key: String::new(),
                message: format!("cannot read the config file: {e}"),
            }])
        })?;
        Self::from_text(&text, path, std::env::vars())
    }

    /// Parses `text` as if read from `path`, with the given environment.
    pub fn from_text(
        text: &str,
        path: &Path,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let origin = path.display().to_string();
        let mut settings = check::parse(text, &origin, vars)?;
        settings.path = path.to_path_buf();
        settings.dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        if settings.dir.as_os_str().is_empty() {
            settings.dir = PathBuf::from(".");
        }
        check::validate(&settings, text, &origin)?;
        Ok(settings)
    }

    /// The database `database.url` names; None when it names none Reveille can use.
    pub fn backend(&self) -> Option<Backend> {
        let url = &self.database.url;
        if let Some(file) = url.strip_prefix("sqlite://").filter(|f| !f.is_empty()) {
            Some(Backend::Sqlite(self.dir.join(file)))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Backend::Postgres(url.clone()))
        } else {
            None
        }
    }

    /// The SQLite database file (what `database.url` names after `sqlite://`).
    pub fn database_path(&self) -> PathBuf {
        let rest = self.database.url.strip_prefix("sqlite://").unwrap_or(&self.database.url);
        self.dir.join(rest)
    }

    /// The file of the key that signs acknowledge links.
    pub fn link_key_path(&self) -> PathBuf {
        match (&self.database.link_key_file, self.backend()) {
            (Some(file), _) => self.dir.join(file),
            (None, Some(Backend::Sqlite(db))) => {
                let mut name = db.into_os_string();
                name.push(".link-key");
                PathBuf::from(name)
            }
            (None, _) => self.dir.join("reveille.link-key"),
        }
    }

    /// Where the Web Push (VAPID) signing key lives: beside the link key.
    pub fn vapid_key_path(&self) -> PathBuf {
        self.link_key_path().with_extension("vapid-key")
    }

    pub fn service(&self, name: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.name == name)
    }

    /// How a service turns severity into urgency.
    pub fn urgency(&self, service: &Service) -> UrgencyRule {
        match service.urgency.as_str() {
            "high" => UrgencyRule::Always(Urgency::High),
            "low" => UrgencyRule::Always(Urgency::Low),
            _ => UrgencyRule::FromSeverity,
        }
    }

    /// The runbook link of a service: its URL, or the server's page for its runbook file.
    pub fn runbook_url(&self, service: &Service) -> Option<String> {
        service.runbook.as_ref().map(|r| {
            if is_url(r) {
                r.clone()
            } else {
                let base = self.server.base_url.trim_end_matches('/');
                format!("{base}/api/v1/runbooks/{}", service.name)
            }
        })
    }

    /// The severity for alerts of this service that carry none.
    pub fn default_severity(&self, service: &Service) -> Severity {
        Severity::parse(&service.default_severity).unwrap_or(Severity::Critical)
    }

    /// The local runbook file of a service, if its runbook is a file.
    /// The TLS certificate chain and key, when both are set.
    pub fn tls_files(&self) -> Option<(PathBuf, PathBuf)> {
        let server = &self.server;
        Some((self.dir.join(server.tls_cert.as_ref()?), self.dir.join(server.tls_key.as_ref()?)))
    }

    pub fn runbook_file(&self, service: &Service) -> Option<PathBuf> {
        service.runbook.as_ref().filter(|r| !is_url(r)).map(|r| self.dir.join(r))
    }
}

fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

#[cfg(test)]
mod tests;
