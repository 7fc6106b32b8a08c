//! Runbooks: where an incident's runbook is read, fetched with bounds, and markdown rendered to
//! HTML and sanitised, for a webview with no IPC and a strict CSP.
//!
//! A sender chooses an incident's `runbook_url`, so the device's token goes only to the one path
//! the server serves the incident's own service's runbook at; any other URL is opened in the
//! browser, never fetched with the token.
//!
//! Only plain document markup survives: no scripts, no styles, no event handlers, no forms, no
//! images, and links only to http(s) and mailto (never `javascript:` or `data:`, never relative).

use std::collections::HashSet;
use std::time::Duration;

use futures_util::StreamExt;
use pulldown_cmark::{Options, Parser, html};
use reveille_protocol::Incident;

/// Largest runbook read from the server.
pub const MAX_BYTES: usize = 1024 * 1024;

/// Where an incident's runbook is to be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The server's copy of the service's runbook: fetch this URL with the token.
    Server(String),
    /// A page elsewhere: open it in the browser.
    Elsewhere(String),
    None,
}

/// Where `incident`'s runbook is, for a device signed in to `server`. Only a URL ending exactly in
/// `/api/v1/runbooks/{service}` of the incident's own service is the server's; the host is not
/// compared because the server's `base_url` may name it differently than the device does.
pub fn source(server: &str, incident: &Incident) -> Source {
    let Some(url) = incident.runbook_url.as_deref() else { return Source::None };
    let own = format!("/api/v1/runbooks/{}", incident.service);
    let service_ok = !incident.service.is_empty()
        && incident.service.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && !incident.service.starts_with('.');
    let is_http = url.starts_with("http://") || url.starts_with("https://");
    if service_ok && is_http && url.ends_with(&own) && url.matches("/api/v1/runbooks/").count() == 1
    {
        Source::Server(format!("{}{own}", server.trim_end_matches('/')))
    } else if is_http {
        Source::Elsewhere(url.to_owned())
    } else {
        Source::None
    }
}

/// Why a runbook could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("the runbook did not arrive within {0:?}")]
    Timeout(Duration),
    #[error("the runbook is larger than {MAX_BYTES} bytes")]
    TooLarge,
    #[error("the runbook cannot be fetched: {0}")]
    Http(#[from] reqwest::Error),
}

/// Fetches the server's runbook text: at most [`MAX_BYTES`], within `timeout` all told.
pub async fn fetch(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    timeout: Duration,
) -> Result<String, FetchError> {
    let read = async {
        let response = http.get(url).bearer_auth(token).send().await?.error_for_status()?;
        if response.content_length().is_some_and(|n| n > MAX_BYTES as u64) {
            return Err(FetchError::TooLarge);
        }
        let mut body = response.bytes_stream();
        let mut text = Vec::new();
        while let Some(chunk) = body.next().await {
            text.extend_from_slice(&chunk?);
            if text.len() > MAX_BYTES {
                return Err(FetchError::TooLarge);
            }
        }
        Ok(String::from_utf8_lossy(&text).into_owned())
    };
    tokio::time::timeout(timeout, read).await.map_err(|_| FetchError::Timeout(timeout))?
}

/// Markdown → safe HTML.
pub fn render(markdown: &str) -> String {
    let mut options = Options::empty();
    options.insert(Options::ENABLE_TABLES);
    options.insert(Options::ENABLE_STRIKETHROUGH);
    options.insert(Options::ENABLE_TASKLISTS);
    let mut unsafe_html = String::new();
    html::push_html(&mut unsafe_html, Parser::new_ext(markdown, options));
    sanitize(&unsafe_html)
}

/// Any HTML → HTML with only harmless markup left.
pub fn sanitize(html: &str) -> String {
    let tags: HashSet<&str> = [
        "a",
        "abbr",
        "b",
        "blockquote",
        "br",
        "code",
        "dd",
        "del",
        "details",
        "div",
        "dl",
        "dt",
        "em",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "hr",
        "i",
        "input",
        "kbd",
        "li",
        "ol",
        "p",
        "pre",
        "s",
        "span",
        "strong",
        "sub",
        "summary",
        "sup",
        "table",
        "tbody",
        "td",
        "th",
        "thead",
        "tr",
        "ul",
    ]
    .into_iter()
    .collect();
    ammonia::Builder::default()
        .tags(tags)
        .url_schemes(["http", "https", "mailto"].into_iter().collect())
        .url_relative(ammonia::UrlRelative::Deny)
        .link_rel(Some("noopener noreferrer"))
        .add_tag_attributes("input", ["type", "checked", "disabled"])
        .clean(html)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::{Source, source};

    fn with_runbook(service: &str, url: &str) -> reveille_protocol::Incident {
        serde_json::from_value(serde_json::json!({
            "id": 1, "service": service, "dedup_key": "k", "state": "triggered",
            "urgency": "high", "severity": "critical", "summary": "s", "source": "",
            "details": {}, "links": [], "runbook_url": url,
            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
            "acknowledged_by": null, "resolved_by": null, "snoozed_until": null, "paged": []
        }))
        .unwrap()
    }

    #[test]
    fn the_token_goes_only_to_the_own_services_runbook_path() {
        let server = "http://10.0.0.5:8080/";
        let ours = Source::Server("http://10.0.0.5:8080/api/v1/runbooks/payments".into());
        let at = |service, url| source(server, &with_runbook(service, url));
        assert_eq!(at("payments", "https://reveille.example/api/v1/runbooks/payments"), ours);
        for sneaky in [
            "https://reveille.example/api/v1/runbooks/../incidents/payments",
            "https://reveille.example/api/v1/runbooks/db",
            "https://reveille.example/api/v1/runbooks/payments?x=/api/v1/runbooks/payments",
            "https://evil.example/x/api/v1/runbooks/a/api/v1/runbooks/payments",
        ] {
            assert!(matches!(at("payments", sneaky), Source::Elsewhere(_)), "{sneaky}");
        }
        assert_eq!(at("payments", "javascript:alert(1)"), Source::None);
        assert!(matches!(at("..", "https://x/api/v1/runbooks/.."), Source::Elsewhere(_)));
    }

    use super::*;

    /// Classic payloads (OWASP's XSS filter evasion cheat sheet and friends).
    const PAYLOADS: &[&str] = &[
        "<script>alert(1)</script>",
        "<SCRIPT SRC=https://evil.example/xss.js></SCRIPT>",
        "<img src=x onerror=alert(1)>",
        "<svg/onload=alert(1)>",
        "<body onload=alert(1)>",
        "<iframe src=\"javascript:alert(1)\"></iframe>",
        "<a href=\"javascript:alert(1)\">click</a>",
        "<a href=\"JaVaScRiPt:alert(1)\">click</a>",
        "<a href=\"jav&#x09;ascript:alert(1)\">click</a>",
        "<a href=\"data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==\">x</a>",
        "[click](javascript:alert(1))",
        "[click](data:text/html,<script>alert(1)</script>)",
        "<div style=\"background:url(javascript:alert(1))\">x</div>",
        "<p onclick=\"alert(1)\">x</p>",
        "<object data=\"javascript:alert(1)\"></object>",
        "<embed src=\"javascript:alert(1)\">",
        "<form action=\"javascript:alert(1)\"><button>go</button></form>",
        "<math><mi xlink:href=\"javascript:alert(1)\">x</mi></math>",
        "<style>@import 'https://evil.example/x.css';</style>",
        "<meta http-equiv=\"refresh\" content=\"0;url=javascript:alert(1)\">",
        "<base href=\"javascript:alert(1)//\">",
        "<link rel=stylesheet href=https://evil.example/x.css>",
        "<details open ontoggle=alert(1)>",
        "<input autofocus onfocus=alert(1)>",
        "<a href=\"/local/file\">relative</a>",
        "![x](https://tracker.example/pixel.gif)",
        "<scr<script>ipt>alert(1)</script>",
        "<video><source onerror=\"alert(1)\"></video>",
    ];

    #[test]
    fn no_xss_payload_survives() {
        for payload in PAYLOADS {
            // Escaped text (`&lt;svg onload…`) is harmless: look at the markup itself.
            let html = render(payload).to_ascii_lowercase();
            let out: String = html
                .split('<')
                .skip(1)
                .filter_map(|t| t.split('>').next())
                .collect::<Vec<_>>()
                .join(" <");
            for bad in [
                "<script",
                "javascript:",
                "data:",
                "onerror",
                "onload",
                "onclick",
                "onfocus",
                "ontoggle",
                "<iframe",
                "<object",
                "<embed",
                "<form",
                "<style",
                "<meta",
                "<base",
                "<link",
                "<img",
                "<svg",
                "style=",
                "href=\"/local",
            ] {
                assert!(!out.contains(bad), "{payload:?} left {bad:?} in {out:?}");
            }
        }
    }

    #[test]
    fn ordinary_runbooks_keep_their_shape() {
        let html = render(
            "# Disk full\n\n1. Check `df -h`\n2. See [the dashboard](https://grafana.example/d/db)\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n- [x] done\n",
        );
        assert!(html.contains("<h1>Disk full</h1>"), "{html}");
        assert!(html.contains("<code>df -h</code>"));
        assert!(html.contains("<a href=\"https://grafana.example/d/db\" rel=\"noopener noreferrer\">the dashboard</a>"), "{html}");
        assert!(html.contains("<table>") && html.contains("<td>2</td>"));
        assert!(html.contains("type=\"checkbox\""), "{html}");
    }
}
