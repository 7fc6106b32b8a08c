//! What a device is ringing for. Pages of high urgency ring (several ring as one alarm); low
//! urgency only notifies; an acknowledgement, snooze or resolve from anywhere stops the ring for
//! that incident, and the alarm falls silent when no page is left.
//!
//! In a storm the person must still be able to act: at most [`WINDOWS`] ringing pages have their
//! own notification and alarm window, and at most [`WINDOWS`] low-urgency pages their own
//! notification; the rest wait behind one summary ("N more pages"), and each time a page that
//! has its own is answered, the oldest waiting page of its kind takes its place.

use std::collections::{BTreeMap, BTreeSet};

use reveille_protocol::{FeedEvent, FeedKind, Incident, IncidentState, ReceiptKind, Urgency};

/// Alarm windows (and their notifications) open at once.
pub const WINDOWS: usize = 3;

#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Show a native notification for this page.
    Notify(Incident),
    /// Open (or raise) the alarm window for this page.
    Show(Incident),
    /// Start the alarm (nothing was ringing).
    Ring,
    /// Stop the alarm (nothing is left to ring for).
    Silence,
    /// The page's notification and window can go.
    Withdraw(i64),
    /// How many pages wait without a notification or window of their own (0: remove the summary).
    Waiting(usize),
    /// Tell the server.
    Receipt { incident: i64, kind: ReceiptKind },
}

#[derive(Debug, Clone, Default)]
pub struct Pages {
    ringing: BTreeMap<i64, Incident>,
    /// Ringing pages that have a window; the others wait.
    shown: BTreeSet<i64>,
    /// Low-urgency pages not yet answered, and those of them that have a notification.
    quiet: BTreeMap<i64, Incident>,
    quiet_shown: BTreeSet<i64>,
}

impl Pages {
    /// The incidents ringing now, oldest first.
    pub fn ringing(&self) -> impl Iterator<Item = &Incident> {
        self.ringing.values()
    }

    /// How many incidents are ringing.
    pub fn ringing_count(&self) -> usize {
        self.ringing.len()
    }

    pub fn is_ringing(&self) -> bool {
        !self.ringing.is_empty()
    }

    /// A page or a change arrived on the feed.
    pub fn on_entry(&mut self, entry: &FeedEvent) -> Vec<Effect> {
        match entry.kind {
            FeedKind::Page => self.page(&entry.incident),
            FeedKind::Incident => self.change(&entry.incident),
        }
    }

    /// Entries replayed after a reconnection, in feed order: only each incident's last entry
    /// counts, so a page answered while the device was away is not rung at all.
    pub fn on_replay(&mut self, entries: &[FeedEvent]) -> Vec<Effect> {
        let mut last: BTreeMap<i64, &FeedEvent> = BTreeMap::new();
        for entry in entries {
            last.insert(entry.incident.id, entry);
        }
        // A change to an incident this device is not ringing for has nothing to stop.
        let known = |id: &i64| self.ringing.contains_key(id) || self.quiet.contains_key(id);
        let mut latest: Vec<&FeedEvent> = last
            .into_values()
            .filter(|e| e.kind == FeedKind::Page || known(&e.incident.id))
            .collect();
        latest.sort_by_key(|e| e.id);
        latest.into_iter().flat_map(|e| self.on_entry(e)).collect()
    }

    /// What was already open for this user when the device started (`/incidents?mine=true`).
    /// Rung oldest first, as an unbroken stream would have rung them: the API lists newest
    /// first, and handing the windows to the newest left the oldest page waiting behind the
    /// summary, so it was never shown nor notified if it was answered first.
    pub fn on_open(&mut self, incidents: &[Incident]) -> Vec<Effect> {
        let mut open: Vec<&Incident> =
            incidents.iter().filter(|i| i.state == IncidentState::Triggered).collect();
        open.sort_by_key(|i| i.id);
        open.into_iter().flat_map(|i| self.page(i)).collect()
    }

    /// The feed could not be resumed where this device left it (retention removed entries it had
    /// not read, such as a resolution): what is open now replaces what was ringing.
    pub fn on_resync(&mut self, open: &[Incident]) -> Vec<Effect> {
        let waiting: BTreeSet<i64> =
            open.iter().filter(|i| i.state == IncidentState::Triggered).map(|i| i.id).collect();
        let known: Vec<i64> = self.ringing.keys().chain(self.quiet.keys()).copied().collect();
        let stale = known.iter().filter(|id| !waiting.contains(id));
        let mut effects: Vec<Effect> = stale.flat_map(|&id| self.answered(id)).collect();
        let fresh: Vec<Incident> =
            open.iter().filter(|i| !known.contains(&i.id)).cloned().collect();
        effects.extend(self.on_open(&fresh));
        effects
    }

    /// The person acknowledged, snoozed or resolved on this device: stop at once, even offline.
    pub fn on_local(&mut self, incident: i64) -> Vec<Effect> {
        self.answered(incident)
    }

    fn page(&mut self, incident: &Incident) -> Vec<Effect> {
        if incident.state != IncidentState::Triggered {
            return Vec::new();
        }
        let id = incident.id;
        let mut effects = vec![Effect::Receipt { incident: id, kind: ReceiptKind::Delivered }];
        if incident.urgency != Urgency::High {
            self.quiet.insert(id, incident.clone());
            if self.quiet_shown.contains(&id) || self.quiet_shown.len() < WINDOWS {
                self.quiet_shown.insert(id);
                effects.push(Effect::Notify(incident.clone()));
            } else {
                effects.push(Effect::Waiting(self.waiting()));
            }
            return effects;
        }
        let was_quiet = self.ringing.is_empty();
        self.ringing.insert(id, incident.clone());
        if self.shown.contains(&id) || self.shown.len() < WINDOWS {
            self.shown.insert(id);
            effects.push(Effect::Notify(incident.clone()));
            effects.push(Effect::Show(incident.clone()));
        } else {
            effects.push(Effect::Waiting(self.waiting()));
        }
        if was_quiet {
            effects.push(Effect::Ring);
        }
        effects
    }

    fn change(&mut self, incident: &Incident) -> Vec<Effect> {
        if incident.state == IncidentState::Triggered {
            return Vec::new();
        }
        self.answered(incident.id)
    }

    /// The incident no longer needs this person.
    fn answered(&mut self, incident: i64) -> Vec<Effect> {
        let mut effects = Vec::new();
        let waited = self.waiting();
        // Silence first: it is what the person is waiting for.
        if self.ringing.remove(&incident).is_some() && self.ringing.is_empty() {
            effects.push(Effect::Silence);
        }
        effects.push(Effect::Withdraw(incident));
        if self.shown.remove(&incident) {
            let next = self.ringing.values().find(|i| !self.shown.contains(&i.id)).cloned();
            if let Some(next) = next {
                self.shown.insert(next.id);
                effects.push(Effect::Notify(next.clone()));
                effects.push(Effect::Show(next));
            }
        }
        self.quiet.remove(&incident);
        if self.quiet_shown.remove(&incident) {
            let next = self.quiet.values().find(|i| !self.quiet_shown.contains(&i.id)).cloned();
            if let Some(next) = next {
                self.quiet_shown.insert(next.id);
                effects.push(Effect::Notify(next));
            }
        }
        if waited > 0 {
            effects.push(Effect::Waiting(self.waiting()));
        }
        effects
    }

    /// Pages without a notification or window of their own.
    fn waiting(&self) -> usize {
        debug_assert!(self.shown.len() <= self.ringing.len());
        debug_assert!(self.quiet_shown.len() <= self.quiet.len());
        (self.ringing.len() - self.shown.len()) + (self.quiet.len() - self.quiet_shown.len())
    }
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;
    use reveille_protocol::{Severity, Urgency};

    use super::*;

    fn incident(id: i64, state: IncidentState, urgency: Urgency) -> Incident {
        Incident {
            id,
            service: "db".into(),
            dedup_key: format!("k{id}"),
            state,
            urgency,
            severity: Severity::Critical,
            summary: "down".into(),
            source: String::new(),
            details: serde_json::Value::Null,
            links: vec![],
            runbook_url: None,
            created_at: Timestamp::UNIX_EPOCH,
            updated_at: Timestamp::UNIX_EPOCH,
            acknowledged_by: None,
            resolved_by: None,
            snoozed_until: None,
            paged: vec!["alice".into()],
            escalation: None,
            drill: false,
            silent: vec![],
        }
    }

    #[test]
    fn pages_already_open_get_their_windows_oldest_first_like_the_stream() {
        let high = |id| incident(id, IncidentState::Triggered, Urgency::High);
        let shown = |effects: &[Effect]| {
            effects
                .iter()
                .filter_map(|e| match e {
                    Effect::Show(i) => Some(i.id),
                    _ => None,
                })
                .collect::<Vec<_>>()
        };
        let mut pages = Pages::default();
        // As the API lists them: newest first.
        let mut effects = pages.on_open(&[high(4), high(3), high(2), high(1)]);
        assert_eq!(shown(&effects), [1, 2, 3]);
        for id in 1..=4 {
            let acked = incident(id, IncidentState::Acknowledged, Urgency::High);
            effects.extend(pages.on_entry(&entry(FeedKind::Incident, acked)));
        }
        let mut every = shown(&effects);
        every.sort_unstable();
        assert_eq!(every, [1, 2, 3, 4], "every page is shown once before it is answered");
    }

    #[test]
    fn a_resync_silences_what_is_no_longer_open_and_rings_only_what_is_new() {
        let high = |id| incident(id, IncidentState::Triggered, Urgency::High);
        let mut pages = Pages::default();
        pages.on_open(&[high(1), high(2)]);
        // Page 1 was resolved while the device was away, and the entry saying so was pruned.
        let effects = pages.on_resync(&[high(2), high(3)]);
        assert!(effects.contains(&Effect::Withdraw(1)));
        assert!(effects.contains(&Effect::Show(high(3))));
        assert!(!effects.contains(&Effect::Show(high(2))), "still ringing: not shown twice");
        assert_eq!(pages.ringing().map(|i| i.id).collect::<Vec<_>>(), [2, 3]);
        let silenced = pages.on_resync(&[]);
        assert!(silenced.contains(&Effect::Silence));
        assert!(!pages.is_ringing());
    }

    fn entry(kind: FeedKind, incident: Incident) -> FeedEvent {
        FeedEvent { id: incident.id, kind, at: Timestamp::UNIX_EPOCH, incident }
    }

    fn rings(effects: &[Effect]) -> (bool, bool) {
        (effects.contains(&Effect::Ring), effects.contains(&Effect::Silence))
    }

    #[test]
    fn a_replayed_page_answered_meanwhile_never_rings() {
        let mut pages = Pages::default();
        let page = |id, feed| FeedEvent {
            id: feed,
            ..entry(FeedKind::Page, incident(id, IncidentState::Triggered, Urgency::High))
        };
        let acked = |id, feed| FeedEvent {
            id: feed,
            ..entry(FeedKind::Incident, incident(id, IncidentState::Acknowledged, Urgency::High))
        };
        // Away: page 1 came and was acknowledged by someone else; page 2 came and still waits.
        let effects = pages.on_replay(&[page(1, 10), page(2, 11), acked(1, 12)]);
        assert!(
            !effects.iter().any(|e| matches!(e, Effect::Show(i) | Effect::Notify(i) if i.id == 1))
        );
        assert!(!effects.contains(&Effect::Receipt { incident: 1, kind: ReceiptKind::Delivered }));
        assert_eq!(effects.iter().filter(|e| **e == Effect::Ring).count(), 1);
        assert!(!effects.contains(&Effect::Silence), "nothing rang that had to stop");
        assert_eq!(pages.ringing().map(|i| i.id).collect::<Vec<_>>(), [2]);
        // Everything answered while away: nothing at all rings.
        let mut fresh = Pages::default();
        let effects = fresh.on_replay(&[page(3, 20), acked(3, 21)]);
        assert!(effects.is_empty(), "{effects:?}");
        assert!(!fresh.is_ringing());
    }

    #[test]
    fn several_pages_ring_as_one_until_the_last_is_acknowledged() {
        let mut pages = Pages::default();
        let first = pages
            .on_entry(&entry(FeedKind::Page, incident(1, IncidentState::Triggered, Urgency::High)));
        assert_eq!(rings(&first), (true, false));
        assert!(first.contains(&Effect::Receipt { incident: 1, kind: ReceiptKind::Delivered }));
        let second = pages
            .on_entry(&entry(FeedKind::Page, incident(2, IncidentState::Triggered, Urgency::High)));
        assert_eq!(rings(&second), (false, false), "already ringing");
        let acked = pages.on_entry(&entry(
            FeedKind::Incident,
            incident(1, IncidentState::Acknowledged, Urgency::High),
        ));
        assert_eq!(rings(&acked), (false, false), "page 2 still rings");
        assert_eq!(acked, [Effect::Withdraw(1)]);
        let resolved = pages.on_entry(&entry(
            FeedKind::Incident,
            incident(2, IncidentState::Resolved, Urgency::High),
        ));
        assert_eq!(resolved, [Effect::Silence, Effect::Withdraw(2)], "silence comes first");
        assert!(!pages.is_ringing());
    }

    #[test]
    fn low_urgency_only_notifies_and_stale_pages_do_nothing() {
        let mut pages = Pages::default();
        let low = pages
            .on_entry(&entry(FeedKind::Page, incident(1, IncidentState::Triggered, Urgency::Low)));
        assert_eq!(rings(&low), (false, false));
        assert!(matches!(low[1], Effect::Notify(_)));
        assert!(!low.iter().any(|e| matches!(e, Effect::Show(_))));
        let stale = pages.on_entry(&entry(
            FeedKind::Page,
            incident(2, IncidentState::Acknowledged, Urgency::High),
        ));
        assert!(stale.is_empty());
        let open = pages.on_open(&[
            incident(3, IncidentState::Triggered, Urgency::High),
            incident(4, IncidentState::Snoozed, Urgency::High),
        ]);
        assert_eq!(rings(&open), (true, false));
        assert_eq!(pages.ringing().map(|i| i.id).collect::<Vec<_>>(), [3]);
    }

    #[test]
    fn a_storm_opens_three_windows_and_the_rest_wait_behind_one_summary() {
        let mut pages = Pages::default();
        let high =
            |id| entry(FeedKind::Page, incident(id, IncidentState::Triggered, Urgency::High));
        let mut effects = Vec::new();
        for id in 1..=100 {
            effects.extend(pages.on_entry(&high(id)));
        }
        let count =
            |effects: &[Effect], f: fn(&Effect) -> bool| effects.iter().filter(|e| f(e)).count();
        assert_eq!(count(&effects, |e| matches!(e, Effect::Ring)), 1);
        assert_eq!(count(&effects, |e| matches!(e, Effect::Show(_))), WINDOWS);
        assert_eq!(count(&effects, |e| matches!(e, Effect::Notify(_))), WINDOWS);
        assert_eq!(effects.last(), Some(&Effect::Waiting(97)));
        assert_eq!(pages.ringing_count(), 100);

        // Answering a page with a window gives that window to the oldest waiting page.
        let acked = pages.on_local(2);
        let shown: Vec<i64> = acked
            .iter()
            .filter_map(|e| if let Effect::Show(i) = e { Some(i.id) } else { None })
            .collect();
        assert_eq!(shown, [4]);
        assert_eq!(acked.first(), Some(&Effect::Withdraw(2)));
        assert_eq!(acked.last(), Some(&Effect::Waiting(96)));

        // A page without a window answered elsewhere only shrinks the summary.
        let resolved = pages.on_entry(&entry(
            FeedKind::Incident,
            incident(50, IncidentState::Resolved, Urgency::High),
        ));
        assert_eq!(resolved, [Effect::Withdraw(50), Effect::Waiting(95)]);

        // Answer everything: the summary goes away with the last waiting page, then silence.
        let mut rest = Vec::new();
        for id in (1..=100).filter(|id| ![2, 50].contains(id)) {
            rest.extend(pages.on_local(id));
        }
        assert!(rest.contains(&Effect::Waiting(0)));
        assert_eq!(rest.iter().filter(|e| **e == Effect::Silence).count(), 1);
        assert!(!pages.is_ringing());
    }

    #[test]
    fn a_storm_of_low_urgency_pages_notifies_three_and_summarises_the_rest() {
        let mut pages = Pages::default();
        let low = |id| entry(FeedKind::Page, incident(id, IncidentState::Triggered, Urgency::Low));
        let mut effects = Vec::new();
        for id in 1..=50 {
            effects.extend(pages.on_entry(&low(id)));
        }
        let notified = effects.iter().filter(|e| matches!(e, Effect::Notify(_))).count();
        assert_eq!(notified, WINDOWS);
        assert_eq!(effects.last(), Some(&Effect::Waiting(47)));
        assert!(!pages.is_ringing());
        let acked = pages.on_local(1);
        assert!(acked.iter().any(|e| matches!(e, Effect::Notify(i) if i.id == 4)), "{acked:?}");
        assert_eq!(acked.last(), Some(&Effect::Waiting(46)));
    }
}
