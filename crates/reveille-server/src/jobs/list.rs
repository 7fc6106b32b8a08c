//! Which jobs this server runs, made from the configuration as it is now: the escalation
//! worker, retention and the cluster report always; an outbox for each channel configured; the
//! Matrix bot's listening; the SIP line; gammu's inbox; the TLS certificate's watcher.

use std::sync::Arc;

use super::{Job, Make};
use crate::AppState;
use crate::deliver::{matrix, notify, outbox, push, sms, voice, webhooks};
use crate::http::tls::{self, Certs};
use crate::jobs::{cluster, retention};
use crate::oncall::escalation;

fn make<J: Job + 'static>(job: impl Fn() -> J + Send + Sync + 'static) -> Make {
    Box::new(move || Box::new(job()))
}

/// The jobs for `state`'s configuration (and `certs`, when the server speaks TLS).
pub fn jobs(state: &AppState, certs: Option<Arc<Certs>>) -> Vec<Make> {
    let settings = state.settings();
    let mut makes = vec![
        make(|| escalation::Worker),
        make(retention::Retention::default),
        make(|| cluster::Report),
    ];
    if push::wanted(&settings) {
        makes.push(make(|| outbox::Outboxed::new(outbox::PUSH, push::Dispatcher::default())));
    }
    if !settings.webhooks.is_empty() {
        makes.push(make(|| outbox::Outboxed::new(outbox::WEBHOOKS, webhooks::Sender::default())));
    }
    if notify::wanted(&settings) {
        makes.push(make(|| outbox::Outboxed::new(outbox::NOTIFY, notify::Notifier::default())));
    }
    if settings.sip.is_some() {
        makes.push(make(voice::Telephone::default));
    }
    if settings.sms.is_some() {
        makes.push(make(|| sms::gammu::Inbox));
    }
    if settings.matrix.is_some() {
        makes.push(make(matrix::Listening::default));
    }
    if let Some(certs) = certs {
        makes.push(make(move || tls::Watch::new(certs.clone())));
    }
    makes
}
