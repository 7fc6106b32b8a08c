//! The web console's API types are generated from this crate's definitions: this test writes
//! them out and fails when `web/src/api.gen.ts` is not what the Rust types say. Run it with
//! `REVEILLE_WRITE_TS=1` to rewrite the file after changing a type.

use reveille_protocol::api::*;
use reveille_protocol::console::*;
use reveille_protocol::{
    ErrorBody, ErrorCode, IncidentState, Link, Severity, TimelineEntry, Urgency,
};
use ts_rs::TS;

fn declarations() -> String {
    let decls = [
        Severity::decl(),
        Urgency::decl(),
        IncidentState::decl(),
        Link::decl(),
        TimelineEntry::decl(),
        ErrorCode::decl(),
        ErrorBody::decl(),
        IncidentView::decl(),
        IncidentDetailView::decl(),
        IncidentPage::decl(),
        reveille_protocol::FeedKind::decl(),
        FeedEntryView::decl(),
        SnoozeRequest::decl(),
        SessionRequest::decl(),
        SessionInfo::decl(),
        ScheduleOnCall::decl(),
        LevelOnCall::decl(),
        ServiceOnCall::decl(),
        OnCallReport::decl(),
        Shift::decl(),
        ScheduleView::decl(),
        OverrideRequest::decl(),
        OverrideView::decl(),
        DrillRequest::decl(),
        DrillResult::decl(),
        Duty::decl(),
        DeviceStatus::decl(),
        LastReceipt::decl(),
        PersonReadiness::decl(),
        Readiness::decl(),
        CalendarLink::decl(),
        CalendarLinks::decl(),
        WebPushInfo::decl(),
        WebPushKeys::decl(),
        WebPushSubscription::decl(),
        WebPushMessage::decl(),
    ];
    let mut out = String::from(
        "// Generated from crates/reveille-protocol by its `typescript` test; do not edit.\n\n",
    );
    for decl in decls {
        out.push_str("export ");
        out.push_str(&decl);
        out.push_str("\n\n");
    }
    out.truncate(out.trim_end().len());
    out.push('\n');
    out
}

#[test]
fn the_consoles_typescript_types_match_the_rust_types() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../web/src/api.gen.ts");
    let fresh = declarations();
    if std::env::var_os("REVEILLE_WRITE_TS").is_some() {
        std::fs::write(path, &fresh).expect("cannot write web/src/api.gen.ts");
    }
    let current = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        current == fresh,
        "web/src/api.gen.ts is not what the Rust types say: run \
         `REVEILLE_WRITE_TS=1 cargo test -p reveille-protocol --test typescript`"
    );
}
