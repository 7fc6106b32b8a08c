//! Tools that notify through ntfy page through Reveille: the real Apprise (from PyPI) with its
//! `ntfy://` URLs, and the `curl` examples of ntfy's publishing docs, against `reveille serve`.

use std::process::{Command, Output};
use std::time::Duration;

use reveille_tests::{Feed, Site, get_json, python_bin};
use serde_json::Value;

/// The usual test site (its `payments` service last) with topics for `payments` and `web`.
fn config() -> String {
    let web =
        "\n[[services]]\nname = \"web\"\npage = [\"alice\"]\nntfy_topics = [\"web-alerts\"]\n";
    format!("{}ntfy_topics = [\"payments-alerts\", \"backups\"]\n{web}", reveille_tests::CONFIG)
}

const PATIENCE: Duration = Duration::from_secs(10);

fn run(program: &std::path::Path, args: &[&str]) -> Output {
    Command::new(program).args(args).output().expect("run")
}

#[tokio::test]
async fn apprise_pages_through_ntfy_urls() {
    let Some(apprise) = python_bin("apprise") else { return };
    let site = Site::with_config(&config());
    let server = site.start();
    let mut feed = Feed::open(&server.url, &site.token).await;
    let host = server.url.trim_start_matches("http://");
    let key = &site.key;

    // Basic auth with the integration key as the password, priority max: a page that rings.
    let url = format!("ntfy://apprise:{key}@{host}/payments-alerts?priority=max");
    let out = run(&apprise, &["-vv", "-t", "Payments down", "-b", "5xx on every checkout", &url]);
    assert!(out.status.success(), "apprise failed: {}", String::from_utf8_lossy(&out.stderr));
    let (kind, page) = feed.entry(PATIENCE).await;
    assert_eq!(kind, "page");
    let incident = &page["incident"];
    assert_eq!(incident["summary"], "Payments down");
    assert_eq!(incident["service"], "payments");
    assert_eq!(
        (incident["severity"].as_str(), incident["urgency"].as_str()),
        (Some("critical"), Some("high"))
    );
    assert_eq!(incident["details"]["ntfy"]["message"], "5xx on every checkout");

    // A token in the URL (Bearer), Apprise's default priority: a quiet, low-urgency page.
    let url = format!("ntfy://{host}/backups?token={}", site.token);
    let out = run(&apprise, &["-t", "Nightly backup", "-b", "took 3 h", &url]);
    assert!(out.status.success(), "apprise failed: {}", String::from_utf8_lossy(&out.stderr));
    let (_, page) = feed.entry(PATIENCE).await;
    assert_eq!(page["incident"]["summary"], "Nightly backup");
    assert_eq!(page["incident"]["urgency"], "low");

    // A wrong key fails in Apprise (it reads ntfy's error) and stores nothing.
    let list = format!("{}/api/v1/incidents?all=true&limit=1000", server.url);
    let before = get_json(&list, &site.token).await;
    let url = format!("ntfy://apprise:wrong@{host}/payments-alerts?priority=max");
    let out = run(&apprise, &["-vv", "-t", "x", "-b", "y", &url]);
    assert!(!out.status.success(), "apprise reported success with a wrong key");
    let said =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("unauthorized"), "apprise did not show ntfy's error: {said}");
    // A key of one service cannot publish to another service's topic.
    let url = format!("ntfy://apprise:{key}@{host}/web-alerts?priority=max");
    assert!(!run(&apprise, &["-t", "x", "-b", "y", &url]).status.success());
    assert_eq!(get_json(&list, &site.token).await, before);
}

#[tokio::test]
async fn the_curl_examples_of_ntfys_publishing_docs() {
    let site = Site::with_config(&config());
    let server = site.start();
    let mut feed = Feed::open(&server.url, &site.token).await;
    let topic = format!("{}/payments-alerts", server.url);
    let key = format!(":{}", site.key);
    let bearer = format!("Authorization: Bearer {}", site.key);

    // curl -d "Backup successful 😀" ntfy.sh/mytopic
    let (status, answer) = post(&key, &[], "Backup successful 😀", &topic);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (answer["event"].as_str(), answer["topic"].as_str()),
        (Some("message"), Some("payments-alerts"))
    );
    assert_eq!(answer["message"], "Backup successful 😀");
    assert_eq!(answer["id"].as_str().map(str::len), Some(12));
    assert!(answer["time"].as_i64().unwrap() > 1_700_000_000);
    let (_, page) = feed.entry(PATIENCE).await;
    let incident = &page["incident"];
    assert_eq!(
        (incident["summary"].as_str(), incident["urgency"].as_str()),
        (Some("Backup successful 😀"), Some("low"))
    );

    // Title, priority and tags as headers, the key as a Bearer token.
    let headers = [
        bearer.as_str(),
        "Title: Unauthorized access detected",
        "Priority: urgent",
        "Tags: warning,skull",
    ];
    let (status, answer) =
        post("", &headers, "Remote access to phils-laptop detected. Act right away.", &topic);
    assert_eq!(status, 200, "{answer}");
    assert_eq!((answer["priority"].as_u64(), answer["tags"][1].as_str()), (Some(5), Some("skull")));
    let (kind, page) = feed.entry(PATIENCE).await;
    assert_eq!((kind.as_str(), page["incident"]["urgency"].as_str()), ("page", Some("high")));
    assert_eq!(page["incident"]["summary"], "Unauthorized access detected");

    // The query-parameter forms, and `?auth=` carrying the whole Authorization header.
    let auth = base64_url(&format!("Bearer {}", site.key));
    let (status, answer) = post(
        "",
        &[],
        "5.1 GB left",
        &format!("{topic}?title=Disk%20low&p=high&tags=cd&auth={auth}"),
    );
    assert_eq!(status, 200, "{answer}");
    let (_, page) = feed.entry(PATIENCE).await;
    let incident = &page["incident"];
    assert_eq!(
        (incident["summary"].as_str(), incident["severity"].as_str()),
        (Some("Disk low"), Some("error"))
    );

    // Action buttons: the view action is a link on the incident.
    let actions = r#"Actions: view, Open portal, https://home.nest.com/, clear=true; http, Turn down, https://api.nest.com/, body='{"temperature": 65}'"#;
    let (status, _) =
        post(&key, &["Title: A/C", actions], "You left the house. Turn down the A/C?", &topic);
    assert_eq!(status, 200);
    let (_, page) = feed.entry(PATIENCE).await;
    let link = &page["incident"]["links"][0];
    assert_eq!(
        (link["href"].as_str(), link["text"].as_str()),
        (Some("https://home.nest.com/"), Some("Open portal"))
    );

    // Publishing as JSON to the root.
    let json = r#"{"topic": "payments-alerts", "message": "Disk space is low at 5.1 GB",
        "title": "Low disk space alert", "tags": ["warning","cd"], "priority": 4,
        "click": "https://homecamera.lan/xasds1h2xsSsa/",
        "actions": [{ "action": "view", "label": "Admin panel", "url": "https://filesrv.lan/admin" }]}"#;
    let (status, answer) = post(&key, &[], json, &format!("{}/", server.url));
    assert_eq!((status, answer["title"].as_str()), (200, Some("Low disk space alert")), "{answer}");
    let (_, page) = feed.entry(PATIENCE).await;
    let incident = &page["incident"];
    assert_eq!(
        (incident["summary"].as_str(), incident["urgency"].as_str()),
        (Some("Low disk space alert"), Some("high"))
    );

    // A sequence ID keys the incident; the same ID tagged `resolved` resolves it.
    let (status, _) = post(&key, &["X-Sequence-ID: db-1", "p: 5"], "db-1 is down", &topic);
    assert_eq!(status, 200);
    let (_, page) = feed.entry(PATIENCE).await;
    let id = page["incident"]["id"].clone();
    let (status, _) =
        post(&key, &["X-Sequence-ID: db-1", "Tags: resolved"], "db-1 is back", &topic);
    assert_eq!(status, 200);
    let (kind, change) = feed.entry(PATIENCE).await;
    assert_eq!((kind.as_str(), &change["incident"]["id"]), ("incident", &id));
    assert_eq!(change["incident"]["state"], "resolved");

    // Mistakes get ntfy's error shape, naming what is wrong, and store nothing.
    let list = format!("{}/api/v1/incidents?all=true&limit=1000", server.url);
    let before = get_json(&list, &site.token).await;
    let code = |(status, error): (u16, Value)| {
        (
            status,
            error["code"].as_u64().unwrap_or(0),
            error["error"].as_str().unwrap_or("").to_owned(),
        )
    };
    let (status, code_, error) = code(post(&key, &["Priority: 9"], "x", &topic));
    assert_eq!((status, code_), (400, 40007));
    assert!(error.contains("X-Priority"), "{error}");
    assert_eq!(code(post("", &[], "x", &topic)).1, 40301);
    assert_eq!(code(post(":wrong", &[], "x", &topic)).1, 40101);
    let (status, _, error) = code(post(&key, &[], "x", &format!("{}/nobodys-topic", server.url)));
    assert!(status == 404 && error.contains("ntfy_topics"), "{status} {error}");
    assert_eq!(code(post(&key, &[], "x", &format!("{}/web-alerts", server.url))).1, 40301);
    let (status, code_, error) =
        code(post(&key, &[], r#"{"topic": 5}"#, &format!("{}/", server.url)));
    assert_eq!((status, code_), (400, 40017), "{error}");
    assert_eq!(get_json(&list, &site.token).await, before);
}

/// `curl [-u AUTH] [-H HEADER]… -d BODY URL`: the status and the JSON answer.
fn post(auth: &str, headers: &[&str], body: &str, url: &str) -> (u16, Value) {
    let mut args = vec!["-sS", "-w", "\n%{http_code}", "-d", body, url];
    if !auth.is_empty() {
        args.extend(["-u", auth]);
    }
    for header in headers {
        args.extend(["-H", header]);
    }
    let out = Command::new("curl").args(&args).output().expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').expect("curl printed a status");
    (status.parse().unwrap(), serde_json::from_str(body.trim()).unwrap_or(Value::Null))
}

fn base64_url(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}
