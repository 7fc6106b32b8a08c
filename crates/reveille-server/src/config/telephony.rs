//! Calls and texts in the configuration: `[sip]` (the team's own phone line), `[sms]` (a GSM
//! modem through gammu-smsd), `[twilio]`, and `[hotline]` (calls *to* Reveille). Calls go over
//! SIP when `[sip]` is set, else Twilio; texts through gammu when `[sms]` is set, else Twilio.
//! Only paths to secret files live here, never the secrets.

use std::path::PathBuf;

use serde::Deserialize;

use super::Settings;
use super::check::{Reporter, Seg};

/// `[sip]`: calls placed through a PBX or SIP trunk.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SipSettings {
    /// Where every request goes: `sip:pbx.example.org:5060;transport=udp` (udp or tcp).
    pub server: String,
    /// The digest user and a file (relative to the config file, mode 0600) with its password.
    pub user: String,
    pub password_file: PathBuf,
    /// Our address of record: `sip:reveille@pbx.example.org`.
    pub from: String,
    /// The number people see (in From and P-Asserted-Identity), when the trunk lets us set it.
    #[serde(default)]
    pub caller_id: Option<String>,
    #[serde(default = "display_name")]
    pub display_name: String,
    /// Register `from` with the server (needed for the hotline behind most PBXs).
    #[serde(default)]
    pub register: bool,
    /// Where the line listens for SIP (and calls to the hotline).
    #[serde(default = "sip_listen")]
    pub listen: String,
    /// How long a call rings before it counts as not answered.
    #[serde(default = "ring_seconds")]
    pub ring_seconds: u64,
    /// How many times a call says the page before hanging up, when no key is pressed.
    #[serde(default = "rounds")]
    pub rounds: u32,
    /// The espeak-ng voice and speed.
    #[serde(default = "voice")]
    pub voice: String,
    #[serde(default = "words_per_minute")]
    pub words_per_minute: u32,
}

fn display_name() -> String {
    "Reveille".into()
}
fn sip_listen() -> String {
    "0.0.0.0:0".into()
}
fn ring_seconds() -> u64 {
    30
}
fn rounds() -> u32 {
    3
}
fn voice() -> String {
    "en-us".into()
}
fn words_per_minute() -> u32 {
    160
}

/// `[sms]`: texts through gammu-smsd's files service (its `outboxpath`, `inboxpath`, and
/// optionally `sentsmspath` and `errorsmspath`, each relative to the config file).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsSettings {
    /// The modem's SIM's own number (E.164), for the contact card.
    #[serde(default)]
    pub number: Option<String>,
    pub outbox: PathBuf,
    pub inbox: PathBuf,
    #[serde(default)]
    pub sent: Option<PathBuf>,
    #[serde(default)]
    pub error: Option<PathBuf>,
}

/// `[twilio]`: calls and texts through Twilio's REST API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwilioSettings {
    pub account_sid: String,
    /// A file (mode 0600) with the account's auth token: it signs Twilio's webhooks too.
    pub auth_token_file: PathBuf,
    /// The Twilio number calls and texts come from (E.164).
    pub from: String,
    /// Twilio's API; another only for testing.
    #[serde(default = "twilio_api")]
    pub api: String,
}

fn twilio_api() -> String {
    "https://api.twilio.com".into()
}

/// `[hotline]`: a call to the line (the SIP line's address, or the Twilio number) opens an
/// incident on `service` and pages its on-call people.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HotlineSettings {
    pub service: String,
}

/// A person's numbers: `phone = "+4915112345678"` or a list of them.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Phones {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

impl Phones {
    pub fn list(&self) -> Vec<String> {
        match self {
            Self::None => Vec::new(),
            Self::One(n) => vec![n.clone()],
            Self::Many(list) => list.clone(),
        }
    }
}

/// Whether `number` is in E.164 form: `+`, a country code, at most 15 digits.
pub fn is_e164(number: &str) -> bool {
    let Some(digits) = number.strip_prefix('+') else { return false };
    (8..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

/// `00 49 151-123` → `+49151123`: a number as a text's sender may write it, for comparing.
pub fn normalise(number: &str) -> String {
    let digits: String = number.chars().filter(|c| c.is_ascii_digit() || *c == '+').collect();
    match digits.strip_prefix("00") {
        Some(rest) => format!("+{rest}"),
        None => digits,
    }
}

/// What calls go through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carrier {
    Sip,
    Gammu,
    Twilio,
}

impl Settings {
    /// What calls go through, if anything.
    pub fn calls_by(&self) -> Option<Carrier> {
        if self.sip.is_some() {
            Some(Carrier::Sip)
        } else {
            self.twilio.as_ref().map(|_| Carrier::Twilio)
        }
    }

    /// What texts go through, if anything.
    pub fn texts_by(&self) -> Option<Carrier> {
        if self.sms.is_some() {
            Some(Carrier::Gammu)
        } else {
            self.twilio.as_ref().map(|_| Carrier::Twilio)
        }
    }

    /// The person whose number this is.
    pub fn user_by_phone(&self, number: &str) -> Option<&super::User> {
        let number = normalise(number);
        self.users.iter().find(|u| u.phone.list().iter().any(|p| normalise(p) == number))
    }

    /// The SIP password, read now.
    pub fn sip_password(&self) -> Result<String, String> {
        let sip = self.sip.as_ref().ok_or("[sip] is not set")?;
        self.secret(&sip.password_file)
    }

    /// Twilio's auth token, read now.
    pub fn twilio_token(&self) -> Result<String, String> {
        let twilio = self.twilio.as_ref().ok_or("[twilio] is not set")?;
        self.secret(&twilio.auth_token_file)
    }

    fn secret(&self, file: &std::path::Path) -> Result<String, String> {
        let path = self.dir.join(file);
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(text.trim_end_matches(['\n', '\r']).to_owned())
    }
}

/// A contact card (vCard 3.0) with every number this server calls or texts from; None when
/// it has none.
pub fn vcard(settings: &Settings) -> Option<String> {
    let mut numbers: Vec<(String, &str)> = Vec::new();
    if let Some(id) = settings.sip.as_ref().and_then(|s| s.caller_id.clone()) {
        numbers.push((id, "VOICE"));
    }
    if let Some(number) = settings.sms.as_ref().and_then(|s| s.number.clone()) {
        numbers.push((number, "TEXT"));
    }
    if let Some(twilio) = &settings.twilio {
        numbers.push((twilio.from.clone(), "VOICE,TEXT"));
    }
    if numbers.is_empty() {
        return None;
    }
    let mut card = String::from(
        "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Reveille pager\r\nN:Pager;Reveille;;;\r\nORG:Reveille\r\n",
    );
    for (number, kind) in numbers {
        card.push_str(&format!("TEL;TYPE={kind}:{number}\r\n"));
    }
    card.push_str("NOTE:Pages from your team's on-call pager. Let this contact through Do Not Disturb.\r\nEND:VCARD\r\n");
    Some(card)
}

/// Validates the telephony sections and each person's numbers.
pub(super) fn validate(settings: &Settings, r: &mut Reporter) {
    if let Some(sip) = &settings.sip {
        let at = |k: &'static str| vec![Seg::Key("sip"), Seg::Key(k)];
        if !sip.server.starts_with("sip:") {
            r.report(
                at("server"),
                format!(
                    "{:?} is not a SIP URI (sip:pbx.example.org:5060;transport=udp)",
                    sip.server
                ),
            );
        } else if sip.server.contains("transport=")
            && !["transport=udp", "transport=tcp"].iter().any(|t| sip.server.contains(t))
        {
            r.report(at("server"), "the transport must be udp or tcp".into());
        }
        if !sip.from.starts_with("sip:") || !sip.from.contains('@') {
            r.report(
                at("from"),
                format!("{:?} is not a SIP address (sip:reveille@pbx.example.org)", sip.from),
            );
        }
        if let Err(e) = settings.sip_password() {
            r.report(at("password_file"), e);
        }
        if sip.listen.parse::<std::net::SocketAddr>().is_err() {
            r.report(at("listen"), format!("{:?} is not an address and port", sip.listen));
        }
        if !(5..=120).contains(&sip.ring_seconds) {
            r.report(at("ring_seconds"), "must be between 5 and 120".into());
        }
        if !(1..=10).contains(&sip.rounds) {
            r.report(at("rounds"), "must be between 1 and 10".into());
        }
        if let Some(id) = &sip.caller_id
            && !(is_e164(id) || id.chars().all(|c| c.is_ascii_alphanumeric()))
        {
            r.report(at("caller_id"), format!("{id:?} is not a number (+4930123456)"));
        }
    }
    if let Some(number) = settings.sms.as_ref().and_then(|s| s.number.as_ref())
        && !is_e164(number)
    {
        r.report(
            vec![Seg::Key("sms"), Seg::Key("number")],
            format!("{number:?} is not an E.164 number"),
        );
    }
    if let Some(sms) = &settings.sms {
        let dirs = [
            ("outbox", Some(&sms.outbox)),
            ("inbox", Some(&sms.inbox)),
            ("sent", sms.sent.as_ref()),
            ("error", sms.error.as_ref()),
        ];
        for (key, dir) in dirs {
            if let Some(dir) = dir
                && !settings.dir.join(dir).is_dir()
            {
                let path = settings.dir.join(dir);
                r.report(
                    vec![Seg::Key("sms"), Seg::Key(key)],
                    format!("{} is not a directory", path.display()),
                );
            }
        }
    }
    if let Some(twilio) = &settings.twilio {
        let at = |k: &'static str| vec![Seg::Key("twilio"), Seg::Key(k)];
        if !(twilio.account_sid.starts_with("AC") && twilio.account_sid.len() == 34) {
            r.report(at("account_sid"), "an account SID is AC and 32 more characters".into());
        }
        if let Err(e) = settings.twilio_token() {
            r.report(at("auth_token_file"), e);
        }
        if !is_e164(&twilio.from) {
            r.report(
                at("from"),
                format!("{:?} is not an E.164 number (+15551234567)", twilio.from),
            );
        }
        if reqwest::Url::parse(&twilio.api).is_err() {
            r.report(at("api"), format!("{:?} is not a URL", twilio.api));
        }
    }
    if let Some(hotline) = &settings.hotline {
        let at = vec![Seg::Key("hotline"), Seg::Key("service")];
        if !settings.services.iter().any(|s| s.name == hotline.service) {
            r.report(at, format!("{:?} is not one of the [[services]]", hotline.service));
        } else if settings.sip.is_none() && settings.twilio.is_none() {
            r.report(at, "a hotline needs [sip] or [twilio] to answer calls".into());
        }
    }
    for (i, user) in settings.users.iter().enumerate() {
        for (j, number) in user.phone.list().iter().enumerate() {
            if !is_e164(number) {
                let mut at = vec![Seg::Key("users"), Seg::Index(i), Seg::Key("phone")];
                if matches!(user.phone, Phones::Many(_)) {
                    at.push(Seg::Index(j));
                }
                r.report(at, format!("{number:?} is not an E.164 number (+4915112345678)"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_e164_and_compared_as_written_by_anyone() {
        assert!(is_e164("+4915112345678"));
        for bad in ["015112345678", "+0151123", "+49 151 123", "+1", "+1234567890123456", "+49abc"]
        {
            assert!(!is_e164(bad), "{bad}");
        }
        assert_eq!(normalise("0049 151-123 45678"), "+4915112345678");
        assert_eq!(normalise("+49 (151) 12345678"), "+4915112345678");
    }
}
