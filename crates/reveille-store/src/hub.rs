//! In-process fan-out of committed feed entries to the feed connections of each user.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::{Arc, Mutex, OnceLock};

use reveille_protocol::FeedEvent;
use tokio::sync::{broadcast, watch};

/// A committed feed entry on its way to the connections following its user. Its JSON is rendered
/// once, by the first connection that needs it, and shared by the rest: with thousands of devices
/// following one user, rendering it for each was most of the time a page took to reach them all.
#[derive(Debug)]
pub struct Published {
    event: FeedEvent,
    json: OnceLock<String>,
}

impl Published {
    pub fn new(event: FeedEvent) -> Self {
        Self { event, json: OnceLock::new() }
    }

    /// The entry as JSON, as the feed sends it (the incident as the API shows it).
    pub fn json(&self) -> &str {
        self.json.get_or_init(|| {
            let view = reveille_protocol::console::FeedEntryView::from(&self.event);
            serde_json::to_string(&view).expect("feed entries serialise")
        })
    }
}

impl Deref for Published {
    type Target = FeedEvent;

    fn deref(&self) -> &FeedEvent {
        &self.event
    }
}

/// Per-user broadcast channels. A receiver that falls behind gets `Lagged` and must resync from
/// the store; a slow receiver never blocks the publisher or the other receivers.
pub struct Hub {
    capacity: usize,
    users: Mutex<HashMap<String, broadcast::Sender<Arc<Published>>>>,
    /// The newest committed feed id, for workers that read everyone's entries from the store.
    head: watch::Sender<i64>,
    /// How many write transactions have committed: anyone may wait for the next one.
    commits: watch::Sender<u64>,
}

impl Hub {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            users: Mutex::new(HashMap::new()),
            head: watch::channel(0).0,
            commits: watch::channel(0).0,
        }
    }

    pub fn subscribe(&self, user: &str) -> broadcast::Receiver<Arc<Published>> {
        let mut users = self.users.lock().unwrap_or_else(|p| p.into_inner());
        users
            .entry(user.to_owned())
            .or_insert_with(|| broadcast::channel(self.capacity).0)
            .subscribe()
    }

    /// Publishes entries in the order given; call only after they are committed.
    pub fn publish(&self, entries: Vec<(String, FeedEvent)>) {
        if let Some(newest) = entries.iter().map(|(_, e)| e.id).max() {
            self.head.send_if_modified(|head| {
                let newer = newest > *head;
                *head = (*head).max(newest);
                newer
            });
        }
        let mut users = self.users.lock().unwrap_or_else(|p| p.into_inner());
        for (user, event) in entries {
            if let Some(tx) = users.get(&user)
                && tx.send(Arc::new(Published::new(event))).is_err()
            {
                users.remove(&user);
            }
        }
    }

    /// Counts a committed transaction.
    pub fn committed(&self) {
        self.commits.send_modify(|n| *n += 1);
    }

    /// Changes after every committed write, of any kind.
    pub fn commits(&self) -> watch::Receiver<u64> {
        self.commits.subscribe()
    }

    /// Changes whenever entries are committed; its value is the newest feed id.
    pub fn head(&self) -> watch::Receiver<i64> {
        self.head.subscribe()
    }

    /// How many feed connections are listening, for metrics.
    pub fn listeners(&self) -> usize {
        let users = self.users.lock().unwrap_or_else(|p| p.into_inner());
        users.values().map(|tx| tx.receiver_count()).sum()
    }
}
