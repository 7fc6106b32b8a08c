//! Reveille on PostgreSQL, for teams that run several identical nodes so that no machine is a
//! single point of failure. It is a [`reveille_store::Backend`]: it supplies its connections and
//! its SQL (the query traits, one per role), and the shared state of the cluster
//! ([`reveille_store::Cluster`]); the roles of the store come with it from `reveille-store`.
//!
//! Each node has one writer thread with group commit (the shared [`reveille_store::writer`],
//! over [`session::Session`]), a small pool of read connections, and one dedicated listening
//! connection ([`pump`]). Every node, the writer's included, publishes committed feed entries
//! to its own devices only through the pump, which reads them back in id order after each
//! `NOTIFY` (and after every reconnect of the listener, since notifications sent while it was
//! down are lost): a page committed on any node reaches devices on every node, in order, with no
//! gap. Conflicts between nodes (two opening the same incident at once) run the transaction
//! again. Do not put a transaction-pooling proxy (pgbouncer in transaction mode) between a node
//! and the database: `LISTEN` needs its own session.
//!
//! No node can make another wait for long: every connection carries the [`Deadlines`] (lock,
//! statement and idle-in-transaction timeouts, TCP keepalives and a user timeout), so a node that
//! froze in the middle of a transaction loses it within seconds and the others go on; a write
//! that cannot get its locks in time fails as `Unavailable` (a 503 senders retry).

mod cluster;
mod credentials;
mod pump;
mod quarantine;
mod read;
mod records;
mod retention;
mod schema;
mod session;

use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use postgres::{Client, NoTls};
use reveille_store::quarantine::Quarantine;
use reveille_store::writer::Writer;
use reveille_store::{Backend, ClusterView, Error, Hub, Lease, NodeInfo, Result, UserPresence};
use serde::Serialize;
use serde::de::DeserializeOwned;

use self::session::Session;

pub use self::schema::LATEST as SCHEMA_VERSION;
pub use self::session::WRITE_LOCK;

/// PostgreSQL storage for one node; cheap to clone.
#[derive(Clone)]
pub struct Postgres {
    inner: Arc<Inner>,
}

struct Inner {
    writer: Writer<Session>,
    readers: Readers,
    hub: Arc<Hub>,
    quarantine: Arc<Quarantine>,
}

/// Read connections, each on a thread of its own. The driver blocks, and it may not block on a
/// thread of the async runtime (not even one of its blocking pool): readers are plain threads.
struct Readers {
    jobs: Mutex<mpsc::Sender<ReadJob>>,
}

type ReadJob = Box<dyn FnOnce(&Target, &mut Option<Reader>) + Send>;

/// A read connection.
pub struct Reader(Client);

/// Read connections per node.
const READERS: usize = 8;

impl Readers {
    fn start(target: &Target) -> Result<Self> {
        let (jobs, queue) = mpsc::channel::<ReadJob>();
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..READERS {
            let (target, queue) = (target.clone(), queue.clone());
            std::thread::Builder::new()
                .name(format!("reveille-pg-reader-{n}"))
                .spawn(move || {
                    let mut reader: Option<Reader> = None;
                    loop {
                        let job = queue.lock().unwrap_or_else(|p| p.into_inner()).recv();
                        let Ok(job) = job else { return };
                        if reader.as_ref().is_none_or(|r| r.0.is_closed()) {
                            reader = target.connect().ok().map(Reader);
                        }
                        job(&target, &mut reader);
                    }
                })
                .map_err(Error::unavailable)?;
        }
        Ok(Self { jobs: Mutex::new(jobs) })
    }
}

/// Runs `work` on a thread outside the async runtime and waits for it: for the few blocking
/// calls made once (connecting and migrating at start).
fn off_runtime<T: Send>(work: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| scope.spawn(work).join().expect("the database thread panicked"))
}

/// How long the database may keep a node waiting. Every connection of the node carries them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deadlines {
    /// A statement waits this long for a lock held elsewhere (`lock_timeout`).
    pub lock: Duration,
    /// A statement runs this long at most (`statement_timeout`).
    pub statement: Duration,
    /// A transaction its node leaves idle this long is ended by the server, and its locks with
    /// it (`idle_in_transaction_session_timeout`): what frees the others from a frozen node.
    pub idle_in_transaction: Duration,
    /// TCP keepalive probes start after this much silence, three of them a third of it apart.
    pub keepalive: Duration,
    /// Data the database has not acknowledged this long drops the connection
    /// (`tcp_user_timeout`).
    pub tcp_user: Duration,
}

impl Default for Deadlines {
    fn default() -> Self {
        Self {
            lock: Duration::from_secs(2),
            statement: Duration::from_secs(30),
            idle_in_transaction: Duration::from_secs(3),
            keepalive: Duration::from_secs(5),
            tcp_user: Duration::from_secs(10),
        }
    }
}

/// Where the database is and how to connect to it, deadlines included.
#[derive(Clone)]
pub(crate) struct Target(postgres::Config);

impl Target {
    /// `url` is a `postgres://user:password@host:port/database` URL.
    fn new(url: &str, deadlines: &Deadlines) -> Result<Self> {
        let mut config: postgres::Config =
            url.parse().map_err(|e| Error::unavailable(format!("database.url: {e}")))?;
        let ms = |d: Duration| d.as_millis().max(1);
        let options = format!(
            "{} -c lock_timeout={} -c statement_timeout={} -c idle_in_transaction_session_timeout={}",
            config.get_options().unwrap_or_default(),
            ms(deadlines.lock),
            ms(deadlines.statement),
            ms(deadlines.idle_in_transaction),
        );
        config
            .options(options.trim_start())
            .connect_timeout(Duration::from_secs(5))
            .keepalives(true)
            .keepalives_idle(deadlines.keepalive)
            .keepalives_interval((deadlines.keepalive / 3).max(Duration::from_secs(1)))
            .keepalives_retries(3)
            .tcp_user_timeout(deadlines.tcp_user);
        Ok(Self(config))
    }

    /// Opens a connection.
    pub(crate) fn connect(&self) -> Result<Client> {
        self.0.connect(NoTls).map_err(|e| Error::unavailable(format!("cannot connect: {e}")))
    }
}

fn json(value: &impl Serialize) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::Unavailable(format!("encoding: {e}")))
}

fn unjson<T: DeserializeOwned>(body: &str) -> Result<T> {
    serde_json::from_str(body).map_err(|e| Error::Corrupt(e.to_string()))
}

impl Postgres {
    /// Connects to the database at `url`, brings its schema up to date (refusing one a newer
    /// Reveille wrote) and starts this node's writer and listener.
    pub fn open(url: &str, deadlines: &Deadlines) -> Result<Self> {
        let target = Target::new(url, deadlines)?;
        let mut client = off_runtime(|| -> Result<Client> {
            let mut client = target.connect()?;
            schema::migrate(&mut client)?;
            Ok(client)
        })?;
        let hub = Arc::new(Hub::new(1024));
        let quarantine = Arc::<Quarantine>::default();
        let counted = hub.clone();
        let session = Session::new(target.clone(), quarantine.clone());
        // Entries are published by the pump, in id order across every node's commits.
        let writer = Writer::start("reveille-pg-writer", session, move |_| counted.committed())?;
        let head = off_runtime(|| pump::start(&mut client))?;
        pump::run_on_thread(target.clone(), client, hub.clone(), head)?;
        Ok(Self {
            inner: Arc::new(Inner { writer, readers: Readers::start(&target)?, hub, quarantine }),
        })
    }

    /// Brings the schema of the database at `url` up to date (`reveille migrate`); returns the
    /// version it was at and the version it is at now.
    pub fn migrate(url: &str) -> Result<(usize, usize)> {
        let target = Target::new(url, &Deadlines::default())?;
        off_runtime(|| {
            let mut client = target.connect()?;
            let before = schema::version(&mut client)?;
            schema::migrate(&mut client)?;
            Ok((before, schema::version(&mut client)?))
        })
    }

    /// Runs `f` in a short transaction of its own on a read connection: for the cluster's
    /// bookkeeping, which must never share a writer group with other locks (see [`cluster`]).
    async fn side<T, F>(&self, mut f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnMut(&mut postgres::Transaction<'_>) -> Result<T> + Send + 'static,
    {
        self.read(move |reader| {
            let mut tx = reader.0.transaction()?;
            let value = f(&mut tx)?;
            tx.commit()?;
            Ok(value)
        })
        .await
    }
}

#[async_trait]
impl Backend for Postgres {
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

    /// One of the read connections. A connection found dead by `f` (the database restarted, a
    /// proxy dropped it) is opened again and `f` run once more at once, so a restart of the
    /// database costs no reader an error.
    async fn read<T, F>(&self, mut f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnMut(&mut Reader) -> Result<T> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job: ReadJob = Box::new(move |target, reader| {
            let mut result = match reader.as_mut() {
                Some(r) => f(r),
                None => Err(Error::unavailable("cannot connect to the database")),
            };
            if result.is_err() && reader.as_ref().is_some_and(|r| r.0.is_closed()) {
                *reader = target.connect().ok().map(Reader);
                if let Some(r) = reader.as_mut() {
                    result = f(r);
                }
            }
            let _ = reply.send(result);
        });
        let sent = self.inner.readers.jobs.lock().unwrap_or_else(|p| p.into_inner()).send(job);
        sent.map_err(|_| Error::unavailable("the database readers have stopped"))?;
        answer.await.map_err(|_| Error::unavailable("a database reader stopped"))?
    }
}

/// What the nodes share, each in a short transaction of its own ([`cluster`]).
#[async_trait]
impl reveille_store::Cluster for Postgres {
    async fn lease(
        &self,
        name: &str,
        holder: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<Lease> {
        let (name, holder) = (name.to_owned(), holder.to_owned());
        self.side(move |tx| cluster::lease(tx, &name, &holder, now, until)).await
    }

    async fn report_node(
        &self,
        node: NodeInfo,
        presence: Vec<UserPresence>,
    ) -> Result<ClusterView> {
        self.side(move |tx| cluster::report_node(tx, &node, &presence)).await
    }

    async fn take_tokens(
        &self,
        key: &str,
        want: u32,
        per_minute: u32,
        now: Timestamp,
    ) -> Result<u32> {
        let key = key.to_owned();
        self.side(move |tx| cluster::take_tokens(tx, &key, want, per_minute, now)).await
    }
}
