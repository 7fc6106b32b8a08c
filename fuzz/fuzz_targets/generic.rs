//! Reveille's own `POST /api/v1/events` body: arbitrary bytes through the server's JSON reader
//! and `to_alert`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reveille_fuzz::{accepted, parse, refused};
use reveille_protocol::api::GenericEvent;
use reveille_protocol::Severity;
use reveille_server::ingest::generic;

fuzz_target!(|data: &[u8]| {
    let Some(request) = parse::<GenericEvent>(data) else { return };
    match generic::to_alert(&request, Severity::Critical) {
        Ok(alert) => {
            accepted(&alert, 1024);
            assert!(alert.dedup_key.chars().count() <= 255, "dedup keys are at most 255");
            assert!(alert.details.is_object(), "details that are not an object");
        }
        Err(problems) => refused(&problems),
    }
});
