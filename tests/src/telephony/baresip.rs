//! baresip as a softphone that answers, records what it hears and presses keys on command, and
//! the speech the tests compare its recordings with.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{Kamailio, free_udp_port, media_port, wait_until};

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
