//! What the core needs to know about a service: whom it pages, how, and how urgent its alerts are.

use std::collections::HashMap;
use std::sync::Arc;

use reveille_protocol::{Severity, Urgency};

use crate::policy::Policy;
use crate::schedule::Schedule;

/// How a service turns an alert's severity into urgency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UrgencyRule {
    /// critical and error page and ring; warning and info only notify.
    #[default]
    FromSeverity,
    /// Every alert of the service has this urgency.
    Always(Urgency),
}

impl UrgencyRule {
    pub fn urgency(self, severity: Severity) -> Urgency {
        match self {
            Self::Always(u) => u,
            Self::FromSeverity if severity >= Severity::Error => Urgency::High,
            Self::FromSeverity => Urgency::Low,
        }
    }
}

/// A service's paging rules, resolved from the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRules {
    pub name: String,
    pub policy: Policy,
    /// Every schedule, by name, for resolving the policy's schedule targets.
    pub schedules: Arc<HashMap<String, Schedule>>,
    pub urgency: UrgencyRule,
    /// The service's runbook, used when an alert brings none of its own.
    pub runbook_url: Option<String>,
    /// Incidents of this service are drills: they ring their one target and never escalate.
    pub drill: bool,
}

impl ServiceRules {
    /// A service that pages these users, with no escalation.
    pub fn paging(name: &str, users: &[&str]) -> Self {
        let users: Vec<String> = users.iter().map(|u| u.to_string()).collect();
        Self {
            name: name.into(),
            policy: Policy::users(&users),
            schedules: Arc::default(),
            urgency: UrgencyRule::FromSeverity,
            runbook_url: None,
            drill: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_decides_urgency_unless_the_service_overrides_it() {
        let rule = UrgencyRule::FromSeverity;
        assert_eq!(rule.urgency(Severity::Critical), Urgency::High);
        assert_eq!(rule.urgency(Severity::Error), Urgency::High);
        assert_eq!(rule.urgency(Severity::Warning), Urgency::Low);
        assert_eq!(rule.urgency(Severity::Info), Urgency::Low);
        assert_eq!(UrgencyRule::Always(Urgency::High).urgency(Severity::Info), Urgency::High);
        assert_eq!(UrgencyRule::Always(Urgency::Low).urgency(Severity::Critical), Urgency::Low);
    }
}
