//! Alertmanager's (and Grafana's, the same parser) webhook: arbitrary bytes through the server's
//! JSON reader and `to_alerts`: one event per alert, or the whole group refused.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reveille_fuzz::{accepted, parse, refused};
use reveille_protocol::formats::alertmanager::Message;
use reveille_protocol::Severity;
use reveille_server::ingest::alertmanager;

fuzz_target!(|data: &[u8]| {
    let Some(message) = parse::<Message>(data) else { return };
    match alertmanager::to_alerts(&message, Severity::Warning) {
        Ok(events) => {
            assert_eq!(events.len(), message.alerts.as_ref().map_or(0, Vec::len));
            for event in &events {
                accepted(event, 1024);
                assert!(!event.summary.trim().is_empty(), "an alert without a summary");
            }
        }
        Err(problems) => refused(&problems),
    }
});
