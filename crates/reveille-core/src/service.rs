//! What the core needs to know about a service: who it pages and how urgent its alerts are.

use reveille_protocol::{Severity, Urgency};

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
    /// Users paged when an incident opens.
    pub page: Vec<String>,
    pub urgency: UrgencyRule,
    /// The service's runbook, used when an alert brings none of its own.
    pub runbook_url: Option<String>,
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
        assert_eq!(
            UrgencyRule::Always(Urgency::High).urgency(Severity::Info),
            Urgency::High
        );
        assert_eq!(
            UrgencyRule::Always(Urgency::Low).urgency(Severity::Critical),
            Urgency::Low
        );
    }
}
