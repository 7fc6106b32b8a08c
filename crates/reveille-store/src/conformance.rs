//! The store conformance suite: behaviour every `Store` implementation must have.
//!
//! Each backend's test file calls
//! `reveille_store::conformance_suite!(async_fn_returning_a_fresh_store)`.

use futures_util::future::join_all;
use jiff::{SignedDuration, Timestamp};
use std::collections::HashMap;
use std::sync::Arc;

use crate::{
    Claim, Deafness, DeviceRecord, Error, IncidentFilter, IngestBatch, KeyInfo, Lease,
    OverrideRecord, Rules, Store, TokenInfo,
};
use reveille_core::{Command, Level, Policy, ServiceRules, Target};
use reveille_protocol::{
    Action, AlertEvent, FeedKind, IncidentState, Receipt, ReceiptKind, Severity, Urgency,
};

pub fn t(secs: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + secs).unwrap()
}

pub fn rules(name: &str) -> ServiceRules {
    ServiceRules::paging(name, &["alice", "bob"])
}

/// Every service the suite uses, for the worker-side calls.
pub fn all_rules() -> Arc<Rules> {
    let mut rules: Rules = ["db", "web"].iter().map(|s| (s.to_string(), rules(s))).collect();
    rules.insert("ladder".into(), ladder());
    Arc::new(rules)
}

/// alice, then bob after ten minutes.
pub fn ladder() -> ServiceRules {
    let level = |u: &str| Level {
        targets: vec![Target::User(u.into())],
        delay: SignedDuration::from_mins(10),
    };
    ServiceRules {
        policy: Policy { levels: vec![level("alice"), level("bob")], repeat: 0 },
        ..rules("ladder")
    }
}

pub fn event(action: Action, key: &str) -> AlertEvent {
    AlertEvent {
        action,
        dedup_key: key.into(),
        summary: format!("{key} failing"),
        severity: Severity::Critical,
        source: "db-1".into(),
        details: serde_json::json!({"k": "v"}),
        links: vec![],
        runbook_url: Some("https://runbooks.example/db".into()),
        occurred_at: None,
    }
}

pub async fn send(
    store: &dyn Store,
    service: &str,
    action: Action,
    key: &str,
    at: i64,
) -> Option<i64> {
    store.ingest(batch(service, action, key, at)).await.unwrap()[0].incident_id
}

pub async fn a_link_is_spent_only_with_the_command_it_carries(store: &dyn Store) {
    let resolved = send(store, "db", Action::Trigger, "link-1", 0).await.unwrap();
    store.command(resolved, "bob", Command::Resolve, t(1)).await.unwrap();
    let snooze = Command::Snooze { until: t(100) };
    let refused = store.command_by_link("sig-1", resolved, "alice", snooze, t(2));
    assert!(matches!(refused.await, Err(Error::Refused(_))), "a resolved incident refuses");
    let open = send(store, "db", Action::Trigger, "link-2", 3).await.unwrap();
    let acked = store.command_by_link("sig-1", open, "alice", Command::Acknowledge, t(4));
    let acked = acked.await.expect("the refused command left the link unspent");
    assert_eq!(acked.state, IncidentState::Acknowledged);
    let again = store.command_by_link("sig-1", open, "alice", Command::Resolve, t(5)).await;
    assert!(matches!(again, Err(Error::Refused(why)) if why.contains("already used")));
    assert!(!store.use_link("sig-1", t(6)).await.unwrap(), "spent with the acknowledgement");
}

/// One event for `service` as one request, received at `at`.
pub fn batch(service: &str, action: Action, key: &str, at: i64) -> IngestBatch {
    IngestBatch {
        rules: all_rules()[service].clone(),
        source: "test".into(),
        events: vec![event(action, key)],
        received_at: t(at),
    }
}

pub async fn a_trigger_opens_an_incident_and_pages_each_user(store: &dyn Store) {
    let id = send(store, "db", Action::Trigger, "k1", 0).await.unwrap();
    let detail = store.incident(id).await.unwrap();
    assert_eq!(detail.incident.state, IncidentState::Triggered);
    assert_eq!(detail.incident.urgency, Urgency::High);
    assert_eq!(detail.incident.summary, "k1 failing");
    assert_eq!(detail.incident.runbook_url.as_deref(), Some("https://runbooks.example/db"));
    assert_eq!(detail.incident.paged, ["alice", "bob"]);
    let kinds: Vec<_> = detail.timeline.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["triggered", "paged"]);
    for user in ["alice", "bob"] {
        let feed = store.feed_since(user, 0, 100).await.unwrap();
        assert_eq!(feed.len(), 1, "{user}");
        assert_eq!(feed[0].kind, FeedKind::Page);
        assert_eq!(feed[0].incident.id, id);
    }
    assert!(store.feed_since("carol", 0, 100).await.unwrap().is_empty());
}

pub async fn a_repeated_trigger_lands_on_the_open_incident(store: &dyn Store) {
    let first = send(store, "db", Action::Trigger, "k1", 0).await;
    let second = send(store, "db", Action::Trigger, "k1", 5).await;
    let other_service = send(store, "web", Action::Trigger, "k1", 6).await;
    assert_eq!(first, second);
    assert_ne!(first, other_service, "dedup is per service");
    assert_eq!(store.feed_since("alice", 0, 100).await.unwrap().len(), 2);
    let timeline = store.incident(first.unwrap()).await.unwrap().timeline;
    assert_eq!(timeline.last().unwrap().kind, "deduplicated");
}

pub async fn a_trigger_after_resolve_opens_a_new_incident(store: &dyn Store) {
    let first = send(store, "db", Action::Trigger, "k1", 0).await.unwrap();
    assert_eq!(send(store, "db", Action::Resolve, "k1", 1).await, Some(first));
    let second = send(store, "db", Action::Trigger, "k1", 2).await.unwrap();
    assert_ne!(first, second);
    assert_eq!(store.incident(first).await.unwrap().incident.state, IncidentState::Resolved);
    assert_eq!(send(store, "db", Action::Acknowledge, "unknown", 3).await, None);
}

pub async fn ack_notifies_every_paged_user_once(store: &dyn Store) {
    let id = send(store, "db", Action::Trigger, "k1", 0).await.unwrap();
    let acked = store.command(id, "alice", Command::Acknowledge, t(10)).await.unwrap();
    assert_eq!(acked.state, IncidentState::Acknowledged);
    assert_eq!(acked.acknowledged_by.as_deref(), Some("alice"));
    let again = store.command(id, "bob", Command::Acknowledge, t(11)).await.unwrap();
    assert_eq!(again.acknowledged_by.as_deref(), Some("alice"), "idempotent");
    for user in ["alice", "bob"] {
        let feed = store.feed_since(user, 0, 100).await.unwrap();
        let kinds: Vec<_> = feed.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, [FeedKind::Page, FeedKind::Incident], "{user}");
        assert_eq!(feed[1].incident.state, IncidentState::Acknowledged);
    }
}

pub async fn commands_on_missing_or_resolved_incidents_are_refused(store: &dyn Store) {
    assert!(matches!(
        store.command(999, "a", Command::Acknowledge, t(0)).await,
        Err(Error::NotFound(_))
    ));
    let id = send(store, "db", Action::Trigger, "k1", 0).await.unwrap();
    store.command(id, "alice", Command::Resolve, t(1)).await.unwrap();
    let snooze = Command::Snooze { until: t(100) };
    assert!(matches!(store.command(id, "alice", snooze, t(2)).await, Err(Error::Refused(_))));
}

pub async fn a_snooze_pages_again_when_it_ends(store: &dyn Store) {
    let id = send(store, "db", Action::Trigger, "k1", 0).await.unwrap();
    store.command(id, "alice", Command::Snooze { until: t(300) }, t(10)).await.unwrap();
    assert_eq!(store.wake_due(t(299), all_rules()).await.unwrap(), 0);
    assert_eq!(store.wake_due(t(300), all_rules()).await.unwrap(), 1);
    assert_eq!(store.wake_due(t(301), all_rules()).await.unwrap(), 0);
    let incident = store.incident(id).await.unwrap().incident;
    assert_eq!(incident.state, IncidentState::Triggered);
    let kinds: Vec<_> =
        store.feed_since("bob", 0, 100).await.unwrap().iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [FeedKind::Page, FeedKind::Incident, FeedKind::Page]);
}

pub async fn the_feed_resumes_after_any_id_with_no_gap(store: &dyn Store) {
    for i in 0..10 {
        send(store, "db", Action::Trigger, &format!("k{i}"), i).await;
    }
    let all = store.feed_since("alice", 0, 100).await.unwrap();
    assert_eq!(all.len(), 10);
    assert!(all.windows(2).all(|w| w[0].id < w[1].id));
    for cut in 0..all.len() {
        let rest = store.feed_since("alice", all[cut].id, 100).await.unwrap();
        assert_eq!(rest, all[cut + 1..]);
    }
    assert_eq!(store.feed_since("alice", 0, 3).await.unwrap(), all[..3]);
    assert!(store.feed_head().await.unwrap() >= all.last().unwrap().id);
}

pub async fn committed_entries_reach_subscribers_in_order(store: &dyn Store) {
    let mut rx = store.hub().subscribe("alice");
    for i in 0..5 {
        send(store, "db", Action::Trigger, &format!("k{i}"), i).await;
    }
    let mut last = 0;
    for _ in 0..5 {
        let event = rx.recv().await.unwrap();
        assert!(event.id > last);
        last = event.id;
    }
    assert_eq!(store.hub().listeners(), 1);
}

pub async fn incidents_can_be_listed_by_state_service_and_user(store: &dyn Store) {
    let a = send(store, "db", Action::Trigger, "a", 0).await.unwrap();
    let b = send(store, "web", Action::Trigger, "b", 1).await.unwrap();
    send(store, "db", Action::Resolve, "a", 2).await;
    let ids = |v: Vec<reveille_protocol::Incident>| v.iter().map(|i| i.id).collect::<Vec<_>>();
    let all = store.incidents(IncidentFilter::default()).await.unwrap();
    assert_eq!(ids(all), [b, a], "newest first");
    let open = store.incidents(IncidentFilter { open_only: true, ..Default::default() }).await;
    assert_eq!(ids(open.unwrap()), [b]);
    let db = IncidentFilter { service: Some("db".into()), ..Default::default() };
    assert_eq!(ids(store.incidents(db).await.unwrap()), [a]);
    let carol = IncidentFilter { user: Some("carol".into()), ..Default::default() };
    assert!(store.incidents(carol).await.unwrap().is_empty());
    let counts = store.count_by_state().await.unwrap();
    assert!(counts.contains(&(IncidentState::Triggered, 1)));
    assert!(counts.contains(&(IncidentState::Resolved, 1)));

    // The console's filters: state, urgency, creation time, and pages by id.
    let c = send(store, "db", Action::Trigger, "c", 10).await.unwrap();
    let resolved = IncidentFilter { state: Some(IncidentState::Resolved), ..Default::default() };
    assert_eq!(ids(store.incidents(resolved).await.unwrap()), [a]);
    let high = IncidentFilter { urgency: Some(Urgency::High), ..Default::default() };
    assert_eq!(ids(store.incidents(high).await.unwrap()).len(), 3);
    let low = IncidentFilter { urgency: Some(Urgency::Low), ..Default::default() };
    assert!(store.incidents(low).await.unwrap().is_empty());
    let from_1 = IncidentFilter { since: Some(t(1)), until: Some(t(10)), ..Default::default() };
    assert_eq!(ids(store.incidents(from_1).await.unwrap()), [b], "created at 1, before 10");
    let first_page = IncidentFilter { limit: 2, ..Default::default() };
    assert_eq!(ids(store.incidents(first_page).await.unwrap()), [c, b]);
    let next = IncidentFilter { limit: 2, before: Some(b), ..Default::default() };
    assert_eq!(ids(store.incidents(next).await.unwrap()), [a]);
}

pub async fn receipts_go_on_the_timeline(store: &dyn Store) {
    let id = send(store, "db", Action::Trigger, "k1", 0).await.unwrap();
    let receipt = Receipt {
        kind: ReceiptKind::Ringing,
        device: "laptop".into(),
        volume: Some(0.5),
        muted: Some(false),
        output: Some("speakers".into()),
    };
    store.command(id, "alice", Command::Receipt(receipt.clone()), t(1)).await.unwrap();
    let line = store.incident(id).await.unwrap().timeline.pop().unwrap();
    assert_eq!(line.kind, "receipt");
    assert_eq!(line.actor, "alice");
    assert_eq!(serde_json::from_value::<Receipt>(line.data).unwrap(), receipt);
}

pub async fn tokens_and_keys_are_found_by_hash_and_revoked_by_prefix(store: &dyn Store) {
    let token = |prefix: &str| TokenInfo {
        prefix: prefix.into(),
        user: "alice".into(),
        scopes: vec!["read".into(), "respond".into()],
        created_at: t(0),
        last_used_at: None,
        revoked: false,
    };
    store.add_token("h1", token("rv_abc1")).await.unwrap();
    store.add_token("h2", token("rv_abd2")).await.unwrap();
    assert_eq!(store.token("h1").await.unwrap(), Some(token("rv_abc1")));
    assert_eq!(store.token("nope").await.unwrap(), None);
    store.touch_token("h1", t(5)).await.unwrap();
    assert_eq!(store.token("h1").await.unwrap().unwrap().last_used_at, Some(t(5)));
    assert!(matches!(store.revoke_token("rv_ab").await, Err(Error::Refused(_))), "ambiguous");
    assert!(matches!(store.revoke_token("").await, Err(Error::Refused(_))));
    assert!(matches!(store.revoke_token("zz").await, Err(Error::NotFound(_))));
    assert!(store.revoke_token("rv_abd").await.unwrap().revoked);
    assert!(store.token("h2").await.unwrap().unwrap().revoked);
    assert!(!store.token("h1").await.unwrap().unwrap().revoked);
    assert_eq!(store.tokens().await.unwrap().len(), 2);

    let key = KeyInfo {
        prefix: "rk_1234".into(),
        service: "db".into(),
        created_at: t(0),
        revoked: false,
    };
    store.add_key("kh", key.clone()).await.unwrap();
    assert_eq!(store.key("kh").await.unwrap(), Some(key));
    assert!(store.revoke_key("rk_12").await.unwrap().revoked);
    assert!(store.key("kh").await.unwrap().unwrap().revoked);
    assert_eq!(store.keys().await.unwrap().len(), 1);
}

pub async fn concurrent_writes_all_land(store: &dyn Store) {
    let keys: Vec<String> = (0..200).map(|i| format!("k{i}")).collect();
    let sends = keys.iter().map(|key| send(store, "db", Action::Trigger, key, 0));
    let mut ids: Vec<i64> = join_all(sends).await.into_iter().map(Option::unwrap).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 200);
    let feed = store.feed_since("bob", 0, 1000).await.unwrap();
    assert_eq!(feed.len(), 200);
    assert!(feed.windows(2).all(|w| w[0].id < w[1].id));
    // A second snooze end far in the future must not wake early.
    store
        .command(
            ids[0],
            "bob",
            Command::Snooze { until: t(60) + SignedDuration::from_hours(1) },
            t(1),
        )
        .await
        .unwrap();
    assert_eq!(store.wake_due(t(3600), all_rules()).await.unwrap(), 0);
    assert_eq!(store.wake_due(t(3660), all_rules()).await.unwrap(), 1);
}

pub async fn the_ladder_moves_on_when_due_and_survives_reopening(store: &dyn Store) {
    let id = send(store, "ladder", Action::Trigger, "k1", 0).await.unwrap();
    let quiet: Deafness = Arc::default();
    assert_eq!(store.escalate(t(599), all_rules(), quiet.clone()).await.unwrap(), 0);
    assert!(store.feed_since("bob", 0, 10).await.unwrap().is_empty());
    assert_eq!(store.escalate(t(600), all_rules(), quiet.clone()).await.unwrap(), 1);
    let bob = store.feed_since("bob", 0, 10).await.unwrap();
    assert_eq!(bob.len(), 1);
    assert_eq!(bob[0].kind, FeedKind::Page);
    let incident = store.incident(id).await.unwrap().incident;
    assert_eq!(incident.escalation.unwrap().level, 1);
    assert_eq!(incident.paged, ["alice", "bob"]);
    store.command(id, "bob", Command::Acknowledge, t(601)).await.unwrap();
    assert_eq!(store.escalate(t(5000), all_rules(), quiet).await.unwrap(), 0);
    assert_eq!(store.feed_since("alice", 0, 10).await.unwrap().len(), 2, "page, then the ack");
}

pub async fn a_deaf_level_is_left_early(store: &dyn Store) {
    let id = send(store, "ladder", Action::Trigger, "k1", 0).await.unwrap();
    let deaf: Deafness =
        Arc::new(HashMap::from([("alice".to_string(), "has no live device".to_string())]));
    assert_eq!(store.escalate(t(60), all_rules(), deaf).await.unwrap(), 1);
    let timeline = store.incident(id).await.unwrap().timeline;
    assert!(timeline.last().unwrap().message.contains("alice has no live device"));
}

pub async fn a_person_can_move_the_ladder_on_at_once(store: &dyn Store) {
    let id = send(store, "ladder", Action::Trigger, "k1", 0).await.unwrap();
    let moved = store.escalate_now(id, "alice", " by pressing 6", all_rules(), t(30)).await;
    assert_eq!(moved.unwrap().escalation.unwrap().level, 1);
    assert_eq!(store.feed_since("bob", 0, 10).await.unwrap()[0].kind, FeedKind::Page);
    let timeline = store.incident(id).await.unwrap().timeline;
    assert!(timeline.iter().any(|e| e.kind == "escalate_requested" && e.actor == "alice"));
    let ended = store.escalate_now(id, "bob", "", all_rules(), t(31)).await;
    assert!(matches!(ended, Err(Error::Refused(why)) if why.contains("no next level")));
}

pub async fn overrides_heartbeats_and_handoffs_are_kept(store: &dyn Store) {
    let o = OverrideRecord {
        id: 0,
        schedule: "primary".into(),
        user: "carol".into(),
        start: t(0),
        end: t(60),
        created_by: "alice".into(),
        created_at: t(0),
    };
    let saved = store.add_override(o.clone()).await.unwrap();
    assert!(saved.id > 0);
    assert_eq!(store.overrides().await.unwrap(), std::slice::from_ref(&saved));
    assert_eq!(store.remove_override(saved.id).await.unwrap(), saved);
    assert!(matches!(store.remove_override(saved.id).await, Err(Error::NotFound(_))));

    assert_eq!(store.heartbeat_ping("backup", t(0)).await.unwrap(), None);
    let before = store.heartbeat_ping("backup", t(30)).await.unwrap().unwrap();
    assert_eq!((before.last_ping, before.missed), (t(0), false));
    store.set_heartbeat_missed("backup", true).await.unwrap();
    let listed = store.heartbeats().await.unwrap();
    assert_eq!((listed[0].last_ping, listed[0].missed), (t(30), true));

    assert_eq!(store.handoff("primary").await.unwrap(), None);
    store.set_handoff("primary", t(5)).await.unwrap();
    store.set_handoff("primary", t(9)).await.unwrap();
    assert_eq!(store.handoff("primary").await.unwrap(), Some(t(9)));
}

pub async fn phones_devices_links_and_the_push_outbox_are_kept(store: &dyn Store) {
    assert_eq!(store.meta_or_insert("secret", "first").await.unwrap(), "first");
    assert_eq!(store.meta_or_insert("secret", "second").await.unwrap(), "first", "kept once made");
    store.set_meta("cursor", "5").await.unwrap();
    store.set_meta("cursor", "9").await.unwrap();
    assert_eq!(store.meta_or_insert("cursor", "0").await.unwrap(), "9");
    assert_eq!(store.meta("cursor").await.unwrap().as_deref(), Some("9"));
    assert_eq!(store.meta("never-set").await.unwrap(), None, "reading makes nothing");
    assert_eq!(store.meta("never-set").await.unwrap(), None);

    assert_eq!(store.phone_topic("alice", "rv-a1", t(0)).await.unwrap(), "rv-a1");
    assert_eq!(
        store.phone_topic("alice", "rv-a2", t(1)).await.unwrap(),
        "rv-a1",
        "one topic per user"
    );
    assert_eq!(store.topic_user("rv-a1").await.unwrap().as_deref(), Some("alice"));
    assert_eq!(store.topic_user("rv-a2").await.unwrap(), None);

    let device = |user: &str, token: &str| DeviceRecord {
        id: 0,
        user: user.into(),
        platform: "fcm".into(),
        token: token.into(),
        name: "pixel".into(),
        created_at: t(0),
        push_ok: None,
    };
    let first = store.add_device(device("alice", "tok-1"), 2).await.unwrap();
    let again = store.add_device(device("alice", "tok-1"), 2).await.unwrap();
    assert_eq!(again.id, first.id, "registering again keeps one record");
    let stolen = store.add_device(device("bob", "tok-1"), 2).await;
    assert!(matches!(stolen, Err(Error::Refused(_))), "a device never moves to another user");
    store.add_device(device("alice", "tok-2"), 2).await.unwrap();
    let over = store.add_device(device("alice", "tok-3"), 2).await;
    assert!(matches!(over, Err(Error::Refused(_))), "at most 2 devices per user: {over:?}");
    store.add_device(device("bob", "tok-4"), 2).await.unwrap();
    assert_eq!(store.devices(Some("alice")).await.unwrap().len(), 2);
    assert_eq!(store.devices(None).await.unwrap().len(), 3);
    assert_eq!(store.remove_device(first.id).await.unwrap().token, "tok-1");
    assert!(matches!(store.remove_device(first.id).await, Err(Error::NotFound(_))));

    let spare = store.devices(Some("alice")).await.unwrap()[0].clone();
    assert_eq!(spare.push_ok, None, "no push sent yet");
    store.set_push_ok(spare.id, false).await.unwrap();
    let pushed = store.devices(Some("alice")).await.unwrap();
    assert_eq!(pushed[0].push_ok, Some(false));
    assert!(store.use_link("sig", t(0)).await.unwrap());
    assert!(!store.use_link("sig", t(1)).await.unwrap(), "a link works once");

    let mut head = store.hub().head();
    send(store, "db", Action::Trigger, "k1", 0).await;
    head.changed().await.unwrap();
    let all = store.feed_all_since(0, 100).await.unwrap();
    let users: Vec<&str> = all.iter().map(|(u, _)| u.as_str()).collect();
    assert_eq!(users, ["alice", "bob"]);
    assert_eq!(*head.borrow(), all[1].1.id);
    assert_eq!(store.feed_all_since(all[0].1.id, 100).await.unwrap().len(), 1);
}

pub async fn retention_prunes_old_history_and_nothing_an_open_incident_or_a_reader_needs(
    store: &dyn Store,
) {
    let old = send(store, "db", Action::Trigger, "old", 0).await.unwrap();
    let still_open = send(store, "db", Action::Trigger, "open", 0).await.unwrap();
    store.command(old, "alice", Command::Resolve, t(10)).await.unwrap();
    let late = send(store, "web", Action::Trigger, "late", 100).await.unwrap();
    store.command(late, "alice", Command::Resolve, t(200)).await.unwrap();
    assert!(store.use_link("used-long-ago", t(10)).await.unwrap());
    let cover = |end: i64| OverrideRecord {
        id: 0,
        schedule: "primary".into(),
        user: "carol".into(),
        start: t(0),
        end: t(end),
        created_by: "alice".into(),
        created_at: t(0),
    };
    store.add_override(cover(60)).await.unwrap();
    let to_come = store.add_override(cover(1_000)).await.unwrap();
    let token = |prefix: &str, scopes: &[&str], at: i64| TokenInfo {
        prefix: prefix.into(),
        user: "alice".into(),
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        created_at: t(at),
        last_used_at: None,
        revoked: false,
    };
    store.add_token("h-old-session", token("rvt_sess1", &["read", "web"], 0)).await.unwrap();
    store.add_token("h-new-session", token("rvt_sess2", &["read", "web"], 160)).await.unwrap();
    store.add_token("h-revoked", token("rvt_gone01", &["read"], 0)).await.unwrap();
    store.revoke_token("rvt_gone01").await.unwrap();
    store.add_token("h-kept", token("rvt_kept01", &["read"], 0)).await.unwrap();
    let feed = |user: &'static str| async move {
        let entries = store.feed_since(user, 0, 1000).await.unwrap();
        entries.into_iter().map(|e| (e.id, e.incident.id)).collect::<Vec<_>>()
    };
    let before = feed("alice").await;
    let old_entries: Vec<i64> =
        before.iter().filter(|(_, i)| *i == old).map(|(id, _)| *id).collect();
    assert_eq!(old_entries.len(), 2, "paged, then resolved");

    // A reader (the push cursor) has not yet read past the old incident's resolution.
    let cursor = old_entries[0];
    let pruned = store.prune(t(150), Some(cursor)).await.unwrap();
    assert_eq!(pruned.incidents, 1, "{pruned:?}");
    assert_eq!(pruned.events, 3, "the three triggers, received before the cutoff: {pruned:?}");
    assert_eq!(pruned.links, 1);
    assert_eq!(pruned.overrides, 1, "the override that ended: {pruned:?}");
    assert_eq!(
        store.overrides().await.unwrap().iter().map(|o| o.id).collect::<Vec<_>>(),
        [to_come.id]
    );
    assert_eq!(pruned.tokens, 2, "the old session and the revoked token: {pruned:?}");
    let kept: Vec<String> = store.tokens().await.unwrap().into_iter().map(|t| t.prefix).collect();
    assert_eq!(kept.len(), 2, "a live token and a new session stay: {kept:?}");
    assert!(kept.contains(&"rvt_kept01".to_owned()) && kept.contains(&"rvt_sess2".to_owned()));
    assert!(matches!(store.incident(old).await, Err(Error::NotFound(_))));
    let after = feed("alice").await;
    assert!(after.iter().any(|(id, _)| *id == old_entries[1]), "past the reader: kept");
    assert!(!after.iter().any(|(id, _)| *id == old_entries[0]));
    assert_eq!(store.feed_horizon().await.unwrap(), old_entries[0]);
    let open = store.incident(still_open).await.unwrap();
    assert_eq!(open.incident.state, IncidentState::Triggered, "open incidents are never pruned");
    assert!(!open.timeline.is_empty());
    assert!(after.iter().filter(|(_, i)| *i == still_open).count() == 1);
    assert_eq!(store.incident(late).await.unwrap().incident.state, IncidentState::Resolved);
    assert!(store.prune(t(150), Some(cursor)).await.unwrap().is_empty(), "nothing left to do");
    assert!(store.use_link("used-long-ago", t(300)).await.unwrap(), "forgotten once pruned");
}

pub async fn timed_work_is_claimed_once_and_tokens_are_shared(store: &dyn Store) {
    store.heartbeat_ping("backup", t(0)).await.unwrap();
    let missed = || Claim::HeartbeatMissed { name: "backup".into(), last_ping: t(0) };
    let batch = IngestBatch {
        rules: rules("db"),
        source: "heartbeat".into(),
        events: vec![event(Action::Trigger, "heartbeat/backup")],
        received_at: t(100),
    };
    // Two workers see the same miss at once: one pages, the other does nothing.
    let (a, b) = futures_util::join!(
        store.ingest_once(missed(), Some(batch.clone())),
        store.ingest_once(missed(), Some(batch.clone()))
    );
    let landed: Vec<_> = [a.unwrap(), b.unwrap()].into_iter().flatten().collect();
    assert_eq!(landed.len(), 1, "exactly one worker claims the miss");
    assert_eq!(store.incidents(IncidentFilter::default()).await.unwrap().len(), 1);
    // A ping since then: the old miss can no longer be claimed.
    store.heartbeat_ping("backup", t(200)).await.unwrap();
    store.set_heartbeat_missed("backup", false).await.unwrap();
    assert_eq!(store.ingest_once(missed(), Some(batch)).await.unwrap(), None);

    let first = Claim::Handoff { schedule: "primary".into(), previous: None, at: t(0) };
    assert!(store.ingest_once(first.clone(), None).await.unwrap().is_some());
    assert!(store.ingest_once(first, None).await.unwrap().is_none());
    let next = || Claim::Handoff { schedule: "primary".into(), previous: Some(t(0)), at: t(50) };
    assert!(store.ingest_once(next(), None).await.unwrap().is_some());
    assert!(store.ingest_once(next(), None).await.unwrap().is_none(), "drilled once");
    assert_eq!(store.handoff("primary").await.unwrap(), Some(t(50)));

    // 60 a minute: a burst of 60, then one a second.
    assert_eq!(store.take_tokens("key", 50, 60, t(0)).await.unwrap(), 50);
    assert_eq!(store.take_tokens("key", 50, 60, t(0)).await.unwrap(), 10);
    assert_eq!(store.take_tokens("key", 5, 60, t(0)).await.unwrap(), 0);
    assert_eq!(store.take_tokens("key", 5, 60, t(2)).await.unwrap(), 2);
    assert_eq!(store.take_tokens("other", 1, 60, t(2)).await.unwrap(), 1, "a bucket per key");

    let lease = store.lease("push", "node-a", t(0), t(10)).await.unwrap();
    assert_eq!(lease, Lease::Granted { took_over: None });
}

#[macro_export]
macro_rules! conformance_suite {
    ($make:path) => {
        $crate::conformance_suite!(@each $make;
            a_trigger_opens_an_incident_and_pages_each_user,
            a_repeated_trigger_lands_on_the_open_incident,
            a_trigger_after_resolve_opens_a_new_incident,
            ack_notifies_every_paged_user_once,
            commands_on_missing_or_resolved_incidents_are_refused,
            a_snooze_pages_again_when_it_ends,
            the_feed_resumes_after_any_id_with_no_gap,
            committed_entries_reach_subscribers_in_order,
            incidents_can_be_listed_by_state_service_and_user,
            receipts_go_on_the_timeline,
            tokens_and_keys_are_found_by_hash_and_revoked_by_prefix,
            concurrent_writes_all_land,
            the_ladder_moves_on_when_due_and_survives_reopening,
            a_deaf_level_is_left_early,
            a_person_can_move_the_ladder_on_at_once,
            overrides_heartbeats_and_handoffs_are_kept,
            phones_devices_links_and_the_push_outbox_are_kept,
            retention_prunes_old_history_and_nothing_an_open_incident_or_a_reader_needs,
            timed_work_is_claimed_once_and_tokens_are_shared,
            a_link_is_spent_only_with_the_command_it_carries,
        );
    };
    (@each $make:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let store = $make().await;
                $crate::conformance::$name(&*store).await;
            }
        )*
    };
}
