//! Reveille on PostgreSQL, for teams that run several identical nodes so that no machine is a
//! single point of failure.
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

mod cluster;
mod credentials;
mod pump;
mod quarantine;
mod read;
mod records;
mod retention;
mod schema;
mod session;
mod store;

use std::sync::{Arc, Mutex, mpsc};

use postgres::{Client, NoTls};
use reveille_store::quarantine::{Quarantine, Unreadable};
use reveille_store::writer::Writer;
use reveille_store::{Error, Hub, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;

use self::session::Session;

pub use self::schema::LATEST as SCHEMA_VERSION;

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

type ReadJob = Box<dyn FnOnce(&mut Option<Client>) + Send>;

/// Read connections per node.
const READERS: usize = 8;

impl Readers {
    fn start(url: &str) -> Result<Self> {
        let (jobs, queue) = mpsc::channel::<ReadJob>();
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..READERS {
            let (url, queue) = (url.to_owned(), queue.clone());
            std::thread::Builder::new()
                .name(format!("reveille-pg-reader-{n}"))
                .spawn(move || {
                    let mut client: Option<Client> = None;
                    loop {
                        let job = queue.lock().unwrap_or_else(|p| p.into_inner()).recv();
                        let Ok(job) = job else { return };
                        if client.as_ref().is_none_or(Client::is_closed) {
                            client = connect(&url).ok();
                        }
                        job(&mut client);
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

/// Opens a connection; `url` is a `postgres://user:password@host:port/database` URL.
fn connect(url: &str) -> Result<Client> {
    Client::connect(url, NoTls).map_err(|e| Error::unavailable(format!("cannot connect: {e}")))
}

fn json(value: &impl Serialize) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::Unavailable(format!("encoding: {e}")))
}

fn unjson<T: DeserializeOwned>(body: &str) -> Result<T> {
    serde_json::from_str(body).map_err(|e| Error::Unavailable(format!("corrupt row: {e}")))
}

impl Postgres {
    /// Connects to the database at `url`, brings its schema up to date (refusing one a newer
    /// Reveille wrote) and starts this node's writer and listener.
    pub fn open(url: &str) -> Result<Self> {
        let mut client = off_runtime(|| -> Result<Client> {
            let mut client = connect(url)?;
            schema::migrate(&mut client)?;
            Ok(client)
        })?;
        let hub = Arc::new(Hub::new(1024));
        let quarantine = Arc::<Quarantine>::default();
        let counted = hub.clone();
        let session = Session::new(url, quarantine.clone());
        // Entries are published by the pump, in id order across every node's commits.
        let writer = Writer::start("reveille-pg-writer", session, move |_| counted.committed())?;
        let head = off_runtime(|| pump::start(&mut client))?;
        pump::run_on_thread(url, client, hub.clone(), head)?;
        Ok(Self {
            inner: Arc::new(Inner { writer, readers: Readers::start(url)?, hub, quarantine }),
        })
    }

    /// Brings the schema of the database at `url` up to date (`reveille migrate`); returns the
    /// version it was at and the version it is at now.
    pub fn migrate(url: &str) -> Result<(usize, usize)> {
        off_runtime(|| {
            let mut client = connect(url)?;
            let before = schema::version(&mut client)?;
            schema::migrate(&mut client)?;
            Ok((before, schema::version(&mut client)?))
        })
    }

    /// Runs `work` on the writer thread inside a transaction; answers after the commit.
    async fn write<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnMut(&mut Session) -> Result<T> + Send + 'static,
    {
        self.inner.writer.write(work).await
    }

    /// Runs `f` on one of the read connections.
    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Client) -> Result<T> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job: ReadJob = Box::new(move |client| {
            let result = match client.as_mut() {
                Some(client) => f(client),
                None => Err(Error::unavailable("cannot connect to the database")),
            };
            let _ = reply.send(result);
        });
        let sent = self.inner.readers.jobs.lock().unwrap_or_else(|p| p.into_inner()).send(job);
        sent.map_err(|_| Error::unavailable("the database readers have stopped"))?;
        answer.await.map_err(|_| Error::unavailable("a database reader stopped"))?
    }

    /// Runs `f` in a short transaction of its own on a read connection: for the cluster's
    /// bookkeeping, which must never share a writer group with other locks (see [`cluster`]).
    async fn side<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut postgres::Transaction<'_>) -> Result<T> + Send + 'static,
    {
        self.read(move |client| {
            let mut tx = client.transaction()?;
            let value = f(&mut tx)?;
            tx.commit()?;
            Ok(value)
        })
        .await
    }

    /// Like [`Self::read`] for readers that skip rows they cannot decode; those met for the
    /// first time are reported and written on their incident's timeline.
    async fn read_skipping<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Client, &mut Vec<Unreadable>) -> Result<T> + Send + 'static,
    {
        let (value, skipped) = self
            .read(move |client| {
                let mut skipped = Vec::new();
                Ok((f(client, &mut skipped)?, skipped))
            })
            .await?;
        let fresh = self.inner.quarantine.first_seen(skipped);
        if !fresh.is_empty() {
            let store = self.clone();
            tokio::spawn(async move {
                let now = jiff::Timestamp::now();
                let noted = store.write(move |s| quarantine::record(s, &fresh, now));
                if let Err(e) = noted.await {
                    tracing::warn!(error = %e, "cannot note an unreadable row on its timeline");
                }
            });
        }
        Ok(value)
    }
}
