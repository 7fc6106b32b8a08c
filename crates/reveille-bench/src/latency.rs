//! Ingest → subscriber frame: with `subscribers` devices connected (spread over `users` users),
//! pages are sent one at a time, each to one user's service, and every device of that user
//! records when the page arrived. The time runs from just before the PagerDuty request is sent
//! (so the durable commit is inside it) to the arrival of the parsed SSE frame.

use std::time::{Duration, Instant};

use anyhow::Result;
use serde::Serialize;
use serde_json::json;

use crate::feeds::{Swarm, Transport};
use crate::report::{Outcome, Row, ms};
use crate::site::Site;
use crate::stats::Spread;
use crate::{arrivals, page};

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Options {
    pub subscribers: usize,
    pub users: usize,
    pub pages: usize,
}

impl Options {
    pub fn full() -> Options {
        Options { subscribers: 1000, users: 100, pages: 2000 }
    }
    pub fn quick() -> Options {
        Options { subscribers: 20, users: 4, pages: 40 }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub options: Options,
    pub spread: Spread,
    /// Arrivals recorded: every device of the paged user, for every page.
    pub deliveries: usize,
}

pub async fn run(options: Options) -> Result<(Outcome, Latency)> {
    let site = Site::start(options.users).await?;
    let spread = measure(&site, options).await?;
    let Options { subscribers, users, pages } = options;
    let rows = vec![
        Row::info("subscribers connected (users)", format!("{subscribers} ({users})")),
        Row::info("pages (deliveries)", format!("{pages} ({})", spread.samples)),
        Row::info("ingest → frame p50", ms(spread.p50)),
        Row::info("ingest → frame p95", ms(spread.p95)),
        Row::goal("ingest → frame p99", ms(spread.p99), "≤ 5 ms", spread.p99 <= 5.0),
        Row::info("ingest → frame max", ms(spread.max)),
    ];
    let result = Latency { options, spread, deliveries: spread.samples };
    let data = json!(result);
    Ok((Outcome { scenario: "latency".into(), rows, data }, result))
}

/// Pages sent one at a time to `site` (which has `options.users` users), each timed until every
/// device of its user has it.
pub async fn measure(site: &Site, options: Options) -> Result<Spread> {
    let Options { subscribers, users, pages } = options;
    let credentials: Vec<(String, String)> =
        site.tokens.iter().cloned().zip(site.topics.iter().cloned()).collect();
    let mut swarm =
        Swarm::open(Transport::Sse, site.url(), &credentials, subscribers, |s| s % users).await?;
    let devices = |user: usize| (0..subscribers).filter(|s| s % users == user).count();
    let http = reqwest::Client::new();
    let warm_up = users.min(pages);
    let mut samples = Vec::with_capacity(pages * subscribers / users);
    for i in 0..warm_up + pages {
        let user = i % users;
        let dedup = format!("lat-{i:07}");
        let sent = Instant::now();
        page(&http, site.url(), &site.keys[user], &dedup).await?;
        let got = arrivals(&mut swarm, &dedup, devices(user), Duration::from_secs(10)).await?;
        if i >= warm_up {
            samples.extend(got.values().map(|at| at.duration_since(sent)));
        }
    }
    Ok(Spread::of(&samples))
}
