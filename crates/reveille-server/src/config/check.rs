//! Parsing and validation of the configuration, with the line of every mistake.

use std::collections::HashSet;
use std::net::SocketAddr;

use reveille_protocol::Severity;
use toml_edit::{Document, Item};

use super::{ConfigError, Problem, Settings, env};

/// Parses the text, applies environment overrides, and deserialises the settings.
pub(super) fn parse(
    text: &str,
    origin: &str,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<Settings, ConfigError> {
    // First pass on the text alone, so type errors and unknown keys come with a line.
    if let Err(e) = toml::from_str::<Settings>(text) {
        let line = e.span().map(|span| line_of(text, span.start));
        return Err(ConfigError(vec![Problem {
            origin: origin.into(),
            line,
            key: String::new(),
            message: e.message().trim().to_string(),
        }]));
    }
    let mut table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        ConfigError(vec![Problem {
            origin: origin.into(),
            line: None,
            key: String::new(),
            message: e.message().to_string(),
        }])
    })?;
    let applied = env::apply(&mut table, vars)?;
    toml::Value::Table(table)
        .try_into::<Settings>()
        .map_err(|e| {
            ConfigError(vec![Problem {
                origin: if applied.is_empty() {
                    origin.into()
                } else {
                    applied.join(", ")
                },
                line: None,
                key: String::new(),
                message: e.message().trim().to_string(),
            }])
        })
}

/// Checks what serde cannot: names that must exist, be unique, and values that must parse.
pub(super) fn validate(settings: &Settings, text: &str, origin: &str) -> Result<(), ConfigError> {
    let doc = Document::parse(text).ok();
    let mut problems = Vec::new();
    let mut report = |path: Vec<Seg>, message: String| {
        let line = doc
            .as_ref()
            .and_then(|d| locate(d.as_item(), &path))
            .map(|at| line_of(text, at));
        problems.push(Problem {
            origin: origin.into(),
            line,
            key: key_of(&path),
            message,
        });
    };

    if settings.server.listen.parse::<SocketAddr>().is_err() {
        report(
            path(&["server", "listen"]),
            format!(
                "{:?} is not an address and port like \"127.0.0.1:8080\"",
                settings.server.listen
            ),
        );
    }
    let base = &settings.server.base_url;
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        report(
            path(&["server", "base_url"]),
            format!("{base:?} must start with http:// or https://"),
        );
    }
    if settings.server.heartbeat_seconds == 0 || settings.server.heartbeat_seconds > 45 {
        report(
            path(&["server", "heartbeat_seconds"]),
            "must be between 1 and 45".into(),
        );
    }
    if !settings.database.url.starts_with("sqlite://") {
        report(
            path(&["database", "url"]),
            format!(
                "{:?} is not supported: use sqlite://FILE (Postgres is not supported yet)",
                settings.database.url
            ),
        );
    }
    if settings.ingest.rate_per_minute == 0 {
        report(
            path(&["ingest", "rate_per_minute"]),
            "must be at least 1".into(),
        );
    }

    let mut users = HashSet::new();
    for (i, user) in settings.users.iter().enumerate() {
        let at = vec![Seg::Key("users"), Seg::Index(i), Seg::Key("name")];
        if !valid_name(&user.name) {
            report(
                at.clone(),
                format!(
                    "{:?} is not a valid name (letters, digits, - _ .)",
                    user.name
                ),
            );
        }
        if !users.insert(user.name.as_str()) {
            report(at, format!("user {:?} is defined twice", user.name));
        }
    }
    if settings.services.is_empty() {
        report(
            path(&["services"]),
            "define at least one [[services]] to receive alerts".into(),
        );
    }
    let mut services = HashSet::new();
    for (i, service) in settings.services.iter().enumerate() {
        let at = |key: &'static str| vec![Seg::Key("services"), Seg::Index(i), Seg::Key(key)];
        if !valid_name(&service.name) {
            report(
                at("name"),
                format!(
                    "{:?} is not a valid name (letters, digits, - _ .)",
                    service.name
                ),
            );
        }
        if !services.insert(service.name.as_str()) {
            report(
                at("name"),
                format!("service {:?} is defined twice", service.name),
            );
        }
        if service.page.is_empty() {
            report(
                at("page"),
                format!("service {:?} pages nobody", service.name),
            );
        }
        for (j, name) in service.page.iter().enumerate() {
            if !users.contains(name.as_str()) {
                let mut p = at("page");
                p.push(Seg::Index(j));
                report(p, format!("unknown user {name:?} (not in [[users]])"));
            }
        }
        if !["severity", "high", "low"].contains(&service.urgency.as_str()) {
            report(
                at("urgency"),
                format!(
                    "{:?} must be \"severity\", \"high\" or \"low\"",
                    service.urgency
                ),
            );
        }
        if Severity::parse(&service.default_severity).is_none() {
            report(
                at("default_severity"),
                format!(
                    "{:?} must be critical, error, warning or info",
                    service.default_severity
                ),
            );
        }
        if let Some(file) = settings.runbook_file(service)
            && !file.is_file()
        {
            report(
                at("runbook"),
                format!("runbook file {} does not exist", file.display()),
            );
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ConfigError(problems))
    }
}

/// Names go into URLs and feeds; keep them plain.
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[derive(Debug, Clone)]
pub(super) enum Seg {
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
        (Seg::Index(i), Item::ArrayOfTables(tables)) => tables
            .get(*i)
            .and_then(|table| locate(&Item::Table(table.clone()), rest)),
        (Seg::Index(i), Item::Value(toml_edit::Value::Array(array))) => array
            .get(*i)
            .and_then(|value| locate(&Item::Value(value.clone()), rest)),
        (Seg::Index(_), _) => None,
    };
    deeper.or(here)
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}
