//! Which users have a live device: counted from open feed connections (the desktop app, the
//! ntfy app, `reveille watch`). A user whose feed devices have all been away longer than the
//! configured time, and who has no native-push phone that can be reached, cannot hear a page,
//! and the escalation ladder moves past them.
//!
//! A native-push phone (FCM or APNs) holds no connection: it counts as reachable while its
//! platform is configured and the last push to it was accepted by the provider (or none has
//! been sent since the server started); a push refused or given up on makes it unreachable until
//! the next one is accepted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use jiff::{SignedDuration, Timestamp};
use tokio::sync::watch;

use crate::clock::Clock;

pub struct Presence {
    clock: Arc<dyn Clock>,
    /// Users never seen count as away since the server started.
    started: Timestamp,
    /// Open connections per user, and since when a user has had none.
    users: Mutex<HashMap<String, (usize, Timestamp)>>,
    /// The number of open connections, for anyone who needs to wait for a change.
    total: watch::Sender<usize>,
    /// Whether the provider accepted the last push to each push device, by device id.
    pushes: Mutex<HashMap<i64, bool>>,
}

/// Held while a device is connected; counts it away again when dropped.
pub struct Connected {
    presence: Arc<Presence>,
    user: String,
}

impl Drop for Connected {
    fn drop(&mut self) {
        let now = self.presence.clock.now();
        let mut users = self.presence.users.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((open, since)) = users.get_mut(&self.user) {
            *open = open.saturating_sub(1);
            if *open == 0 {
                *since = now;
            }
        }
        self.presence.total.send_modify(|n| *n = n.saturating_sub(1));
    }
}

impl Presence {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            started: clock.now(),
            clock,
            users: Mutex::new(HashMap::new()),
            total: watch::channel(0).0,
            pushes: Mutex::default(),
        }
    }

    /// Records a device connection for `user` until the returned guard is dropped; None when the
    /// user already has `max` open.
    pub fn connect(self: &Arc<Self>, user: &str, max: usize) -> Option<Connected> {
        let mut users = self.users.lock().unwrap_or_else(|p| p.into_inner());
        let entry = users.entry(user.to_owned()).or_insert((0, self.started));
        if entry.0 >= max {
            return None;
        }
        entry.0 += 1;
        self.total.send_modify(|n| *n += 1);
        Some(Connected { presence: self.clone(), user: user.to_owned() })
    }

    /// Follows the number of open device connections.
    pub fn watch(&self) -> watch::Receiver<usize> {
        self.total.subscribe()
    }

    /// Records whether the provider accepted a push to this device.
    pub fn pushed(&self, device: i64, accepted: bool) {
        self.pushes.lock().unwrap_or_else(|p| p.into_inner()).insert(device, accepted);
    }

    /// Whether the last push to this device failed.
    pub fn push_failed(&self, device: i64) -> bool {
        self.pushes.lock().unwrap_or_else(|p| p.into_inner()).get(&device) == Some(&false)
    }

    /// Users (of those given) with no live device for at least `after` and not in `by_push`
    /// (those with a reachable push phone), with the reason.
    pub fn deafness<'a>(
        &self,
        users: impl IntoIterator<Item = &'a str>,
        after: SignedDuration,
        by_push: &std::collections::HashSet<String>,
    ) -> HashMap<String, String> {
        let now = self.clock.now();
        let rounding =
            jiff::SpanRound::new().largest(jiff::Unit::Hour).smallest(jiff::Unit::Second);
        let known = self.users.lock().unwrap_or_else(|p| p.into_inner());
        users
            .into_iter()
            .filter(|user| !by_push.contains(*user))
            .filter_map(|user| {
                let (open, since) = known.get(user).copied().unwrap_or((0, self.started));
                let away = now.duration_since(since);
                (open == 0 && away >= after).then(|| {
                    let away = jiff::Span::try_from(away).ok().and_then(|s| s.round(rounding).ok());
                    let away = away.map_or_else(String::new, |s| format!(" for {s:#}"));
                    (user.to_owned(), format!("has had no live device{away}"))
                })
            })
            .collect()
    }
}
