//! The README's flow with the real binary: start the server, page with curl's request, see it in
//! `reveille watch`, ack it with `reveille ack`; plus the admin commands' promises.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use reveille_tests::{Site, binary, reveille};
use serde_json::json;

fn text(output: &std::process::Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn page_watch_and_ack_from_the_terminal() {
    let site = Site::new();
    let server = site.start();
    let env = [("REVEILLE_SERVER", server.url.as_str()), ("REVEILLE_TOKEN", site.token.as_str())];

    let mut watch = Command::new(binary())
        .arg("watch")
        .envs(env)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines_tx, lines) = mpsc::channel();
    for stream in [
        watch.stdout.take().map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        watch.stderr.take().map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
    ] {
        let tx = lines_tx.clone();
        let stream = stream.unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
    }
    let wait_for = |needle: &str| loop {
        let line = lines
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("watch never printed {needle:?}"));
        if line.contains(needle) {
            return line;
        }
    };
    wait_for("watching your pages");

    // Exactly the README's curl example, as an HTTP request.
    let body = json!({"summary": "Disk full on db-1", "severity": "critical"});
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/events", server.url))
        .bearer_auth(&site.key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let id = response.json::<serde_json::Value>().await.unwrap()["incident_id"].as_i64().unwrap();

    let page = wait_for("PAGE");
    assert!(page.contains(&format!("#{id}")) && page.contains("Disk full on db-1"), "{page}");
    wait_for(&format!("acknowledge: reveille ack {id}"));

    let acked = reveille(&["ack", &id.to_string()], &env);
    let (out, err) = text(&acked);
    assert!(acked.status.success(), "{err}");
    assert!(out.contains("acknowledged") && out.contains("by alice"), "{out}");
    let change = wait_for("ACKED");
    assert!(change.contains(&format!("#{id}")), "{change}");

    let listed = reveille(&["incidents", "--json"], &env);
    let list: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(list["incidents"][0]["state"], "acknowledged");

    let paged = reveille(&["page", "--service", "payments", "--summary", "Second", "--json"], &env);
    let paged: serde_json::Value = serde_json::from_slice(&paged.stdout).unwrap();
    let second = paged["incident_id"].as_i64().unwrap();
    wait_for("Second");
    assert!(reveille(&["resolve", &second.to_string()], &env).status.success());
    wait_for("DONE");

    let shown = reveille(&["incident", "show", &id.to_string()], &env);
    let (out, _) = text(&shown);
    assert!(out.contains("triggered") && out.contains("Acknowledged by alice"), "{out}");
    let _ = watch.kill();
    let _ = watch.wait();
}

#[tokio::test]
async fn watch_with_a_bad_token_says_so_and_fails() {
    let site = Site::new();
    let server = site.start();
    let out =
        reveille(&["watch"], &[("REVEILLE_SERVER", &server.url), ("REVEILLE_TOKEN", "rvt_wrong")]);
    assert!(!out.status.success());
    let (_, err) = text(&out);
    assert!(
        err.contains("the server refused the token: this token is unknown or revoked"),
        "{err}"
    );
    let out = reveille(&["watch"], &[("REVEILLE_SERVER", &server.url)]);
    assert!(!out.status.success());
    assert!(text(&out).1.contains("no token"));
}

#[test]
fn tokens_are_shown_once_stored_hashed_listed_and_revoked() {
    let site = Site::new();
    let config = site.config();
    let created = reveille(&["token", "create", "-c", &config, "--user", "alice"], &[]);
    let (out, _) = text(&created);
    let token = out.lines().last().unwrap();
    assert!(token.starts_with("rvt_") && token.len() == 47 && !token.contains(' '), "{out}");
    let db = std::fs::read(site.dir.path().join("reveille.db")).unwrap();
    let wal = std::fs::read(site.dir.path().join("reveille.db-wal")).unwrap_or_default();
    let needle = token.as_bytes();
    for bytes in [&db, &wal] {
        assert!(!bytes.windows(needle.len()).any(|w| w == needle), "the token is stored in clear");
    }
    let listed = text(&reveille(&["token", "list", "-c", &config], &[])).0;
    assert!(
        listed.contains(&token[..10])
            && listed.contains("read,respond")
            && listed.contains("never"),
        "{listed}"
    );
    let revoked = reveille(&["token", "revoke", "-c", &config, &token[..10]], &[]);
    assert!(revoked.status.success());
    assert!(text(&reveille(&["token", "list", "-c", &config], &[])).0.contains("revoked"));
    let unknown = reveille(&["token", "create", "-c", &config, "--user", "mallory"], &[]);
    assert!(!unknown.status.success());
    let key = text(&reveille(&["key", "create", "-c", &config, "--service", "payments"], &[])).0;
    let key = key.lines().last().unwrap();
    assert_eq!(key.len(), 32, "PagerDuty tools expect 32-character routing keys");
}

#[test]
fn check_config_names_the_line_and_default_config_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("reveille.toml");
    std::fs::write(
        &path,
        "[[users]]\nname = \"alice\"\n[[services]]\nname = \"db\"\npage = [\"bob\"]\n",
    )
    .unwrap();
    let out = reveille(&["check-config", "-c", &path.display().to_string()], &[]);
    assert!(!out.status.success());
    let (_, err) = text(&out);
    assert!(
        err.contains(&format!("{}:5: services[0].page[0]: unknown user \"bob\"", path.display())),
        "{err}"
    );

    let example = reveille(&["default-config"], &[]);
    std::fs::write(&path, &example.stdout).unwrap();
    std::fs::create_dir(dir.path().join("runbooks")).unwrap();
    std::fs::write(dir.path().join("runbooks/payments.md"), "# Payments\n").unwrap();
    let out = reveille(&["check-config", "-c", &path.display().to_string()], &[]);
    assert!(out.status.success(), "{}", text(&out).1);
    assert!(text(&out).0.contains("OK (2 users, 2 services"));
}

const ONCALL: &str = r#"
[server]
listen = "127.0.0.1:0"
[escalation]
deaf_after_seconds = 0
[[users]]
name = "alice"
[[users]]
name = "bob"
[[users]]
name = "dave"
[[schedules]]
name = "primary"
time_zone = "America/New_York"
[[schedules.layers]]
members = ["alice", "bob"]
shadows = ["dave"]
start = "2026-01-05T09:00"
shift = "1w"
[[policies]]
name = "ladder"
[[policies.levels]]
schedules = ["primary"]
delay_minutes = 5
[[policies.levels]]
users = ["bob"]
delay_minutes = 5
[[services]]
name = "payments"
policy = "ladder"
"#;

#[tokio::test]
async fn on_call_schedules_overrides_drills_and_export_from_the_terminal() {
    let site = Site::with_config(ONCALL);
    let server = site.start();
    let env = [("REVEILLE_SERVER", server.url.as_str()), ("REVEILLE_TOKEN", site.token.as_str())];
    let run = |args: &[&str]| {
        let out = reveille(args, &env);
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{args:?}: {stderr}");
        stdout
    };

    let at = run(&["oncall", "--at", "2026-03-09T12:00:00-04:00"]);
    assert!(
        at.contains("schedule primary")
            && at.contains("bob (shadow: dave) until 2026-03-16T13:00:00Z"),
        "{at}"
    );
    assert!(
        at.contains("level 1: bob (shadow: dave), then 5 min")
            && at.contains("level 2: bob, then 5 min"),
        "{at}"
    );

    // Across the spring DST change in New York (2026-03-08): handoffs stay at 09:00 local.
    let calendar = run(&[
        "schedule",
        "show",
        "primary",
        "--days",
        "14",
        "--from",
        "2026-03-02T00:00:00-05:00",
    ]);
    let lines: Vec<&str> = calendar.lines().collect();
    assert_eq!(lines[0], "primary (America/New_York)");
    assert_eq!(lines[1], "Mon 2026-03-02  bob (+dave)  → 09:00 alice (+dave)", "{calendar}");
    assert_eq!(lines[8], "Mon 2026-03-09  alice (+dave)  → 09:00 bob (+dave)", "{calendar}");
    assert_eq!(lines.len(), 15, "{calendar}");

    let added = run(&[
        "override",
        "add",
        "--schedule",
        "primary",
        "--user",
        "alice",
        "--start",
        "2026-03-09T00:00:00Z",
        "--end",
        "2026-03-10T00:00:00Z",
    ]);
    assert!(added.contains("primary") && added.contains("alice"), "{added}");
    assert!(
        run(&["oncall", "--at", "2026-03-09T12:00:00Z", "--schedule", "primary"]).contains("alice")
    );
    assert!(run(&["override", "list"]).contains("#1"));
    run(&["override", "remove", "1"]);
    assert!(run(&["override", "list"]).trim().is_empty());

    let drill = run(&["drill", "--user", "bob"]);
    assert!(drill.contains("is ringing bob"), "{drill}");
    let drills = run(&["drills"]);
    assert!(drills.contains("bob") && drills.contains("not yet"), "{drills}");

    let paged =
        reveille(&["page", "--service", "payments", "--summary", "Disk full", "--json"], &env);
    let id = serde_json::from_slice::<serde_json::Value>(&paged.stdout).unwrap()["incident_id"]
        .to_string();
    run(&["ack", &id]);
    let md = run(&["incident", "export", &id, "--format", "markdown"]);
    assert!(md.starts_with(&format!("# Incident #{id}: Disk full")), "{md}");
    assert!(
        md.contains("| Time (UTC) | Who | What | Details |")
            && md.contains("| alice | acknowledged |"),
        "{md}"
    );
}

#[tokio::test]
async fn phone_setup_gives_a_topic_the_ntfy_app_can_subscribe_to() {
    let site = Site::new();
    let server = site.start();
    let config = site.config();
    let out = reveille(&["phone", "setup", "-c", &config, "--user", "alice"], &[]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let token = stdout.lines().last().unwrap();
    assert!(token.starts_with("rvt_"), "{stdout}");
    let topic =
        stdout.lines().find_map(|l| l.trim().strip_prefix("Topic")).unwrap().trim().to_owned();
    assert!(topic.starts_with("rv_") && topic.len() > 20, "{topic}");
    assert!(
        stdout.contains("Keep alerting for highest priority") && stdout.contains("Service URL"),
        "{stdout}"
    );

    let again = text(&reveille(&["phone", "setup", "-c", &config, "--user", "alice"], &[])).0;
    assert!(again.contains(&topic), "the topic stays the same");

    let basic = base64_basic("alice", token);
    let http = reqwest::Client::new();
    let auth = http
        .get(format!("{}/{topic}/auth", server.url))
        .header("authorization", &basic)
        .send()
        .await
        .unwrap();
    assert_eq!(auth.status(), 200);
    let poll = http
        .get(format!("{}/{topic}/json?poll=1&since=all", server.url))
        .header("authorization", &basic)
        .send()
        .await
        .unwrap();
    assert_eq!(poll.status(), 200);
    let unknown = reveille(&["phone", "setup", "-c", &config, "--user", "mallory"], &[]);
    assert!(!unknown.status.success());
}

fn base64_basic(user: &str, password: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

#[test]
fn serve_raises_its_open_file_limit_so_devices_are_not_refused_at_a_thousand() {
    let site = Site::new();
    let mut command = Command::new("sh");
    // Started under the usual tight soft limit, as a login shell or a service manager may leave it.
    command.args(["-c", "ulimit -Sn 256 && exec \"$0\" serve -c \"$1\""]);
    command.arg(binary()).arg(site.config());
    let server = reveille_tests::Server::spawn(command);
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", server.child.id())).unwrap();
    let line = limits.lines().find(|l| l.starts_with("Max open files")).unwrap();
    let numbers: Vec<&str> = line.split_whitespace().skip(3).take(2).collect();
    assert_eq!(numbers[0], numbers[1], "the soft limit is raised to the hard one: {line}");
    assert_ne!(numbers[0], "256", "{line}");
}

#[test]
fn migrate_brings_the_schema_up_to_date_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("reveille.toml");
    std::fs::write(&config, reveille_tests::CONFIG).unwrap();
    let config = config.display().to_string();
    let (out, err) = text(&reveille(&["migrate", "-c", &config], &[]));
    assert!(out.contains("schema version 0 → "), "{out}{err}");
    let (out, err) = text(&reveille(&["migrate", "-c", &config], &[]));
    assert!(out.contains("up to date"), "{out}{err}");
}

#[tokio::test]
async fn sighup_reloads_the_configuration_and_never_ends_the_server() {
    let site = Site::new();
    let server = site.start();
    let config = std::fs::read_to_string(site.config()).unwrap();
    let added = format!("{config}\n[[services]]\nname = \"db\"\npage = [\"alice\"]\n");
    std::fs::write(site.config(), added).unwrap();
    let key = reveille_tests::last_line(&reveille(
        &["key", "create", "-c", &site.config(), "--service", "db"],
        &[],
    ));
    let hup = Command::new("kill").args(["-HUP", &server.child.id().to_string()]).status();
    assert!(hup.is_ok_and(|s| s.success()));
    // The reload says so in /healthz once it is done.
    let http = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let health = http.get(format!("{}/healthz", server.url)).send().await;
        let health: serde_json::Value = health.unwrap().json().await.unwrap();
        if health["last_reload"]["ok"] == true {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no reload: {health}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let body = json!({"summary": "Replication lag"});
    let sent = http.post(format!("{}/api/v1/events", server.url)).bearer_auth(&key).json(&body);
    assert_eq!(sent.send().await.unwrap().status(), 202, "the new service takes alerts");
}

#[test]
fn phone_vcard_lists_every_number_pages_come_from() {
    let config = format!(
        "{}\n[twilio]\naccount_sid = \"AC0123456789abcdef0123456789abcdef\"\nauth_token_file = \"twilio.token\"\n\
         from = \"+15550001111\"\n[sms]\nnumber = \"+4915199999999\"\noutbox = \"outbox\"\ninbox = \"inbox\"\n",
        reveille_tests::CONFIG
    );
    let site = Site::with_files(
        &config,
        &[("twilio.token", "token"), ("outbox/.keep", ""), ("inbox/.keep", "")],
    );
    let out = site.dir.path().join("reveille.vcf");
    let written =
        reveille(&["phone", "vcard", "-c", &site.config(), "--out", out.to_str().unwrap()], &[]);
    assert!(written.status.success(), "{}", String::from_utf8_lossy(&written.stderr));
    let card = std::fs::read_to_string(out).unwrap();
    assert!(
        card.starts_with("BEGIN:VCARD\r\nVERSION:3.0\r\n") && card.ends_with("END:VCARD\r\n"),
        "{card}"
    );
    assert!(
        card.contains("TEL;TYPE=VOICE,TEXT:+15550001111\r\n")
            && card.contains("TEL;TYPE=TEXT:+4915199999999\r\n"),
        "{card}"
    );
    let none = reveille(&["phone", "vcard", "-c", &Site::new().config()], &[]);
    assert!(!none.status.success());
    assert!(String::from_utf8_lossy(&none.stderr).contains("no caller ID or sender number"));
}
