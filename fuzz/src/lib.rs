//! What every fuzz target checks, whatever the format: bytes go through the server's own JSON
//! reader ([`reveille_server::ingest::json`]) and adapter; nothing may panic, a refusal must say
//! what is wrong and where, and an accepted event must keep the limits the server promises.
//! Only for the fuzz targets: nothing here runs in the server.

use reveille_protocol::AlertEvent;
use reveille_server::ingest::{json, Invalid};
use serde::de::DeserializeOwned;

/// The body as the server reads it; None (after checking the refusal says why) if it refuses.
pub fn parse<T: DeserializeOwned>(data: &[u8]) -> Option<T> {
    match json::<T>(data) {
        Ok(body) => Some(body),
        Err(problem) => {
            assert!(!problem.message.is_empty(), "a refusal without a message");
            None
        }
    }
}

/// Every refusal names its field and says what is wrong with it.
pub fn refused(problems: &[Invalid]) {
    assert!(!problems.is_empty(), "refused without a reason");
    for problem in problems {
        assert!(!problem.field.is_empty(), "a refusal that names no field: {problem:?}");
        assert!(!problem.message.is_empty(), "a refusal without a message: {problem:?}");
    }
}

/// An accepted event has an identity and a summary within the format's limit.
pub fn accepted(event: &AlertEvent, summary_limit: usize) {
    assert!(!event.dedup_key.is_empty(), "an event without a dedup key");
    assert!(event.dedup_key.chars().count() <= 512, "a dedup key over 512 characters");
    let summary = event.summary.chars().count();
    assert!(summary <= summary_limit, "a summary of {summary} characters");
}
