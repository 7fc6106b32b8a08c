//! SIPp phones: each behaves as its scenario in `tests/telephony/sipp/` says (answers and presses
//! keys, is busy, never answers, sends garbage), or calls in as a stranger would.

use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use super::{Kamailio, assets, free_udp_port, media_port, udp_bound, wait_until};

/// A SIPp process: a phone that behaves as its scenario says, or a caller.
pub struct Sipp {
    child: Option<Child>,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Drop for Sipp {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Sipp {
    fn spawn(scenario: &str, fill: &[(&str, &str)], args: &[String]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut text = std::fs::read_to_string(assets().join("sipp").join(scenario)).unwrap();
        for (from, to) in fill {
            text = text.replace(from, to);
        }
        let file = dir.path().join(scenario);
        std::fs::write(&file, text).unwrap();
        let port = free_udp_port();
        let log = dir.path().join("messages.log");
        let mut child = Command::new("sipp")
            .arg("-sf")
            .arg(&file)
            .args(["-i", "127.0.0.1", "-p", &port.to_string(), "-mp", &media_port().to_string()])
            .args(["-nostdin", "-trace_msg", "-message_file"])
            .arg(&log)
            .args(["-trace_err", "-error_file"])
            .arg(dir.path().join("errors.log"))
            .args(args)
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sipp");
        wait_until(&mut child, "sipp", &log, || udp_bound(port));
        Self { child: Some(child), port, dir }
    }

    /// A phone (`scenario` with its `@…@` filled in) answering `calls` calls.
    pub fn phone(scenario: &str, fill: &[(&str, &str)], calls: u32) -> Self {
        let mut fill = fill.to_vec();
        fill.push(("@CODECS@", "0 8"));
        Self::spawn(scenario, &fill, &["-m".into(), calls.to_string()])
    }

    /// Its number: Kamailio routes it here.
    pub fn number(&self) -> String {
        format!("+4915100{:05}", self.port)
    }

    /// Calls `user` at Kamailio, as the softphone's account.
    pub fn call(kamailio: &Kamailio, scenario: &str, user: &str) -> Self {
        let args = [
            format!("127.0.0.1:{}", kamailio.port),
            "-s".into(),
            user.into(),
            "-au".into(),
            "phone".into(),
            "-ap".into(),
            "ph0ne".into(),
            "-m".into(),
            "1".into(),
        ];
        Self::spawn(scenario, &[], &args)
    }

    /// Waits (up to `patience`) for the scenario to end; its exit status and the SIP messages
    /// it saw.
    pub async fn finished(&mut self, patience: Duration) -> (ExitStatus, String) {
        let mut child = self.child.take().expect("not finished yet");
        let deadline = tokio::time::Instant::now() + patience;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if tokio::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("sipp did not finish in {patience:?}: {}", self.messages());
            }
            // Another process's end: nothing to wait on but it.
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        (status, self.messages())
    }

    pub fn messages(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("messages.log")).unwrap_or_default()
    }
}
