//! The embedded SQLite store: WAL mode, `synchronous=FULL`, one writer thread with group commit
//! (the shared [`reveille_store::writer`]), and a small pool of read connections. It is a
//! [`reveille_store::Backend`]: it supplies those connections and its SQL (the query traits,
//! one per role: [`read`] and [`credentials`] and [`records`]), and the roles of the store come
//! with it from `reveille-store`, written once for every backend.
//!
//! SQLite has one writer: feed ids are handed out in commit order, so committed entries are
//! published to the hub straight from the writer, in order, with no reading back.
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
mod session;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};

use async_trait::async_trait;
use jiff::Timestamp;
use reveille_store::quarantine::Quarantine;
use reveille_store::writer::Writer;
use reveille_store::{Backend, ClusterView, Error, Hub, Lease, NodeInfo, Result, UserPresence};
use rusqlite::Connection;

use self::session::Session;

pub use self::schema::LATEST as SCHEMA_VERSION;

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
    writer: Writer<Session>,
    readers: Mutex<Vec<Reader>>,
    /// One permit per read connection: at most [`READERS`] reads run at once, the rest wait
    /// their turn, so a burst of reads cannot open connections (and threads) without bound.
    reading: Arc<tokio::sync::Semaphore>,
    hub: Arc<Hub>,
    quarantine: Arc<Quarantine>,
    /// Rate buckets by key: with one node they need not be stored.
    buckets: Mutex<HashMap<String, (f64, Timestamp)>>,
}

/// Read connections at most.
pub const READERS: usize = 8;

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
    /// Opens the database at `path`, creating it and bringing its schema up to date; refuses a
    /// database a newer Reveille has written.
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
        let quarantine = Arc::<Quarantine>::default();
        let published = hub.clone();
        let mut commits: u64 = 0;
        let session = Session::new(conn, quarantine.clone());
        let writer = Writer::start("reveille-sqlite-writer", session, move |entries| {
            published.publish(entries);
            published.committed();
            commits += 1;
            if commits.is_multiple_of(CHECKPOINT_EVERY) {
                // Full means a checkpoint is already due: nothing to add.
                let _ = nudge.try_send(());
            }
        })?;
        Ok(Self {
            inner: Arc::new(Inner {
                path,
                writer,
                readers: Mutex::new(Vec::new()),
                reading: Arc::new(tokio::sync::Semaphore::new(READERS)),
                hub,
                quarantine,
                buckets: Mutex::default(),
            }),
        })
    }

    /// Brings the schema of the database at `path` up to date (`reveille migrate`); returns the
    /// version it was at and the version it is at now.
    pub fn migrate(path: impl AsRef<Path>) -> Result<(usize, usize)> {
        let mut conn = connect(path.as_ref())?;
        let before = schema::version(&conn)?;
        schema::migrate(&mut conn)?;
        Ok((before, schema::version(&conn)?))
    }

    /// Takes up to `want` tokens from `key`'s rate bucket, in memory.
    fn take_tokens_here(&self, key: &str, want: u32, per_minute: u32, now: Timestamp) -> u32 {
        let per_minute = f64::from(per_minute.max(1));
        let mut buckets = self.inner.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let (tokens, at) = buckets.entry(key.to_owned()).or_insert((per_minute, now));
        let (left, granted) = reveille_store::take_tokens(*tokens, *at, now, per_minute, want);
        (*tokens, *at) = (left, now);
        granted
    }

    /// Reads a pragma on the writer's own connection, e.g. `synchronous` (2 means FULL).
    pub async fn writer_pragma(&self, name: &'static str) -> Result<String> {
        self.write(move |s| {
            Ok(s.conn
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
        let _ = self.write::<(), _>(|_| panic!("crash_writer was called")).await;
    }

    /// Runs `work` on the writer thread inside a transaction; answers after the commit is synced.
    async fn write<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnMut(&mut Session) -> Result<T> + Send + 'static,
    {
        self.inner.writer.write(work).await
    }
}

/// A pooled read connection.
pub struct Reader(Connection);

#[async_trait]
impl Backend for Sqlite {
    type Session = Session;
    type Reader = Reader;

    fn writer(&self) -> &Writer<Session> {
        &self.inner.writer
    }

    fn hub(&self) -> &Hub {
        &self.inner.hub
    }

    fn quarantine(&self) -> &Quarantine {
        &self.inner.quarantine
    }

    /// A pooled connection on the blocking thread pool; at most [`READERS`] at once.
    async fn read<T, F>(&self, mut f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnMut(&mut Reader) -> Result<T> + Send + 'static,
    {
        // The permit goes with the read onto its thread: a caller that gives up (a client gone)
        // does not free it while the read still holds its connection.
        let permit = self.inner.reading.clone().acquire_owned().await;
        let permit = permit.map_err(|_| Error::unavailable("the database is closing"))?;
        let inner = self.inner.clone();
        let task = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let pooled = inner.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let mut reader = match pooled {
                Some(reader) => reader,
                None => Reader(connect(&inner.path)?),
            };
            let result = f(&mut reader);
            let mut pool = inner.readers.lock().unwrap_or_else(|p| p.into_inner());
            if pool.len() < READERS {
                pool.push(reader);
            }
            result
        });
        task.await.map_err(|e| Error::Unavailable(e.to_string()))?
    }
}

/// One node: the cluster is this process, and what it shares it keeps in memory.
#[async_trait]
impl reveille_store::Cluster for Sqlite {
    async fn lease(&self, _: &str, _: &str, _: Timestamp, _: Timestamp) -> Result<Lease> {
        Ok(Lease::Granted { took_over: None })
    }

    async fn report_node(
        &self,
        node: NodeInfo,
        presence: Vec<UserPresence>,
    ) -> Result<ClusterView> {
        let name = node.name.clone();
        let presence = presence.into_iter().map(|p| (name.clone(), p)).collect();
        Ok(ClusterView { nodes: vec![node], presence })
    }

    async fn take_tokens(
        &self,
        key: &str,
        want: u32,
        per_minute: u32,
        now: Timestamp,
    ) -> Result<u32> {
        Ok(self.take_tokens_here(key, want, per_minute, now))
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
