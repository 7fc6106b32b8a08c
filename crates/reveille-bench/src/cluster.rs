//! Several nodes on PostgreSQL, side by side with SQLite in one run: durable ingest with 1 and 3
//! nodes beside raw PostgreSQL inserts with the same durability; ingest → frame with subscribers
//! spread over 3 nodes through the balancer; and failover, from the SIGKILL of a node to the last
//! of its devices receiving pages again through the balancer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use futures_util::StreamExt;
use reveille_protocol::sse::Parser;
use serde::Serialize;
use serde_json::json;

use crate::ingest::{self, Format};
use crate::latency;
use crate::page;
use crate::report::{Outcome, Row, ms, per_second};
use crate::site::{Db, Site};
use crate::stats::Spread;

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Options {
    pub ingest: ingest::Options,
    pub latency: latency::Options,
    /// Devices following one user through the balancer when a node is killed.
    pub devices: usize,
}

impl Options {
    pub fn full() -> Options {
        let latency = latency::Options { pages: 1000, ..latency::Options::full() };
        Options { ingest: ingest::Options::full(), latency, devices: 60 }
    }
    pub fn quick() -> Options {
        Options { ingest: ingest::Options::quick(), latency: latency::Options::quick(), devices: 6 }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Cluster {
    pub options: Options,
    /// Durable PagerDuty events/s: SQLite, PostgreSQL with 1 node, with 3 nodes.
    pub sqlite_per_second: f64,
    pub one_node_per_second: f64,
    pub three_nodes_per_second: f64,
    pub raw_each_commit_per_second: f64,
    pub raw_batched_per_second: f64,
    pub latency: Spread,
    /// From the SIGKILL to each device receiving a page sent after it (in milliseconds): for
    /// devices of the dead node, reconnecting through the balancer included.
    pub failover: Spread,
}

pub async fn run(options: Options) -> Result<(Outcome, Cluster)> {
    let mut rates = Vec::new();
    for db in [Db::Sqlite, Db::Postgres(1), Db::Postgres(3)] {
        let site = Site::start_on(1, db).await?;
        let sustained = ingest::sustain(&site, Format::PagerDuty, options.ingest).await?;
        let stored = site.count("SELECT count(*) FROM incidents")?;
        ensure!(
            stored == sustained.accepted,
            "{db:?}: {} accepted, {stored} stored",
            sustained.accepted
        );
        rates.push(sustained.per_second);
        if db == Db::Postgres(1) {
            let url = site.postgres.clone().expect("a PostgreSQL site");
            let (seconds, batch) = (options.ingest.seconds, options.ingest.concurrency);
            let raw = tokio::task::spawn_blocking(move || raw_postgres(&url, seconds, batch));
            let (each, batched) = raw.await??;
            rates.extend([each, batched]);
        }
    }
    let (sqlite, one, each, batched, three) = (rates[0], rates[1], rates[2], rates[3], rates[4]);
    let site = Site::start_on(options.latency.users, Db::Postgres(3)).await?;
    let latency = latency::measure(&site, options.latency).await?;
    drop(site);
    let failover = failover(options.devices).await?;
    let rows = vec![
        Row::info("SQLite: durable events/s (PagerDuty)", per_second(sqlite)),
        Row::info("PostgreSQL, 1 node: durable events/s", per_second(one)),
        Row::goal(
            "PostgreSQL, 3 nodes: durable events/s",
            per_second(three),
            "≥ 10,000/s",
            three >= 10_000.0,
        ),
        Row::info("raw PostgreSQL inserts/s, a commit each", per_second(each)),
        Row::info(
            format!("raw PostgreSQL inserts/s, {} per commit", options.ingest.concurrency),
            per_second(batched),
        ),
        Row::info("3 nodes: ratio to raw, a commit each", format!("{:.2}×", three / each)),
        Row::info("3 nodes: ratio to raw, batched", format!("{:.2}×", three / batched)),
        Row::info("3 nodes: ingest → frame p50", ms(latency.p50)),
        Row::goal("3 nodes: ingest → frame p99", ms(latency.p99), "≤ 10 ms", latency.p99 <= 10.0),
        Row::info(
            "failover: kill → every device paged again, p50",
            format!("{:.2} s", failover.p50 / 1000.0),
        ),
        Row::goal(
            "failover: kill → every device paged again, max",
            format!("{:.2} s", failover.max / 1000.0),
            "≤ 5 s",
            failover.max <= 5000.0,
        ),
    ];
    let result = Cluster {
        options,
        sqlite_per_second: sqlite,
        one_node_per_second: one,
        three_nodes_per_second: three,
        raw_each_commit_per_second: each,
        raw_batched_per_second: batched,
        latency,
        failover,
    };
    let data = json!(result);
    Ok((Outcome { scenario: "cluster".into(), rows, data }, result))
}

/// PagerDuty-sized rows inserted into PostgreSQL with the nodes' durability (synchronous
/// commits): (a commit per row, `batch` rows per commit), rows per second.
fn raw_postgres(url: &str, seconds: f64, batch: usize) -> Result<(f64, f64)> {
    let mut db = postgres::Client::connect(url, postgres::NoTls)?;
    db.batch_execute(
        "CREATE TABLE raw_events (id BIGSERIAL PRIMARY KEY, received_at TEXT, body TEXT)",
    )?;
    let body = json!({"routing_key": "k".repeat(32), "event_action": "trigger", "dedup_key": "pd-00-000000",
        "payload": {"summary": "pd-00-000000", "source": "reveille-bench", "severity": "critical"}})
    .to_string();
    let mut rate = |per_commit: usize| -> Result<f64> {
        let started = Instant::now();
        let mut inserted = 0u64;
        while started.elapsed().as_secs_f64() < seconds {
            let mut tx = db.transaction()?;
            for _ in 0..per_commit {
                let at = jiff::Timestamp::now().to_string();
                tx.execute(
                    "INSERT INTO raw_events (received_at, body) VALUES ($1, $2)",
                    &[&at, &body],
                )?;
            }
            tx.commit()?;
            inserted += per_commit as u64;
        }
        Ok(inserted as f64 / started.elapsed().as_secs_f64())
    };
    Ok((rate(1)?, rate(batch)?))
}

/// Each device's pages, by dedup key, with when they arrived.
type Arrivals = Arc<Mutex<HashMap<usize, Vec<(String, Instant)>>>>;

/// Devices follow one user through the balancer of 3 nodes; a page goes out every 100 ms; the
/// first node is SIGKILLed. For each device that was on it: seconds until a page sent after the
/// kill reached it.
async fn failover(devices: usize) -> Result<Spread> {
    let mut site = Site::start_on(1, Db::Postgres(3)).await?;
    let arrivals: Arrivals = Arc::default();
    let mut tasks = tokio::task::JoinSet::new();
    for device in 0..devices {
        tasks.spawn(follow(
            site.url().to_owned(),
            site.tokens[0].clone(),
            device,
            arrivals.clone(),
        ));
    }
    // Every device connected, then which ones the first node holds.
    let http = reqwest::Client::new();
    page(&http, site.url(), &site.keys[0], "ready").await?;
    wait_until(|| arrivals.lock().unwrap().values().filter(|a| !a.is_empty()).count() == devices)
        .await?;
    let on_dead = connections_of(&site.server.url).await?;
    ensure!(on_dead > 0, "no device on the node to kill");
    let killed = Instant::now();
    site.server.kill();
    let mut sent = 0;
    let outcome = loop {
        let dedup = format!("after-{sent}");
        // Through the balancer: a sender retries what a dead node refused.
        if page(&http, site.url(), &site.keys[0], &dedup).await.is_ok() {
            sent += 1;
        }
        let times: Vec<Duration> = arrivals
            .lock()
            .unwrap()
            .values()
            .filter_map(|seen| {
                seen.iter().find(|(key, _)| key.starts_with("after-")).map(|(_, at)| *at - killed)
            })
            .collect();
        if times.len() == devices {
            break Spread::of(&times);
        }
        ensure!(
            killed.elapsed() < Duration::from_secs(30),
            "devices still without a page 30 s after the kill"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    tasks.abort_all();
    Ok(outcome)
}

/// Open feed connections of one node, from its metrics.
async fn connections_of(node: &str) -> Result<usize> {
    let text = reqwest::get(format!("{node}/metrics")).await?.text().await?;
    let line = text.lines().find(|l| l.starts_with("reveille_feed_connections ")).unwrap_or("");
    Ok(line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).unwrap_or(0))
}

async fn wait_until(mut done: impl FnMut() -> bool) -> Result<()> {
    let started = Instant::now();
    while !done() {
        ensure!(started.elapsed() < Duration::from_secs(30), "devices did not connect");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// A device: follows the feed, resuming with `Last-Event-ID` after every drop, recording each
/// page's dedup key and arrival.
async fn follow(url: String, token: String, device: usize, arrivals: Arrivals) {
    arrivals.lock().unwrap().entry(device).or_default();
    let http = reqwest::Client::new();
    let mut last: Option<String> = None;
    loop {
        let mut request = http.get(format!("{url}/api/v1/feed")).bearer_auth(&token);
        if let Some(id) = &last {
            request = request.header("last-event-id", id.as_str());
        }
        if let Ok(response) = request.send().await.and_then(|r| r.error_for_status()) {
            let mut body = response.bytes_stream();
            let mut parser = Parser::default();
            while let Ok(Some(Ok(chunk))) =
                tokio::time::timeout(Duration::from_secs(45), body.next()).await
            {
                for event in parser.push(&chunk) {
                    if event.event != "page" {
                        continue;
                    }
                    let entry: serde_json::Value =
                        serde_json::from_str(&event.data).unwrap_or_default();
                    let key =
                        entry["incident"]["dedup_key"].as_str().unwrap_or_default().to_owned();
                    last = event.id.clone();
                    arrivals.lock().unwrap().entry(device).or_default().push((key, Instant::now()));
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
