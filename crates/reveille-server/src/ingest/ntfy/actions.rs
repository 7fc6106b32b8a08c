//! ntfy's action buttons (`X-Actions`), in its JSON form or its "simple" one:
//! `view, Open dashboard, https://…, clear=true; http, "Restart, now", https://…, method=POST`.
//! Reveille shows `view` actions as links on the incident and keeps the others in its details;
//! it never performs them.

use serde::{Deserialize, Serialize};

/// ntfy allows at most three buttons per message.
pub const MAX: usize = 3;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    pub action: String,
    #[serde(default)]
    pub label: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub url: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub method: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub body: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub clear: bool,
}

/// Parses either form and checks what ntfy checks; the error says what is wrong.
pub fn parse(text: &str) -> Result<Vec<Action>, String> {
    let text = text.trim();
    let mut actions = if text.starts_with('[') {
        serde_json::from_str::<Vec<Action>>(text).map_err(|e| format!("JSON error: {e}"))?
    } else {
        simple(text)?
    };
    validate(&mut actions)?;
    Ok(actions)
}

/// Checks actions given as JSON objects (ntfy's JSON publishing carries them so).
pub fn validate(actions: &mut [Action]) -> Result<(), String> {
    if actions.len() > MAX {
        return Err(format!("only {MAX} actions allowed"));
    }
    for a in actions.iter_mut() {
        a.action = a.action.to_ascii_lowercase();
        a.method = a.method.to_ascii_uppercase();
        if !["view", "broadcast", "http"].contains(&a.action.as_str()) {
            return Err(format!(
                "parameter 'action' cannot be '{}', valid values are 'view', 'broadcast' and 'http'",
                a.action
            ));
        }
        if a.label.is_empty() {
            return Err("parameter 'label' is required".into());
        }
        if a.action != "broadcast" && a.url.is_empty() {
            return Err(format!("parameter 'url' is required for action '{}'", a.action));
        }
    }
    Ok(())
}

/// The simple form: actions split by `;`, sections by `,`; a section is `key=value` or, in the
/// first three places, the action, label and URL; values may be quoted with `"` or `'`.
fn simple(text: &str) -> Result<Vec<Action>, String> {
    let mut actions = Vec::new();
    let mut rest = text;
    while !rest.trim().is_empty() {
        let mut action = Action::default();
        let mut index = 0;
        loop {
            let (section, end, after) = section(rest)?;
            rest = after;
            apply(&mut action, index, section)?;
            index += 1;
            if end {
                break;
            }
        }
        actions.push(action);
    }
    Ok(actions)
}

/// A section's key, when it names one, and its value.
type Section<'a> = (Option<&'a str>, String);

/// One section of the input, whether it ended its action, and the input after it.
fn section(input: &str) -> Result<(Section<'_>, bool, &str), String> {
    let input = input.trim_start();
    let (key, input) = match input.find('=') {
        Some(at)
            if at > 0
                && input[..at]
                    .trim_end()
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')) =>
        {
            (Some(input[..at].trim_end()), input[at + 1..].trim_start())
        }
        _ => (None, input),
    };
    if let Some(quote) = input.chars().next().filter(|c| *c == '"' || *c == '\'') {
        let body = &input[1..];
        let mut escaped = false;
        for (i, c) in body.char_indices() {
            if c == quote && !escaped {
                let value = body[..i].replace(&format!("\\{quote}"), &quote.to_string());
                let after = body[i + 1..].trim_start();
                return match after.chars().next() {
                    None => Ok(((key, value), true, "")),
                    Some(sep @ (',' | ';')) => Ok(((key, value), sep == ';', &after[1..])),
                    Some(c) => Err(format!("unexpected character '{c}' after a quoted value")),
                };
            }
            escaped = c == '\\';
        }
        return Err("unexpected end of input inside a quoted value".into());
    }
    match input.find([',', ';']) {
        Some(at) => {
            let end = input[at..].starts_with(';');
            Ok(((key, input[..at].trim().to_owned()), end, &input[at + 1..]))
        }
        None => Ok(((key, input.trim().to_owned()), true, "")),
    }
}

fn apply(
    action: &mut Action,
    index: usize,
    (key, value): (Option<&str>, String),
) -> Result<(), String> {
    let key = match (key, index) {
        (Some(k), _) => k.to_ascii_lowercase(),
        (None, 0) => "action".into(),
        (None, 1) => "label".into(),
        (None, 2) if action.action != "broadcast" => "url".into(),
        (None, _) => return Err(format!("term '{value}' unknown")),
    };
    match key.as_str() {
        "action" => action.action = value,
        "label" => action.label = value,
        "url" => action.url = value,
        "method" => action.method = value,
        "body" => action.body = value,
        "clear" => {
            action.clear = match value.to_ascii_lowercase().as_str() {
                "true" | "yes" | "1" => true,
                "false" | "no" | "0" => false,
                _ => return Err(format!("parameter 'clear' cannot be '{value}'")),
            }
        }
        k if k.starts_with("headers.") || k.starts_with("extras.") || k == "intent" => {}
        k => return Err(format!("key '{k}' unknown")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(label: &str, url: &str) -> Action {
        Action { action: "view".into(), label: label.into(), url: url.into(), ..Action::default() }
    }

    #[test]
    fn the_simple_form_of_ntfys_docs() {
        let parsed = parse(
            "view, Open portal, https://home.nest.com/, clear=true; \
             http, Turn down, https://api.nest.com/, body='{\"temp\": 65}'",
        )
        .unwrap();
        assert_eq!(
            parsed[0],
            Action { clear: true, ..view("Open portal", "https://home.nest.com/") }
        );
        assert_eq!(parsed[1].action, "http");
        assert_eq!(parsed[1].body, "{\"temp\": 65}");
    }

    #[test]
    fn quoted_labels_keep_commas_and_escaped_quotes() {
        let parsed =
            parse(r#"action=view, label="Look, \"quotes\"", url=https://x.example"#).unwrap();
        assert_eq!(parsed, vec![view("Look, \"quotes\"", "https://x.example")]);
    }

    #[test]
    fn the_json_form() {
        let parsed =
            parse(r#"[{"action":"VIEW","label":"Open","url":"https://x.example"}]"#).unwrap();
        assert_eq!(parsed, vec![view("Open", "https://x.example")]);
    }

    #[test]
    fn what_ntfy_refuses_is_refused_with_the_reason() {
        assert!(parse("jump, Go, https://x").unwrap_err().contains("'jump'"));
        assert!(parse("view, , https://x").unwrap_err().contains("label"));
        assert!(parse("view, Open").unwrap_err().contains("url"));
        assert!(
            parse("view, a, https://x; view, b, https://x; view, c, https://x; view, d, https://x")
                .unwrap_err()
                .contains("only 3")
        );
        assert!(parse("view, \"open, https://x").unwrap_err().contains("quoted"));
        assert!(parse("view, a, https://x, colour=red").unwrap_err().contains("colour"));
    }
}
