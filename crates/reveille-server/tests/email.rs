//! Email against a real SMTP server on loopback (aiosmtpd from PyPI, STARTTLS and AUTH required),
//! reading the messages it stored: a page mail with a working acknowledge link, the change as a
//! threaded reply, a person's delay and the stop on acknowledge, and a storm as one digest.

mod common;

use std::time::Duration;

use common::Harness;
use common::smtp::{PASSWORD, start_smtp};
use reveille_protocol::IncidentState;
use serde_json::{Value, json};

fn config(port: u16) -> String {
    let alice = "[[users]]\nname = \"alice\"\n";
    let with_mail = "[[users]]\nname = \"alice\"\nemail = \"alice@example.com\"\ntime_zone = \"Europe/Berlin\"\n\
                     [users.notify]\nlow = [\"email after 10m\"]\n";
    format!(
        "{}\n[email]\nhost = \"127.0.0.1\"\nport = {port}\nsecurity = \"starttls\"\n\
         from = \"Reveille <pager@reveille.test>\"\nusername = \"reveille\"\n\
         password_file = \"smtp.password\"\nca_file = \"smtp-ca.pem\"\n",
        common::CONFIG.replace(alice, with_mail)
    )
}

async fn low(h: &Harness, key: &str) -> i64 {
    let body = json!({
        "routing_key": h.key, "event_action": "trigger", "dedup_key": key,
        "payload": {"summary": format!("Queue slow ({key})"), "source": "test", "severity": "warning"}
    });
    assert_eq!(h.post("/v2/enqueue", None, &body.to_string()).await.0, 202);
    h.incidents().await.iter().find(|i| i.dedup_key == key).unwrap().id
}

#[tokio::test]
async fn pages_reach_people_by_email_and_stop_when_acknowledged() {
    let Some(python) = common::python_tools("python").map(|d| d.join("python")) else { return };
    let smtp = start_smtp(python);
    let files = [("smtp.password", PASSWORD), ("smtp-ca.pem", smtp.cert.as_str())];
    let h = Harness::with_files(&config(smtp.port), jiff::Timestamp::now(), &files).await;

    // A high-urgency page: a mail at once, with the summary, runbook and acknowledge link.
    let id = h.trigger("db-1/disk", "Disk full on db-1").await;
    let mail = smtp.until(1).await.remove(0);
    assert_eq!(mail["to"], "alice@example.com");
    assert_eq!(mail["subject"], format!("[Reveille] critical payments: Disk full on db-1 (#{id})"));
    let body = mail["body"].as_str().unwrap();
    assert!(body.contains("Runbook: http://reveille.test/api/v1/runbooks/payments"), "{body}");
    h.timeline_line(id, "email_sent", "Email to alice@example.com accepted: 250").await;
    let link = body.lines().find(|l| l.contains("/api/v1/links/ack/")).unwrap().trim();
    let link = link.replace("http://reveille.test", &h.url);

    // Opening the link (as a mail scanner would) only asks; the button acknowledges, once.
    let page = h.http.get(&link).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-security-policy"].to_str().unwrap().contains("default-src 'none'")
    );
    let html = page.text().await.unwrap();
    assert!(
        html.contains("Disk full on db-1") && html.contains("<form method=\"post\">"),
        "{html}"
    );
    assert_eq!(h.store().incident(id).await.unwrap().incident.state, IncidentState::Triggered);
    let acked = h.http.post(&link).header("accept", "text/html").send().await.unwrap();
    assert_eq!(acked.status(), 200);
    assert!(acked.text().await.unwrap().contains("acknowledged by alice"));
    assert_eq!(
        h.store().incident(id).await.unwrap().incident.acknowledged_by.as_deref(),
        Some("alice")
    );
    assert_eq!(h.http.post(&link).send().await.unwrap().status(), 409, "single use");

    // The change comes as a reply in the page's thread, after the minute between two mails.
    h.advance(61);
    let reply = smtp.until(2).await.remove(1);
    assert_eq!(reply["in_reply_to"], mail["message_id"]);
    assert_eq!(reply["subject"], format!("Re: {}", mail["subject"].as_str().unwrap()));
    assert!(reply["body"].as_str().unwrap().contains("is now acknowledged by alice"));

    // Low urgency waits alice's 10 minutes; one acknowledged meanwhile is never mailed.
    let waits = low(&h, "queue-1").await;
    let dropped = low(&h, "queue-2").await;
    h.advance(5 * 60);
    let (status, _) = h
        .post(&format!("/api/v1/incidents/{dropped}/ack"), Some(&format!("Bearer {}", h.bob)), "")
        .await;
    assert_eq!(status, 200);
    assert_eq!(smtp.mails().len(), 2, "nothing before the 10 minutes");
    h.advance(5 * 60 + 1);
    let third = smtp.until(3).await.remove(2);
    assert!(third["subject"].as_str().unwrap().contains(&format!("(#{waits})")), "{third}");
    assert!(!third["body"].as_str().unwrap().contains("queue-2"), "{third}");
    let timeline = h.store().incident(dropped).await.unwrap().timeline;
    assert!(timeline.iter().all(|e| !e.kind.starts_with("email")), "{timeline:?}");

    // A storm within the minute after that mail: one digest, not one mail per page.
    for n in 0..40 {
        h.trigger(&format!("storm-{n}"), &format!("Storm {n}")).await;
    }
    // (The notifier may not have taken every page in before the clock moves: then the rest is
    // the next digest, a minute later. Either way, two mails at most for 40 pages.)
    let mut told = Vec::new();
    let mut storm_mails = 0;
    while told.len() < 40 {
        assert!(storm_mails < 2, "40 pages took more than 2 mails");
        h.advance(61);
        let mails = smtp.until(4 + storm_mails).await;
        let digest = &mails[3 + storm_mails];
        storm_mails += 1;
        let body = digest["body"].as_str().unwrap();
        told.extend((0..40).filter(|n| body.contains(&format!("Storm {n}\n"))));
    }
    told.sort();
    told.dedup();
    assert_eq!(told.len(), 40, "every page of the storm told once");
    h.advance(61);
    // Nothing more is owed: one more page is mailed on its own.
    h.trigger("after", "After the storm").await;
    let mails = smtp.until(4 + storm_mails).await;
    assert_eq!(mails.len(), 4 + storm_mails);
    assert!(mails[3 + storm_mails]["subject"].as_str().unwrap().contains("After the storm"));
}

#[tokio::test]
async fn people_set_their_own_rules_through_the_api() {
    let Some(python) = common::python_tools("python").map(|d| d.join("python")) else { return };
    let smtp = start_smtp(python);
    let files = [("smtp.password", PASSWORD), ("smtp-ca.pem", smtp.cert.as_str())];
    let h = Harness::with_files(&config(smtp.port), jiff::Timestamp::now(), &files).await;
    let (status, shown) = h.get("/api/v1/me/notify", &h.alice).await;
    assert_eq!(status, 200);
    let expected = json!({"user": "alice", "source": "config", "channels": ["email"],
        "time_zone": "Europe/Berlin", "high": ["email"], "low": ["email after 10m"], "quiet_hours": null});
    assert_eq!(shown, expected);
    let put = |body: Value| {
        let request = h.http.put(format!("{}/api/v1/me/notify", h.url)).bearer_auth(&h.alice);
        request.json(&body).send()
    };
    let refused = put(json!({"high": ["pigeon"]})).await.unwrap();
    assert_eq!(refused.status(), 400);
    let error: Value = refused.json().await.unwrap();
    assert_eq!(error["field"], "high[0]");
    let refused = put(json!({"low": ["matrix"]})).await.unwrap();
    assert_eq!(refused.status(), 400, "alice has no Matrix here");
    let set: Value = put(json!({"low": ["email"]})).await.unwrap().json().await.unwrap();
    assert_eq!((set["source"].as_str(), set["low"].clone()), (Some("api"), json!(["email"])));

    // The rule set through the API decides: a low-urgency page is mailed at once, not in 10 min.
    let id = low(&h, "queue-api").await;
    let mail = smtp.until(1).await.remove(0);
    assert!(mail["subject"].as_str().unwrap().contains(&format!("(#{id})")), "{mail}");

    let back: Value = h
        .http
        .delete(format!("{}/api/v1/me/notify", h.url))
        .bearer_auth(&h.alice)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(back["source"], "config");
}

/// alice's email as the readiness board shows it.
async fn email_reach(h: &Harness) -> Value {
    let (_, board) = h.get("/api/v1/readiness", &h.alice).await;
    let alice = board["people"].as_array().unwrap().iter().find(|p| p["user"] == "alice").unwrap();
    let devices = alice["devices"].as_array().unwrap();
    devices.iter().find(|d| d["kind"] == "email").cloned().unwrap()
}

#[tokio::test]
async fn a_greylisting_server_gets_the_page_later_and_a_refusal_is_final() {
    let Some(python) = common::python_tools("python").map(|d| d.join("python")) else { return };
    let smtp = start_smtp(python);
    let files = [("smtp.password", PASSWORD), ("smtp-ca.pem", smtp.cert.as_str())];
    let h = Harness::with_files(&config(smtp.port), jiff::Timestamp::now(), &files).await;
    // Once the notifier has said it will try again (its `retries`-th email_retry line, when it
    // has set the time of the next attempt), moves the server's clock on and waits for that
    // attempt to reach the mail server.
    let smtp = &smtp;
    let h = &h;
    let attempt_after = |id: i64, seconds: i64, retries: usize| async move {
        h.timeline_lines(id, "email_retry", retries).await;
        let (refused, mails) = (smtp.refused(), smtp.mails().len());
        h.advance(seconds);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while smtp.refused() == refused && smtp.mails().len() == mails {
            assert!(tokio::time::Instant::now() < deadline, "no attempt {seconds} s later");
            // Another process's files: there is nothing to wait on but them.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };

    // The mail server answers 451 for the first two minutes (of the server's clock).
    smtp.refuse("defer", true);
    let id = h.trigger("db-1/disk", "Disk full on db-1").await;
    let first = h.timeline_line(id, "email_retry", "451").await;
    assert!(first.contains("deferred") && first.contains("trying again in 30 s"), "{first}");
    let reach = email_reach(h).await;
    assert_eq!(reach["live"], false, "a failing email does not count: {reach}");
    attempt_after(id, 31, 1).await;
    attempt_after(id, 61, 2).await;
    assert_eq!(smtp.refused(), 3, "tried at 0 s, 30 s and 90 s");
    assert!(smtp.mails().is_empty());
    smtp.refuse("defer", false);
    attempt_after(id, 121, 3).await;
    let mail = smtp.until(1).await.remove(0);
    assert!(mail["subject"].as_str().unwrap().contains(&format!("(#{id})")), "{mail}");
    h.timeline_line(id, "email_sent", "accepted").await;
    let timeline = h.store().incident(id).await.unwrap().timeline;
    let retries = timeline.iter().filter(|e| e.kind == "email_retry").count();
    assert_eq!(retries, 3, "{timeline:?}");
    assert!(timeline.iter().all(|e| e.kind != "email_failed"), "{timeline:?}");
    let reach = email_reach(h).await;
    assert_eq!(reach["live"], true, "reachable again once a mail went: {reach}");

    // A permanent refusal is final at once: one attempt, no retry, said on the timeline.
    smtp.refuse("reject", true);
    h.advance(61);
    let gone = h.trigger("db-2/disk", "Disk full on db-2").await;
    let failed = h.timeline_line(gone, "email_failed", "550").await;
    assert!(failed.contains("No such user"), "{failed}");
    h.advance(20 * 60);
    let later = h.trigger("db-3/disk", "Disk full on db-3").await;
    h.timeline_line(later, "email_failed", "550").await;
    assert_eq!(smtp.refused(), 5, "one attempt for each, never again");
    let timeline = h.store().incident(gone).await.unwrap().timeline;
    assert!(timeline.iter().all(|e| e.kind != "email_retry"), "{timeline:?}");
    assert_eq!(email_reach(h).await["live"], false);
}
