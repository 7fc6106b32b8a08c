//! Calls over the team's own SIP line, against real programs on loopback: Kamailio as the PBX
//! (digest auth), baresip as a softphone that records what it hears and presses keys, SIPp as
//! phones that press keys, are busy, never answer, or answer with garbage. What is asserted is
//! what the person and the team would notice: the call says the page (speech of the right
//! length, not silence), 4 acknowledges it everywhere, 6 pages the next level, a call nobody
//! answers moves the person on to their next step at once, and each failure is named on the
//! timeline.

mod common;

use std::time::Duration;

use common::Harness;
use reveille_protocol::IncidentState;
use reveille_tests::telephony::{
    self, Baresip, Kamailio, LINE_PASSWORD, LINE_USER, SOFTPHONE, Sipp,
};

/// A server whose line goes through `kamailio`; alice has `phone` and `rules`.
async fn server(kamailio: &Kamailio, phone: &str, rules: &str, extra: &str) -> Harness {
    server_with(&kamailio.server("udp"), LINE_PASSWORD, phone, rules, extra).await
}

async fn server_with(sip: &str, password: &str, phone: &str, rules: &str, extra: &str) -> Harness {
    let alice = format!(
        "[[users]]\nname = \"alice\"\nphone = \"{phone}\"\n[users.notify]\nhigh = {rules}\n"
    );
    let mut base = common::CONFIG.replace("[[users]]\nname = \"alice\"\n", &alice);
    if extra.contains("[[policies]]") {
        base = base.replace("page = [\"alice\", \"bob\"]", "policy = \"ladder\"");
    }
    let config = format!(
        "{}\n[sip]\nserver = \"{sip}\"\nuser = \"{LINE_USER}\"\npassword_file = \"sip.password\"\n\
         from = \"sip:{LINE_USER}@reveille.test\"\nlisten = \"127.0.0.1:0\"\nring_seconds = 5\n{extra}\n",
        base,
    );
    let files = [("sip.password", password)];
    Harness::with_files(&config, jiff::Timestamp::now(), &files).await
}

fn kinds(timeline: &[reveille_protocol::TimelineEntry]) -> Vec<String> {
    timeline.iter().map(|e| format!("{} {}: {}", e.actor, e.kind, e.message)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_says_the_page_and_4_acknowledges_it_on_every_device() {
    if !telephony::installed() {
        return;
    }
    let kamailio = Kamailio::start();
    let phone = Baresip::start(&kamailio);
    let h = server(&kamailio, SOFTPHONE, r#"["call"]"#, "").await;
    let mut bobs_feed = h.feed(&h.bob, None).await;

    let id = h.trigger("db-1/disk", "Disk full on db-1").await;
    h.timeline_line(id, "call_ringing", SOFTPHONE).await;
    let answered = h.timeline_line(id, "call_answered", "said").await;
    let said = answered.split("said: \"").nth(1).unwrap().trim_end_matches('"').to_owned();
    assert!(
        said.starts_with(&format!(
            "Reveille page. Incident {id}, payments, critical: Disk full on db-1."
        )),
        "{said}"
    );

    // The phone hears the whole page before pressing anything: as long as espeak-ng says it
    // (the greeting, rendered once for every call, then the page).
    let body = said.strip_prefix("Reveille page. ").unwrap();
    let prompt = [telephony::speech("Reveille page."), telephony::speech(body)].concat();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    while phone.heard().len() < prompt.len() + 4000 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the phone heard {} samples",
            phone.heard().len()
        );
        // Another process's recording: nothing to wait on but the file.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    phone.press('4');
    h.timeline_line(id, "call_ack", "pressing 4").await;
    let incident = h.store().incident(id).await.unwrap().incident;
    assert_eq!(incident.state, IncidentState::Acknowledged);
    assert_eq!(incident.acknowledged_by.as_deref(), Some("alice"));
    // Every device stops ringing: bob's feed (his phone, his desktop) carries the ack.
    loop {
        let (_, kind, entry) = bobs_feed.entry().await;
        if kind == "incident" {
            assert_eq!(entry["incident"]["state"], "acknowledged", "{entry}");
            break;
        }
    }

    // What the phone heard: speech as long as the page (not silence, not a tone cut short).
    let heard = phone.heard();
    let (heard_span, heard_rms) = telephony::speech_span(&heard, 0.01);
    let (said_span, _) = telephony::speech_span(&prompt, 0.01);
    assert!(heard_rms > 0.02, "speech, not silence: RMS {heard_rms}");
    assert!(
        (heard_span - said_span).abs() < 0.4,
        "heard {heard_span:.2} s of speech for a {said_span:.2} s page"
    );
    let lines = kinds(&h.store().incident(id).await.unwrap().timeline);
    let order: Vec<&str> = ["call_ringing", "call_answered", "call_ack", "acknowledged"]
        .into_iter()
        .filter(|k| lines.iter().any(|l| l.starts_with(&format!("alice {k}:"))))
        .collect();
    assert_eq!(order.len(), 4, "{lines:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_on_the_keypad_pages_the_next_level_and_sip_info_keys_count() {
    if !telephony::installed() {
        return;
    }
    let kamailio = Kamailio::start();
    // A phone that sends no audio at all and presses 6 as SIP INFO.
    let mut phone = Sipp::phone("info.xml", &[("@KEY@", "6"), ("@PAUSE@", "500")], 1);
    let ladder = "[[policies]]\nname = \"ladder\"\n[[policies.levels]]\nusers = [\"alice\"]\ndelay_minutes = 30\n\
                  [[policies.levels]]\nusers = [\"bob\"]\ndelay_minutes = 30\n";
    let h = server(&kamailio, &phone.number(), r#"["call"]"#, ladder).await;
    let mut bobs_feed = h.feed(&h.bob, None).await;

    let id = h.trigger("db-1/disk", "Disk full on db-1").await;
    let asked = h.timeline_line(id, "escalate_requested", "pressing 6").await;
    assert!(asked.contains(&phone.number()), "{asked}");
    let (_, kind, entry) = bobs_feed.entry().await;
    assert_eq!(
        (kind.as_str(), entry["incident"]["id"].as_i64()),
        ("page", Some(id)),
        "bob is paged at once, not in 30 minutes"
    );
    let incident = h.store().incident(id).await.unwrap().incident;
    assert_eq!(incident.escalation.unwrap().level, 1);
    assert_eq!(incident.state, IncidentState::Triggered, "6 is no acknowledgement");
    let (status, messages) = phone.finished(Duration::from_secs(30)).await;
    assert!(status.success(), "the phone was hung up on after its key: {messages}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pbx_that_asks_for_sha256_digests_gets_them_over_tcp() {
    if !telephony::installed() {
        return;
    }
    let kamailio = Kamailio::start_with(&["WITH_SHA256"]);
    let mut phone = Sipp::phone("phone.xml", &[("@KEY@", "4"), ("@PAUSE@", "300")], 1);
    let h = server_with(&kamailio.server("tcp"), LINE_PASSWORD, &phone.number(), r#"["call"]"#, "")
        .await;
    let id = h.trigger("db-1/disk", "Disk full on db-1").await;
    h.timeline_line(id, "call_ack", "pressing 4").await;
    assert!(kamailio.log().contains("auth: INVITE user reveille ok"), "{}", kamailio.log());
    let (status, messages) = phone.finished(Duration::from_secs(20)).await;
    assert!(status.success(), "{messages}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_and_unanswered_calls_move_the_person_on_at_once() {
    if !telephony::installed() {
        return;
    }
    let kamailio = Kamailio::start();
    let busy = Sipp::phone("busy.xml", &[], 2);
    let h = server(&kamailio, &busy.number(), r#"["call", "call after 10m"]"#, "").await;
    let id = h.trigger("db-1/disk", "Disk full on db-1").await;
    // Both steps, without the clock moving: busy moved alice on to her second call.
    h.timeline_lines(id, "call_busy", 2).await;
    let lines = kinds(&h.store().incident(id).await.unwrap().timeline);
    assert!(lines.iter().any(|l| l.contains("486 Busy Here")), "{lines:#?}");
    drop(h);

    let mut ringing = Sipp::phone("noanswer.xml", &[], 1);
    let h = server(&kamailio, &ringing.number(), r#"["call", "call after 10m"]"#, "").await;
    let id = h.trigger("db-2/disk", "Disk full on db-2").await;
    let line = h.timeline_line(id, "call_no_answer", "nobody answered in 5 s").await;
    assert!(line.contains(&ringing.number()), "{line}");
    let (status, messages) = ringing.finished(Duration::from_secs(20)).await;
    assert!(status.success(), "the phone got a CANCEL: {messages}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_and_broken_phones_are_named_on_the_timeline() {
    if !telephony::installed() {
        return;
    }
    let kamailio = Kamailio::start();

    // A wrong password: the PBX's 403, and what to check.
    let phone = Sipp::phone("listen.xml", &[], 1);
    let h = server_with(&kamailio.server("udp"), "wrong", &phone.number(), r#"["call"]"#, "").await;
    let id = h.trigger("db-1/disk", "Disk full on db-1").await;
    let failed = h.timeline_line(id, "call_failed", "403").await;
    assert!(failed.contains("password_file"), "{failed}");
    drop(h);

    // A number nobody has: 404, final.
    let h = server(&kamailio, "+4912345678", r#"["call"]"#, "").await;
    let id = h.trigger("db-2/disk", "Disk full on db-2").await;
    h.timeline_line(id, "call_failed", "404 Not Found").await;
    drop(h);

    // A phone that answers with SDP that is not SDP: hung up on, and said why.
    let mut garbled = Sipp::phone("garbled.xml", &[], 1);
    let h = server(&kamailio, &garbled.number(), r#"["call"]"#, "").await;
    let id = h.trigger("db-3/disk", "Disk full on db-3").await;
    let failed = h.timeline_line(id, "call_failed", "audio cannot be used").await;
    assert!(failed.contains("no audio stream"), "{failed}");
    let (status, messages) = garbled.finished(Duration::from_secs(20)).await;
    assert!(status.success(), "the phone got its BYE: {messages}");
    drop(h);

    // A SIP server that is not there: said, and tried again later.
    let nobody = telephony::free_udp_port();
    let h = server_with(
        &format!("sip:127.0.0.1:{nobody}"),
        LINE_PASSWORD,
        &phone.number(),
        r#"["call"]"#,
        "",
    )
    .await;
    let id = h.trigger("db-4/disk", "Disk full on db-4").await;
    let retry = h.timeline_line(id, "call_retry", "did not answer").await;
    assert!(retry.contains("trying again in 30 s"), "{retry}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_is_one_call_and_a_held_down_keypad_still_acknowledges() {
    if !telephony::installed() {
        return;
    }
    let kamailio = Kamailio::start();
    let mut phone = Sipp::phone("flood.xml", &[], 1);
    let h = server(&kamailio, &phone.number(), r#"["call after 1m"]"#, "").await;
    // Three alerts in one Alertmanager group: three pages in one commit.
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
    assert_eq!(ids.len(), 3);
    h.advance(61);
    let answered = h.timeline_line(ids[0], "call_answered", "said").await;
    assert!(answered.contains("Reveille page. Three incidents, three on payments."), "{answered}");
    for &id in &ids {
        h.timeline_line(id, "call_ack", "pressing 4").await;
        assert_eq!(
            h.store().incident(id).await.unwrap().incident.acknowledged_by.as_deref(),
            Some("alice")
        );
    }
    let (status, messages) = phone.finished(Duration::from_secs(30)).await;
    assert!(status.success(), "{messages}");
    assert_eq!(messages.matches("INVITE sip:").count(), 1, "one call for the three: {messages}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_to_the_hotline_opens_an_incident_and_says_who_is_paged() {
    if !telephony::installed() {
        return;
    }
    let kamailio = Kamailio::start();
    let h = server(
        &kamailio,
        SOFTPHONE,
        r#"["call after 1h"]"#,
        "register = true\n[hotline]\nservice = \"payments\"\n",
    )
    .await;
    // The line registers itself, so the PBX can route calls to it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !kamailio.log().contains("REGISTER sip:reveille@127.0.0.1 contact") {
        assert!(tokio::time::Instant::now() < deadline, "{}", kamailio.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut caller = Sipp::call(&kamailio, "caller.xml", LINE_USER);
    let (status, messages) = caller.finished(Duration::from_secs(60)).await;
    assert!(status.success(), "the hotline answered, spoke and hung up: {messages}");
    let incident =
        h.incidents().await.into_iter().find(|i| i.service == "payments").expect("an incident");
    assert_eq!(incident.summary, "Call to the hotline from +15557654321");
    assert_eq!(incident.paged, ["alice", "bob"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_call_goes_the_pages_way_and_the_board_shows_how_it_went() {
    if !telephony::installed() {
        return;
    }
    let kamailio = Kamailio::start();
    let phone = Sipp::phone("phone.xml", &[("@KEY@", "4"), ("@PAUSE@", "300")], 1);
    let h = server(&kamailio, &phone.number(), r#"["call"]"#, "").await;
    let admin = format!("Bearer {}", h.mint_token("alice", &["read", "admin"]).await);
    let test = |channel: &'static str| {
        let (h, admin) = (&h, admin.clone());
        async move {
            let body = serde_json::json!({"channel": channel}).to_string();
            h.post("/api/v1/people/alice/notify-test", Some(&admin), &body).await
        }
    };
    let (status, outcome) = test("call").await;
    assert_eq!(status, 200, "{outcome}");
    assert_eq!(outcome["ok"], true, "{outcome}");
    assert_eq!(outcome["outcome"], format!("{} answered and pressed 4", phone.number()));
    let (status, refused) = test("sms").await;
    assert_eq!(status, 400, "alice cannot be texted here: {refused}");
    assert_eq!(refused["field"], "channel", "{refused}");
    assert!(refused["message"].as_str().unwrap().contains("cannot be reached by sms"), "{refused}");

    let call = |board: &serde_json::Value| {
        let alice = board["people"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["user"] == "alice")
            .unwrap()
            .clone();
        let call = alice["devices"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["kind"] == "call")
            .unwrap()
            .clone();
        (alice, call)
    };
    let (_, board) = h.get("/api/v1/readiness", &h.alice).await;
    let (_, entry) = call(&board);
    assert_eq!(entry["live"], true, "{entry}");
    assert!(entry["name"].as_str().unwrap().contains(&phone.number()), "{entry}");
    assert!(entry["detail"].as_str().unwrap().contains("passed"), "{entry}");

    // Her only way is a number that cannot be called: the test says so, and she is red.
    let config =
        std::fs::read_to_string(h.config_path()).unwrap().replace(&phone.number(), "+4912345678");
    let h = h.restart(&config).await;
    let admin = format!("Bearer {}", h.mint_token("alice", &["read", "admin"]).await);
    let body = serde_json::json!({"channel": "call"}).to_string();
    let (_, outcome) = h.post("/api/v1/people/alice/notify-test", Some(&admin), &body).await;
    assert_eq!(outcome["ok"], false, "{outcome}");
    assert!(outcome["outcome"].as_str().unwrap().contains("404 Not Found"), "{outcome}");
    let (_, board) = h.get("/api/v1/readiness", &h.alice).await;
    let (alice, entry) = call(&board);
    assert_eq!(entry["live"], false, "{entry}");
    assert!(entry["detail"].as_str().unwrap().contains("FAILED"), "{entry}");
    assert_eq!(alice["ready"], false, "{alice}");
}
