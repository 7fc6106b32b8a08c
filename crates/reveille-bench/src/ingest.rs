//! Durable ingest throughput: `concurrency` senders post new events for `seconds` (PagerDuty v2,
//! one event per request; Alertmanager, `batch` alerts per notification), each event a new
//! incident that pages someone. An event counts once the server answered 2xx, which it does only
//! after the commit is synced. Beside it, in the same directory (same disk, same run): raw SQLite
//! inserts of the same bodies with the same durability (WAL, `synchronous=FULL`), one commit per
//! event and in batches the size of the server's concurrency.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use serde::Serialize;
use serde_json::json;

use crate::report::{Outcome, Row, per_second};
use crate::site::Site;
use crate::{alertmanager_body, notify_alertmanager, page, procs};

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Options {
    pub seconds: f64,
    pub concurrency: usize,
    /// Alerts per Alertmanager notification.
    pub batch: usize,
}

impl Options {
    pub fn full() -> Options {
        Options { seconds: 10.0, concurrency: 256, batch: 10 }
    }
    pub fn quick() -> Options {
        Options { seconds: 0.5, concurrency: 8, batch: 5 }
    }
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub enum Format {
    PagerDuty,
    Alertmanager,
}

#[derive(Debug, Clone, Serialize)]
pub struct Sustained {
    pub format: Format,
    pub accepted: u64,
    /// Incidents in the database afterwards: one per accepted event.
    pub stored: u64,
    pub per_second: f64,
    /// Share of the 2 cores used meanwhile by the server and by the benchmark's own senders
    /// (which run on the same machine), in percent of one core.
    pub server_cpu_percent: f64,
    pub senders_cpu_percent: f64,
    /// Of the server's: its one SQLite writer thread, which runs every commit.
    pub writer_cpu_percent: f64,
}

/// The SQLite writer thread's name as `/proc` shows it (15 bytes of `reveille-sqlite-writer`).
const WRITER: &str = "reveille-sqlite";

#[derive(Debug, Clone, Serialize)]
pub struct Ingest {
    pub options: Options,
    pub reveille: Vec<Sustained>,
    pub raw_each_commit_per_second: f64,
    pub raw_batched_per_second: f64,
}

pub async fn run(options: Options) -> Result<(Outcome, Ingest)> {
    let mut reveille = Vec::new();
    let mut raw = (0.0, 0.0);
    for format in [Format::PagerDuty, Format::Alertmanager] {
        let site = Site::start(1).await?;
        let sustained = sustain(&site, format, options).await?;
        ensure!(
            sustained.stored == sustained.accepted,
            "{format:?}: {} events accepted but {} incidents stored",
            sustained.accepted,
            sustained.stored
        );
        if format == Format::PagerDuty {
            let dir = site.dir().to_owned();
            raw = tokio::task::spawn_blocking(move || raw_sqlite(&dir, options)).await??;
        }
        reveille.push(sustained);
    }
    let (each, batched) = raw;
    let mut rows = Vec::new();
    for s in &reveille {
        let name = format!("{:?}", s.format);
        let rate = s.per_second;
        rows.push(Row::goal(
            format!("{name}: durable events/s"),
            per_second(rate),
            "≥ 20,000/s",
            rate >= 20_000.0,
        ));
        let cpu = format!(
            "{:.0} % ({:.0} %) / {:.0} %",
            s.server_cpu_percent, s.writer_cpu_percent, s.senders_cpu_percent
        );
        rows.push(Row::info(format!("{name}: CPU of server (its writer) / senders"), cpu));
        rows.push(Row::info(
            format!("{name}: ratio to raw SQLite, a commit per event"),
            format!("{:.2}×", rate / each),
        ));
        rows.push(Row::info(
            format!("{name}: ratio to raw SQLite, batched"),
            format!("{:.2}×", rate / batched),
        ));
    }
    rows.push(Row::info("raw SQLite inserts/s, a commit per event", per_second(each)));
    let batch = options.concurrency;
    rows.push(Row::info(format!("raw SQLite inserts/s, {batch} per commit"), per_second(batched)));
    let result = Ingest {
        options,
        reveille,
        raw_each_commit_per_second: each,
        raw_batched_per_second: batched,
    };
    let data = json!(result);
    Ok((Outcome { scenario: "ingest".into(), rows, data }, result))
}

/// Sends for `options.seconds`; what the site accepted, how fast, and the CPU it took.
pub async fn sustain(site: &Site, format: Format, options: Options) -> Result<Sustained> {
    let http = reqwest::Client::new();
    let accepted = Arc::new(AtomicU64::new(0));
    let cpu = || {
        (
            procs::cpu_ticks(site.pid()).unwrap_or(0),
            procs::cpu_ticks(std::process::id()).unwrap_or(0),
            procs::thread_ticks(site.pid(), WRITER),
        )
    };
    let (server_before, senders_before, writer_before) = cpu();
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(options.seconds);
    let mut senders = tokio::task::JoinSet::new();
    for sender in 0..options.concurrency {
        let (http, url, key, accepted) =
            (http.clone(), site.url().to_owned(), site.keys[0].clone(), accepted.clone());
        senders.spawn(async move {
            let mut n = 0usize;
            while Instant::now() < deadline {
                let events = match format {
                    Format::PagerDuty => {
                        page(&http, &url, &key, &format!("pd-{sender}-{n}")).await?;
                        1
                    }
                    Format::Alertmanager => {
                        let instances: Vec<String> =
                            (0..options.batch).map(|a| format!("am-{sender}-{n}-{a}")).collect();
                        let body = alertmanager_body("Bench", &instances);
                        notify_alertmanager(&http, &url, &key, &body).await?;
                        instances.len() as u64
                    }
                };
                accepted.fetch_add(events, Ordering::Relaxed);
                n += 1;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = senders.join_next().await {
        done??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let (server_after, senders_after, writer_after) = cpu();
    let percent = |ticks: u64| 100.0 * ticks as f64 / procs::ticks_per_second() as f64 / elapsed;
    let accepted = accepted.load(Ordering::Relaxed);
    let stored = site.count("SELECT count(*) FROM incidents")?;
    Ok(Sustained {
        format,
        accepted,
        stored,
        per_second: accepted as f64 / elapsed,
        server_cpu_percent: percent(server_after.saturating_sub(server_before)),
        senders_cpu_percent: percent(senders_after.saturating_sub(senders_before)),
        writer_cpu_percent: percent(writer_after.saturating_sub(writer_before)),
    })
}

/// Inserts PagerDuty-sized rows into a fresh database beside the server's, with the server's
/// durability settings: (a commit per event, `batch` events per commit), events per second.
fn raw_sqlite(dir: &Path, options: Options) -> Result<(f64, f64)> {
    let db = rusqlite::Connection::open(dir.join("raw.db"))?;
    db.pragma_update(None, "journal_mode", "WAL")?;
    db.pragma_update(None, "synchronous", "FULL")?;
    db.execute_batch(
        "CREATE TABLE events (id INTEGER PRIMARY KEY, received_at TEXT NOT NULL,
         service TEXT NOT NULL, source TEXT NOT NULL, body TEXT NOT NULL)",
    )?;
    let body = json!({"routing_key": "k".repeat(32), "event_action": "trigger", "dedup_key": "pd-00-000000",
        "payload": {"summary": "pd-00-000000", "source": "reveille-bench", "severity": "critical"}})
    .to_string();
    let rate = |per_commit: usize| -> Result<f64> {
        let started = Instant::now();
        let deadline = started + Duration::from_secs_f64(options.seconds);
        let mut inserted = 0u64;
        while Instant::now() < deadline {
            let tx = db.unchecked_transaction()?;
            {
                let mut insert = tx.prepare_cached(
                    "INSERT INTO events (received_at, service, source, body) VALUES (?1, 's0', 'pagerduty', ?2)",
                )?;
                for _ in 0..per_commit {
                    insert.execute(rusqlite::params![jiff::Timestamp::now().to_string(), body])?;
                }
            }
            tx.commit()?;
            inserted += per_commit as u64;
        }
        Ok(inserted as f64 / started.elapsed().as_secs_f64())
    };
    Ok((rate(1)?, rate(options.concurrency)?))
}
