//! The phone network of the telephony tests, as real programs on loopback, each in a
//! temporary directory and stopped when dropped: Kamailio as the team's PBX (registrar and
//! proxy with digest auth, `tests/telephony/kamailio.cfg`), SIPp as phones that behave as a
//! scenario says (`tests/telephony/sipp/`), baresip as a softphone that records what it hears
//! and presses keys on command, and gammu-smsd with its dummy modem.

mod baresip;
mod gammu;
mod sipp;

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use baresip::{Baresip, speech, speech_span};
pub use gammu::Gammu;
pub use sipp::Sipp;

/// Kamailio's users: Reveille's line, and the softphone.
pub const LINE_USER: &str = "reveille";
pub const LINE_PASSWORD: &str = "s3cret";
/// The softphone's number (registered as `phone`).
pub const SOFTPHONE: &str = "+4915190000000";

const PROGRAMS: [&str; 5] = ["kamailio", "sipp", "baresip", "espeak-ng", "sox"];

fn assets() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("telephony")
}

/// Whether the programs are here; outside CI a test without them says so and skips.
pub fn installed() -> bool {
    let missing: Vec<&str> = PROGRAMS.into_iter().filter(|p| which(p).is_none()).collect();
    if missing.is_empty() {
        return true;
    }
    assert!(std::env::var_os("CI").is_none(), "CI must provide {missing:?}");
    eprintln!("SKIPPED: {missing:?} missing (scripts/test.sh installs them)");
    false
}

fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(program)).find(|p| p.is_file())
}

/// A free UDP port on loopback (at least 10000, so a number can carry it in five digits).
pub fn free_udp_port() -> u16 {
    loop {
        let port = UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        if port >= 10000 {
            return port;
        }
    }
}

/// Whether something listens on UDP `port` of loopback (or every address).
fn udp_bound(port: u16) -> bool {
    let Ok(table) = std::fs::read_to_string("/proc/net/udp") else { return false };
    let wanted = [format!("0100007F:{port:04X}"), format!("00000000:{port:04X}")];
    table
        .lines()
        .skip(1)
        .any(|l| l.split_whitespace().nth(1).is_some_and(|a| wanted.iter().any(|w| w == a)))
}

/// Waits (up to 20 s) until `ready` holds, checking that `child` still runs.
fn wait_until(child: &mut Child, what: &str, log: &Path, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ready() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "{what} exited ({status}): {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "{what} not ready: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        // Another process's readiness: there is nothing to wait on but its sockets and log.
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stop(child: &mut Child) {
    // SIGTERM first (Kamailio stops its workers with it), then the hard way.
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Kamailio as the team's PBX.
pub struct Kamailio {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

impl Kamailio {
    /// Starts it on free UDP and TCP ports and waits until it listens.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts it with `-A` defines of its config (`WITH_SHA256`: RFC 7616 digest).
    pub fn start_with(defines: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_udp_port();
        let log = dir.path().join("kamailio.log");
        let mut child = Command::new("kamailio")
            .args(["-f"])
            .arg(assets().join("kamailio.cfg"))
            .args(["-DD", "-E", "-m", "64", "-M", "8"])
            .args(["-l", &format!("udp:127.0.0.1:{port}"), "-l", &format!("tcp:127.0.0.1:{port}")])
            .arg("-P")
            .arg(dir.path().join("kamailio.pid"))
            .arg("-Y")
            .arg(dir.path())
            .args(defines.iter().flat_map(|d| ["-A", d]))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start kamailio");
        wait_until(&mut child, "kamailio", &log, || udp_bound(port));
        Self { child, port, dir }
    }

    /// Reveille's `[sip] server`.
    pub fn server(&self, transport: &str) -> String {
        format!("sip:127.0.0.1:{};transport={transport}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("kamailio.log")).unwrap_or_default()
    }
}

/// A free even UDP port on loopback for RTP, with the one two above it free too.
fn media_port() -> u16 {
    // SIPp takes the media port and the one two above it.
    loop {
        let port = free_udp_port() & !1;
        if UdpSocket::bind(("127.0.0.1", port)).is_ok()
            && UdpSocket::bind(("127.0.0.1", port + 2)).is_ok()
        {
            return port;
        }
    }
}
