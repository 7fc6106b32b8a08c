//! The directory: every service's paging rules and every schedule, built from the configuration
//! plus the overrides stored in the database. Rebuilt by the worker each tick and after an
//! override changes, so every node converges on the same answer.

use std::collections::HashMap;
use std::sync::Arc;

use reveille_core::ServiceRules;
use reveille_core::schedule::{Override, Schedule};
use reveille_store::{OverrideRecord, Rules};

use crate::config::{Settings, oncall};

#[derive(Debug, Clone, Default)]
pub struct Directory {
    pub rules: Arc<Rules>,
    pub schedules: Arc<HashMap<String, Schedule>>,
}

impl Directory {
    pub fn build(settings: &Settings, stored: &[OverrideRecord]) -> Self {
        let mut schedules = oncall::schedules(settings);
        for o in stored {
            if let Some(schedule) = schedules.get_mut(&o.schedule) {
                schedule.overrides.push(Override {
                    user: o.user.clone(),
                    start: o.start,
                    end: o.end,
                });
            }
        }
        let schedules = Arc::new(schedules);
        let rules = settings
            .services
            .iter()
            .map(|service| {
                let rules = ServiceRules {
                    name: service.name.clone(),
                    policy: oncall::policy(settings, service),
                    schedules: schedules.clone(),
                    urgency: settings.urgency(service),
                    runbook_url: settings.runbook_url(service),
                    drill: false,
                };
                (service.name.clone(), rules)
            })
            .collect();
        Self { rules: Arc::new(rules), schedules }
    }

    pub fn service(&self, name: &str) -> Option<&ServiceRules> {
        self.rules.get(name)
    }
}
