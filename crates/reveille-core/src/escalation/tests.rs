//! The escalation ladder, driven by moving the clock.

use std::collections::HashMap;
use std::sync::Arc;

use jiff::civil::date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use reveille_protocol::{
    Action, AlertEvent, Incident, IncidentState, Receipt, ReceiptKind, Severity,
};

use super::*;
use crate::incident::{Command, apply, on_alert, on_command, on_wake};
use crate::policy::{Level, Policy, Target};
use crate::schedule::{Layer, Override, Schedule, ShiftLength};

fn t(minutes: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000).unwrap() + SignedDuration::from_mins(minutes)
}

fn user(u: &str) -> Target {
    Target::User(u.into())
}

fn ladder(levels: Vec<Vec<Target>>, repeat: u32) -> ServiceRules {
    let levels = levels
        .into_iter()
        .map(|targets| Level { targets, delay: SignedDuration::from_mins(10) })
        .collect();
    ServiceRules { policy: Policy { levels, repeat }, ..ServiceRules::paging("db", &[]) }
}

/// An incident driven through the rules, with the pages it sent.
struct Run {
    rules: ServiceRules,
    inc: Incident,
    pages: Vec<(i64, Vec<String>)>,
    lines: Vec<String>,
}

impl Run {
    fn trigger(rules: ServiceRules) -> Self {
        let event = AlertEvent {
            action: Action::Trigger,
            dedup_key: "k".into(),
            summary: "down".into(),
            severity: Severity::Critical,
            source: "x".into(),
            details: serde_json::Value::Null,
            links: vec![],
            runbook_url: None,
            occurred_at: None,
        };
        let effects = on_alert(None, &rules, &event, "test", t(0));
        let Effect::Open(inc) = &effects[0] else { panic!() };
        let mut run = Run { inc: (**inc).clone(), rules, pages: vec![], lines: vec![] };
        run.perform(&effects, 0);
        run
    }

    fn perform(&mut self, effects: &[Effect], minute: i64) {
        apply(&mut self.inc, effects, t(minute));
        for e in effects {
            match e {
                Effect::Page { users } => self.pages.push((minute, users.clone())),
                Effect::Timeline(line) => self.lines.push(line.message.clone()),
                _ => {}
            }
        }
    }

    fn tick(&mut self, minute: i64, deaf: &[&str]) {
        let deafness =
            |u: &str| deaf.contains(&u).then(|| "has had no live device for 2m".to_string());
        let effects = on_escalate(&self.inc, &self.rules, &deafness, t(minute));
        self.perform(&effects, minute);
    }

    fn command(&mut self, by: &str, command: Command, minute: i64) {
        let effects = on_command(&self.inc, by, &command, t(minute)).unwrap();
        self.perform(&effects, minute);
    }

    fn paged(&self) -> Vec<(i64, Vec<&str>)> {
        self.pages.iter().map(|(m, u)| (*m, u.iter().map(String::as_str).collect())).collect()
    }
}

#[test]
fn an_unacknowledged_page_moves_to_the_next_level_after_the_delay() {
    let mut run =
        Run::trigger(ladder(vec![vec![user("alice")], vec![user("bob")], vec![user("carol")]], 0));
    assert_eq!(run.paged(), [(0, vec!["alice"])]);
    run.tick(9, &[]);
    assert_eq!(run.pages.len(), 1, "not before the delay");
    run.tick(10, &[]);
    run.tick(20, &[]);
    assert_eq!(run.paged(), [(0, vec!["alice"]), (10, vec!["bob"]), (20, vec!["carol"])]);
    assert!(
        run.lines.iter().any(|l| l.contains("level 1 did not acknowledge within 10m")),
        "{:?}",
        run.lines
    );
    run.tick(30, &[]);
    assert_eq!(run.inc.escalation.unwrap().next_at, None);
    assert!(run.lines.last().unwrap().contains("the ladder has ended"));
    run.tick(90, &[]);
    assert_eq!(run.pages.len(), 3, "an ended ladder pages nobody else");
    assert_eq!(run.inc.paged, ["alice", "bob", "carol"], "everyone paged follows the incident");
}

#[test]
fn an_ack_stops_the_ladder() {
    let mut run = Run::trigger(ladder(vec![vec![user("alice")], vec![user("bob")]], 3));
    run.command("alice", Command::Acknowledge, 5);
    run.tick(10, &[]);
    run.tick(60, &[]);
    assert_eq!(run.paged(), [(0, vec!["alice"])]);
    assert_eq!(run.inc.escalation.unwrap().next_at, None);
}

#[test]
fn the_ladder_repeats_the_configured_number_of_times() {
    let mut run = Run::trigger(ladder(vec![vec![user("alice")], vec![user("bob")]], 2));
    for minute in (10..=100).step_by(10) {
        run.tick(minute, &[]);
    }
    let who: Vec<&str> = run.pages.iter().map(|(_, u)| u[0].as_str()).collect();
    assert_eq!(who, ["alice", "bob", "alice", "bob", "alice", "bob"], "three rounds in all");
    assert_eq!(run.pages.last().unwrap().0, 50);
}

#[test]
fn a_deaf_pager_moves_the_ladder_on_early_and_says_why() {
    let mut run = Run::trigger(ladder(vec![vec![user("alice")], vec![user("bob")]], 1));
    run.tick(2, &["alice"]);
    assert_eq!(run.paged(), [(0, vec!["alice"]), (2, vec!["bob"])]);
    assert!(
        run.lines.last().unwrap().contains("alice has had no live device for 2m"),
        "{:?}",
        run.lines
    );
    run.tick(3, &["bob"]);
    assert_eq!(run.pages.len(), 2, "moving on early never starts a new round");
    run.tick(12, &[]);
    assert_eq!(run.paged()[2], (12, vec!["alice"]), "the clock starts the next round");
}

#[test]
fn a_device_that_reports_silence_moves_the_ladder_on() {
    let mut run = Run::trigger(ladder(vec![vec![user("alice")], vec![user("bob")]], 0));
    let silent = Receipt {
        kind: ReceiptKind::Ringing,
        device: "laptop".into(),
        volume: Some(0.0),
        muted: Some(true),
        output: None,
    };
    run.command("alice", Command::Receipt(silent), 1);
    run.tick(1, &[]);
    assert_eq!(run.paged(), [(0, vec!["alice"]), (1, vec!["bob"])]);
    assert!(run.lines.last().unwrap().contains("alice's device reported it cannot make sound"));
}

fn rotation(overrides: Vec<Override>) -> Arc<HashMap<String, Schedule>> {
    let schedule = Schedule {
        name: "primary".into(),
        tz: TimeZone::UTC,
        layers: vec![Layer {
            members: vec!["alice".into(), "bob".into()],
            shadows: vec!["newbie".into()],
            start: date(2020, 1, 1).at(0, 0, 0, 0),
            shift: ShiftLength::Days(100_000),
            restriction: None,
        }],
        overrides,
    };
    Arc::new(HashMap::from([("primary".to_string(), schedule)]))
}

#[test]
fn a_schedule_pages_its_primary_and_shadow_and_the_shadow_never_answers_for_the_level() {
    let mut rules = ladder(vec![vec![Target::Schedule("primary".into())], vec![user("lead")]], 0);
    rules.schedules = rotation(vec![]);
    let mut run = Run::trigger(rules);
    assert_eq!(run.paged(), [(0, vec!["alice", "newbie"])]);
    // The shadow's laptop being offline does not matter; the primary's does.
    run.tick(1, &["newbie"]);
    assert_eq!(run.pages.len(), 1);
    run.tick(1, &["alice"]);
    assert_eq!(run.paged()[1], (1, vec!["lead"]));
}

#[test]
fn an_override_wins_over_the_rotation() {
    let mut rules = ladder(vec![vec![Target::Schedule("primary".into())]], 0);
    rules.schedules = rotation(vec![Override { user: "carol".into(), start: t(-60), end: t(60) }]);
    let run = Run::trigger(rules);
    assert_eq!(run.paged(), [(0, vec!["carol"])]);
}

#[test]
fn a_level_with_nobody_on_call_is_skipped_and_nobody_at_all_is_said_loudly() {
    let mut rules = ladder(vec![vec![Target::Schedule("missing".into())], vec![user("bob")]], 0);
    let run = Run::trigger(rules.clone());
    assert_eq!(run.paged(), [(0, vec!["bob"])]);
    assert!(run.lines.iter().any(|l| l.contains("level 1 has nobody on call")));
    rules.policy.levels.pop();
    let run = Run::trigger(rules);
    assert!(run.pages.is_empty());
    assert!(run.lines.last().unwrap().contains("NOBODY IS ON CALL"));
}

#[test]
fn a_snooze_pauses_the_ladder_and_its_end_restarts_it_at_the_same_level() {
    let mut run = Run::trigger(ladder(vec![vec![user("alice")], vec![user("bob")]], 0));
    run.command("alice", Command::Snooze { until: t(30) }, 5);
    run.tick(15, &[]);
    assert_eq!(run.pages.len(), 1, "snoozed: no escalation");
    let effects = on_wake(&run.inc, Some(&run.rules), t(30));
    run.perform(&effects, 30);
    assert_eq!(run.inc.state, IncidentState::Triggered);
    assert_eq!(run.paged()[1], (30, vec!["alice"]));
    run.tick(39, &[]);
    run.tick(40, &[]);
    assert_eq!(run.paged()[2], (40, vec!["bob"]));
}

#[test]
fn a_drill_rings_its_one_person_and_never_escalates() {
    let rules = ServiceRules { drill: true, ..ServiceRules::paging("drill", &["alice"]) };
    let mut run = Run::trigger(rules);
    assert!(run.inc.drill);
    assert_eq!(run.inc.escalation.unwrap().next_at, None);
    run.tick(600, &["alice"]);
    assert_eq!(run.paged(), [(0, vec!["alice"])]);
}

#[test]
fn asking_for_the_next_level_pages_it_at_once_and_restarts_its_clock() {
    let mut run =
        Run::trigger(ladder(vec![vec![user("alice")], vec![user("bob")], vec![user("carol")]], 0));
    let effects = on_request(&run.inc, &run.rules, "alice", " by pressing 6 on a call", t(2));
    run.perform(&effects.unwrap(), 2);
    assert_eq!(run.paged(), [(0, vec!["alice"]), (2, vec!["bob"])]);
    assert!(
        run.lines.iter().any(|l| l == "alice asked for the next level by pressing 6 on a call")
    );
    run.tick(11, &[]);
    assert_eq!(run.pages.len(), 2, "bob has his whole 10 minutes, from when he was paged");
    run.tick(12, &[]);
    assert_eq!(run.paged()[2], (12, vec!["carol"]));
    let last = on_request(&run.inc, &run.rules, "carol", "", t(13));
    assert!(last.unwrap_err().0.contains("no next level"));
    run.command("carol", Command::Acknowledge, 14);
    let acked = on_request(&run.inc, &run.rules, "carol", "", t(15));
    assert!(acked.unwrap_err().0.contains("acknowledged"));
}
