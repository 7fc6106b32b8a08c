//! Opsgenie's Alert API: arbitrary bytes read as an Acknowledge / Close body, and as a Create
//! Alert body through `to_alert`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reveille_fuzz::{accepted, parse, refused};
use reveille_protocol::formats::opsgenie::{AlertAction, CreateAlert};
use reveille_server::ingest::opsgenie;

fuzz_target!(|data: &[u8]| {
    let _ = parse::<AlertAction>(data);
    let Some(create) = parse::<CreateAlert>(data) else { return };
    match opsgenie::to_alert(&create) {
        Ok(alert) => {
            accepted(&alert, 130);
            assert!(!alert.summary.trim().is_empty(), "an alert without a message");
        }
        Err(problem) => refused(&[problem]),
    }
});
