//! `REVEILLE_*` environment overrides of the configuration.
//!
//! `REVEILLE_<SECTION>_<KEY>` sets one key of a table (`REVEILLE_SERVER_BASE_URL`);
//! `REVEILLE_USERS` and `REVEILLE_SERVICES` replace a whole list, written as a TOML array.
//! Values are read as TOML when they parse as TOML, and as plain strings otherwise.

use super::{ConfigError, Problem};

/// Variables the command-line client reads; they are not server settings.
const CLIENT_VARS: &[&str] = &["SERVER", "TOKEN", "CONFIG", "LOG"];
const SECTIONS: &[&str] =
    &["server", "database", "ingest", "escalation", "phone", "push", "retention"];
const LISTS: &[&str] = &["users", "services", "schedules", "policies", "heartbeats", "webhooks"];

/// Applies the overrides; returns the names of the variables used.
pub(super) fn apply(
    table: &mut toml::Table,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<Vec<String>, ConfigError> {
    let mut applied = Vec::new();
    let mut problems = Vec::new();
    for (name, raw) in vars {
        let Some(rest) = name.strip_prefix("REVEILLE_") else {
            continue;
        };
        if CLIENT_VARS.contains(&rest) {
            continue;
        }
        let lower = rest.to_ascii_lowercase();
        let problem = |message: String| Problem {
            origin: format!("environment variable {name}"),
            line: None,
            key: String::new(),
            message,
        };
        if LISTS.contains(&lower.as_str()) {
            match value(&raw) {
                Some(list @ toml::Value::Array(_)) => {
                    table.insert(lower, list);
                }
                _ => {
                    problems.push(problem("must be a TOML array, e.g. [{name = \"alice\"}]".into()))
                }
            }
        } else if let Some((section, key)) =
            SECTIONS.iter().find_map(|s| lower.strip_prefix(&format!("{s}_")).map(|key| (*s, key)))
        {
            let entry =
                table.entry(section).or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let toml::Value::Table(section) = entry {
                section.insert(key.to_owned(), value(&raw).unwrap_or(toml::Value::String(raw)));
            }
        } else {
            problems.push(problem("does not name a setting".into()));
            continue;
        }
        applied.push(format!("environment variable {name}"));
    }
    if problems.is_empty() { Ok(applied) } else { Err(ConfigError(problems)) }
}

fn value(raw: &str) -> Option<toml::Value> {
    let mut parsed: toml::Table = format!("v = {raw}").parse().ok()?;
    parsed.remove("v")
}
