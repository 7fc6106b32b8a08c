//! The desktop companion's footprint, for real: the Tauri app (started as a person's session
//! starts it: signed in, no window) inside `scripts/desktop-session.sh`, following a real server.
//! Memory of all its processes idle and with the alarm window open, CPU while idle, and page →
//! first audible sample, taken from the session's null sink as the samples arrive.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde::Serialize;
use serde_json::json;

use crate::report::{Outcome, Row, mib, ms};
use crate::site::Site;
use crate::{page, procs};

/// A sample this loud (of 32,767) is sound, not noise.
const AUDIBLE: i16 = 300;

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Options {
    /// How long the app is watched doing nothing.
    pub idle_seconds: f64,
}

impl Options {
    pub fn full() -> Options {
        Options { idle_seconds: 60.0 }
    }
    pub fn quick() -> Options {
        Options { idle_seconds: 2.0 }
    }
}

/// Memory of the app's process tree.
#[derive(Debug, Clone, Serialize)]
pub struct Memory {
    pub processes: Vec<String>,
    pub rss_kib: u64,
    pub pss_kib: u64,
    /// Of the PSS: anonymous memory (heaps, stacks) and mapped files (mostly libraries).
    pub pss_anon_kib: u64,
    pub pss_file_kib: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Footprint {
    pub options: Options,
    pub idle: Memory,
    pub idle_cpu_percent: f64,
    pub alarm: Memory,
    pub page_to_sound_ms: f64,
}

/// What the session must provide; None when everything is there.
pub fn missing() -> Option<String> {
    if std::env::var_os("IN_DESKTOP_SESSION").is_none() {
        return Some("not inside scripts/desktop-session.sh (no display, sound or keyring)".into());
    }
    for tool in ["parec", "secret-tool"] {
        if Command::new(tool).arg("--help").output().is_err() {
            return Some(format!("{tool} is not installed"));
        }
    }
    if !app_binary().is_file() {
        return Some(format!("{} is not built", app_binary().display()));
    }
    None
}

fn app_binary() -> PathBuf {
    reveille_tests::binary().with_file_name("reveille-desktop")
}

/// Kills the app and its helpers when dropped.
struct App(Child);

impl Drop for App {
    fn drop(&mut self) {
        for pid in procs::tree(self.0.id()).into_iter().rev() {
            let _ = Command::new("kill").arg("-KILL").arg(pid.to_string()).status();
        }
        let _ = self.0.wait();
    }
}

pub async fn run(options: Options) -> Result<(Outcome, Footprint)> {
    if let Some(why) = missing() {
        bail!("the desktop scenario needs a desktop session: {why}");
    }
    let site = Site::start(1).await?;
    let url = site.url().to_owned();
    sign_in(&url, &site.tokens[0])?;
    let app = App(Command::new(app_binary()).stdout(Stdio::null()).spawn()?);
    let pid = app.0.id();
    until("the app follows the feed", Duration::from_secs(30), async || {
        connections(&url).await >= 1
    })
    .await?;

    let ticks = || -> std::collections::HashMap<u32, u64> {
        procs::tree(pid).into_iter().filter_map(|p| Some((p, procs::cpu_ticks(p).ok()?))).collect()
    };
    let before = ticks();
    let watched = Instant::now();
    // The measurement window itself: the app is watched doing nothing for this long.
    tokio::time::sleep(Duration::from_secs_f64(options.idle_seconds)).await;
    // Per process, and only processes there at both readings: one that came or went meanwhile
    // cannot add its whole life or go negative.
    let after = ticks();
    let used: u64 = before.iter().filter_map(|(p, t)| Some(after.get(p)?.saturating_sub(*t))).sum();
    let used = used as f64 / procs::ticks_per_second() as f64;
    let idle_cpu_percent = 100.0 * used / watched.elapsed().as_secs_f64();
    let idle = memory(pid);

    let listening = listen().await?;
    let http = reqwest::Client::new();
    let sent = Instant::now();
    page(&http, &url, &site.keys[0], "desktop-footprint").await?;
    let heard =
        tokio::task::spawn_blocking(move || listening.recv_timeout(Duration::from_secs(20)))
            .await?
            .context("the page was never heard on the speakers")?;
    let page_to_sound_ms = heard.duration_since(sent).as_secs_f64() * 1000.0;
    let alarm = settled(pid).await?;
    ensure!(
        alarm.processes.len() > idle.processes.len(),
        "no alarm window process appeared: {:?}",
        alarm.processes
    );
    drop(app);

    let cpu_ok = idle_cpu_percent <= 0.2;
    let rows = vec![
        Row::info("idle, no window: processes", idle.processes.join(", ")),
        Row::goal(
            "idle, no window: RSS of all processes",
            mib(idle.rss_kib),
            "≤ 60 MB",
            idle.rss_kib * 1024 <= 60_000_000,
        ),
        Row::info("idle, no window: PSS of all processes", mib(idle.pss_kib)),
        Row::info(
            "idle, no window: PSS anonymous / files",
            format!("{} / {}", mib(idle.pss_anon_kib), mib(idle.pss_file_kib)),
        ),
        Row::goal(
            format!("idle CPU over {} s", options.idle_seconds),
            format!("{idle_cpu_percent:.2} %"),
            "≤ 0.2 %",
            cpu_ok,
        ),
        Row::info("alarm window open: processes", alarm.processes.join(", ")),
        Row::info("alarm window open: PSS of all processes", mib(alarm.pss_kib)),
        Row::info("alarm window open: RSS summed", mib(alarm.rss_kib)),
        Row::goal(
            "page → first audible sample",
            ms(page_to_sound_ms),
            "≤ 300 ms",
            page_to_sound_ms <= 300.0,
        ),
    ];
    let result = Footprint { options, idle, idle_cpu_percent, alarm, page_to_sound_ms };
    let data = json!(result);
    Ok((Outcome { scenario: "desktop".into(), rows, data }, result))
}

/// Settings naming the server, and the token where the app keeps it: the OS keyring.
fn sign_in(url: &str, token: &str) -> Result<()> {
    let data = std::env::var_os("XDG_DATA_HOME").context("XDG_DATA_HOME is not set")?;
    let dir = PathBuf::from(data).join("dev.reveille.desktop");
    std::fs::create_dir_all(&dir)?;
    let settings = json!({"server": url, "device": "bench-laptop", "sound": "beeps",
        "start_level": 0.4, "ramp_seconds": 30, "snooze_minutes": 15, "feed_lost_seconds": 60,
        "on_duty": true, "make_sure_i_hear_it": true, "autostart": false});
    std::fs::write(dir.join("settings.json"), settings.to_string())?;
    let mut store = Command::new("secret-tool")
        .args(["store", "--label=Reveille", "service", "dev.reveille.desktop", "username", url])
        .stdin(Stdio::piped())
        .spawn()?;
    store.stdin.take().context("secret-tool stdin")?.write_all(token.as_bytes())?;
    ensure!(store.wait()?.success(), "secret-tool could not store the token");
    Ok(())
}

/// Open feed connections, from the server's metrics.
async fn connections(url: &str) -> u64 {
    let Ok(response) = reqwest::get(format!("{url}/metrics")).await else { return 0 };
    let text = response.text().await.unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("reveille_feed_connections "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Polls another process's state, which cannot be awaited.
async fn until<F: AsyncFnMut() -> bool>(what: &str, within: Duration, mut check: F) -> Result<()> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if check().await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("{what} did not happen within {within:?}")
}

fn memory(pid: u32) -> Memory {
    let tree = procs::tree(pid);
    Memory {
        processes: tree.iter().map(|p| procs::name(*p)).collect(),
        rss_kib: tree.iter().filter_map(|p| procs::rss_kib(*p).ok()).sum(),
        pss_kib: tree.iter().filter_map(|p| procs::pss_kib(*p).ok()).sum(),
        pss_anon_kib: tree.iter().filter_map(|p| procs::rollup_kib(*p, "Pss_Anon:").ok()).sum(),
        pss_file_kib: tree.iter().filter_map(|p| procs::rollup_kib(*p, "Pss_File:").ok()).sum(),
    }
}

/// The app's memory once the alarm window has loaded: two readings 500 ms apart within 2 %.
async fn settled(pid: u32) -> Result<Memory> {
    let mut last = memory(pid);
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = memory(pid);
        let near = now.pss_kib.abs_diff(last.pss_kib) * 50 <= last.pss_kib;
        if near && now.processes.len() == last.processes.len() && now.processes.len() > 1 {
            return Ok(now);
        }
        last = now;
    }
    bail!("the app's memory never settled: {:?}", last.processes)
}

/// Records the session's speakers (the null sink `alarm`); the receiver gets the instant the
/// first audible sample arrived. Returns once the recorder delivers samples (the app keeps its
/// output open, so the sink's monitor streams silence until the page).
async fn listen() -> Result<mpsc::Receiver<Instant>> {
    let mut parec = Command::new("parec")
        .args(["--device=alarm.monitor", "--format=s16le", "--rate=44100", "--channels=1"])
        .args(["--raw", "--latency-msec=5"])
        .stdout(Stdio::piped())
        .spawn()?;
    let mut out = parec.stdout.take().context("parec stdout")?;
    let (tx, rx) = mpsc::channel();
    let (ready, recording) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut ready = Some(ready);
        let mut buffer = [0u8; 512];
        let started = Instant::now();
        while let Ok(n) = out.read(&mut buffer) {
            if n == 0 || started.elapsed() > Duration::from_secs(60) {
                break;
            }
            if let Some(ready) = ready.take() {
                let _ = ready.send(());
            }
            let loud = buffer[..n - n % 2]
                .chunks_exact(2)
                .any(|s| i16::from_le_bytes([s[0], s[1]]).unsigned_abs() >= AUDIBLE as u16);
            if loud {
                let _ = tx.send(Instant::now());
                break;
            }
        }
        let _ = parec.kill();
        let _ = parec.wait();
    });
    tokio::time::timeout(Duration::from_secs(10), recording)
        .await
        .context("parec never delivered a sample")?
        .context("parec ended before recording")?;
    Ok(rx)
}
