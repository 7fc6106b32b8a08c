//! Background work as jobs under one supervisor: the escalation worker, retention, the cluster
//! report, the outboxes (native push, webhooks, email and Matrix), the Matrix bot's listening.
//!
//! A [`Job`] is one kind of work: a name, one step, and what it waits for before the next. The
//! [`Supervisor`] runs every job on a task of its own and gives each the same care: a step that
//! fails is logged and counted, one that panics is logged, counted and started over from a new
//! job (its state may be broken), and a stop lets the current step finish. Jobs keep their
//! progress in the store (cursors, leases, due times), so a job started over, or after a
//! configuration reload, resumes where it left off. GoAlert's `engine` is the model.

pub mod cluster;
mod list;
pub mod retention;

use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures_util::FutureExt;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::AppState;

pub use list::jobs;

/// One kind of background work.
#[async_trait]
pub trait Job: Send {
    /// The job's name, in logs and metrics.
    fn name(&self) -> &'static str;

    /// One step of work. An error is logged and counted; the job steps again when due.
    async fn step(&mut self, state: &AppState) -> Result<(), String>;

    /// Waits until the next step is due: a second, unless the job says otherwise.
    async fn until_due(&mut self, _state: &AppState) {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Makes a job afresh: at start, after a panic, after a configuration reload.
pub type Make = Box<dyn Fn() -> Box<dyn Job> + Send + Sync>;

/// Runs jobs until stopped.
pub struct Supervisor {
    running: JoinSet<()>,
    stop: watch::Sender<bool>,
}

/// How long a job that panicked waits before it starts over.
const AFTER_PANIC: Duration = Duration::from_secs(1);

impl Supervisor {
    /// Starts every job of `makes`, each on a task of its own.
    pub fn start(state: &AppState, makes: Vec<Make>) -> Self {
        let stop = watch::channel(false).0;
        let mut running = JoinSet::new();
        for make in makes {
            running.spawn(supervise(state.clone(), make, stop.subscribe()));
        }
        Self { running, stop }
    }

    /// Stops every job: each finishes its current step (up to `patience`), the rest are cut.
    pub async fn stop(mut self, patience: Duration) {
        self.stop.send_replace(true);
        let finished = async { while self.running.join_next().await.is_some() {} };
        if tokio::time::timeout(patience, finished).await.is_err() {
            self.running.shutdown().await;
        }
    }
}

async fn supervise(state: AppState, make: Make, mut stop: watch::Receiver<bool>) {
    let mut job = make();
    let name = job.name();
    loop {
        let started = Instant::now();
        let step = AssertUnwindSafe(job.step(&state)).catch_unwind().await;
        let outcome = match &step {
            Ok(Ok(())) => "ok",
            Ok(Err(_)) => "error",
            Err(_) => "panic",
        };
        state.metrics.job_step(name, outcome, started.elapsed());
        match step {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(job = name, error = %e, "a background job's step failed; it steps again when due")
            }
            Err(panic) => {
                let why = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".into());
                tracing::error!(job = name, why, "a background job panicked; it starts over");
                tokio::select! {
                    () = tokio::time::sleep(AFTER_PANIC) => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
                job = make();
                continue;
            }
        }
        tokio::select! {
            () = job.until_due(&state) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}
