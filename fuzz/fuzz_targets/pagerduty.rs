//! PagerDuty Events API v2: arbitrary bytes through the server's JSON reader and `to_alert`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reveille_fuzz::{accepted, parse, refused};
use reveille_protocol::formats::pagerduty::Event;
use reveille_protocol::Action;
use reveille_server::ingest::pagerduty;

fuzz_target!(|data: &[u8]| {
    let Some(event) = parse::<Event>(data) else { return };
    match pagerduty::to_alert(&event) {
        Ok(alert) => {
            accepted(&alert, 1024);
            assert!(
                alert.dedup_key.chars().count() <= 255,
                "PagerDuty's dedup keys are at most 255"
            );
            if alert.action == Action::Trigger {
                assert!(!alert.summary.trim().is_empty(), "a trigger without a summary");
            }
        }
        Err(problems) => refused(&problems),
    }
});
