//! Fan-out: `subscribers` devices of one user, over SSE and over ntfy WebSockets. Memory per idle
//! connection is the server's RSS growth divided by the connections opened; then pages are sent
//! one at a time and the time for each to reach every device is recorded.

use std::time::{Duration, Instant};

use anyhow::Result;
use serde::Serialize;
use serde_json::json;

use crate::feeds::{Swarm, Transport};
use crate::report::{Outcome, Row, kib, ms};
use crate::site::Site;
use crate::stats::Spread;
use crate::{arrivals, page, procs};

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Options {
    pub subscribers: usize,
    pub pages: usize,
}

impl Options {
    pub fn full() -> Options {
        Options { subscribers: 10_000, pages: 100 }
    }
    pub fn quick() -> Options {
        Options { subscribers: 50, pages: 3 }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Fanout {
    pub transport: &'static str,
    pub subscribers: usize,
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
    pub kib_per_subscriber: f64,
    /// Page → arrival at each device, over every page and device.
    pub arrival: Spread,
    /// Page → arrival at the last device, per page.
    pub reach_all: Spread,
    pub deliveries: usize,
    /// CPU used while the pages went out, by the server and by the benchmark's own subscribers
    /// (on the same 2 cores), in percent of one core's time over that phase.
    pub server_cpu_percent: f64,
    pub subscribers_cpu_percent: f64,
}

pub async fn run(options: Options) -> Result<(Outcome, Vec<Fanout>)> {
    let mut rows = Vec::new();
    let mut results = Vec::new();
    for transport in [Transport::Sse, Transport::NtfyWs] {
        let result = one(transport, options).await?;
        let name = transport.name();
        let per = result.kib_per_subscriber;
        rows.push(Row::info(format!("{name}: subscribers"), result.subscribers.to_string()));
        rows.push(Row::goal(
            format!("{name}: server memory per idle subscriber"),
            kib(per),
            "≤ 16 KiB",
            per <= 16.0,
        ));
        let p99 = result.reach_all.p99;
        rows.push(Row::goal(
            format!("{name}: page → all devices, p99 over pages"),
            ms(p99),
            "≤ 100 ms",
            p99 <= 100.0,
        ));
        rows.push(Row::info(
            format!("{name}: page → each device, p50 / p99"),
            format!("{} / {}", ms(result.arrival.p50), ms(result.arrival.p99)),
        ));
        let cpu =
            format!("{:.0} % / {:.0} %", result.server_cpu_percent, result.subscribers_cpu_percent);
        rows.push(Row::info(format!("{name}: CPU of server / subscribers (of one core)"), cpu));
        results.push(result);
    }
    let data = json!({"options": options, "transports": results});
    Ok((Outcome { scenario: "fanout".into(), rows, data }, results))
}

async fn one(transport: Transport, Options { subscribers, pages }: Options) -> Result<Fanout> {
    let site = Site::start(1).await?;
    let credentials = vec![(site.tokens[0].clone(), site.topics[0].clone())];
    let http = reqwest::Client::new();
    // One page first, so what every server allocates once is in the baseline.
    page(&http, site.url(), &site.keys[0], "warm-up").await?;
    let rss_before_kib = procs::rss_kib(site.pid())?;
    let mut swarm = Swarm::open(transport, site.url(), &credentials, subscribers, |_| 0).await?;
    let rss_after_kib = procs::rss_kib(site.pid())?;
    let mut arrival = Vec::with_capacity(pages * subscribers);
    let mut reach_all = Vec::with_capacity(pages);
    let cpu = || {
        (
            procs::cpu_ticks(site.pid()).unwrap_or(0),
            procs::cpu_ticks(std::process::id()).unwrap_or(0),
        )
    };
    let (server_before, own_before) = cpu();
    let phase = Instant::now();
    for i in 0..pages {
        let dedup = format!("fan-{i:07}");
        let sent = Instant::now();
        page(&http, site.url(), &site.keys[0], &dedup).await?;
        let got = arrivals(&mut swarm, &dedup, subscribers, Duration::from_secs(30)).await?;
        let times: Vec<Duration> = got.values().map(|at| at.duration_since(sent)).collect();
        reach_all.extend(times.iter().max().copied());
        arrival.extend(times);
    }
    let (server_after, own_after) = cpu();
    let seconds = phase.elapsed().as_secs_f64();
    let percent = |ticks: u64| 100.0 * ticks as f64 / procs::ticks_per_second() as f64 / seconds;
    let growth = rss_after_kib.saturating_sub(rss_before_kib) as f64;
    Ok(Fanout {
        transport: transport.name(),
        subscribers,
        rss_before_kib,
        rss_after_kib,
        kib_per_subscriber: growth / subscribers as f64,
        arrival: Spread::of(&arrival),
        reach_all: Spread::of(&reach_all),
        deliveries: arrival.len(),
        server_cpu_percent: percent(server_after.saturating_sub(server_before)),
        subscribers_cpu_percent: percent(own_after.saturating_sub(own_before)),
    })
}
