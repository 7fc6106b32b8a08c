//! Unit and property tests of the incident state machine, driven by a tiny in-memory store.

use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use reveille_protocol::{Action, AlertEvent, Incident, IncidentState, Severity, Urgency};

use super::*;
use crate::service::ServiceRules;

fn rules() -> ServiceRules {
    ServiceRules {
        runbook_url: Some("http://runbooks/payments.md".into()),
        ..ServiceRules::paging("payments", &["alice", "bob"])
    }
}

fn event(action: Action, key: &str) -> AlertEvent {
    AlertEvent {
        action,
        dedup_key: key.into(),
        summary: format!("{key} is down"),
        severity: Severity::Critical,
        source: "host-1".into(),
        details: serde_json::json!({}),
        links: vec![],
        runbook_url: None,
        occurred_at: None,
    }
}

fn t(secs: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + secs).unwrap()
}

/// What a store would do with the effects, kept in memory.
#[derive(Default)]
struct World {
    incidents: Vec<Incident>,
    pages: Vec<(String, i64)>,
    notifies: Vec<(i64, IncidentState)>,
    timeline: Vec<(i64, String)>,
}

impl World {
    fn open(&self, key: &str) -> Option<usize> {
        self.incidents.iter().position(|i| i.dedup_key == key && i.state.is_open())
    }

    fn perform(&mut self, at: Option<usize>, effects: &[Effect], now: Timestamp) {
        let idx = match effects.first() {
            Some(Effect::Open(_)) => {
                self.incidents
                    .push(Incident { id: self.incidents.len() as i64 + 1, ..open_of(effects) });
                self.incidents.len() - 1
            }
            _ => match at {
                Some(i) => i,
                None => return assert!(effects.is_empty(), "effects without an incident"),
            },
        };
        let id = self.incidents[idx].id;
        let mut inc = self.incidents[idx].clone();
        apply(&mut inc, effects, now);
        inc.id = id;
        for e in effects {
            match e {
                Effect::Page { users } => self.pages.extend(users.iter().map(|u| (u.clone(), id))),
                Effect::Notify => self.notifies.push((id, inc.state)),
                Effect::Timeline(t) => self.timeline.push((id, t.kind.clone())),
                Effect::Open(_)
                | Effect::SetState { .. }
                | Effect::Escalation(_)
                | Effect::Silent { .. } => {}
            }
        }
        self.incidents[idx] = inc;
    }

    fn alert(&mut self, action: Action, key: &str, now: Timestamp) -> Vec<Effect> {
        let at = self.open(key);
        let effects =
            on_alert(at.map(|i| &self.incidents[i]), &rules(), &event(action, key), "am", now);
        self.perform(at, &effects, now);
        effects
    }

    fn command(
        &mut self,
        idx: usize,
        cmd: &Command,
        now: Timestamp,
    ) -> Result<Vec<Effect>, Refusal> {
        let effects = on_command(&self.incidents[idx], "alice", cmd, now)?;
        self.perform(Some(idx), &effects, now);
        Ok(effects)
    }

    fn wake(&mut self, now: Timestamp) {
        for idx in 0..self.incidents.len() {
            let effects = on_wake(&self.incidents[idx], Some(&rules()), now);
            self.perform(Some(idx), &effects, now);
        }
    }
}

fn open_of(effects: &[Effect]) -> Incident {
    match &effects[0] {
        Effect::Open(inc) => (**inc).clone(),
        _ => unreachable!(),
    }
}

#[test]
fn a_trigger_opens_an_incident_and_pages_everyone_on_the_service() {
    let mut w = World::default();
    w.alert(Action::Trigger, "db", t(0));
    assert_eq!(w.incidents.len(), 1);
    let inc = &w.incidents[0];
    assert_eq!(inc.state, IncidentState::Triggered);
    assert_eq!(inc.urgency, Urgency::High);
    assert_eq!(inc.paged, ["alice", "bob"]);
    assert_eq!(inc.runbook_url.as_deref(), Some("http://runbooks/payments.md"));
    assert_eq!(w.pages, [("alice".to_string(), 1), ("bob".to_string(), 1)]);
}

#[test]
fn a_repeated_trigger_is_merged_and_pages_nobody_again() {
    let mut w = World::default();
    w.alert(Action::Trigger, "db", t(0));
    let effects = w.alert(Action::Trigger, "db", t(5));
    assert_eq!(w.incidents.len(), 1);
    assert_eq!(w.pages.len(), 2);
    assert!(matches!(&effects[..], [Effect::Timeline(e)] if e.kind == "deduplicated"));
}

#[test]
fn a_trigger_after_resolve_opens_a_new_incident() {
    let mut w = World::default();
    w.alert(Action::Trigger, "db", t(0));
    w.alert(Action::Resolve, "db", t(1));
    w.alert(Action::Trigger, "db", t(2));
    assert_eq!(w.incidents.len(), 2);
    assert_eq!(w.incidents[0].state, IncidentState::Resolved);
    assert_eq!(w.incidents[1].state, IncidentState::Triggered);
    assert_eq!(w.pages.len(), 4);
}

#[test]
fn ack_and_resolve_are_idempotent() {
    let mut w = World::default();
    w.alert(Action::Trigger, "db", t(0));
    assert_eq!(w.command(0, &Command::Acknowledge, t(1)).unwrap().len(), 3);
    assert_eq!(w.incidents[0].acknowledged_by.as_deref(), Some("alice"));
    assert!(w.command(0, &Command::Acknowledge, t(2)).unwrap().is_empty());
    assert!(w.alert(Action::Acknowledge, "db", t(2)).is_empty());
    assert_eq!(w.command(0, &Command::Resolve, t(3)).unwrap().len(), 3);
    assert!(w.command(0, &Command::Resolve, t(4)).unwrap().is_empty());
    assert!(w.command(0, &Command::Acknowledge, t(4)).unwrap().is_empty());
    assert_eq!(w.incidents[0].state, IncidentState::Resolved);
    assert_eq!(w.notifies, [(1, IncidentState::Acknowledged), (1, IncidentState::Resolved)]);
}

#[test]
fn ack_or_resolve_for_an_unknown_key_does_nothing() {
    let mut w = World::default();
    assert!(w.alert(Action::Acknowledge, "nope", t(0)).is_empty());
    assert!(w.alert(Action::Resolve, "nope", t(0)).is_empty());
    assert!(w.incidents.is_empty());
}

#[test]
fn a_snoozed_incident_pages_again_when_the_snooze_ends_if_still_open() {
    let mut w = World::default();
    w.alert(Action::Trigger, "db", t(0));
    w.command(0, &Command::Snooze { until: t(300) }, t(10)).unwrap();
    assert_eq!(w.incidents[0].state, IncidentState::Snoozed);
    w.wake(t(299));
    assert_eq!(w.pages.len(), 2, "no page before the snooze ends");
    w.wake(t(300));
    assert_eq!(w.incidents[0].state, IncidentState::Triggered);
    assert_eq!(w.incidents[0].snoozed_until, None);
    assert_eq!(w.pages.len(), 4, "both users paged again");
    w.wake(t(900));
    assert_eq!(w.pages.len(), 4, "a triggered incident is not paged again by time alone");
}

#[test]
fn an_acked_snooze_does_not_page_again() {
    let mut w = World::default();
    w.alert(Action::Trigger, "db", t(0));
    w.command(0, &Command::Snooze { until: t(60) }, t(1)).unwrap();
    w.command(0, &Command::Acknowledge, t(2)).unwrap();
    w.wake(t(120));
    assert_eq!(w.incidents[0].state, IncidentState::Acknowledged);
    assert_eq!(w.pages.len(), 2);
}

#[test]
fn snooze_is_refused_on_a_resolved_incident_or_into_the_past() {
    let mut w = World::default();
    w.alert(Action::Trigger, "db", t(0));
    assert!(w.command(0, &Command::Snooze { until: t(0) }, t(5)).is_err());
    w.alert(Action::Resolve, "db", t(6));
    assert!(w.command(0, &Command::Snooze { until: t(600) }, t(7)).is_err());
}

#[test]
fn low_severity_is_low_urgency_and_a_receipt_names_a_silent_device() {
    let mut w = World::default();
    let mut ev = event(Action::Trigger, "disk");
    ev.severity = Severity::Warning;
    let effects = on_alert(None, &rules(), &ev, "am", t(0));
    w.perform(None, &effects, t(0));
    assert_eq!(w.incidents[0].urgency, Urgency::Low);
    let receipt = Receipt {
        kind: ReceiptKind::Ringing,
        device: "laptop".into(),
        volume: Some(0.4),
        muted: Some(true),
        output: None,
    };
    let effects = w.command(0, &Command::Receipt(receipt), t(1)).unwrap();
    let Effect::Timeline(line) = &effects[0] else { panic!("{effects:?}") };
    assert_eq!(line.message, "ringing on laptop at 40% volume, SILENT: output muted or missing");
}

#[derive(Debug, Clone)]
enum Op {
    Alert(Action, u8),
    Ack(u8),
    Resolve(u8),
    Snooze(u8, u16),
    Tick(u16),
}

fn op() -> impl Strategy<Value = Op> {
    let action =
        prop_oneof![Just(Action::Trigger), Just(Action::Acknowledge), Just(Action::Resolve)];
    prop_oneof![
        3 => (action, 0..3u8).prop_map(|(a, k)| Op::Alert(a, k)),
        1 => (0..8u8).prop_map(Op::Ack),
        1 => (0..8u8).prop_map(Op::Resolve),
        1 => (0..8u8, 1..600u16).prop_map(|(i, s)| Op::Snooze(i, s)),
        1 => (1..900u16).prop_map(Op::Tick),
    ]
}

proptest! {
    #[test]
    fn the_state_machine_keeps_its_promises(ops in prop::collection::vec(op(), 1..60)) {
        let mut w = World::default();
        let mut now = t(0);
        for op in ops {
            let before: Vec<IncidentState> = w.incidents.iter().map(|i| i.state).collect();
            let pages_before = w.pages.len();
            let opened_before = w.incidents.len();
            let lines_before = w.timeline.len();
            let notified_before = w.notifies.len();
            match op {
                Op::Alert(action, k) => { w.alert(action, &format!("k{k}"), now); }
                Op::Ack(i) | Op::Resolve(i) | Op::Snooze(i, _) if w.incidents.is_empty() => { let _ = i; }
                Op::Ack(i) => {
                    let idx = i as usize % w.incidents.len();
                    w.command(idx, &Command::Acknowledge, now).unwrap();
                    prop_assert!(w.command(idx, &Command::Acknowledge, now).unwrap().is_empty());
                }
                Op::Resolve(i) => {
                    let idx = i as usize % w.incidents.len();
                    w.command(idx, &Command::Resolve, now).unwrap();
                    prop_assert!(w.command(idx, &Command::Resolve, now).unwrap().is_empty());
                    prop_assert_eq!(w.incidents[idx].state, IncidentState::Resolved);
                }
                Op::Snooze(i, s) => {
                    let idx = i as usize % w.incidents.len();
                    let until = now + SignedDuration::from_secs(s.into());
                    let ok = w.command(idx, &Command::Snooze { until }, now).is_ok();
                    prop_assert_eq!(ok, before[idx].is_open());
                }
                Op::Tick(s) => { now += SignedDuration::from_secs(s.into()); w.wake(now); }
            }
            // At most one open incident per dedup key.
            for k in 0..3 {
                let open = w.incidents.iter().filter(|i| i.dedup_key == format!("k{k}") && i.state.is_open()).count();
                prop_assert!(open <= 1);
            }
            // Resolved is final.
            for (i, st) in before.iter().enumerate() {
                if *st == IncidentState::Resolved {
                    prop_assert_eq!(w.incidents[i].state, IncidentState::Resolved);
                }
            }
            // Pages happen only for a new incident or a snooze that ended, and go to every paged user.
            let new_pages = w.pages.len() - pages_before;
            let opened = w.incidents.len() - opened_before;
            let woke = before.iter().enumerate()
                .filter(|(i, st)| **st == IncidentState::Snoozed && w.incidents[*i].state == IncidentState::Triggered)
                .count();
            prop_assert_eq!(new_pages, 2 * (opened + woke));
            // Every state change gets its own new timeline line, and reaches every paged device
            // (an `incident` entry, or a page when a snooze ends).
            for (i, st) in before.iter().enumerate() {
                if *st != w.incidents[i].state {
                    let id = w.incidents[i].id;
                    let new_lines = w.timeline[lines_before..].iter().filter(|(t, _)| *t == id).count();
                    prop_assert!(new_lines >= 1, "no timeline line for the change of {}", id);
                    let told = w.notifies[notified_before..].iter().any(|(n, _)| *n == id);
                    let repaged = w.incidents[i].state == IncidentState::Triggered;
                    prop_assert!(told || repaged, "nobody told of the change of {}", id);
                }
            }
        }
    }
}
