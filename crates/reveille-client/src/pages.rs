//! What a device is ringing for. Pages of high urgency ring (several ring as one alarm); low
//! urgency only notifies; an acknowledgement, snooze or resolve from anywhere stops the ring for
//! that incident, and the alarm falls silent when no page is left.

use std::collections::BTreeMap;

use reveille_protocol::{FeedEvent, FeedKind, Incident, IncidentState, ReceiptKind, Urgency};

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
    /// Tell the server.
    Receipt { incident: i64, kind: ReceiptKind },
}

#[derive(Debug, Clone, Default)]
pub struct Pages {
    ringing: BTreeMap<i64, Incident>,
}

impl Pages {
    /// The incidents ringing now, oldest first.
    pub fn ringing(&self) -> impl Iterator<Item = &Incident> {
        self.ringing.values()
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

    /// What was already open for this user when the device started (`/incidents?mine=true`).
    pub fn on_open(&mut self, incidents: &[Incident]) -> Vec<Effect> {
        incidents
            .iter()
            .filter(|i| i.state == IncidentState::Triggered)
            .flat_map(|i| self.page(i))
            .collect()
    }

    /// The person acknowledged, snoozed or resolved on this device: stop at once, even offline.
    pub fn on_local(&mut self, incident: i64) -> Vec<Effect> {
        let mut effects = Vec::new();
        // Silence first: it is what the person is waiting for.
        if self.ringing.remove(&incident).is_some() && self.ringing.is_empty() {
            effects.push(Effect::Silence);
        }
        effects.push(Effect::Withdraw(incident));
        effects
    }

    fn page(&mut self, incident: &Incident) -> Vec<Effect> {
        if incident.state != IncidentState::Triggered {
            return Vec::new();
        }
        let mut effects = vec![
            Effect::Receipt { incident: incident.id, kind: ReceiptKind::Delivered },
            Effect::Notify(incident.clone()),
        ];
        if incident.urgency == Urgency::High {
            let was_quiet = self.ringing.is_empty();
            self.ringing.insert(incident.id, incident.clone());
            effects.push(Effect::Show(incident.clone()));
            if was_quiet {
                effects.push(Effect::Ring);
            }
        }
        effects
    }

    fn change(&mut self, incident: &Incident) -> Vec<Effect> {
        if incident.state == IncidentState::Triggered {
            return Vec::new();
        }
        let mut effects = Vec::new();
        if self.ringing.remove(&incident.id).is_some() && self.ringing.is_empty() {
            effects.push(Effect::Silence);
        }
        effects.push(Effect::Withdraw(incident.id));
        effects
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

    fn entry(kind: FeedKind, incident: Incident) -> FeedEvent {
        FeedEvent { id: incident.id, kind, at: Timestamp::UNIX_EPOCH, incident }
    }

    fn rings(effects: &[Effect]) -> (bool, bool) {
        (effects.contains(&Effect::Ring), effects.contains(&Effect::Silence))
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
}
