//! Which users have a live device: counted from open feed connections (the desktop app, the
//! ntfy app, `reveille watch`) on this node, and on every other node of a cluster through what
//! each reports to the store every second ([`crate::jobs::cluster`]). A user whose feed devices have
//! all been away longer than the configured time, and who has no native-push phone that can be
//! reached, cannot hear a page, and the escalation ladder moves past them.
//!
//! A native-push phone (FCM or APNs) holds no connection: it counts as reachable while its
//! platform is configured and the last push to it was accepted by the provider (or none has been
//! sent yet); the outcome is kept with the device in the store, so every node and a restart
//! agree. A node that stopped reporting is dead: its connections count as gone since it was last
//! seen.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use jiff::{SignedDuration, Timestamp};
use reveille_store::{ClusterView, UserPresence};
use tokio::sync::watch;

use crate::clock::Clock;

/// A node not heard from for this long is dead.
pub const NODE_TIMEOUT: SignedDuration = SignedDuration::from_secs(5);

pub struct Presence {
    clock: Arc<dyn Clock>,
    /// Users never seen count as away since the server started.
    started: Timestamp,
    /// Open connections per user, and since when a user has had none.
    users: Mutex<HashMap<String, (usize, Timestamp)>>,
    /// Open connections per user and kind of device (`desktop`, `ntfy`, …), for the console.
    kinds: Mutex<HashMap<(String, &'static str), usize>>,
    /// The number of open connections, for anyone who needs to wait for a change.
    total: watch::Sender<usize>,
}

/// Held while a device is connected; counts it away again when dropped.
pub struct Connected {
    presence: Arc<Presence>,
    user: String,
    kind: &'static str,
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
        drop(users);
        let mut kinds = self.presence.kinds.lock().unwrap_or_else(|p| p.into_inner());
        let key = (std::mem::take(&mut self.user), self.kind);
        if let Some(open) = kinds.get_mut(&key) {
            *open = open.saturating_sub(1);
            if *open == 0 {
                kinds.remove(&key);
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
            kinds: Mutex::default(),
            total: watch::channel(0).0,
        }
    }

    /// Records a device connection of `kind` for `user` until the returned guard is dropped;
    /// None when the user already has `max` open on this node.
    pub fn connect(
        self: &Arc<Self>,
        user: &str,
        kind: &'static str,
        max: usize,
    ) -> Option<Connected> {
        let mut users = self.users.lock().unwrap_or_else(|p| p.into_inner());
        let entry = users.entry(user.to_owned()).or_insert((0, self.started));
        if entry.0 >= max {
            return None;
        }
        entry.0 += 1;
        self.total.send_modify(|n| *n += 1);
        drop(users);
        let mut kinds = self.kinds.lock().unwrap_or_else(|p| p.into_inner());
        *kinds.entry((user.to_owned(), kind)).or_default() += 1;
        Some(Connected { presence: self.clone(), user: user.to_owned(), kind })
    }

    /// `user`'s open connections on this node by kind of device.
    pub fn kinds(&self, user: &str) -> Vec<(&'static str, usize)> {
        let kinds = self.kinds.lock().unwrap_or_else(|p| p.into_inner());
        let mut found: Vec<_> =
            kinds.iter().filter(|((u, _), _)| u == user).map(|((_, k), n)| (*k, *n)).collect();
        found.sort();
        found
    }

    /// Follows the number of open device connections on this node.
    pub fn watch(&self) -> watch::Receiver<usize> {
        self.total.subscribe()
    }

    /// This node's connections per user, as reported to the cluster.
    pub fn snapshot(&self) -> Vec<UserPresence> {
        let users = self.users.lock().unwrap_or_else(|p| p.into_inner());
        users
            .iter()
            .map(|(user, (open, since))| UserPresence {
                user: user.clone(),
                open: *open as u32,
                since: *since,
            })
            .collect()
    }

    /// Users (of those given) with no live device on any node for at least `after` and not in
    /// `by_push` (those with a reachable push phone), with the reason. `cluster` is what every
    /// node last reported, `node` this one's name.
    pub fn deafness<'a>(
        &self,
        users: impl IntoIterator<Item = &'a str>,
        after: SignedDuration,
        by_push: &HashSet<String>,
        cluster: &ClusterView,
        node: &str,
    ) -> HashMap<String, String> {
        let now = self.clock.now();
        let rounding =
            jiff::SpanRound::new().largest(jiff::Unit::Hour).smallest(jiff::Unit::Second);
        let local = self.users.lock().unwrap_or_else(|p| p.into_inner());
        let seen: HashMap<&str, Timestamp> =
            cluster.nodes.iter().map(|n| (n.name.as_str(), n.seen)).collect();
        users
            .into_iter()
            .filter(|user| !by_push.contains(*user))
            .filter_map(|user| {
                let (open, since) = local.get(user).copied().unwrap_or((0, self.started));
                let mut live = open > 0;
                let mut away_since = since;
                for (other, p) in
                    cluster.presence.iter().filter(|(n, p)| n != node && p.user == user)
                {
                    let last_seen = seen.get(other.as_str()).copied().unwrap_or(p.since);
                    if now.duration_since(last_seen) < NODE_TIMEOUT {
                        live |= p.open > 0;
                        away_since = away_since.max(p.since);
                    } else if p.open > 0 {
                        // Its node died with the device connected: gone since the node was.
                        away_since = away_since.max(last_seen);
                    }
                }
                let away = now.duration_since(away_since);
                (!live && away >= after).then(|| {
                    let away = jiff::Span::try_from(away).ok().and_then(|s| s.round(rounding).ok());
                    let away = away.map_or_else(String::new, |s| format!(" for {s:#}"));
                    (user.to_owned(), format!("has had no live device{away}"))
                })
            })
            .collect()
    }
}
