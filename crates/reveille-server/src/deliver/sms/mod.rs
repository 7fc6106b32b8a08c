//! Texts: one SMS per page (or per bundle of pages), through a GSM modem's gammu-smsd
//! ([`gammu`]) or Twilio; replies from the person's own number act as them ([`replies`]).

mod disk;
pub mod gammu;
pub mod replies;

use crate::AppState;
use crate::config::telephony::Carrier;
use crate::deliver::notify::{Failure, Fate, Outgoing};
use crate::deliver::voice::words;

/// Where the incidents of the last text to a person are kept (a bare "4" answers them).
fn last_key(user: &str) -> String {
    format!("sms:last:{user}")
}

/// The incidents of the last text sent to `user`.
pub async fn last_texted(state: &AppState, user: &str) -> reveille_store::Result<Vec<i64>> {
    let stored = state.store.meta(&last_key(user)).await?;
    Ok(stored.and_then(|s| serde_json::from_str(&s).ok()).unwrap_or_default())
}

/// Sends `body` to `to` by whatever carries texts: where it went, for the timeline.
pub async fn send(state: &AppState, to: &str, body: &str, tag: &str) -> Result<String, Failure> {
    let settings = state.settings();
    match (settings.texts_by(), &settings.sms) {
        (Some(Carrier::Gammu), Some(sms)) => {
            // The file is written and synced off the runtime: a storm's hundred texts must not
            // hold up the server's other work while each reaches the disk.
            let (dir, sms, now) = (settings.dir.clone(), sms.clone(), state.clock.now());
            let (to, body, tag) = (to.to_owned(), body.to_owned(), tag.to_owned());
            tokio::task::spawn_blocking(move || gammu::send(&dir, &sms, &to, &body, &tag, now))
                .await
                .map_err(|e| Failure::transient(format!("writing the text stopped: {e}")))?
                .map(|file| format!("handed to gammu-smsd as {file}"))
        }
        (Some(Carrier::Twilio), _) => crate::deliver::twilio::text(state, to, body)
            .await
            .map(|sid| format!("accepted by Twilio ({sid})")),
        _ => Err(Failure::permanent("texts are not configured")),
    }
}

/// Texts `user` about the pages of `out`.
pub async fn text(state: &AppState, user: &str, out: &Outgoing) -> Vec<Fate> {
    let pages = out.pages();
    let ids: Vec<i64> = pages.iter().map(|i| i.id).collect();
    let body = words::text(&pages);
    let tag: Vec<String> = ids.iter().take(8).map(i64::to_string).collect();
    let outcome = send(state, &out.to, &body, &tag.join("-")).await.map(|how| {
        let several =
            if ids.len() > 1 { format!(" (one text about {})", ids.len()) } else { String::new() };
        Some(("sms_sent".to_owned(), format!("Text to {} {how}{several}: \"{body}\"", out.to)))
    });
    if outcome.is_ok() {
        let late = state.clock.now().duration_since(out.due).unsigned_abs();
        state.metrics.phone("sms_handoff", late);
        let ids = serde_json::to_string(&ids).expect("numbers");
        if let Err(e) = state.store.set_meta(&last_key(user), &ids).await {
            tracing::warn!(error = %e, "cannot remember which incidents a text was about");
        }
    }
    pages.iter().map(|i| Fate { incident: i.id, outcome: outcome.clone() }).collect()
}

/// A test text, for `reveille notify-test`.
pub async fn test(state: &AppState, user: &str, number: &str) -> Result<String, String> {
    let body = words::gsm7(&format!("Reveille test text for {user}. No reply is needed."));
    send(state, number, &body, "test")
        .await
        .map(|how| format!("text to {number} {how}"))
        .map_err(|f| f.why)
}
