//! The real Prometheus Alertmanager (Debian's prometheus-alertmanager) as a process on a free
//! loopback port in a temporary directory, for the suites that need one.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const ALERTMANAGER: &str = "/usr/bin/prometheus-alertmanager";

/// A running Alertmanager; dropping it stops it.
pub struct Alertmanager {
    child: Child,
    pub url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts one with this configuration (YAML) and waits until it is ready.
pub async fn start_with(config: &str) -> Alertmanager {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("alertmanager.yml"), config).unwrap();
    let port = free_port();
    let child = Command::new(ALERTMANAGER)
        .arg(format!("--config.file={}", dir.path().join("alertmanager.yml").display()))
        .arg(format!("--storage.path={}", dir.path().join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .arg("--log.level=warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("start alertmanager");
    let am = Alertmanager { child, url: format!("http://127.0.0.1:{port}"), _dir: dir };
    let http = reqwest::Client::new();
    for _ in 0..300 {
        let ready = http.get(format!("{}/-/ready", am.url)).send().await;
        if ready.is_ok_and(|r| r.status().is_success()) {
            return am;
        }
        // Readiness poll of another process: there is nothing to wait on but its answer.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("alertmanager did not become ready");
}

/// Whether Alertmanager is here; outside CI a test without it says so and skips.
pub fn installed() -> bool {
    if std::path::Path::new(ALERTMANAGER).exists() {
        return true;
    }
    assert!(std::env::var_os("CI").is_none(), "CI must provide {ALERTMANAGER}");
    eprintln!("SKIPPED: {ALERTMANAGER} is not installed (apt-get install prometheus-alertmanager)");
    false
}
