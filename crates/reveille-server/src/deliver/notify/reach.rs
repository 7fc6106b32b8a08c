//! How each person's channels last fared (email, Matrix, calls, texts), and their last test, kept in the database so the readiness
//! board of every node reads the same. A channel whose last message failed, or is being tried
//! again after failing, does not count as a way to reach the person until one goes through.

use jiff::Timestamp;
use reveille_core::notify::Channel;
use serde::{Deserialize, Serialize};

use crate::AppState;

/// The last outcome of a person's channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reach {
    pub ok: bool,
    pub at: Timestamp,
    /// Why the last message failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

fn key(user: &str, channel: Channel) -> String {
    format!("reach:{}:{user}", channel.as_str())
}

/// Records how the last message to `user` on `channel` went (`failure`: why it did not).
pub async fn record(state: &AppState, user: &str, channel: Channel, failure: Option<&str>) {
    let reach =
        Reach { ok: failure.is_none(), at: state.clock.now(), failure: failure.map(str::to_owned) };
    let value = serde_json::to_string(&reach).expect("a reach is plain data");
    if let Err(e) = state.store.set_meta(&key(user, channel), &value).await {
        tracing::error!(error = %e, %user, "cannot record how a message went");
    }
}

/// How the last message to `user` on `channel` went; None before the first.
pub async fn reach(
    state: &AppState,
    user: &str,
    channel: Channel,
) -> reveille_store::Result<Option<Reach>> {
    let stored = state.store.meta(&key(user, channel)).await?;
    Ok(stored.and_then(|s| serde_json::from_str(&s).ok()))
}

fn test_key(user: &str, channel: Channel) -> String {
    format!("test:{}:{user}", channel.as_str())
}

/// Records how a test of `user`'s `channel` went (`reveille notify-test`); it also counts as
/// the channel's last outcome.
pub async fn record_test(state: &AppState, user: &str, channel: Channel, failure: Option<&str>) {
    let test =
        Reach { ok: failure.is_none(), at: state.clock.now(), failure: failure.map(str::to_owned) };
    let value = serde_json::to_string(&test).expect("a reach is plain data");
    if let Err(e) = state.store.set_meta(&test_key(user, channel), &value).await {
        tracing::error!(error = %e, %user, "cannot record how a test went");
    }
    record(state, user, channel, failure).await;
}

/// How the last test of `user`'s `channel` went; None before the first.
pub async fn tested(
    state: &AppState,
    user: &str,
    channel: Channel,
) -> reveille_store::Result<Option<Reach>> {
    let stored = state.store.meta(&test_key(user, channel)).await?;
    Ok(stored.and_then(|s| serde_json::from_str(&s).ok()))
}
