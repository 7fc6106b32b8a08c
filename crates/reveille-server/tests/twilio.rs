//! Calls and texts through Twilio, against a local server that implements the parts of
//! Twilio's documented REST API Reveille uses (`2010-04-01`: Calls, Messages, basic auth, its
//! error bodies) and plays the phone network: it calls Reveille's webhooks as Twilio does, each
//! signed with `X-Twilio-Signature` over the URL it requested and the form, and reads the TwiML
//! they answer (what is said, the keys gathered, redirects, hang-ups).

mod common;
#[path = "twilio/fake.rs"]
mod fake;

use common::Harness;
use fake::{ALICE, FROM, Phone, SID, TOKEN, Twilio, sign, webhook};
use reveille_protocol::IncidentState;

async fn server(twilio: &Twilio, rules: &str, extra: &str) -> Harness {
    let alice = format!(
        "[[users]]\nname = \"alice\"\nphone = \"{ALICE}\"\n[users.notify]\nhigh = {rules}\n"
    );
    let config = format!(
        "{}\n[twilio]\naccount_sid = \"{SID}\"\nauth_token_file = \"twilio.token\"\nfrom = \"{FROM}\"\napi = \"{}\"\n{extra}",
        common::CONFIG.replace("[[users]]\nname = \"alice\"\n", &alice),
        twilio.url
    );
    let h = Harness::with_files(&config, jiff::Timestamp::now(), &[("twilio.token", TOKEN)]).await;
    twilio.attach(&h);
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_twilio_call_says_the_page_and_4_acknowledges_it() {
    let twilio = Twilio::start(&[(ALICE, Phone::Answers(Some('4')))]).await;
    let h = server(&twilio, r#"["call"]"#, "").await;
    let id = h.trigger("db-1/disk", "Disk full on <db-1> & co").await;
    h.timeline_line(id, "call_ringing", ALICE).await;
    h.timeline_line(id, "call_answered", "Disk full on <db-1> & co").await;
    h.timeline_line(id, "call_ack", "pressing 4").await;
    let incident = h.store().incident(id).await.unwrap().incident;
    assert_eq!(
        (incident.state, incident.acknowledged_by.as_deref()),
        (IncidentState::Acknowledged, Some("alice"))
    );
    twilio.calls_ended().await;
    let said = twilio.said();
    assert!(
        said[0].starts_with(&format!(
            "Reveille page. Incident {id}, payments, critical: Disk full on <db-1> & co."
        )),
        "{said:?}"
    );
    assert_eq!(said.last().unwrap(), "Acknowledged. Goodbye.");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_and_unanswered_twilio_calls_move_the_person_on() {
    let twilio = Twilio::start(&[(ALICE, Phone::Busy)]).await;
    let h = server(&twilio, r#"["call", "call after 10m"]"#, "").await;
    let id = h.trigger("db-1/disk", "Disk full on db-1").await;
    h.timeline_lines(id, "call_busy", 2).await;
    drop(h);
    let twilio = Twilio::start(&[(ALICE, Phone::NoAnswer)]).await;
    let h = server(&twilio, r#"["call"]"#, "").await;
    let id = h.trigger("db-1/disk", "Disk full on db-1").await;
    let line = h.timeline_line(id, "call_no_answer", "no-answer").await;
    assert!(line.contains(ALICE), "{line}");
    // A number Twilio cannot call: its error, final.
    let h = server(&twilio, r#"["call"]"#, "").await;
    let config = std::fs::read_to_string(h.config_path())
        .unwrap()
        .replace(&format!("from = \"{FROM}\""), "from = \"+15559999999\"");
    let h = h.restart(&config).await;
    twilio.attach(&h);
    let id = h.trigger("db-2/disk", "Disk full on db-2").await;
    let failed = h.timeline_line(id, "call_failed", "21210").await;
    assert!(failed.contains("not yet verified"), "{failed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_texts_a_page_and_a_signed_reply_acknowledges_it() {
    let twilio = Twilio::start(&[]).await;
    let h = server(&twilio, r#"["sms"]"#, "").await;
    let id = h.trigger("db-1/disk", "Disk full on db-1").await;
    h.timeline_line(id, "sms_sent", "accepted by Twilio (SM").await;
    assert_eq!(
        twilio.texts(),
        [(
            ALICE.to_owned(),
            format!(
                "Reveille #{id} payments CRITICAL: Disk full on db-1 Reply 4 {id} to ack, 6 {id} to escalate"
            )
        )]
    );
    let (status, twiml) = twilio.text_in(ALICE, &format!("4 {id}")).await;
    assert_eq!(status, 200);
    assert!(twiml.contains(&format!("<Message>Acknowledged #{id}.</Message>")), "{twiml}");
    assert_eq!(
        h.store().incident(id).await.unwrap().incident.acknowledged_by.as_deref(),
        Some("alice")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_without_twilios_signature_are_refused() {
    let twilio = Twilio::start(&[]).await;
    let h = server(&twilio, r#"["sms"]"#, "").await;
    let id = h.trigger("db-1/disk", "Disk full on db-1").await;
    let form = [("From", ALICE), ("Body", &format!("4 {id}"))];
    let post = |signature: String| {
        h.http
            .post(format!("{}/hooks/twilio/sms", h.url))
            .header("X-Twilio-Signature", signature)
            .form(&form)
            .send()
    };
    let params: Vec<(String, String)> =
        form.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    for forged in [
        String::new(),
        "AAAAAAAAAAAAAAAAAAAAAAAAAAA=".into(),
        sign("http://reveille.test/hooks/twilio/incoming", &params),
        sign("http://evil.example/hooks/twilio/sms", &params),
    ] {
        assert_eq!(post(forged).await.unwrap().status(), 403);
    }
    assert_eq!(h.store().incident(id).await.unwrap().incident.state, IncidentState::Triggered);
    assert_eq!(
        post(sign("http://reveille.test/hooks/twilio/sms", &params)).await.unwrap().status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_to_the_twilio_number_is_the_hotline() {
    let twilio = Twilio::start(&[]).await;
    let h = server(&twilio, r#"["call after 1h"]"#, "[hotline]\nservice = \"payments\"\n").await;
    let params = vec![
        ("From".into(), "+15557654321".into()),
        ("To".into(), FROM.into()),
        ("CallSid".into(), "CA1".into()),
    ];
    let (status, twiml) =
        webhook(&twilio.net, "http://reveille.test/hooks/twilio/incoming", params).await;
    assert_eq!(status, 200);
    assert!(twiml.contains("alice and bob are being paged now."), "{twiml}");
    let incident = h.incidents().await.into_iter().find(|i| i.service == "payments").unwrap();
    assert_eq!(incident.summary, "Call to the hotline from +15557654321");
}
