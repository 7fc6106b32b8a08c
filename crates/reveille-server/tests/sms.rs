//! Texts through a GSM modem's gammu-smsd (the real one, with its dummy modem): one text per
//! page, a reply from the person's own number acts as them, and texts from anyone else, or
//! about an incident that is not theirs, do nothing but say so.

mod common;

use common::Harness;
use reveille_protocol::IncidentState;
use reveille_tests::telephony::Gammu;

const ALICE: &str = "+4915112345678";
const BOB: &str = "+4915187654321";

async fn server(gammu: &Gammu, rules: &str) -> Harness {
    let people = format!(
        "[[users]]\nname = \"alice\"\nphone = \"{ALICE}\"\n[users.notify]\nhigh = {rules}\n\
         [[users]]\nname = \"bob\"\nphone = [\"+4930123456\", \"{BOB}\"]\n[users.notify]\nhigh = []\n"
    );
    let config = format!(
        "{}\n[sms]\noutbox = \"{}\"\ninbox = \"{}\"\nsent = \"{}\"\nerror = \"{}\"\n",
        common::CONFIG.replace("[[users]]\nname = \"alice\"\n[[users]]\nname = \"bob\"\n", &people),
        gammu.path("outbox"),
        gammu.path("inbox"),
        gammu.path("sent"),
        gammu.path("error"),
    );
    Harness::with_config(&config).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_is_one_text_and_a_reply_acknowledges_it() {
    if !Gammu::installed() {
        return;
    }
    let gammu = Gammu::start();
    let h = server(&gammu, r#"["sms"]"#).await;
    let id = h.trigger("db-1/disk", "Disk full on db-1 – “urgent”").await;
    let (to, text) = gammu.until_sent(1).await.remove(0);
    assert_eq!(to, ALICE);
    assert_eq!(
        text,
        format!(
            "Reveille #{id} payments CRITICAL: Disk full on db-1 - \"urgent\" Reply 4 {id} to ack, 6 {id} to escalate"
        )
    );
    assert!(text.chars().count() <= 160);
    h.timeline_line(id, "sms_sent", "handed to gammu-smsd").await;
    h.timeline_line(id, "sms_transmitted", "The modem sent the text").await;

    gammu.receive(ALICE, &format!("4 {id}"));
    h.timeline_line(id, "sms_ack", ALICE).await;
    let incident = h.store().incident(id).await.unwrap().incident;
    assert_eq!(
        (incident.state, incident.acknowledged_by.as_deref()),
        (IncidentState::Acknowledged, Some("alice"))
    );
    let (to, answer) = gammu.until_sent(2).await.remove(1);
    assert_eq!((to.as_str(), answer.as_str()), (ALICE, format!("Acknowledged #{id}.").as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn texts_from_strangers_or_about_others_incidents_change_nothing() {
    if !Gammu::installed() {
        return;
    }
    let gammu = Gammu::start();
    let h = server(&gammu, r#"["sms"]"#).await;
    let id = h.trigger("db-1/disk", "Disk full on db-1").await;
    gammu.until_sent(1).await;

    // Someone who is nobody here: a note, no ack, no answer.
    gammu.receive("+15550000000", &format!("4 {id}"));
    let ignored = h.timeline_line(id, "sms_ignored", "+15550000000").await;
    assert!(ignored.contains("nothing was done"), "{ignored}");
    // Carol's incident, acknowledged by bob's second number: refused, and he is told.
    let web = h.trigger_on("web", "web-1/slow", "Web slow").await;
    gammu.receive(&BOB.replace("+", "00"), &format!("ack {web}"));
    let refused = h.timeline_line(web, "sms_refused", "was not paged to bob").await;
    assert!(refused.contains(BOB), "{refused}");
    // Words Reveille does not know, from alice: she is told how to answer.
    gammu.receive(ALICE, "on my way");
    let sent = gammu.until_sent(3).await;
    assert_eq!(
        sent[1],
        (BOB.to_owned(), format!("#{web} was not paged to you; nothing was done."))
    );
    assert_eq!(sent[2].0, ALICE);
    assert!(sent[2].1.contains("did not understand"), "{sent:?}");
    for i in [id, web] {
        assert_eq!(h.store().incident(i).await.unwrap().incident.state, IncidentState::Triggered);
    }
    assert!(sent.iter().all(|(to, _)| to != "+15550000000"), "a stranger is never answered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_is_one_text_and_a_bare_4_acknowledges_all_of_it() {
    if !Gammu::installed() {
        return;
    }
    let gammu = Gammu::start();
    let h = server(&gammu, r#"["sms after 1m"]"#).await;
    let alerts: Vec<serde_json::Value> = (1..=3)
        .map(|n| serde_json::json!({"status": "firing", "labels": {"alertname": "DiskFull", "instance": format!("db-{n}")},
                       "annotations": {"summary": format!("Disk full on db-{n}")}}))
        .collect();
    let group = serde_json::json!({"version": "4", "status": "firing", "groupKey": "{}:{alertname=\"DiskFull\"}",
                       "receiver": "reveille", "alerts": alerts});
    let (status, landed) =
        h.post(&format!("/api/v1/alertmanager/{}", h.key), None, &group.to_string()).await;
    assert_eq!(status, 200, "{landed}");
    let ids: Vec<i64> =
        landed.as_array().unwrap().iter().map(|l| l["incident_id"].as_i64().unwrap()).collect();
    h.advance(61);
    let (_, text) = gammu.until_sent(1).await.remove(0);
    assert!(text.starts_with("Reveille: 3 incidents. "), "{text}");
    assert!(text.ends_with("Reply 4 <n> to ack, 6 <n> to escalate"), "{text}");
    gammu.receive(ALICE, "4");
    for &id in &ids {
        h.timeline_line(id, "sms_ack", ALICE).await;
    }
    let (_, answer) = gammu.until_sent(2).await.remove(1);
    assert_eq!(
        answer,
        format!("Acknowledged #{}. Acknowledged #{}. Acknowledged #{}.", ids[0], ids[1], ids[2])
    );
}
