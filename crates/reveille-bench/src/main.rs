//! `reveille-bench`: runs benchmark scenarios against real `reveille serve` processes, prints a
//! table and writes the full results as JSON.
//!
//! Build both binaries in release first: `cargo build --release -p reveille-cli -p reveille-bench`
//! (or use `scripts/bench.sh`, which does).

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, ValueEnum};
use reveille_bench::report::{Machine, Outcome, table};
use reveille_bench::{calls, channels, cluster, console, desktop, fanout, ingest, latency, storm};

#[derive(Parser)]
#[command(about = "Measures Reveille: latency, durable ingest, fan-out, storms, desktop footprint")]
struct Args {
    /// Scenarios to run, in order.
    #[arg(required = true, value_enum)]
    scenarios: Vec<Scenario>,
    /// The small form each scenario has for CI: checks correctness, numbers mean little.
    #[arg(long)]
    quick: bool,
    /// Connected subscribers (latency, fan-out).
    #[arg(long)]
    subscribers: Option<usize>,
    /// Concurrent senders (ingest).
    #[arg(long)]
    concurrency: Option<usize>,
    /// Seconds of sustained ingest (ingest) or of idle watching (desktop).
    #[arg(long)]
    seconds: Option<f64>,
    /// Where the JSON results go.
    #[arg(long, default_value = "target/bench/results.json")]
    json: PathBuf,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    Latency,
    Ingest,
    Fanout,
    Storm,
    Desktop,
    /// Several nodes on PostgreSQL beside SQLite: ingest, latency, failover.
    Cluster,
    /// Email and webhooks under load: ingest with their servers hung, a storm's mails.
    Channels,
    /// The web console's incident list over 100,000 incidents.
    Console,
    /// 100 people called (Kamailio, SIPp phones) and texted (gammu-smsd) at once.
    Calls,
    /// Every scenario but desktop (which needs scripts/desktop-session.sh) and cluster.
    Server,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let mut outcomes: Vec<Outcome> = Vec::new();
    let mut scenarios = Vec::new();
    for s in &args.scenarios {
        match s {
            Scenario::Server => scenarios.extend([
                Scenario::Latency,
                Scenario::Ingest,
                Scenario::Fanout,
                Scenario::Storm,
            ]),
            other => scenarios.push(*other),
        }
    }
    for scenario in scenarios {
        let outcome = match scenario {
            Scenario::Latency => {
                let mut o =
                    if args.quick { latency::Options::quick() } else { latency::Options::full() };
                o.subscribers = args.subscribers.unwrap_or(o.subscribers);
                latency::run(o).await?.0
            }
            Scenario::Ingest => {
                let mut o =
                    if args.quick { ingest::Options::quick() } else { ingest::Options::full() };
                o.seconds = args.seconds.unwrap_or(o.seconds);
                o.concurrency = args.concurrency.unwrap_or(o.concurrency);
                ingest::run(o).await?.0
            }
            Scenario::Fanout => {
                let mut o =
                    if args.quick { fanout::Options::quick() } else { fanout::Options::full() };
                o.subscribers = args.subscribers.unwrap_or(o.subscribers);
                fanout::run(o).await?.0
            }
            Scenario::Storm => {
                let o = if args.quick { storm::Options::quick() } else { storm::Options::full() };
                storm::run(o).await?.0
            }
            Scenario::Desktop => {
                let mut o =
                    if args.quick { desktop::Options::quick() } else { desktop::Options::full() };
                o.idle_seconds = args.seconds.unwrap_or(o.idle_seconds);
                desktop::run(o).await?.0
            }
            Scenario::Cluster => {
                let mut o =
                    if args.quick { cluster::Options::quick() } else { cluster::Options::full() };
                o.ingest.seconds = args.seconds.unwrap_or(o.ingest.seconds);
                o.ingest.concurrency = args.concurrency.unwrap_or(o.ingest.concurrency);
                cluster::run(o).await?.0
            }
            Scenario::Channels => {
                let mut o =
                    if args.quick { channels::Options::quick() } else { channels::Options::full() };
                o.ingest.seconds = args.seconds.unwrap_or(o.ingest.seconds);
                channels::run(o).await?.0
            }
            Scenario::Console => {
                let o =
                    if args.quick { console::Options::quick() } else { console::Options::full() };
                console::run(o).await?.0
            }
            Scenario::Calls => {
                let o = if args.quick { calls::Options::quick() } else { calls::Options::full() };
                calls::run(o).await?.0
            }
            Scenario::Server => unreachable!("expanded above"),
        };
        print!("{}", table(std::slice::from_ref(&outcome)));
        outcomes.push(outcome);
    }
    println!("\n{}", table(&outcomes));
    if let Some(dir) = args.json.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let results = serde_json::json!({"machine": Machine::this(), "outcomes": outcomes});
    std::fs::write(&args.json, serde_json::to_string_pretty(&results)?)?;
    println!("results written to {}", args.json.display());
    Ok(())
}
