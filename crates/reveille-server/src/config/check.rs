//! Parsing and validation of the configuration, with the file, line and key of every mistake.

use std::collections::HashSet;
use std::net::SocketAddr;

use reveille_protocol::Severity;
use toml_edit::{Document, Item};

use super::{ConfigError, Problem, Settings, env, oncall};

/// Parses the text, applies environment overrides, and deserialises the settings.
pub(super) fn parse(
    text: &str,
    origin: &str,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<Settings, ConfigError> {
    let problem = |line: Option<usize>, key: String, message: &str| {
        ConfigError(vec![Problem {
            origin: origin.into(),
            line,
            key,
            message: message.trim().to_string(),
        }])
    };
    // First pass on the text alone, so type errors and unknown keys come with a line and key.
    let de = toml::Deserializer::parse(text).map_err(|e| {
        problem(e.span().map(|s| line_of(text, s.start)), String::new(), e.message())
    })?;
    if let Err(e) = serde_path_to_error::deserialize::<_, Settings>(de) {
        let key = e.path().to_string();
        let inner = e.into_inner();
        let key = if key == "." { String::new() } else { key };
        return Err(problem(inner.span().map(|s| line_of(text, s.start)), key, inner.message()));
    }
    let mut table: toml::Table =
        text.parse().map_err(|e: toml::de::Error| problem(None, String::new(), e.message()))?;
    let applied = env::apply(&mut table, vars)?;
    toml::Value::Table(table).try_into::<Settings>().map_err(|e| {
        ConfigError(vec![Problem {
            origin: if applied.is_empty() { origin.into() } else { applied.join(", ") },
            line: None,
            key: String::new(),
            message: e.message().trim().to_string(),
        }])
    })
}

/// Collects problems, locating each one's key in the file.
pub(super) struct Reporter<'a> {
    text: &'a str,
    origin: &'a str,
    doc: Option<Document<&'a str>>,
    pub problems: Vec<Problem>,
}

impl<'a> Reporter<'a> {
    fn new(text: &'a str, origin: &'a str) -> Self {
        Self { text, origin, doc: Document::parse(text).ok(), problems: Vec::new() }
    }

    pub fn report(&mut self, path: Vec<Seg>, message: String) {
        let line = self
            .doc
            .as_ref()
            .and_then(|d| locate(d.as_item(), &path))
            .map(|at| line_of(self.text, at));
        self.problems.push(Problem {
            origin: self.origin.into(),
            line,
            key: key_of(&path),
            message,
        });
    }
}

/// Checks what serde cannot: names that must exist, be unique, and values that must parse.
pub(super) fn validate(settings: &Settings, text: &str, origin: &str) -> Result<(), ConfigError> {
    let mut r = Reporter::new(text, origin);
    if settings.server.listen.parse::<SocketAddr>().is_err() {
        let message = format!(
            "{:?} is not an address and port like \"127.0.0.1:8080\"",
            settings.server.listen
        );
        r.report(path(&["server", "listen"]), message);
    }
    let base = &settings.server.base_url;
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        r.report(
            path(&["server", "base_url"]),
            format!("{base:?} must start with http:// or https://"),
        );
    }
    if !(1..=30).contains(&settings.server.heartbeat_seconds) {
        // Clients treat three missed heartbeats as a dead link; keep well under the 77 s phones allow.
        r.report(path(&["server", "heartbeat_seconds"]), "must be between 1 and 30".into());
    }
    let server = &settings.server;
    for (key, value, range) in [
        ("max_connections", server.max_connections as u64, 1..=1_000_000),
        ("max_streams_per_user", server.max_streams_per_user as u64, 1..=10_000),
        ("session_hours", u64::from(server.session_hours), 1..=720),
        ("idle_timeout_seconds", server.idle_timeout_seconds, 1..=3600),
        ("body_timeout_seconds", server.body_timeout_seconds, 1..=3600),
    ] {
        if !range.contains(&value) {
            let message = format!("must be between {} and {}", range.start(), range.end());
            r.report(path(&["server", key]), message);
        }
    }
    // Zero would turn PostgreSQL's deadline off: a frozen node could then stall every other.
    let db = &settings.database;
    for (key, value, range) in [
        ("lock_timeout_ms", db.lock_timeout_ms, 10..=600_000),
        ("statement_timeout_ms", db.statement_timeout_ms, 100..=3_600_000),
        ("idle_in_transaction_timeout_ms", db.idle_in_transaction_timeout_ms, 100..=600_000),
        ("tcp_keepalive_seconds", db.tcp_keepalive_seconds, 1..=3600),
        ("tcp_user_timeout_seconds", db.tcp_user_timeout_seconds, 1..=3600),
    ] {
        if !range.contains(&value) {
            let message = format!("must be between {} and {}", range.start(), range.end());
            r.report(path(&["database", key]), message);
        }
    }
    let days = settings.retention.days;
    if days > 0 && u64::from(days) * 24 < u64::from(settings.phone.ack_link_hours) {
        // A used link forgotten while it still works could be used again.
        let message = format!(
            "must keep at least as long as an acknowledge link works ({} h, phone.ack_link_hours)",
            settings.phone.ack_link_hours
        );
        r.report(path(&["retention", "days"]), message);
    }
    if days > 0 && u64::from(days) * 24 < u64::from(settings.server.session_hours) {
        // Retention removes web console sessions made before its cutoff.
        let message = format!(
            "must keep at least as long as a web console session lasts ({} h, server.session_hours)",
            settings.server.session_hours
        );
        r.report(path(&["retention", "days"]), message);
    }
    if settings.backend().is_none() {
        let message = format!(
            "{:?} is not a database URL: use sqlite://FILE or postgres://USER@HOST:PORT/DATABASE",
            settings.database.url
        );
        r.report(path(&["database", "url"]), message);
    }
    match (&settings.server.tls_cert, &settings.server.tls_key) {
        (Some(cert), Some(key)) => {
            if let Err(e) =
                crate::http::tls::load(&settings.dir.join(cert), &settings.dir.join(key))
            {
                r.report(path(&["server", "tls_cert"]), e);
            }
        }
        (Some(_), None) => {
            r.report(path(&["server", "tls_key"]), "give the private key beside tls_cert".into())
        }
        (None, Some(_)) => {
            r.report(path(&["server", "tls_cert"]), "give the certificate beside tls_key".into())
        }
        (None, None) => {}
    }
    if settings.ingest.rate_per_minute == 0 {
        r.report(path(&["ingest", "rate_per_minute"]), "must be at least 1".into());
    }

    let mut users = HashSet::new();
    for (i, user) in settings.users.iter().enumerate() {
        let at = vec![Seg::Key("users"), Seg::Index(i), Seg::Key("name")];
        if !valid_name(&user.name) {
            r.report(
                at.clone(),
                format!("{:?} is not a valid name (letters, digits, - _ .)", user.name),
            );
        }
        if !users.insert(user.name.as_str()) {
            r.report(at, format!("user {:?} is defined twice", user.name));
        }
    }
    if settings.services.is_empty() {
        r.report(path(&["services"]), "define at least one [[services]] to receive alerts".into());
    }
    let mut services = HashSet::new();
    let mut topics = HashSet::new();
    for (i, service) in settings.services.iter().enumerate() {
        let at = |key: &'static str| vec![Seg::Key("services"), Seg::Index(i), Seg::Key(key)];
        if !valid_name(&service.name) || service.name == crate::oncall::drills::SERVICE {
            let message = format!(
                "{:?} is not a valid service name (letters, digits, - _ .; \"drill\" is reserved)",
                service.name
            );
            r.report(at("name"), message);
        }
        if !services.insert(service.name.as_str()) {
            r.report(at("name"), format!("service {:?} is defined twice", service.name));
        }
        if !["severity", "high", "low"].contains(&service.urgency.as_str()) {
            let message =
                format!("{:?} must be \"severity\", \"high\" or \"low\"", service.urgency);
            r.report(at("urgency"), message);
        }
        if Severity::parse(&service.default_severity).is_none() {
            let message =
                format!("{:?} must be critical, error, warning or info", service.default_severity);
            r.report(at("default_severity"), message);
        }
        for (j, topic) in service.ntfy_topics.iter().enumerate() {
            let mut at = at("ntfy_topics");
            at.push(Seg::Index(j));
            if !crate::deliver::ntfy::valid_topic(topic)
                || RESERVED_TOPICS.contains(&topic.as_str())
            {
                let message = format!(
                    "{topic:?} is not a topic Reveille can take (1-64 letters, digits, - _; not {})",
                    RESERVED_TOPICS.join(", ")
                );
                r.report(at, message);
            } else if !topics.insert(topic.as_str()) {
                r.report(at, format!("topic {topic:?} is taken by two services"));
            }
        }
        if let Some(file) = settings.runbook_file(service)
            && !file.is_file()
        {
            r.report(at("runbook"), format!("runbook file {} does not exist", file.display()));
        }
    }
    if !(1..=45).contains(&settings.phone.keepalive_seconds) {
        r.report(path(&["phone", "keepalive_seconds"]), "must be between 1 and 45".into());
    }
    if settings.phone.ack_link_hours == 0 {
        r.report(path(&["phone", "ack_link_hours"]), "must be at least 1".into());
    }
    for (section, file) in [
        ("fcm", settings.push.fcm.as_ref().map(|f| &f.service_account)),
        ("apns", settings.push.apns.as_ref().map(|a| &a.key_file)),
    ] {
        if let Some(file) = file
            && !settings.dir.join(file).is_file()
        {
            r.report(
                path(&["push", section]),
                format!("{} does not exist", settings.dir.join(file).display()),
            );
        }
    }
    oncall::validate(settings, &mut r);
    super::outbound::validate(settings, &mut r);
    super::telephony::validate(settings, &mut r);
    r.problems.sort_by_key(|p| p.line);
    if r.problems.is_empty() { Ok(()) } else { Err(ConfigError(r.problems)) }
}

/// First path segments the server itself answers, so no ntfy topic may take them.
const RESERVED_TOPICS: [&str; 6] = ["api", "v2", "healthz", "metrics", "docs", "assets"];

/// Names go into URLs and feeds; keep them plain.
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// One step of a path to a key: a table key or an array index.
#[derive(Debug, Clone)]
pub(crate) enum Seg {
    Key(&'static str),
    Index(usize),
}

fn path(keys: &[&'static str]) -> Vec<Seg> {
    keys.iter().map(|k| Seg::Key(k)).collect()
}

fn key_of(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) if out.is_empty() => out.push_str(k),
            Seg::Key(k) => out.push_str(&format!(".{k}")),
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// The byte offset of the deepest part of `path` present under `item`.
fn locate(item: &Item, path: &[Seg]) -> Option<usize> {
    let here = item.span().map(|s| s.start);
    let Some((seg, rest)) = path.split_first() else {
        return here;
    };
    let deeper = match (seg, item) {
        (Seg::Key(k), _) => item
            .as_table_like()
            .and_then(|t| t.get_key_value(k))
            .and_then(|(key, value)| locate(value, rest).or_else(|| key.span().map(|s| s.start))),
        (Seg::Index(i), Item::ArrayOfTables(tables)) => {
            tables.get(*i).and_then(|table| locate(&Item::Table(table.clone()), rest))
        }
        (Seg::Index(i), Item::Value(toml_edit::Value::Array(array))) => {
            array.get(*i).and_then(|value| locate(&Item::Value(value.clone()), rest))
        }
        (Seg::Index(_), _) => None,
    };
    deeper.or(here)
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}
