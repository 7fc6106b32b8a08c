//! The web console in a real browser: `web/e2e/console.mjs` drives Debian's Chromium with
//! playwright-core against `reveille serve` on a loopback port, signed in with a link from
//! `reveille web-link`. The script prints a line per check; this test fails on any `not ok`.

use std::path::PathBuf;
use std::process::Command;

use reveille_tests::{Site, last_line, reveille};

const RUNBOOK_XSS: &str = include_str!("../../web/e2e/xss.json");

/// alice is paged by `payments` (whose runbook is full of script); bob and carol take turns a day
/// at a time on `primary`, with alice shadowing them.
fn config() -> String {
    format!(
        r#"{}runbook = "runbooks/payments.md"

[escalation]
deaf_after_seconds = 1

[[users]]
name = "bob"

[[users]]
name = "carol"

[[schedules]]
name = "primary"
time_zone = "Europe/Berlin"
[[schedules.layers]]
members = ["bob", "carol"]
shadows = ["alice"]
start = "2026-01-05T09:00"
shift = "1d"

[[services]]
name = "db"
policy = "db"

[[policies]]
name = "db"
[[policies.levels]]
schedules = ["primary"]
delay_minutes = 5
"#,
        reveille_tests::CONFIG.replace("runbook = \"https://runbooks.example/payments\"\n", "")
    )
}

fn runbook() -> String {
    let payloads: Vec<String> = serde_json::from_str(RUNBOOK_XSS).unwrap();
    format!("# Payments\n\nRestart the worker.\n\n{}\n", payloads.join("\n\n"))
}

/// Where the console's test tools are, or why they are not (a skip outside CI).
fn tools() -> Option<(PathBuf, PathBuf)> {
    let web = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../web");
    let chromium = PathBuf::from(std::env::var("CHROMIUM").unwrap_or("/usr/bin/chromium".into()));
    let missing = [
        (web.join("node_modules/playwright-core"), "playwright-core (npm ci in web/)"),
        (web.join("dist/index.html"), "the built console (npm run build in web/)"),
        (chromium.clone(), "Debian's chromium"),
    ]
    .into_iter()
    .find(|(path, _)| !path.exists());
    if let Some((path, what)) = missing {
        assert!(std::env::var_os("CI").is_none(), "CI must provide {what}: {}", path.display());
        eprintln!("SKIPPED: {what} is missing ({}); scripts/test.sh installs it", path.display());
        return None;
    }
    Some((web, chromium))
}

#[test]
fn the_console_in_chromium() {
    let Some((web, chromium)) = tools() else { return };
    let site = Site::with_files(&config(), &[("runbooks/payments.md", &runbook())]);
    let server = site.start();
    let link = last_line(&reveille(&["web-link", "-c", &site.config(), "--user", "alice"], &[]));
    let code = link.split_once("#/signin/").expect("a sign-in link").1.to_owned();
    let shots = std::env::var("SCREENSHOTS").ok();
    let out = Command::new("node")
        .arg(web.join("e2e/console.mjs"))
        .current_dir(&web)
        .env("REVEILLE_URL", &server.url)
        .env("REVEILLE_CODE", &code)
        .env("REVEILLE_TOKEN", &site.token)
        .env("CHROMIUM", &chromium)
        .envs(shots.map(|dir| ("SCREENSHOTS", dir)))
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains(" passed, 0 failed"), "the console's checks failed:\n{stdout}");
    assert!(out.status.success());
}
