//! gammu-smsd with its dummy modem: texts Reveille hands over, and texts people send back.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{stop, wait_until, which};

/// gammu-smsd with its dummy modem and the files service: what Reveille drops in its outbox is
/// "sent" (moved to `sent/`), and texts arrive when a test puts them in the modem's memory.
pub struct Gammu {
    child: Child,
    pub dir: tempfile::TempDir,
}

impl Drop for Gammu {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

impl Gammu {
    pub fn installed() -> bool {
        if which("gammu-smsd").is_some() && which("gammu").is_some() {
            return true;
        }
        assert!(std::env::var_os("CI").is_none(), "CI must provide gammu-smsd");
        eprintln!("SKIPPED: gammu-smsd is missing (scripts/test.sh installs it)");
        false
    }

    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        for sub in ["phone", "inbox", "outbox", "sent", "error"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
        }
        let config = format!(
            "[gammu]\nmodel = dummy\nconnection = none\ndevice = {d}/phone\nlogformat = nothing\n\n\
             [smsd]\nservice = files\ninboxpath = {d}/inbox/\noutboxpath = {d}/outbox/\n\
             sentsmspath = {d}/sent/\nerrorsmspath = {d}/error/\ninboxformat = unicode\n\
             outboxformat = unicode\ntransmitformat = auto\nlogfile = {d}/smsd.log\ndebuglevel = 1\n\
             loopsleep = 1\ncommtimeout = 1\nreceivefrequency = 1\nstatusfrequency = 0\n\
             checksecurity = 0\ncheckbattery = 0\nchecksignal = 0\nchecknetwork = 0\n"
        );
        std::fs::write(dir.path().join("smsdrc"), config).unwrap();
        let log = dir.path().join("smsd.log");
        let mut child = Command::new("gammu-smsd")
            .arg("-c")
            .arg(dir.path().join("smsdrc"))
            .env("LANG", "C.UTF-8")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start gammu-smsd");
        wait_until(&mut child, "gammu-smsd", &log, || {
            std::fs::read_to_string(&log).is_ok_and(|l| l.contains("Starting phone communication"))
        });
        Self { child, dir }
    }

    pub fn path(&self, sub: &str) -> String {
        self.dir.path().join(sub).display().to_string()
    }

    /// A text from `from` reaches the modem.
    pub fn receive(&self, from: &str, text: &str) {
        let saved = Command::new("gammu")
            .arg("-c")
            .arg(self.dir.path().join("smsdrc"))
            .args(["savesms", "TEXT", "-folder", "1", "-sender", from, "-text", text])
            .env("LANG", "C.UTF-8")
            .output()
            .unwrap();
        assert!(
            saved.status.success(),
            "gammu savesms: {}",
            String::from_utf8_lossy(&saved.stderr)
        );
    }

    /// The texts the modem sent: (number, text), oldest first.
    pub fn sent(&self) -> Vec<(String, String)> {
        let mut files: Vec<(std::time::SystemTime, String, String)> =
            std::fs::read_dir(self.dir.path().join("sent"))
                .unwrap()
                .filter_map(|e| e.ok())
                .filter_map(|e| {
                    let name = e.file_name().into_string().ok()?;
                    let number = name.strip_prefix("OUT")?.split('_').nth(3)?.to_owned();
                    let bytes = std::fs::read(e.path()).ok()?;
                    let modified = e.metadata().ok()?.modified().ok()?;
                    Some((modified, number, decode_text(&bytes)))
                })
                .collect();
        files.sort();
        files.into_iter().map(|(_, n, t)| (n, t)).collect()
    }

    /// Waits (up to 20 s) until the modem has sent `n` texts; they, oldest first.
    pub async fn until_sent(&self, n: usize) -> Vec<(String, String)> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let sent = self.sent();
            if sent.len() >= n {
                return sent;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} texts sent, not {n}: {sent:?}",
                sent.len()
            );
            // Another process's files: nothing to wait on but them.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn decode_text(bytes: &[u8]) -> String {
    match bytes {
        [0xFF, 0xFE, rest @ ..] => {
            let units: Vec<u16> =
                rest.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
            String::from_utf16_lossy(&units)
        }
        _ => String::from_utf8_lossy(bytes).into_owned(),
    }
}
