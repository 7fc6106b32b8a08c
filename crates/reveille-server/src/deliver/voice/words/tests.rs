use jiff::{SignedDuration, Timestamp};
use reveille_protocol::{Incident, IncidentState, Severity, Urgency};

use super::*;

fn incident(id: i64, service: &str, summary: &str, opened: i64) -> Incident {
    Incident {
        id,
        service: service.into(),
        dedup_key: format!("k{id}"),
        state: IncidentState::Triggered,
        urgency: Urgency::High,
        severity: Severity::Critical,
        summary: summary.into(),
        source: "test".into(),
        details: serde_json::Value::Null,
        links: vec![],
        runbook_url: None,
        created_at: Timestamp::from_second(opened).unwrap(),
        updated_at: Timestamp::from_second(opened).unwrap(),
        acknowledged_by: None,
        resolved_by: None,
        snoozed_until: None,
        paged: vec![],
        escalation: None,
        drill: false,
        silent: vec![],
    }
}

fn now() -> Timestamp {
    Timestamp::from_second(1_000_000).unwrap()
}

#[test]
fn one_page_is_said_with_its_service_severity_age_and_keys() {
    let said = call(&[incident(12, "payments", "Disk full on db-1", 1_000_000 - 185)], now());
    assert_eq!(
        said,
        "Incident 12, payments, critical: Disk full on db-1. Open for 3 minutes. \
         Press 4 to acknowledge, 6 to escalate, or 9 to hear this again."
    );
}

#[test]
fn a_storm_is_one_call_that_counts_them_by_service() {
    let pages: Vec<Incident> = (1..=7)
        .map(|n| {
            incident(n, if n <= 5 { "payments" } else { "web" }, &format!("Fault {n}"), 999_990)
        })
        .collect();
    let said = call(&pages, now());
    assert!(said.starts_with("Seven incidents, five on payments, two on web."), "{said}");
    assert!(said.contains("Incident 5, payments") && !said.contains("Incident 6,"), "{said}");
    assert!(
        said.contains("And 2 more.")
            && said.ends_with("6 to escalate all, or 9 to hear this again.")
    );
}

#[test]
fn ages_read_naturally() {
    let cases = [
        (30, "less than a minute"),
        (60, "1 minute"),
        (7_000, "116 minutes"),
        (7_200, "2 hours"),
        (200_000, "2 days"),
    ];
    for (secs, words) in cases {
        assert_eq!(age(SignedDuration::from_secs(secs)), words);
    }
}

#[test]
fn a_text_is_one_gsm7_sms_with_how_to_answer() {
    let long = "Disk “full” on db-1 — [replica] 😱 ".repeat(10);
    let one = text(&[incident(12, "payments", &long, 0)]);
    assert!(one.chars().count() <= SMS, "{one}");
    assert!(
        one.starts_with("Reveille #12 payments CRITICAL: Disk \"full\" on db-1 - (replica) ?"),
        "{one}"
    );
    assert!(one.ends_with("... Reply 4 12 to ack, 6 12 to escalate"), "{one}");
    assert_eq!(gsm7(&one), one);
    let many = [incident(3, "web", "Slow", 0), incident(4, "db", "Down", 0)];
    assert_eq!(
        text(&many),
        "Reveille: 2 incidents. #3 web: Slow; #4 db: Down Reply 4 <n> to ack, 6 <n> to escalate"
    );
}

#[test]
fn the_hotline_says_who_is_paged() {
    let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert!(hotline("payments", 4, &names(&["alice"])).contains("alice is being paged now."));
    assert!(
        hotline("payments", 4, &names(&["alice", "bob", "carol"]))
            .contains("alice, bob and carol are being paged")
    );
    assert!(hotline("payments", 4, &[]).contains("Nobody is on call"));
    assert_eq!(after_key("Acknowledged", 3, &[]), "Acknowledged three incidents. Goodbye.");
    assert_eq!(
        after_key("Acknowledged", 0, &["Incident 4 was acknowledged by bob already".into()]),
        "Incident 4 was acknowledged by bob already. Goodbye."
    );
}
