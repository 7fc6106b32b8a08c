//! An alert storm: `alerts` alerts in `seconds`, as Alertmanager notifications of `batch` alerts,
//! over `distinct` fingerprints (the later notifications repeat earlier alerts, as Alertmanager
//! does when it re-notifies). A desktop follows the paged user's feed with the real subscriber
//! (`reveille-client`), and a device that counts what it is asked to do says what the person
//! would have lived through: rings, notifications, alarm windows.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use reveille_client::conn::Policy;
use reveille_client::outbox::Request;
use reveille_client::{Config, Device, Sound, Subscriber};
use reveille_protocol::Incident;
use serde::Serialize;
use serde_json::json;

use crate::report::{Outcome, Row};
use crate::site::Site;
use crate::{alertmanager_body, notify_alertmanager};

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Options {
    pub alerts: usize,
    pub distinct: usize,
    pub batch: usize,
    pub seconds: f64,
}

impl Options {
    pub fn full() -> Options {
        Options { alerts: 10_000, distinct: 5_000, batch: 100, seconds: 1.0 }
    }
    pub fn quick() -> Options {
        Options { alerts: 400, distinct: 200, batch: 20, seconds: 0.2 }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Storm {
    pub options: Options,
    /// Alerts the server answered 2xx for.
    pub accepted: usize,
    /// Alerts kept as events in the database (repeats included).
    pub stored: u64,
    /// Incidents in the database afterwards (expected: one per distinct fingerprint).
    pub incidents: u64,
    /// Incidents acknowledged on the server after the desktop acknowledged everything.
    pub acknowledged: u64,
    /// Acknowledge everything on the desktop → silent there, → every ack on the server.
    pub silent_seconds: f64,
    pub delivered_seconds: f64,
    /// Seconds from the first notification sent to the last page on the desktop.
    pub drain_seconds: f64,
    /// Seconds from the first notification sent to the last one answered.
    pub accepted_seconds: f64,
    pub desktop: Lived,
}

/// What the person at the desktop went through.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Lived {
    pub rings: usize,
    pub silences: usize,
    pub notifications: usize,
    pub alarm_windows: usize,
    /// Updates of the one summary notification standing for pages without a window.
    pub summary_updates: usize,
    /// Incidents ringing on the desktop at the end.
    pub incidents: usize,
}

/// A device that only counts.
#[derive(Default)]
struct Counter {
    lived: Mutex<Lived>,
    silenced: Mutex<Option<Instant>>,
}

impl Device for Counter {
    fn ring(&self) {
        self.lived.lock().unwrap().rings += 1;
    }
    fn silence(&self) {
        self.lived.lock().unwrap().silences += 1;
        *self.silenced.lock().unwrap() = Some(Instant::now());
    }
    fn notify(&self, _: &Incident) {
        self.lived.lock().unwrap().notifications += 1;
    }
    fn show(&self, _: &Incident) {
        self.lived.lock().unwrap().alarm_windows += 1;
    }
    fn withdraw(&self, _: i64) {}
    fn waiting(&self, _: usize) {
        self.lived.lock().unwrap().summary_updates += 1;
    }
    fn feed_lost(&self, _: bool) {}
    fn sound(&self) -> Sound {
        Sound { volume: Some(1.0), silent: false, output: Some("benchmark".into()) }
    }
}

pub async fn run(options: Options) -> Result<(Outcome, Storm)> {
    let Options { alerts, distinct, batch, seconds } = options;
    let site = Site::start(1).await?;
    let device = Arc::new(Counter::default());
    let config = Config {
        server: site.url().to_owned(),
        token: site.tokens[0].clone(),
        device: "bench-laptop".into(),
        outbox: site.dir().join("outbox.json"),
        policy: Policy::default(),
        agent: concat!("reveille-desktop/", env!("CARGO_PKG_VERSION")).into(),
        receipts: true,
        resume: None,
    };
    let desktop = Subscriber::start(config, device.clone())?;
    let mut status = desktop.status.clone();
    tokio::time::timeout(Duration::from_secs(10), status.wait_for(|s| s.connected))
        .await
        .context("the desktop never connected")??;

    let http = reqwest::Client::new();
    let notifications: Vec<Vec<String>> = (0..alerts)
        .map(|a| format!("i{:07}", a % distinct))
        .collect::<Vec<_>>()
        .chunks(batch)
        .map(<[String]>::to_vec)
        .collect();
    let every = Duration::from_secs_f64(seconds / notifications.len() as f64);
    let mut pace = tokio::time::interval(every);
    let started = Instant::now();
    let mut senders = tokio::task::JoinSet::new();
    for (n, instances) in notifications.into_iter().enumerate() {
        pace.tick().await;
        let (http, url, key) = (http.clone(), site.url().to_owned(), site.keys[0].clone());
        senders.spawn(async move {
            let body = alertmanager_body(&format!("Storm{}", n % 7), &instances);
            notify_alertmanager(&http, &url, &key, &body).await.map(|()| instances.len())
        });
    }
    let mut accepted = 0;
    while let Some(done) = senders.join_next().await {
        accepted += done??;
    }
    let accepted_seconds = started.elapsed().as_secs_f64();
    // Drained when the desktop rings for every incident of the storm.
    let drained = tokio::time::timeout(
        Duration::from_secs(120),
        status.wait_for(|s| s.ringing_total >= distinct),
    )
    .await;
    let drained = drained.is_ok_and(|waited| waited.is_ok());
    let heard = status.borrow().ringing_total;
    ensure!(drained, "the desktop heard of {heard} of {distinct} incidents");
    let drain_seconds = started.elapsed().as_secs_f64();
    let incidents = site.count("SELECT count(*) FROM incidents")?;
    // Every alert, repeats included, is kept as an event: none may be missing.
    let stored = site.count("SELECT count(*) FROM events")?;
    let mut lived = device.lived.lock().unwrap().clone();
    lived.incidents = heard;

    // The person acknowledges the whole storm from the tray: silent at once, every ack delivered.
    let acked = Instant::now();
    desktop.act_all(Request::Ack).await;
    tokio::time::timeout(Duration::from_secs(60), status.wait_for(|s| s.ringing_total == 0))
        .await
        .context("acknowledging everything never silenced the desktop")??;
    let silenced = device.silenced.lock().unwrap().context("the alarm was never silenced")?;
    let silent_seconds = silenced.duration_since(acked).as_secs_f64();
    // The outbox empties as the server answers each ack, which it does after committing it.
    tokio::time::timeout(Duration::from_secs(120), status.wait_for(|s| s.pending == 0))
        .await
        .context("the acknowledgements never all reached the server")??;
    let delivered_seconds = acked.elapsed().as_secs_f64();
    let acknowledged = site.count("SELECT count(*) FROM incidents WHERE state = 'acknowledged'")?;

    let rows = vec![
        Row::info(
            "alerts sent (notifications, seconds)",
            format!("{alerts} ({}, {seconds} s)", alerts.div_ceil(batch)),
        ),
        Row::goal(
            "alerts lost (accepted, stored)",
            format!("{} ({accepted}, {stored})", alerts as u64 - stored.min(alerts as u64)),
            "0",
            accepted == alerts && stored == alerts as u64,
        ),
        Row::goal(
            "incidents (distinct fingerprints)",
            format!("{incidents} ({distinct})"),
            "equal",
            incidents == distinct as u64,
        ),
        Row::info("first sent → last accepted", format!("{accepted_seconds:.2} s")),
        Row::info("first sent → last page on the desktop", format!("{drain_seconds:.2} s")),
        Row::info("desktop: times the alarm started", lived.rings.to_string()),
        Row::info("desktop: notifications shown", lived.notifications.to_string()),
        Row::info("desktop: alarm windows opened", lived.alarm_windows.to_string()),
        Row::info("desktop: storm summary updates", lived.summary_updates.to_string()),
        Row::info(
            "desktop: acknowledge all → silent",
            format!("{:.0} ms", silent_seconds * 1000.0),
        ),
        Row::goal(
            "desktop: acknowledge all → every ack on the server",
            format!("{delivered_seconds:.2} s ({acknowledged})"),
            "all, ≤ 1 s",
            acknowledged == distinct as u64 && delivered_seconds <= 1.0,
        ),
    ];
    let result = Storm {
        options,
        accepted,
        stored,
        incidents,
        drain_seconds,
        accepted_seconds,
        desktop: lived,
        acknowledged,
        silent_seconds,
        delivered_seconds,
    };
    let data = json!(result);
    Ok((Outcome { scenario: "storm".into(), rows, data }, result))
}
