//! The web console's incident list with a big history: 100,000 incidents (Alertmanager storms of
//! distinct alerts, most of them then resolved), then `GET /api/v1/incidents` as the console asks
//! for it (a page of 50: open ones, everything, resolved ones, the caller's, low urgency), timed
//! one request after another.

use std::time::Instant;

use anyhow::{Result, ensure};
use serde::Serialize;
use serde_json::json;

use crate::report::{Outcome, Row, ms};
use crate::site::Site;
use crate::stats::Spread;
use crate::{alertmanager_body, notify_alertmanager};

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Options {
    pub incidents: usize,
    /// Requests timed per kind of list.
    pub requests: usize,
}

impl Options {
    pub fn full() -> Options {
        Options { incidents: 100_000, requests: 1_000 }
    }
    pub fn quick() -> Options {
        Options { incidents: 2_000, requests: 50 }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Console {
    pub options: Options,
    pub seed_seconds: f64,
    pub lists: Vec<(String, Spread)>,
}

pub async fn run(options: Options) -> Result<(Outcome, Console)> {
    let site = Site::start(1).await?;
    let http = reqwest::Client::new();
    let started = Instant::now();
    let batch = 500;
    let instances: Vec<String> = (0..options.incidents).map(|a| format!("host-{a:06}")).collect();
    for (n, chunk) in instances.chunks(batch).enumerate() {
        let body = alertmanager_body(&format!("History{n}"), chunk);
        notify_alertmanager(&http, site.url(), &site.keys[0], &body).await?;
    }
    // Resolve all but the newest 1% straight in the database: history, as a long-lived server has.
    let open = (options.incidents / 100) as i64;
    let db = rusqlite::Connection::open(site.dir().join("reveille.db"))?;
    db.execute(
        "UPDATE incidents SET state = 'resolved',
            body = json_set(body, '$.state', 'resolved')
         WHERE id <= (SELECT max(id) FROM incidents) - ?1",
        [open],
    )?;
    drop(db);
    let seed_seconds = started.elapsed().as_secs_f64();
    let total = site.count("SELECT count(*) FROM incidents")?;
    ensure!(total == options.incidents as u64, "{total} incidents, not {}", options.incidents);

    // Each list fills its page of 50 but the open one (when fewer are open) and the low-urgency
    // one (every alert here is critical).
    let expect = |name: &str| match name {
        "open" => 50.min(open as usize),
        n if n.starts_with("low urgency") => 0,
        _ => 50,
    };
    let mut lists = Vec::new();
    for (name, query) in [
        ("open", "limit=50"),
        ("all", "state=all&limit=50"),
        ("resolved, page 10", "state=resolved&limit=50&before=__BEFORE__"),
        ("mine", "mine=true&state=all&limit=50"),
        ("low urgency (none match)", "urgency=low&state=all&limit=50"),
    ] {
        let before = (options.incidents / 2).to_string();
        let url =
            format!("{}/api/v1/incidents?{}", site.url(), query.replace("__BEFORE__", &before));
        let mut samples = Vec::with_capacity(options.requests);
        for _ in 0..options.requests {
            let t = Instant::now();
            let response = http.get(&url).bearer_auth(&site.tokens[0]).send().await?;
            ensure!(response.status().is_success(), "{url}: {}", response.status());
            let body: serde_json::Value = response.json().await?;
            samples.push(t.elapsed());
            let rows = body["incidents"].as_array().map_or(0, Vec::len);
            ensure!(rows == expect(name), "{url}: {rows} incidents, not {}", expect(name));
        }
        lists.push((name.to_owned(), Spread::of(&samples)));
    }
    drop(site);

    let mut rows = vec![Row::info(
        "history",
        format!("{} incidents, {open} open (seeded in {seed_seconds:.0} s)", options.incidents),
    )];
    for (name, spread) in &lists {
        rows.push(Row::goal(
            format!("GET /api/v1/incidents, {name}: p50 {}", ms(spread.p50)),
            format!("p99 {}", ms(spread.p99)),
            "p99 ≤ 50 ms",
            spread.p99 <= 50.0,
        ));
    }
    let result = Console { options, seed_seconds, lists };
    Ok((Outcome { scenario: "console".into(), rows, data: json!(result) }, result))
}
