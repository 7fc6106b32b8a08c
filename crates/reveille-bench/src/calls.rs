//! Calls and texts at once: `calls` people paged at the same moment, each texted through the real
//! gammu-smsd at once and called 3 s later through a real Kamailio (digest auth) by the server's
//! own SIP line, every phone a SIPp phone that answers after a second and presses 4. Measured by the server
//! (`reveille_phone_phase_seconds`): page → phone ringing (the 180), answer → first audio
//! packet, key → incident acknowledged, and a text's step due → handed to gammu.

use std::time::Duration;

use anyhow::{Result, ensure};
use serde::Serialize;
use serde_json::json;

use crate::report::{Outcome, Row};
use crate::site::{Db, Site};
use reveille_tests::telephony::{Gammu, Kamailio, LINE_PASSWORD, LINE_USER, Sipp};

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Options {
    pub calls: usize,
}

impl Options {
    pub fn full() -> Options {
        Options { calls: 100 }
    }
    pub fn quick() -> Options {
        Options { calls: 4 }
    }
}

/// The p99 of one phase, as the upper bound of its histogram bucket, and how many there were.
#[derive(Debug, Clone, Serialize)]
pub struct Phase {
    pub count: u64,
    pub p99_ms: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Calls {
    pub options: Options,
    pub ringing: Phase,
    pub first_audio: Phase,
    pub key: Phase,
    pub sms_handoff: Phase,
    /// Sent → accepted (2xx, durable), over the pages sent at once.
    pub accepted_p99_ms: f64,
    /// Pages sent → each text's file in gammu's folders, ingest included.
    pub page_to_text_p99_ms: Option<f64>,
    pub seconds: f64,
}

/// A phase's count and p99 from the server's metrics text.
fn phase(metrics: &str, name: &str) -> Phase {
    let label = format!("phase=\"{name}\"");
    let lines: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("reveille_phone_phase_seconds") && l.contains(&label))
        .collect();
    let count = lines
        .iter()
        .find(|l| l.starts_with("reveille_phone_phase_seconds_count"))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0);
    let mut buckets: Vec<(f64, u64)> = lines
        .iter()
        .filter(|l| l.starts_with("reveille_phone_phase_seconds_bucket"))
        .filter_map(|l| {
            let le = l.split("le=\"").nth(1)?.split('"').next()?;
            let le = if le == "+Inf" { f64::INFINITY } else { le.parse().ok()? };
            Some((le, l.rsplit(' ').next()?.parse().ok()?))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let wanted = (count as f64 * 0.99).ceil() as u64;
    let p99 = buckets.iter().find(|(_, n)| *n >= wanted.max(1)).map(|(le, _)| le * 1000.0);
    Phase { count, p99_ms: p99.filter(|p| p.is_finite()) }
}

pub async fn run(options: Options) -> Result<(Outcome, Calls)> {
    ensure!(
        reveille_tests::telephony::installed() && Gammu::installed(),
        "the telephony programs are missing"
    );
    let kamailio = Kamailio::start();
    let phones =
        Sipp::phone("phone.xml", &[("@KEY@", "4"), ("@PAUSE@", "500")], options.calls as u32);
    let gammu = Gammu::start();
    let secrets = tempfile::tempdir()?;
    let password = secrets.path().join("sip.password");
    std::fs::write(&password, LINE_PASSWORD)?;
    let extra = format!(
        "\n[sip]\nserver = \"{}\"\nuser = \"{LINE_USER}\"\npassword_file = \"{}\"\nfrom = \"sip:{LINE_USER}@reveille.test\"\n\
         listen = \"127.0.0.1:0\"\n\n[sms]\noutbox = \"{}\"\ninbox = \"{}\"\n",
        kamailio.server("udp"),
        password.display(),
        gammu.path("outbox"),
        gammu.path("inbox"),
    );
    let number = phones.number();
    // The text first: once the call's 4 acknowledged a page, its text would rightly not go.
    let person =
        |_| format!("phone = \"{number}\"\n[users.notify]\nhigh = [\"sms\", \"call after 3s\"]\n");
    let site = Site::start_people(options.calls, Db::Sqlite, &extra, person).await?;
    let http = reqwest::Client::new();
    let started = std::time::Instant::now();
    let sent_at = std::time::SystemTime::now();
    let pages = (0..options.calls).map(|i| {
        let (http, url, key) = (http.clone(), site.url().to_owned(), site.keys[i].clone());
        async move {
            let body = json!({"summary": format!("Disk full on db-{i}"), "dedup_key": format!("disk-{i}")});
            let sent = std::time::Instant::now();
            let answer =
                http.post(format!("{url}/api/v1/events")).bearer_auth(key).json(&body).send().await;
            answer.map(|a| (a.status(), sent.elapsed()))
        }
    });
    // How long the pages took to be accepted (durable): the texts' clock starts at the page.
    let mut accepted = Vec::new();
    for sent in futures_util::future::join_all(pages).await {
        let (status, took) = sent?;
        ensure!(status.is_success(), "a page was refused");
        accepted.push(took.as_secs_f64() * 1000.0);
    }
    accepted.sort_by(f64::total_cmp);
    let accepted_p99 = accepted[(accepted.len() * 99).div_ceil(100) - 1];
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    let sql = "SELECT count(*) FROM incidents WHERE state = 'acknowledged'";
    while site.count(sql)? < options.calls as u64 {
        ensure!(
            std::time::Instant::now() < deadline,
            "{} of {} calls acknowledged",
            site.count(sql)?,
            options.calls
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    // Handed to gammu: in its outbox still, or sent (the dummy modem sends about one a second).
    let handed = |dir: &str| {
        std::fs::read_dir(gammu.path(dir)).map_or(0, |d| {
            d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n.starts_with("OUT"))
                .count()
        })
    };
    let texts = handed("outbox") + handed("sent");
    // From the pages sent to each text's file in gammu's folders (its time as the file system
    // keeps it: gammu moves the file, which keeps it): the whole way, ingest included.
    let mut landed: Vec<f64> = ["outbox", "sent"]
        .iter()
        .filter_map(|dir| std::fs::read_dir(gammu.path(dir)).ok())
        .flatten()
        .filter_map(|e| {
            let e = e.ok()?;
            e.file_name().to_str()?.starts_with("OUT").then_some(())?;
            let modified = e.metadata().ok()?.modified().ok()?;
            Some(modified.duration_since(sent_at).ok()?.as_secs_f64() * 1000.0)
        })
        .collect();
    landed.sort_by(f64::total_cmp);
    let landed_p99 = landed.get((landed.len() * 99).div_ceil(100).saturating_sub(1)).copied();
    ensure!(texts >= options.calls, "{texts} texts handed to gammu, not {}", options.calls);
    let metrics = http.get(format!("{}/metrics", site.url())).send().await?.text().await?;
    let calls = Calls {
        options,
        ringing: phase(&metrics, "ringing"),
        first_audio: phase(&metrics, "first_audio"),
        key: phase(&metrics, "key"),
        sms_handoff: phase(&metrics, "sms_handoff"),
        accepted_p99_ms: accepted_p99,
        page_to_text_p99_ms: landed_p99,
        seconds,
    };
    let goal = |metric: &str, phase: &Phase, goal_ms: f64| {
        let value = phase.p99_ms.map_or("none".into(), |p| format!("≤ {p:.0} ms"));
        let met =
            phase.count as usize >= options.calls && phase.p99_ms.is_some_and(|p| p <= goal_ms);
        Row::goal(metric, value, format!("≤ {goal_ms:.0} ms"), met)
    };
    let rows = vec![
        Row::info(
            format!("{} people called and texted at once", options.calls),
            format!("all acked in {seconds:.1} s"),
        ),
        Row::info(
            "the pages sent at once: each accepted (2xx) p99",
            format!("{accepted_p99:.0} ms"),
        ),
        goal("call step due → phone ringing (INVITE → 180) p99", &calls.ringing, 200.0),
        goal("answer → first audio packet p99", &calls.first_audio, 150.0),
        goal("key 4 → incident acknowledged p99", &calls.key, 100.0),
        goal(
            "text step due (page committed, read) → handed to gammu p99",
            &calls.sms_handoff,
            50.0,
        ),
        Row::info(
            "pages sent → texts in gammu's outbox p99 (ingest included)",
            landed_p99.map_or("none".into(), |p| format!("{p:.0} ms")),
        ),
        Row::info("texts handed to gammu-smsd", texts.to_string()),
    ];
    let outcome = Outcome { scenario: "calls".into(), rows, data: serde_json::to_value(&calls)? };
    drop(site);
    Ok((outcome, calls))
}
