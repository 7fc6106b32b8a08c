//! The embedded SQLite store: WAL mode, `synchronous=FULL`, one writer thread with group commit,
//! and a small pool of read connections.
//!
//! Every write is a job sent to the writer thread. The writer takes all jobs waiting, runs each in
//! its own savepoint inside one transaction, commits once (one fsync for the whole group), and
//! only then answers the jobs and publishes their feed entries to the hub, in commit order.
//!
//! The writer never checkpoints the WAL itself: a checkpoint copies pages into the database and
//! syncs it, and doing that inside a commit delayed the pages waiting on that commit. A checkpoint
//! thread with its own connection does it beside the writer, nudged every [`CHECKPOINT_EVERY`]
//! commits and at least once a second, so a quiet server's WAL is copied back too.

mod credentials;
mod quarantine;
mod read;
mod records;
mod retention;
mod schema;
mod write;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};

use async_trait::async_trait;
use jiff::Timestamp;
use reveille_core::Command;
use reveille_protocol::{FeedEvent, Incident, IncidentDetail, IncidentState};
use rusqlite::Connection;
use std::panic::AssertUnwindSafe;

use tokio::sync::{oneshot, watch};

use self::quarantine::{Quarantine, Unreadable};
use crate::{
    Deafness, DeviceRecord, Error, HeartbeatRecord, Hub, IncidentFilter, IngestBatch, KeyInfo,
    Landed, OverrideRecord, Pruned, Result, Rules, Store, TokenInfo,
};

/// Feed entries a job wants published once its transaction commits.
pub(crate) type Outbox = Vec<(String, FeedEvent)>;

type Reply = Box<dyn FnOnce(Option<&Error>) + Send>;
type Job = Box<dyn FnOnce(&Connection, &mut Outbox) -> (bool, Reply) + Send>;

/// Most jobs committed together in one transaction.
const MAX_GROUP: usize = 512;

/// Commits between two nudges of the checkpoint thread.
const CHECKPOINT_EVERY: u64 = 100;

/// SQLite's own checkpoint threshold (pages); the WAL file is cut back to this size after a reset.
const WAL_PAGES: i64 = 1000;

/// SQLite storage; cheap to clone.
#[derive(Clone)]
pub struct Sqlite {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Mutex<mpsc::Sender<Job>>,
    readers: Mutex<Vec<Connection>>,
    hub: Arc<Hub>,
    quarantine: Arc<Quarantine>,
    /// Set when the writer thread has died: nothing can be written any more.
    stopped: watch::Sender<Option<String>>,
}

fn connect(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "busy_timeout", 10_000)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

/// Creates the database's folder 0700 and its file 0600 (SQLite gives its WAL and shared-memory
/// files the database file's mode), and takes group and world access from files that have it:
/// the database holds who is on call, every incident and credential hashes.
fn private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    }
    if !path.exists() {
        std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    }
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        let file = PathBuf::from(file);
        let Ok(meta) = std::fs::metadata(&file) else { continue };
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(file = %file.display(), "the database was readable by others; made it 0600");
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))?;
        }
    }
    Ok(())
}

impl Sqlite {
    /// Opens (creating and migrating if needed) the database at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        private(&path).map_err(|e| {
            Error::Unavailable(format!("cannot make {} private: {e}", path.display()))
        })?;
        let mut conn = connect(&path)?;
        schema::migrate(&mut conn)?;
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        conn.pragma_update(None, "journal_size_limit", WAL_PAGES * 4096)?;
        let checkpointer = connect(&path)?;
        let (nudge, nudged) = mpsc::sync_channel::<()>(1);
        std::thread::Builder::new()
            .name("reveille-checkpoint".into())
            .spawn(move || checkpoint_loop(&checkpointer, &nudged))
            .map_err(|e| Error::Unavailable(e.to_string()))?;
        let hub = Arc::new(Hub::new(1024));
        let (tx, rx) = mpsc::channel::<Job>();
        let writer_hub = hub.clone();
        let stopped = watch::channel(None).0;
        let on_death = stopped.clone();
        std::thread::Builder::new()
            .name("reveille-sqlite-writer".into())
            .spawn(move || {
                let run = AssertUnwindSafe(|| write_loop(conn, rx, &writer_hub, &nudge));
                if let Err(panic) = std::panic::catch_unwind(run) {
                    let why = panic
                        .downcast_ref::<&str>()
                        .map(|s| (*s).to_owned())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "unknown panic".into());
                    tracing::error!(why, "the database writer thread died");
                    on_death.send_replace(Some(format!("the database writer thread died: {why}")));
                }
            })
            .map_err(|e| Error::Unavailable(e.to_string()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                path,
                writer: Mutex::new(tx),
                readers: Mutex::new(Vec::new()),
                hub,
                quarantine: Arc::default(),
                stopped,
            }),
        })
    }

    /// Reads a pragma on the writer's own connection, e.g. `synchronous` (2 means FULL).
    pub async fn writer_pragma(&self, name: &'static str) -> Result<String> {
        self.write(move |conn, _| {
            Ok(conn
                .query_row(&format!("PRAGMA {name}"), [], |row| {
                    row.get::<_, rusqlite::types::Value>(0)
                })
                .map(|v| match v {
                    rusqlite::types::Value::Integer(i) => i.to_string(),
                    rusqlite::types::Value::Text(t) => t,
                    other => format!("{other:?}"),
                })?)
        })
        .await
    }

    /// Makes the writer thread panic, as a bug in a write would: for fault tests of what the
    /// server does when its store can no longer write.
    #[doc(hidden)]
    pub async fn crash_writer(&self) {
        let _ = self.write::<(), _>(|_, _| panic!("crash_writer was called")).await;
    }

    /// Runs `f` on the writer thread inside a transaction; answers after the commit is synced.
    async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &mut Outbox) -> Result<T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn, outbox| {
            let result = f(conn, outbox);
            let ok = result.is_ok();
            let reply: Reply = Box::new(move |commit_error| {
                let _ = tx.send(match commit_error {
                    Some(e) => Err(e.clone()),
                    None => result,
                });
            });
            (ok, reply)
        });
        let sent = self.inner.writer.lock().unwrap_or_else(|p| p.into_inner()).send(job);
        sent.map_err(|_| Error::Unavailable("the database writer has stopped".into()))?;
        rx.await.map_err(|_| Error::Unavailable("the database writer has stopped".into()))?
    }

    /// Runs `f` on a pooled read connection on the blocking thread pool.
    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        let task = tokio::task::spawn_blocking(move || {
            let pooled = inner.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let conn = match pooled {
                Some(conn) => conn,
                None => connect(&inner.path)?,
            };
            let result = f(&conn);
            inner.readers.lock().unwrap_or_else(|p| p.into_inner()).push(conn);
            result
        });
        task.await.map_err(|e| Error::Unavailable(e.to_string()))?
    }
}

impl Sqlite {
    /// Like [`Self::read`] for readers that skip rows they cannot decode; those met for the
    /// first time are reported and written on their incident's timeline.
    async fn read_skipping<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &mut Vec<Unreadable>) -> Result<T> + Send + 'static,
    {
        let (value, skipped) = self
            .read(move |conn| {
                let mut skipped = Vec::new();
                Ok((f(conn, &mut skipped)?, skipped))
            })
            .await?;
        let fresh = self.inner.quarantine.first_seen(skipped);
        if !fresh.is_empty() {
            let store = self.clone();
            tokio::spawn(async move {
                let now = Timestamp::now();
                let noted = store.write(move |conn, _| quarantine::record(conn, &fresh, now));
                if let Err(e) = noted.await {
                    tracing::warn!(error = %e, "cannot note an unreadable row on its timeline");
                }
            });
        }
        Ok(value)
    }
}

/// Copies the WAL into the database when the writer asks and once a second; ends with the writer.
fn checkpoint_loop(conn: &Connection, nudged: &mpsc::Receiver<()>) {
    loop {
        match nudged.recv_timeout(std::time::Duration::from_secs(1)) {
            Ok(()) | Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
        // PASSIVE never waits for the writer or readers: what it cannot copy now (a reader still
        // needs it), the next round copies.
        let done = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
            Ok((row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))
        });
        match done {
            Ok((log, copied)) if log > 4 * WAL_PAGES && copied < log => {
                tracing::warn!(log, copied, "the WAL keeps growing: readers hold it");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed; it will be tried again"),
        }
    }
}

fn write_loop(
    conn: Connection,
    jobs: mpsc::Receiver<Job>,
    hub: &Hub,
    checkpoint: &mpsc::SyncSender<()>,
) {
    let mut commits: u64 = 0;
    while let Ok(first) = jobs.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let mut outbox = Outbox::new();
        let mut replies = Vec::with_capacity(group.len());
        let outcome = (|| -> Result<()> {
            conn.execute_batch("BEGIN IMMEDIATE")?;
            for job in group.drain(..) {
                let mark = outbox.len();
                conn.execute_batch("SAVEPOINT job")?;
                let (ok, reply) = job(&conn, &mut outbox);
                replies.push(reply);
                if !ok {
                    outbox.truncate(mark);
                    conn.execute_batch("ROLLBACK TO job")?;
                }
                conn.execute_batch("RELEASE job")?;
            }
            conn.execute_batch("COMMIT")?;
            Ok(())
        })();
        match outcome {
            Ok(()) => {
                replies.into_iter().for_each(|reply| reply(None));
                hub.publish(outbox);
                hub.committed();
                commits += 1;
                if commits.is_multiple_of(CHECKPOINT_EVERY) {
                    // Full means a checkpoint is already due: nothing to add.
                    let _ = checkpoint.try_send(());
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "database transaction failed; nothing was written");
                let _ = conn.execute_batch("ROLLBACK");
                // Jobs never run still hold their repliers; dropping them answers "stopped".
                drop(group);
                replies.into_iter().for_each(|reply| reply(Some(&e)));
            }
        }
    }
}

#[async_trait]
impl Store for Sqlite {
    async fn ingest(&self, batch: IngestBatch) -> Result<Vec<Landed>> {
        self.write(move |conn, outbox| write::ingest(conn, outbox, &batch)).await
    }

    async fn command(
        &self,
        id: i64,
        actor: &str,
        command: Command,
        now: Timestamp,
    ) -> Result<Incident> {
        let actor = actor.to_owned();
        self.write(move |conn, outbox| write::command(conn, outbox, id, &actor, &command, now))
            .await
    }

    async fn wake_due(&self, now: Timestamp, rules: Arc<Rules>) -> Result<usize> {
        let quarantine = self.inner.quarantine.clone();
        self.write(move |conn, outbox| write::wake_due(conn, outbox, now, &rules, &quarantine))
            .await
    }

    async fn escalate(&self, now: Timestamp, rules: Arc<Rules>, deaf: Deafness) -> Result<usize> {
        let quarantine = self.inner.quarantine.clone();
        self.write(move |conn, outbox| {
            write::escalate(conn, outbox, now, &rules, &deaf, &quarantine)
        })
        .await
    }

    async fn incident(&self, id: i64) -> Result<IncidentDetail> {
        self.read(move |conn| read::incident_detail(conn, id)).await
    }

    async fn incidents(&self, filter: IncidentFilter) -> Result<Vec<Incident>> {
        self.read_skipping(move |conn, skipped| read::incidents(conn, &filter, skipped)).await
    }

    async fn count_by_state(&self) -> Result<Vec<(IncidentState, u64)>> {
        self.read(read::count_by_state).await
    }

    async fn feed_since(&self, user: &str, after: i64, limit: usize) -> Result<Vec<FeedEvent>> {
        let user = user.to_owned();
        self.read_skipping(move |conn, skipped| {
            read::feed_since(conn, &user, after, limit, skipped)
        })
        .await
    }

    async fn feed_head(&self) -> Result<i64> {
        self.read(read::feed_head).await
    }

    fn hub(&self) -> &Hub {
        &self.inner.hub
    }

    fn stopped(&self) -> watch::Receiver<Option<String>> {
        self.inner.stopped.subscribe()
    }

    fn unreadable_rows(&self) -> u64 {
        self.inner.quarantine.count()
    }

    async fn add_token(&self, hash: &str, info: TokenInfo) -> Result<()> {
        let hash = hash.to_owned();
        self.write(move |conn, _| credentials::add_token(conn, &hash, &info)).await
    }

    async fn token(&self, hash: &str) -> Result<Option<TokenInfo>> {
        let hash = hash.to_owned();
        self.read(move |conn| credentials::token(conn, &hash)).await
    }

    async fn tokens(&self) -> Result<Vec<TokenInfo>> {
        self.read(credentials::tokens).await
    }

    async fn revoke_token(&self, prefix: &str) -> Result<TokenInfo> {
        let prefix = prefix.to_owned();
        self.write(move |conn, _| credentials::revoke_token(conn, &prefix)).await
    }

    async fn touch_token(&self, hash: &str, now: Timestamp) -> Result<()> {
        let hash = hash.to_owned();
        self.write(move |conn, _| credentials::touch_token(conn, &hash, now)).await
    }

    async fn add_key(&self, hash: &str, info: KeyInfo) -> Result<()> {
        let hash = hash.to_owned();
        self.write(move |conn, _| credentials::add_key(conn, &hash, &info)).await
    }

    async fn key(&self, hash: &str) -> Result<Option<KeyInfo>> {
        let hash = hash.to_owned();
        self.read(move |conn| credentials::key(conn, &hash)).await
    }

    async fn keys(&self) -> Result<Vec<KeyInfo>> {
        self.read(credentials::keys).await
    }

    async fn revoke_key(&self, prefix: &str) -> Result<KeyInfo> {
        let prefix = prefix.to_owned();
        self.write(move |conn, _| credentials::revoke_key(conn, &prefix)).await
    }

    async fn add_override(&self, o: OverrideRecord) -> Result<OverrideRecord> {
        self.write(move |conn, _| records::add_override(conn, &o)).await
    }

    async fn overrides(&self) -> Result<Vec<OverrideRecord>> {
        self.read(records::overrides).await
    }

    async fn remove_override(&self, id: i64) -> Result<OverrideRecord> {
        self.write(move |conn, _| records::remove_override(conn, id)).await
    }

    async fn heartbeat_ping(&self, name: &str, now: Timestamp) -> Result<Option<HeartbeatRecord>> {
        let name = name.to_owned();
        self.write(move |conn, _| records::heartbeat_ping(conn, &name, now)).await
    }

    async fn heartbeats(&self) -> Result<Vec<HeartbeatRecord>> {
        self.read(records::heartbeats).await
    }

    async fn set_heartbeat_missed(&self, name: &str, missed: bool) -> Result<()> {
        let name = name.to_owned();
        self.write(move |conn, _| records::set_heartbeat_missed(conn, &name, missed)).await
    }

    async fn handoff(&self, schedule: &str) -> Result<Option<Timestamp>> {
        let schedule = schedule.to_owned();
        self.read(move |conn| records::handoff(conn, &schedule)).await
    }

    async fn set_handoff(&self, schedule: &str, at: Timestamp) -> Result<()> {
        let schedule = schedule.to_owned();
        self.write(move |conn, _| records::set_handoff(conn, &schedule, at)).await
    }

    async fn meta_or_insert(&self, key: &str, fresh: &str) -> Result<String> {
        let (key, fresh) = (key.to_owned(), fresh.to_owned());
        self.write(move |conn, _| records::meta_or_insert(conn, &key, &fresh)).await
    }

    async fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        let (key, value) = (key.to_owned(), value.to_owned());
        self.write(move |conn, _| records::set_meta(conn, &key, &value)).await
    }

    async fn phone_topic(&self, user: &str, fresh: &str, now: Timestamp) -> Result<String> {
        let (user, fresh) = (user.to_owned(), fresh.to_owned());
        self.write(move |conn, _| records::phone_topic(conn, &user, &fresh, now)).await
    }

    async fn topic_user(&self, topic: &str) -> Result<Option<String>> {
        let topic = topic.to_owned();
        self.read(move |conn| records::topic_user(conn, &topic)).await
    }

    async fn add_device(&self, device: DeviceRecord, max: usize) -> Result<DeviceRecord> {
        self.write(move |conn, _| records::add_device(conn, &device, max)).await
    }

    async fn devices(&self, user: Option<&str>) -> Result<Vec<DeviceRecord>> {
        let user = user.map(str::to_owned);
        self.read(move |conn| records::devices(conn, user.as_deref())).await
    }

    async fn remove_device(&self, id: i64) -> Result<DeviceRecord> {
        self.write(move |conn, _| records::remove_device(conn, id)).await
    }

    async fn use_link(&self, signature: &str, now: Timestamp) -> Result<bool> {
        let signature = signature.to_owned();
        self.write(move |conn, _| records::use_link(conn, &signature, now)).await
    }

    async fn prune(&self, before: Timestamp, feed_kept_after: Option<i64>) -> Result<Pruned> {
        let mut total = Pruned::default();
        loop {
            let step =
                self.write(move |conn, _| retention::step(conn, before, feed_kept_after)).await?;
            if step.is_empty() {
                return Ok(total);
            }
            total.add(step);
        }
    }

    async fn feed_horizon(&self) -> Result<i64> {
        self.read(retention::horizon).await
    }

    async fn feed_all_since(&self, after: i64, limit: usize) -> Result<Vec<(String, FeedEvent)>> {
        self.read_skipping(move |conn, skipped| read::feed_all_since(conn, after, limit, skipped))
            .await
    }
}
