//! Runbooks: markdown rendered to HTML and sanitised, for a webview with no IPC and a strict CSP.
//!
//! Only plain document markup survives: no scripts, no styles, no event handlers, no forms, no
//! images, and links only to http(s) and mailto (never `javascript:` or `data:`, never relative).

use std::collections::HashSet;

use pulldown_cmark::{Options, Parser, html};

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
