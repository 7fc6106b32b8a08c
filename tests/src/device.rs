//! A device following a person's feed through the balancer the way the apps do: resuming with
//! `Last-Event-ID` after every drop, and treating three missed heartbeats as a drop. It keeps
//! every entry it saw, in the order it saw them.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use reveille_protocol::sse::Parser;
use serde_json::Value;
use tokio::sync::watch;

/// A feed entry as a device saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    pub id: i64,
    pub kind: String,
    pub incident: i64,
    pub state: String,
}

/// A device following a user's feed at `url` the way the apps do: resuming with `Last-Event-ID`
/// after every drop, and treating three missed heartbeats as a drop.
pub struct Device {
    pub seen: Arc<Mutex<Vec<Seen>>>,
    changed: watch::Receiver<usize>,
    task: tokio::task::JoinHandle<()>,
}

impl Device {
    pub fn follow(url: &str, token: &str, after: Option<i64>) -> Self {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (tell, changed) = watch::channel(0);
        let (url, token, record) = (url.to_owned(), token.to_owned(), seen.clone());
        let task = tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut last = after;
            loop {
                let mut request = http.get(format!("{url}/api/v1/feed")).bearer_auth(&token);
                if let Some(id) = last {
                    request = request.header("last-event-id", id.to_string());
                }
                if let Ok(response) = request.send().await.and_then(|r| r.error_for_status()) {
                    let mut body = response.bytes_stream();
                    let mut parser = Parser::default();
                    while let Ok(Some(Ok(chunk))) =
                        tokio::time::timeout(Duration::from_secs(3), body.next()).await
                    {
                        for event in parser.push(&chunk) {
                            let Some(id) = event.id.as_deref().and_then(|i| i.parse().ok()) else {
                                continue;
                            };
                            let entry: Value = serde_json::from_str(&event.data).unwrap();
                            last = Some(id);
                            let mut all = record.lock().unwrap();
                            all.push(Seen {
                                id,
                                kind: event.event.clone(),
                                incident: entry["incident"]["id"].as_i64().unwrap(),
                                state: entry["incident"]["state"].as_str().unwrap().to_owned(),
                            });
                            tell.send_replace(all.len());
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Device { seen, changed, task }
    }

    /// Waits until what the device saw satisfies `done` (up to `within`).
    pub async fn until(&mut self, within: Duration, done: impl Fn(&[Seen]) -> bool) -> Vec<Seen> {
        let waited = tokio::time::timeout(within, async {
            loop {
                let seen = self.seen.lock().unwrap().clone();
                if done(&seen) {
                    return seen;
                }
                self.changed.changed().await.unwrap();
            }
        });
        waited.await.unwrap_or_else(|_| {
            panic!("the device never saw it; it saw {:?}", self.seen.lock().unwrap())
        })
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        self.task.abort();
    }
}
