//! Reveille's benchmarks: each scenario starts a real `reveille serve` on a fresh database,
//! drives it over loopback HTTP the way senders and devices do, and returns its numbers as an
//! [`report::Outcome`] plus a result struct that the quick tests check for correctness (every
//! page delivered, nothing lost) — the quick forms never assert timings.
//!
//! The `reveille` binary of the same build must exist (`cargo build [--release] -p reveille-cli`).

pub mod calls;
pub mod channels;
pub mod cluster;
pub mod console;
pub mod desktop;
pub mod fanout;
pub mod feeds;
pub mod ingest;
pub mod latency;
pub mod procs;
pub mod report;
pub mod site;
pub mod stats;
pub mod storm;

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::json;

use crate::feeds::Swarm;

/// Sends a PagerDuty v2 trigger whose summary is its dedup key; Ok once the server answered 202.
pub async fn page(http: &reqwest::Client, url: &str, key: &str, dedup: &str) -> Result<()> {
    let body = json!({"routing_key": key, "event_action": "trigger", "dedup_key": dedup,
        "payload": {"summary": dedup, "source": "reveille-bench", "severity": "critical"}});
    let response = http.post(format!("{url}/v2/enqueue")).json(&body).send().await?;
    if response.status() != 202 {
        bail!("PagerDuty ingest answered {}: {}", response.status(), response.text().await?);
    }
    Ok(())
}

/// Waits until `expected` subscribers have seen page `dedup`; returns when each saw it.
/// Anything else that arrives meanwhile is an error: benchmarks send one page at a time.
pub async fn arrivals(
    swarm: &mut Swarm,
    dedup: &str,
    expected: usize,
    patience: Duration,
) -> Result<HashMap<usize, std::time::Instant>> {
    let mut got = HashMap::with_capacity(expected);
    let deadline = tokio::time::Instant::now() + patience;
    while got.len() < expected {
        let seen = tokio::time::timeout_at(deadline, swarm.seen.recv())
            .await
            .with_context(|| {
                format!(
                    "page {dedup} reached {} of {expected} subscribers in {patience:?}",
                    got.len()
                )
            })?
            .context("every subscriber has gone")?;
        if seen.key != dedup {
            bail!("subscriber {} got {:?} while waiting for {dedup}", seen.subscriber, seen.key);
        }
        if got.insert(seen.subscriber, seen.at).is_some() {
            bail!("subscriber {} got page {dedup} twice", seen.subscriber);
        }
    }
    Ok(got)
}

/// An Alertmanager webhook (version 4) notification carrying one firing alert per instance name.
pub fn alertmanager_body(group: &str, instances: &[String]) -> serde_json::Value {
    let alerts: Vec<serde_json::Value> = instances
        .iter()
        .map(|instance| {
            json!({"status": "firing",
                "labels": {"alertname": group, "instance": instance, "severity": "critical"},
                "annotations": {"summary": format!("{group} on {instance}")},
                "startsAt": "2026-11-24T03:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus.example/graph", "fingerprint": instance})
        })
        .collect();
    json!({"version": "4", "groupKey": format!("{{}}:{{alertname=\"{group}\"}}"),
        "truncatedAlerts": 0, "status": "firing", "receiver": "reveille",
        "groupLabels": {"alertname": group}, "commonLabels": {"alertname": group},
        "commonAnnotations": {}, "externalURL": "http://alertmanager.example:9093",
        "alerts": alerts})
}

/// Posts an Alertmanager notification; Ok once the server answered 2xx.
pub async fn notify_alertmanager(
    http: &reqwest::Client,
    url: &str,
    key: &str,
    body: &serde_json::Value,
) -> Result<()> {
    let response = http.post(format!("{url}/api/v1/alertmanager/{key}")).json(body).send().await?;
    if !response.status().is_success() {
        bail!("Alertmanager ingest answered {}: {}", response.status(), response.text().await?);
    }
    Ok(())
}
