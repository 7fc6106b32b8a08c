//! The writer thread every backend runs: one thread, one connection, group commit.
//!
//! Every write is a job sent to the thread. The thread takes all jobs waiting (up to
//! [`MAX_GROUP`]), runs each in its own savepoint inside one transaction, commits once (one sync
//! for the whole group), and only then answers the jobs and hands the committed feed entries on.
//! A job that fails is rolled back alone. A transaction the backend calls retryable (another
//! node's concurrent write got in its way) is run again whole, a few times, before its jobs are
//! answered with the error. A panic in a job kills the thread: that is reported through
//! [`Writer::stopped`], so the process can end and be restarted rather than run without a writer.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use reveille_protocol::FeedEvent;
use tokio::sync::{oneshot, watch};

use crate::{Error, Result};

/// Most jobs committed together in one transaction.
pub const MAX_GROUP: usize = 512;

/// Times a retryable transaction is run before its jobs get the error.
const ATTEMPTS: usize = 3;

/// Feed entries committed by one transaction, in feed order, with the user of each.
pub type Committed = Vec<(String, FeedEvent)>;

/// A backend's connection on the writer thread, in or out of a transaction.
pub trait Session: Send + 'static {
    fn begin(&mut self) -> Result<()>;
    /// Marks where one job starts, to roll back to if it fails.
    fn savepoint(&mut self) -> Result<()>;
    fn rollback_to_savepoint(&mut self) -> Result<()>;
    fn release_savepoint(&mut self) -> Result<()>;
    /// Commits (durably); returns the feed entries the transaction appended.
    fn commit(&mut self) -> Result<Committed>;
    fn rollback(&mut self);
    /// Whether the error means "run the transaction again" rather than "it cannot be done".
    fn retryable(&self, error: &Error) -> bool {
        matches!(error, Error::Conflict(_))
    }
}

/// One write waiting for the thread; run again if its transaction is retried.
trait Job<S>: Send {
    fn run(&mut self, session: &mut S) -> Result<(), Error>;
    /// The transaction has committed (`None`) or failed for good.
    fn finish(self: Box<Self>, failed: Option<&Error>);
}

struct Typed<T, F> {
    work: F,
    result: Option<Result<T>>,
    reply: oneshot::Sender<Result<T>>,
}

impl<S, T, F> Job<S> for Typed<T, F>
where
    T: Send,
    F: FnMut(&mut S) -> Result<T> + Send,
{
    fn run(&mut self, session: &mut S) -> Result<(), Error> {
        let result = (self.work)(session);
        let outcome = result.as_ref().map(|_| ()).map_err(Clone::clone);
        self.result = Some(result);
        outcome
    }

    fn finish(self: Box<Self>, failed: Option<&Error>) {
        let answer = match (failed, self.result) {
            (Some(e), _) => Err(e.clone()),
            (None, Some(result)) => result,
            (None, None) => Err(Error::Unavailable("the write never ran".into())),
        };
        let _ = self.reply.send(answer);
    }
}

/// The handle on a writer thread; cheap to share behind an `Arc`.
pub struct Writer<S> {
    jobs: Mutex<mpsc::Sender<Box<dyn Job<S>>>>,
    stopped: watch::Sender<Option<String>>,
    progress: Arc<Tally>,
}

/// How the writer is getting on, for health checks: a writer with work waiting that has
/// committed nothing for a while is stuck; one that is busy but committing is only busy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// Writes sent and not yet answered.
    pub waiting: usize,
    /// How long ago the last commit was (or the writer started, before the first).
    pub since_commit: Duration,
}

/// What the thread reports of itself.
struct Tally {
    waiting: AtomicUsize,
    last_commit: Mutex<Instant>,
}

impl Tally {
    fn committed(&self) {
        *self.last_commit.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }
}

impl<S: Session> Writer<S> {
    /// Starts the thread; `committed` is called after every commit, on the thread, in commit order.
    pub fn start(
        name: &str,
        session: S,
        committed: impl FnMut(Committed) + Send + 'static,
    ) -> Result<Self> {
        let (tx, rx) = mpsc::channel::<Box<dyn Job<S>>>();
        let stopped = watch::channel(None).0;
        let on_death = stopped.clone();
        let progress = Arc::new(Tally {
            waiting: AtomicUsize::new(0),
            last_commit: Mutex::new(Instant::now()),
        });
        let tally = progress.clone();
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let run = AssertUnwindSafe(|| write_loop(session, rx, committed, &tally));
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
        Ok(Self { jobs: Mutex::new(tx), stopped, progress })
    }

    /// Runs `work` on the writer thread inside a transaction; answers once the commit is durable.
    /// `work` may run more than once if its transaction is retried: only its last run counts.
    pub async fn write<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnMut(&mut S) -> Result<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Box<dyn Job<S>> = Box::new(Typed { work, result: None, reply });
        self.progress.waiting.fetch_add(1, Ordering::Relaxed);
        let sent = self.jobs.lock().unwrap_or_else(|p| p.into_inner()).send(job);
        if sent.is_err() {
            self.progress.waiting.fetch_sub(1, Ordering::Relaxed);
            return Err(Error::Unavailable("the database writer has stopped".into()));
        }
        answer.await.map_err(|_| Error::Unavailable("the database writer has stopped".into()))?
    }

    /// How the writer is getting on.
    pub fn progress(&self) -> Progress {
        let last = *self.progress.last_commit.lock().unwrap_or_else(|p| p.into_inner());
        Progress {
            waiting: self.progress.waiting.load(Ordering::Relaxed),
            since_commit: last.elapsed(),
        }
    }

    /// Becomes `Some(reason)` when the thread has died: nothing can be written any more.
    pub fn stopped(&self) -> watch::Receiver<Option<String>> {
        self.stopped.subscribe()
    }
}

fn write_loop<S: Session>(
    mut session: S,
    jobs: mpsc::Receiver<Box<dyn Job<S>>>,
    mut committed: impl FnMut(Committed),
    tally: &Tally,
) {
    while let Ok(first) = jobs.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let mut outcome = run_group(&mut session, &mut group);
        for _ in 1..ATTEMPTS {
            match &outcome {
                Err(e) if session.retryable(e) => {
                    tracing::debug!(error = %e, "transaction conflicted with another writer; running it again");
                    outcome = run_group(&mut session, &mut group);
                }
                _ => break,
            }
        }
        let done = group.len();
        match outcome {
            Ok(entries) => {
                tally.committed();
                group.into_iter().for_each(|job| job.finish(None));
                committed(entries);
            }
            Err(e) => {
                tracing::error!(error = %e, "database transaction failed; nothing was written");
                group.into_iter().for_each(|job| job.finish(Some(&e)));
            }
        }
        tally.waiting.fetch_sub(done, Ordering::Relaxed);
    }
}

/// Runs every job of the group in one transaction. A job that fails is rolled back alone, unless
/// its failure is retryable: then the whole transaction is abandoned, to be run again.
fn run_group<S: Session>(session: &mut S, group: &mut [Box<dyn Job<S>>]) -> Result<Committed> {
    let run = |session: &mut S, group: &mut [Box<dyn Job<S>>]| -> Result<Committed> {
        session.begin()?;
        for job in group.iter_mut() {
            session.savepoint()?;
            match job.run(session) {
                Ok(()) => session.release_savepoint()?,
                Err(e) if session.retryable(&e) => return Err(e),
                Err(_) => session.rollback_to_savepoint()?,
            }
        }
        session.commit()
    };
    let outcome = run(session, group);
    if outcome.is_err() {
        session.rollback();
    }
    outcome
}
