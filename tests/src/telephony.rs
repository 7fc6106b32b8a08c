//! The phone network of the telephony tests, as real programs on loopback, each in a
//! temporary directory and stopped when dropped: Kamailio as the team's PBX (registrar and
//! proxy with digest auth, `tests/telephony/kamailio.cfg`), SIPp as phones that behave as a
//! scenario says (`tests/telephony/sipp/`), baresip as a softphone that records what it hears
//! and presses keys on command, and gammu-smsd with its dummy modem.

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

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

/// baresip as a softphone registered at Kamailio as `phone` ([`SOFTPHONE`]): answers at once,
/// records what it hears, presses keys on command (its ctrl_tcp).
pub struct Baresip {
    child: Child,
    ctrl: u16,
    dir: tempfile::TempDir,
}

impl Drop for Baresip {
    fn drop(&mut self) {
        // Its first SIGTERM unregisters; a second ends it if Kamailio is gone already.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Baresip {
    pub fn start(kamailio: &Kamailio) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (sip, ctrl, rtp) = (free_udp_port(), free_udp_port(), media_port());
        let d = dir.path().display().to_string();
        std::fs::create_dir(dir.path().join("rec")).unwrap();
        // A silent microphone: one minute of 8 kHz silence.
        let mic = dir.path().join("mic.wav");
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut writer = hound::WavWriter::create(&mic, spec).unwrap();
        for _ in 0..8000 * 60 {
            writer.write_sample(0i16).unwrap();
        }
        writer.finalize().unwrap();
        let config = format!(
            "poll_method epoll\nnet_interface 127.0.0.1\nsip_listen 127.0.0.1:{sip}\ncall_local_timeout 120\n\
             call_max_calls 1\naudio_player alsa,null\naudio_alert alsa,null\naudio_source aufile,{d}/mic.wav\n\
             ausrc_srate 8000\nausrc_channels 1\naudio_buffer 20\nrtp_ports {rtp}-{}\nsnd_path {d}/rec\n\
             module_path /usr/lib/baresip/modules\nmodule g711.so\nmodule alsa.so\nmodule aufile.so\n\
             module sndfile.so\nmodule_tmp account.so\nmodule_app menu.so\nmodule_app ctrl_tcp.so\n\
             ctrl_tcp_listen 127.0.0.1:{ctrl}\n",
            rtp + 9
        );
        std::fs::write(dir.path().join("config"), config).unwrap();
        let account = format!(
            "<sip:phone@127.0.0.1:{}>;auth_pass=ph0ne;answermode=auto;audio_codecs=PCMU,PCMA;regint=300\n",
            kamailio.port
        );
        std::fs::write(dir.path().join("accounts"), account).unwrap();
        let log = dir.path().join("baresip.log");
        let mut child = Command::new("baresip")
            .arg("-f")
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("start baresip");
        wait_until(&mut child, "baresip", &log, || {
            std::fs::read_to_string(&log).is_ok_and(|l| l.contains("200 OK"))
        });
        Self { child, ctrl, dir }
    }

    /// Sends a command over ctrl_tcp (netstring-framed JSON) and waits for its answer.
    pub fn command(&self, command: &str, params: &str) -> String {
        let body = format!(r#"{{"command":"{command}","params":"{params}","token":"t"}}"#);
        let mut stream = TcpStream::connect(("127.0.0.1", self.ctrl)).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        stream.write_all(format!("{}:{body},", body.len()).as_bytes()).unwrap();
        let mut answer = Vec::new();
        let mut buffer = [0u8; 4096];
        while !String::from_utf8_lossy(&answer).contains("\"response\":true") {
            let n = stream.read(&mut buffer).expect("baresip answers its commands");
            assert!(n > 0, "baresip closed ctrl_tcp");
            answer.extend_from_slice(&buffer[..n]);
        }
        String::from_utf8_lossy(&answer).into_owned()
    }

    /// Presses a key (sent as an RFC 4733 telephone-event).
    pub fn press(&self, key: char) {
        self.command("sndcode", &key.to_string());
    }

    /// What it heard on its last call so far (8 kHz samples), read from the recording.
    pub fn heard(&self) -> Vec<i16> {
        let Some(file) = self.recording() else { return Vec::new() };
        let bytes = std::fs::read(file).unwrap_or_default();
        // The header is final only once the call ends: the samples are what follows it.
        bytes
            .get(44..)
            .unwrap_or_default()
            .chunks_exact(2)
            .map(|s| i16::from_le_bytes([s[0], s[1]]))
            .collect()
    }

    fn recording(&self) -> Option<PathBuf> {
        let dir = std::fs::read_dir(self.dir.path().join("rec")).ok()?;
        dir.filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.to_string_lossy().ends_with("-dec.wav"))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("baresip.log")).unwrap_or_default()
    }
}

/// `text` as Reveille's calls say it (espeak-ng `en-us` at 160 words a minute, 8 kHz).
pub fn speech(text: &str) -> Vec<i16> {
    let mut speak = Command::new("espeak-ng")
        .args(["--stdin", "--stdout", "-v", "en-us", "-s", "160"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    speak.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let convert = Command::new("sox")
        .args([
            "-D",
            "-t",
            "wav",
            "-",
            "-t",
            "raw",
            "-r",
            "8000",
            "-c",
            "1",
            "-b",
            "16",
            "-e",
            "signed-integer",
            "-L",
            "-",
        ])
        .stdin(speak.stdout.take().unwrap())
        .output()
        .unwrap();
    speak.wait().unwrap();
    convert.stdout.chunks_exact(2).map(|s| i16::from_le_bytes([s[0], s[1]])).collect()
}

/// The span from the first to the last 20 ms of `samples` louder than `floor` (RMS, full
/// scale 1.0), in seconds; and the RMS over that span.
pub fn speech_span(samples: &[i16], floor: f64) -> (f64, f64) {
    let rms = |frame: &[i16]| {
        let sum: f64 = frame.iter().map(|&s| (f64::from(s) / 32768.0).powi(2)).sum();
        (sum / frame.len().max(1) as f64).sqrt()
    };
    let frames: Vec<f64> = samples.chunks(160).map(rms).collect();
    let loud: Vec<usize> =
        frames.iter().enumerate().filter(|(_, r)| **r > floor).map(|(i, _)| i).collect();
    let (Some(first), Some(last)) = (loud.first(), loud.last()) else { return (0.0, 0.0) };
    let span = &samples[first * 160..((last + 1) * 160).min(samples.len())];
    ((last + 1 - first) as f64 * 0.02, rms(span))
}

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
