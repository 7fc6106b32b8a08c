//! The alarm on a real PulseAudio server (the test command runs the suite in a session that has
//! one): heard on the default output each time it plays, silent once stopped, and playing again
//! by itself when the sound server drops it in the middle of a page. (How soon a page is heard
//! after a long quiet is measured by `scripts/bench.sh desktop`, not timed here.)

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reveille_alarm::{Alarm, Sound};
use reveille_core::alarm::Curve;

fn pactl(args: &[&str]) -> Option<String> {
    let out = Command::new("pactl").args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Records the default output until a sample louder than 1 % of full scale, or `within`; true if
/// heard.
fn heard(within: Duration) -> bool {
    let mut parec = Command::new("parec")
        .args(["-d", "@DEFAULT_MONITOR@", "--format=s16le", "--rate=44100", "--channels=1"])
        .args(["--latency-msec=10"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("parec runs");
    let mut out = parec.stdout.take().expect("parec's output");
    let start = Instant::now();
    let mut chunk = [0u8; 882];
    let mut loud = false;
    while !loud && start.elapsed() < within {
        let Ok(n) = out.read(&mut chunk) else { break };
        loud = chunk[..n & !1]
            .chunks_exact(2)
            .any(|s| i16::from_le_bytes([s[0], s[1]]).unsigned_abs() > 328);
    }
    eprintln!("heard={loud} after {:?}", start.elapsed());
    let _ = parec.kill();
    let _ = parec.wait();
    loud
}

/// The sound server's index of the alarm's connection (the client named "Reveille").
fn our_client() -> Option<u32> {
    let clients = pactl(&["list", "clients"])?;
    let mut index = None;
    for line in clients.lines() {
        if let Some(n) = line.strip_prefix("Client #") {
            index = n.trim().parse().ok();
        }
        if line.trim() == "application.name = \"Reveille\"" {
            return index;
        }
    }
    None
}

#[test]
fn the_alarm_is_heard_each_time_and_stops() {
    if pactl(&["info"]).is_none() {
        assert!(std::env::var_os("CI").is_none(), "CI must run this inside a sound session");
        println!("skipped: no PulseAudio server here (scripts/desktop-session.sh provides one)");
        return;
    }
    let alarm = Alarm::open().expect("the session's output opens");
    let page = Sound::Page(Curve { start: 0.3, ramp: Duration::from_secs(60) });
    for round in 0..2 {
        alarm.play(page);
        assert!(heard(Duration::from_secs(5)), "round {round}: the page is heard");
        assert_eq!(alarm.status().sound, Some(page));
        alarm.stop();
        assert!(!heard(Duration::from_secs(1)), "round {round}: silent after stop");
        alarm.play(Sound::FeedLost);
        assert!(heard(Duration::from_secs(5)), "round {round}: the feed-lost warning is heard");
        alarm.stop();
    }

    // The sound server drops the connection in the middle of a page (as when it restarts): the
    // alarm connects again and the page is heard again, without anyone asking.
    alarm.play(page);
    assert!(heard(Duration::from_secs(5)), "the page is heard");
    let before = our_client().expect("the alarm is a client of the sound server");
    let kill = Command::new("pacmd").args(["kill-client", &before.to_string()]).status();
    assert!(kill.is_ok_and(|s| s.success()), "pacmd drops the connection");
    // The server is another process: its list of clients is the only readiness to wait on.
    let start = Instant::now();
    while our_client().is_none_or(|now| now == before) {
        assert!(start.elapsed() < Duration::from_secs(5), "the alarm never connected again");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(heard(Duration::from_secs(5)), "the page is heard again after the connection dropped");
    assert!(!alarm.status().failed);
    alarm.stop();
    assert!(!heard(Duration::from_secs(1)), "silent after stop");
}
