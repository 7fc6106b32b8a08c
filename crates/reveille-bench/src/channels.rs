//! Channels under load. (1) Durable ingest with no outbound channel, and again with email and a
//! webhook whose servers accept connections and never answer: the rate must not drop. (2) A storm
//! of alerts paging one person who is reached by email (a real SMTP server, aiosmtpd): the mails
//! received in the minutes after it, which coalescing keeps to about one a minute.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use serde::Serialize;
use serde_json::json;

use crate::ingest::{self, Format, Sustained};
use crate::report::{Outcome, Row};
use crate::site::{Db, Site};
use crate::{alertmanager_body, notify_alertmanager};

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Options {
    pub ingest: ingest::Options,
    pub alerts: usize,
    pub batch: usize,
    /// How long mail is counted after the storm.
    pub watch_seconds: u64,
}

impl Options {
    pub fn full() -> Options {
        Options { ingest: ingest::Options::full(), alerts: 10_000, batch: 100, watch_seconds: 130 }
    }
    pub fn quick() -> Options {
        Options { ingest: ingest::Options::quick(), alerts: 400, batch: 20, watch_seconds: 5 }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Channels {
    pub options: Options,
    pub without: Sustained,
    pub hung: Sustained,
    pub incidents: u64,
    pub mails: usize,
    pub storm_seconds: f64,
}

/// A listener that takes connections and never says a word (an SMTP or HTTP server that hangs).
fn mute() -> Result<(std::net::TcpListener, u16)> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    Ok((listener, port))
}

fn channels_config(dir: &Path, smtp_port: u16, hook_port: u16) -> Result<String> {
    std::fs::write(dir.join("hook.secret"), "bench-webhook-secret-0123456789")?;
    Ok(format!(
        "\n[email]\nhost = \"127.0.0.1\"\nport = {smtp_port}\nsecurity = \"none\"\nfrom = \"Reveille <pager@bench.test>\"\n\
         \n[[webhooks]]\nname = \"hook\"\nurl = \"http://127.0.0.1:{hook_port}/\"\nsecret_file = \"{}\"\n",
        dir.join("hook.secret").display()
    ))
}

struct Sink {
    child: Child,
    maildir: PathBuf,
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// aiosmtpd from the virtual environment `scripts/lib.sh` prepares: (the sink, its port).
fn sink(dir: &Path) -> Result<(Sink, u16)> {
    use std::io::BufRead;
    let python = std::env::var_os("TESTS_PYTHON_BIN")
        .map_or_else(|| PathBuf::from("target/python/bin"), PathBuf::from)
        .join("python");
    let maildir = dir.join("mail");
    let mut child = Command::new(&python)
        .arg("tests/smtp_server.py")
        .arg(&maildir)
        .arg("--plain")
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("start {} tests/smtp_server.py", python.display()))?;
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().context("no stdout")?).read_line(&mut line)?;
    let port =
        line.trim().strip_prefix("ready ").context("the SMTP sink did not start")?.parse()?;
    Ok((Sink { child, maildir }, port))
}

pub async fn run(options: Options) -> Result<(Outcome, Channels)> {
    // (1) The same sustained ingest without channels, then with both hanging.
    let plain = Site::start(1).await?;
    let without = ingest::sustain(&plain, Format::PagerDuty, options.ingest).await?;
    drop(plain);
    let (_smtp, smtp_port) = mute()?;
    let (_hook, hook_port) = mute()?;
    let dir = tempfile::tempdir()?;
    let hung_site =
        Site::start_with(1, Db::Sqlite, &channels_config(dir.path(), smtp_port, hook_port)?)
            .await?;
    let hung = ingest::sustain(&hung_site, Format::PagerDuty, options.ingest).await?;
    drop(hung_site);

    // (2) A storm for one person reached by email.
    let (sink, sink_port) = sink(dir.path())?;
    let (_hook, hook_port) = mute()?;
    let site = Site::start_with(1, Db::Sqlite, &channels_config(dir.path(), sink_port, hook_port)?)
        .await?;
    let http = reqwest::Client::new();
    let started = Instant::now();
    let instances: Vec<String> = (0..options.alerts).map(|a| format!("mail-{a:06}")).collect();
    let mut senders = tokio::task::JoinSet::new();
    for (n, chunk) in instances.chunks(options.batch).enumerate() {
        let (http, url, key) = (http.clone(), site.url().to_owned(), site.keys[0].clone());
        let body = alertmanager_body(&format!("MailStorm{n}"), chunk);
        senders.spawn(async move { notify_alertmanager(&http, &url, &key, &body).await });
    }
    while let Some(done) = senders.join_next().await {
        done??;
    }
    let storm_seconds = started.elapsed().as_secs_f64();
    let incidents = site.count("SELECT count(*) FROM incidents")?;
    ensure!(
        incidents == options.alerts as u64,
        "{incidents} incidents for {} alerts",
        options.alerts
    );
    // Counting what arrives over the watch: a benchmark waits out the minutes it measures.
    tokio::time::sleep(Duration::from_secs(options.watch_seconds)).await;
    let mails = std::fs::read_dir(sink.maildir.join("new")).map(|d| d.count()).unwrap_or(0);
    drop(site);

    let keeps = hung.per_second >= 0.8 * without.per_second;
    let bounded = (mails as u64) <= 2 + options.watch_seconds / 60;
    let rows = vec![
        Row::info("durable ingest, no channels", format!("{:.0}/s", without.per_second)),
        Row::goal(
            "durable ingest, email and webhook servers hung",
            format!("{:.0}/s", hung.per_second),
            "≥ 80% of the above",
            keeps,
        ),
        Row::info("mail storm: alerts → incidents", format!("{} → {incidents}", options.alerts)),
        Row::goal(
            format!("mails to the person within {} s", options.watch_seconds),
            mails.to_string(),
            format!("≤ {}", 2 + options.watch_seconds / 60),
            bounded,
        ),
    ];
    let result = Channels { options, without, hung, incidents, mails, storm_seconds };
    Ok((Outcome { scenario: "channels".into(), rows, data: json!(result) }, result))
}
