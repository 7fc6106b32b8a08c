//! [`Records`] for every backend: written on the writer thread (retention in small steps, each
//! its own transaction, so no page waits long behind it), read on a read connection.

use async_trait::async_trait;
use jiff::Timestamp;

use super::Records;
use crate::backend::{IncidentWrites, RecordReads, RecordWrites};
use crate::{Backend, DeviceRecord, HeartbeatRecord, OverrideRecord, Pruned, Result};

#[async_trait]
impl<B: Backend> Records for B {
    async fn add_override(&self, o: OverrideRecord) -> Result<OverrideRecord> {
        self.writer().write(move |s| s.add_override(&o)).await
    }

    async fn overrides(&self) -> Result<Vec<OverrideRecord>> {
        self.read(|r| r.overrides()).await
    }

    async fn remove_override(&self, id: i64) -> Result<OverrideRecord> {
        self.writer().write(move |s| s.remove_override(id)).await
    }

    async fn heartbeat_ping(&self, name: &str, now: Timestamp) -> Result<Option<HeartbeatRecord>> {
        let name = name.to_owned();
        self.writer().write(move |s| s.heartbeat_ping(&name, now)).await
    }

    async fn heartbeats(&self) -> Result<Vec<HeartbeatRecord>> {
        self.read(|r| r.heartbeats()).await
    }

    async fn set_heartbeat_missed(&self, name: &str, missed: bool) -> Result<()> {
        let name = name.to_owned();
        self.writer().write(move |s| s.set_heartbeat_missed(&name, missed)).await
    }

    async fn handoff(&self, schedule: &str) -> Result<Option<Timestamp>> {
        let schedule = schedule.to_owned();
        self.read(move |r| r.handoff(&schedule)).await
    }

    async fn set_handoff(&self, schedule: &str, at: Timestamp) -> Result<()> {
        let schedule = schedule.to_owned();
        self.writer().write(move |s| s.set_handoff(&schedule, at)).await
    }

    async fn meta_or_insert(&self, key: &str, fresh: &str) -> Result<String> {
        let (key, fresh) = (key.to_owned(), fresh.to_owned());
        self.writer().write(move |s| s.meta_or_insert(&key, &fresh)).await
    }

    async fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        let (key, value) = (key.to_owned(), value.to_owned());
        self.writer().write(move |s| s.set_meta(&key, &value)).await
    }

    async fn meta(&self, key: &str) -> Result<Option<String>> {
        let key = key.to_owned();
        self.read(move |r| r.meta(&key)).await
    }

    async fn phone_topic(&self, user: &str, fresh: &str, now: Timestamp) -> Result<String> {
        let (user, fresh) = (user.to_owned(), fresh.to_owned());
        self.writer().write(move |s| s.phone_topic(&user, &fresh, now)).await
    }

    async fn topic_user(&self, topic: &str) -> Result<Option<String>> {
        let topic = topic.to_owned();
        self.read(move |r| r.topic_user(&topic)).await
    }

    async fn add_device(&self, device: DeviceRecord, max: usize) -> Result<DeviceRecord> {
        self.writer().write(move |s| s.add_device(&device, max)).await
    }

    async fn devices(&self, user: Option<&str>) -> Result<Vec<DeviceRecord>> {
        let user = user.map(str::to_owned);
        self.read(move |r| r.devices(user.as_deref())).await
    }

    async fn remove_device(&self, id: i64) -> Result<DeviceRecord> {
        self.writer().write(move |s| s.remove_device(id)).await
    }

    async fn set_push_ok(&self, device: i64, ok: bool) -> Result<()> {
        self.writer().write(move |s| s.set_push_ok(device, ok)).await
    }

    async fn use_link(&self, signature: &str, now: Timestamp) -> Result<bool> {
        let signature = signature.to_owned();
        self.writer().write(move |s| s.use_link(&signature, now)).await
    }

    async fn prune(&self, before: Timestamp, feed_kept_after: Option<i64>) -> Result<Pruned> {
        let mut total = Pruned::default();
        loop {
            let step = self.writer().write(move |s| s.prune_step(before, feed_kept_after)).await?;
            if step.is_empty() {
                return Ok(total);
            }
            total.add(step);
        }
    }
}
