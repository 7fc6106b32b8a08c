//! Acknowledgements (and snoozes and resolves) a person made, kept on disk until the server has
//! them: an ack made while the server cannot be reached is sent when the link returns, once.

use std::io::Write;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use reveille_protocol::api::BulkRequest;
use serde::{Deserialize, Serialize};

/// What the person asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Request {
    Ack,
    Resolve,
    Snooze { seconds: u64 },
}

impl Request {
    /// The API path for `incident`, and the JSON body.
    pub fn call(&self, incident: i64) -> (String, serde_json::Value) {
        match self {
            Self::Ack => (format!("/api/v1/incidents/{incident}/ack"), serde_json::Value::Null),
            Self::Resolve => {
                (format!("/api/v1/incidents/{incident}/resolve"), serde_json::Value::Null)
            }
            Self::Snooze { seconds } => (
                format!("/api/v1/incidents/{incident}/snooze"),
                serde_json::json!({ "seconds": seconds }),
            ),
        }
    }

    /// The same for many incidents at once, as `device`: the path and body of the bulk call
    /// (an ack there also records `acked on <device>`).
    pub fn call_many(&self, incidents: &[i64], device: &str) -> (&'static str, BulkRequest) {
        let mut body = BulkRequest { ids: incidents.to_vec(), seconds: None, device: None };
        let path = match self {
            Self::Ack => {
                body.device = Some(device.to_owned());
                "/api/v1/incidents/ack"
            }
            Self::Resolve => "/api/v1/incidents/resolve",
            Self::Snooze { seconds } => {
                body.seconds = Some(*seconds);
                "/api/v1/incidents/snooze"
            }
        };
        (path, body)
    }
}

/// What an outbox keeps: `K` names the incident (a Reveille id, or another pager's own key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending<K = i64> {
    pub incident: K,
    pub request: Request,
    pub at: Timestamp,
}

/// A small JSON file, rewritten atomically on every change.
#[derive(Debug)]
pub struct Outbox<K = i64> {
    path: PathBuf,
    pending: Vec<Pending<K>>,
}

impl<K> Outbox<K>
where
    K: Clone + Eq + std::hash::Hash + Serialize + serde::de::DeserializeOwned,
{
    /// Opens the outbox at `path` (an unreadable file starts empty, and is kept aside).
    pub fn open(path: impl AsRef<Path>) -> std::io::Result<Self> {
        let path = path.as_ref().to_path_buf();
        let pending = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::error!(error = %e, "the ack outbox is unreadable; keeping it aside");
                let _ = std::fs::rename(&path, path.with_extension("corrupt"));
                Vec::new()
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        Ok(Self { path, pending })
    }

    pub fn pending(&self) -> &[Pending<K>] {
        &self.pending
    }

    /// Keeps a request; a repeated one for the same incident replaces the older.
    pub fn push(&mut self, item: Pending<K>) -> std::io::Result<()> {
        self.push_all(vec![item])
    }

    /// Keeps several requests with one write (acknowledging a whole storm at once).
    pub fn push_all(&mut self, items: Vec<Pending<K>>) -> std::io::Result<()> {
        let new: std::collections::HashSet<(&K, Request)> =
            items.iter().map(|p| (&p.incident, p.request)).collect();
        self.pending.retain(|p| !new.contains(&(&p.incident, p.request)));
        self.pending.extend(items);
        self.save()
    }

    /// Forgets a request the server has answered (for good or with a final refusal).
    pub fn done(&mut self, incident: K, request: Request) -> std::io::Result<()> {
        self.done_many(request, &[incident])
    }

    /// Forgets `request` for every one of `incidents`, with one write.
    pub fn done_many(&mut self, request: Request, incidents: &[K]) -> std::io::Result<()> {
        let gone: std::collections::HashSet<&K> = incidents.iter().collect();
        self.pending.retain(|p| p.request != request || !gone.contains(&p.incident));
        self.save()
    }

    fn save(&self) -> std::io::Result<()> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = self.path.with_extension("tmp");
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(&serde_json::to_vec(&self.pending).map_err(std::io::Error::other)?)?;
        file.sync_all()?;
        std::fs::rename(&tmp, &self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_acks_survive_a_restart_and_leave_once_done() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outbox.json");
        let at = Timestamp::from_second(1_800_000_000).unwrap();
        {
            let mut outbox = Outbox::open(&path).unwrap();
            outbox.push(Pending { incident: 7, request: Request::Ack, at }).unwrap();
            outbox.push(Pending { incident: 7, request: Request::Ack, at }).unwrap();
            outbox
                .push(Pending { incident: 8, request: Request::Snooze { seconds: 900 }, at })
                .unwrap();
        }
        let mut outbox = Outbox::open(&path).unwrap();
        assert_eq!(outbox.pending().len(), 2, "the same ack is kept once");
        outbox.done(7, Request::Ack).unwrap();
        let outbox = Outbox::open(&path).unwrap();
        assert_eq!(
            outbox.pending(),
            [Pending { incident: 8, request: Request::Snooze { seconds: 900 }, at }]
        );
        assert_eq!(outbox.pending()[0].request.call(8).0, "/api/v1/incidents/8/snooze");
    }

    #[test]
    fn a_corrupt_file_is_kept_aside_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outbox.json");
        std::fs::write(&path, b"{not json").unwrap();
        assert!(Outbox::<i64>::open(&path).unwrap().pending().is_empty());
        assert!(path.with_extension("corrupt").exists());
    }
}
