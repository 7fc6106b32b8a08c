//! Settings of the channels that reach outside: outbound webhooks, email, and each person's
//! notification rules.

use std::collections::HashSet;
use std::path::PathBuf;

use jiff::SignedDuration;
use jiff::tz::TimeZone;
use reveille_core::notify::{Channel, NotifyRules, QuietHours, Step};
use serde::Deserialize;

use super::Settings;
use super::check::{Reporter, Seg, valid_name};

/// One receiver of signed incident events (`[[webhooks]]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    pub name: String,
    pub url: String,
    /// A file (relative to the config file, private to Reveille's user) holding the signing
    /// secret: secrets never go in the config.
    pub secret_file: PathBuf,
    /// Only incidents of these services; all when empty.
    #[serde(default)]
    pub services: Vec<String>,
}

/// Outbound mail (`[email]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailSettings {
    pub host: String,
    /// Default: 587 for `starttls`, 465 for `tls`, 25 for `none`.
    #[serde(default)]
    pub port: Option<u16>,
    /// `starttls` (required, never falls back to plain), `tls` (implicit TLS) or `none`.
    #[serde(default = "starttls")]
    pub security: String,
    /// The sender, `Reveille <pager@example.com>`.
    pub from: String,
    #[serde(default)]
    pub username: Option<String>,
    /// A file (relative to the config file) holding the SMTP password.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// An extra root certificate (PEM) to trust for the mail server.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

fn starttls() -> String {
    "starttls".into()
}

/// The Matrix bot (`[matrix]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatrixSettings {
    /// The homeserver's client API, `https://matrix.example.org`.
    pub homeserver: String,
    /// A file (relative to the config file) holding the bot account's access token.
    pub access_token_file: PathBuf,
    /// The room pages are posted to (`!id:server` or `#alias:server`); the bot joins it.
    pub room: String,
}

/// A person's rules as written: `high = ["email after 2m", "matrix after 5m"]`, `low = [...]`,
/// `quiet_hours = "22:00-07:00"`. An urgency left out uses every channel the person has, at once.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct NotifySettings {
    #[serde(default)]
    pub high: Option<Vec<String>>,
    #[serde(default)]
    pub low: Option<Vec<String>>,
    #[serde(default)]
    pub quiet_hours: Option<String>,
}

/// `email`, `email after 2m`, `matrix after 90s`.
fn parse_step(text: &str) -> Result<Step, String> {
    let (channel, after) = match text.trim().split_once(" after ") {
        Some((c, a)) => (c.trim(), Some(a.trim())),
        None => (text.trim(), None),
    };
    let channel = match channel {
        "email" => Channel::Email,
        "matrix" => Channel::Matrix,
        "call" => Channel::Call,
        "sms" => Channel::Sms,
        other => return Err(format!("{other:?} is not a channel (email, matrix, call, sms)")),
    };
    let after = match after {
        None => SignedDuration::ZERO,
        Some(a) => a
            .parse::<SignedDuration>()
            .ok()
            .filter(|d| !d.is_negative())
            .ok_or_else(|| format!("{a:?} is not a delay (like 2m, 90s, 1h)"))?,
    };
    Ok(Step { channel, after })
}

/// When a high-urgency page calls a person who wrote no rules.
pub const DEFAULT_CALL_AFTER: SignedDuration = SignedDuration::from_mins(1);

/// The shortest signing secret taken, in bytes.
pub const MIN_SECRET: usize = 16;

impl Settings {
    /// The channels a person can be reached on: those the server has set up and the person has
    /// an address for.
    pub fn channels(&self, user: &super::User) -> Vec<Channel> {
        let mut channels = Vec::new();
        if self.email.is_some() && user.email.is_some() {
            channels.push(Channel::Email);
        }
        if self.matrix.is_some() && user.matrix.is_some() {
            channels.push(Channel::Matrix);
        }
        let phone = !user.phone.list().is_empty();
        if self.calls_by().is_some() && phone {
            channels.push(Channel::Call);
        }
        if self.texts_by().is_some() && phone {
            channels.push(Channel::Sms);
        }
        channels
    }

    /// A person's rules (every channel they have at once, where they wrote none).
    pub fn notify_rules(&self, name: &str) -> NotifyRules {
        self.notify_rules_with(name, None)
    }

    /// A person's rules, with `written` (set through the API) in place of the config's.
    pub fn notify_rules_with(&self, name: &str, written: Option<&NotifySettings>) -> NotifyRules {
        let Some(user) = self.users.iter().find(|u| u.name == name) else {
            return NotifyRules::default();
        };
        // Unwritten: every channel at once, but a call only for high urgency and after a
        // minute (the devices and a text first; a ringing phone for what cannot wait).
        let all = |high: bool| -> Vec<Step> {
            let at_once = |channel| Step { channel, after: SignedDuration::ZERO };
            let call = Step { channel: Channel::Call, after: DEFAULT_CALL_AFTER };
            self.channels(user)
                .into_iter()
                .filter_map(|c| match c {
                    Channel::Call if high => Some(call),
                    Channel::Call => None,
                    other => Some(at_once(other)),
                })
                .collect()
        };
        let notify = written.or(user.notify.as_ref()).cloned().unwrap_or_default();
        let steps = |written: &Option<Vec<String>>, high: bool| match written {
            Some(list) => list.iter().filter_map(|s| parse_step(s).ok()).collect(),
            None => all(high),
        };
        let tz =
            user.time_zone.as_deref().and_then(|z| TimeZone::get(z).ok()).unwrap_or(TimeZone::UTC);
        let quiet = notify
            .quiet_hours
            .as_deref()
            .and_then(super::oncall::parse_hours)
            .map(|(from, to)| QuietHours::new(from, to, tz));
        NotifyRules { high: steps(&notify.high, true), low: steps(&notify.low, false), quiet }
    }

    /// The Matrix bot's access token, read now.
    pub fn matrix_token(&self) -> Result<Option<String>, String> {
        let Some(matrix) = &self.matrix else { return Ok(None) };
        let path = self.dir.join(&matrix.access_token_file);
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Some(text.trim().to_owned()))
    }

    /// The SMTP password, read now.
    pub fn smtp_password(&self) -> Result<Option<String>, String> {
        let Some(file) = self.email.as_ref().and_then(|e| e.password_file.as_ref()) else {
            return Ok(None);
        };
        let path = self.dir.join(file);
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Some(text.trim_end_matches(['\n', '\r']).to_owned()))
    }

    /// Makes each webhook's secret file private to this user (0600), saying so when it was not:
    /// a secret others can read is a secret others can sign with.
    pub fn tighten_webhook_secrets(&self) {
        use std::os::unix::fs::PermissionsExt;
        for hook in &self.webhooks {
            let path = self.dir.join(&hook.secret_file);
            let Ok(meta) = std::fs::metadata(&path) else { continue };
            let mode = meta.permissions().mode();
            if mode & 0o077 != 0 {
                tracing::warn!(file = %path.display(), mode = format!("{:o}", mode & 0o777), "webhook secret was readable by others; made it 0600");
                if let Err(e) =
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                {
                    tracing::error!(file = %path.display(), error = %e, "cannot make the webhook secret private");
                }
            }
        }
    }

    /// The signing secret of a webhook, read now (so a rotated file takes effect at once).
    pub fn webhook_secret(&self, hook: &Webhook) -> Result<Vec<u8>, String> {
        let path = self.dir.join(&hook.secret_file);
        let text = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let secret = text.trim_ascii().to_vec();
        if secret.len() < MIN_SECRET {
            return Err(format!(
                "{} holds {} bytes; a signing secret needs at least {MIN_SECRET}",
                path.display(),
                secret.len()
            ));
        }
        Ok(secret)
    }
}

/// Validates `[email]` and each person's rules.
fn validate_people(settings: &Settings, r: &mut Reporter) {
    if let Some(email) = &settings.email {
        let at = |k: &'static str| vec![Seg::Key("email"), Seg::Key(k)];
        if !["starttls", "tls", "none"].contains(&email.security.as_str()) {
            r.report(at("security"), format!("{:?} must be starttls, tls or none", email.security));
        }
        if email.from.parse::<lettre::message::Mailbox>().is_err() {
            r.report(
                at("from"),
                format!("{:?} is not a mail address (Name <a@b.example>)", email.from),
            );
        }
        if email.username.is_some() != email.password_file.is_some() {
            r.report(at("password_file"), "give username and password_file together".into());
        }
        if let Err(e) = settings.smtp_password() {
            r.report(at("password_file"), e);
        }
        if let Some(ca) = &email.ca_file
            && !settings.dir.join(ca).is_file()
        {
            r.report(at("ca_file"), format!("{} does not exist", settings.dir.join(ca).display()));
        }
    }
    if let Some(matrix) = &settings.matrix {
        let at = |k: &'static str| vec![Seg::Key("matrix"), Seg::Key(k)];
        if reqwest::Url::parse(&matrix.homeserver).is_err()
            || !matrix.homeserver.starts_with("http")
        {
            r.report(at("homeserver"), format!("{:?} is not an http(s) URL", matrix.homeserver));
        }
        if let Err(e) = settings.matrix_token() {
            r.report(at("access_token_file"), e);
        }
        // Room IDs of room version 12 have no server part; aliases always do.
        let room = &matrix.room;
        if !(room.len() > 1 && room.starts_with('!') || room.starts_with('#') && room.contains(':'))
        {
            let message = format!("{room:?} is not a room ID (!id) or alias (#name:server)");
            r.report(at("room"), message);
        }
    }
    for (i, user) in settings.users.iter().enumerate() {
        let at = |k: &'static str| vec![Seg::Key("users"), Seg::Index(i), Seg::Key(k)];
        if let Some(id) = &user.matrix
            && !(id.starts_with('@') && id.contains(':'))
        {
            r.report(at("matrix"), format!("{id:?} is not a Matrix ID (@name:server)"));
        }
        if let Some(address) = &user.email
            && address.parse::<lettre::Address>().is_err()
        {
            r.report(at("email"), format!("{address:?} is not a mail address"));
        }
        if let Some(zone) = &user.time_zone
            && TimeZone::get(zone).is_err()
        {
            r.report(at("time_zone"), format!("{zone:?} is not an IANA time zone (Europe/Berlin)"));
        }
        let Some(notify) = &user.notify else { continue };
        for (key, message) in check_notify(settings, user, notify) {
            let mut path = vec![Seg::Key("users"), Seg::Index(i), Seg::Key("notify")];
            path.push(Seg::Key(key.0));
            if let Some(j) = key.1 {
                path.push(Seg::Index(j));
            }
            r.report(path, message);
        }
    }
}

/// What is wrong with a person's rules: (key, index in its list) and why.
pub fn check_notify(
    settings: &Settings,
    user: &super::User,
    notify: &NotifySettings,
) -> Vec<((&'static str, Option<usize>), String)> {
    let mut problems = Vec::new();
    let has = settings.channels(user);
    for (key, list) in [("high", &notify.high), ("low", &notify.low)] {
        for (j, text) in list.iter().flatten().enumerate() {
            match parse_step(text) {
                Err(e) => problems.push(((key, Some(j)), e)),
                Ok(step) if !has.contains(&step.channel) => {
                    let c = step.channel.as_str();
                    let (needs, address) = match step.channel {
                        Channel::Call => ("[sip] or [twilio]", "phone"),
                        Channel::Sms => ("[sms] or [twilio]", "phone"),
                        _ => (if c == "email" { "[email]" } else { "[matrix]" }, c),
                    };
                    let message = format!(
                        "{c} cannot reach {}: it needs the server's {needs} and the person's {address}",
                        user.name
                    );
                    problems.push(((key, Some(j)), message));
                }
                Ok(_) => {}
            }
        }
    }
    if let Some(hours) = &notify.quiet_hours
        && super::oncall::parse_hours(hours).is_none()
    {
        problems.push((("quiet_hours", None), format!("{hours:?} must be like \"22:00-07:00\"")));
    }
    problems
}

/// Validates `[[webhooks]]`, `[email]` and each person's rules.
pub(super) fn validate(settings: &Settings, r: &mut Reporter) {
    validate_people(settings, r);
    let mut names = HashSet::new();
    for (i, hook) in settings.webhooks.iter().enumerate() {
        let at = |k: &'static str| vec![Seg::Key("webhooks"), Seg::Index(i), Seg::Key(k)];
        if !valid_name(&hook.name) || !names.insert(hook.name.as_str()) {
            let message = format!("{:?} must be a unique name (letters, digits, - _ .)", hook.name);
            r.report(at("name"), message);
        }
        if !(hook.url.starts_with("https://") || hook.url.starts_with("http://"))
            || reqwest::Url::parse(&hook.url).is_err()
        {
            r.report(at("url"), format!("{:?} is not an http(s) URL", hook.url));
        }
        if let Err(e) = settings.webhook_secret(hook) {
            r.report(at("secret_file"), e);
        }
        for (j, service) in hook.services.iter().enumerate() {
            if settings.service(service).is_none() {
                let mut path = at("services");
                path.push(Seg::Index(j));
                r.report(path, format!("unknown service {service:?} (not in [[services]])"));
            }
        }
    }
}
