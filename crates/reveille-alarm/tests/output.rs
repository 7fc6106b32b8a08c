//! The alarm on a real PulseAudio server (the test command runs the suite in a session that has
//! one): heard on the default output each time it plays, also after the output sat idle long
//! enough to be suspended, and silent once stopped.

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

#[test]
fn the_alarm_is_heard_each_time_and_stops() {
    if pactl(&["info"]).is_none() {
        assert!(std::env::var_os("CI").is_none(), "CI must run this inside a sound session");
        println!("skipped: no PulseAudio server here (scripts/desktop-session.sh provides one)");
        return;
    }
    let alarm = Alarm::open().expect("the session's output opens");
    let page = Sound::Page(Curve { start: 0.3, ramp: Duration::from_secs(60) });
    for round in 0..3 {
        if round > 0 {
            // Longer than PulseAudio waits before suspending an idle output.
            std::thread::sleep(Duration::from_secs(6));
        }
        alarm.play(page);
        assert!(heard(Duration::from_secs(5)), "round {round}: the page is heard");
        assert_eq!(alarm.status().sound, Some(page));
        alarm.stop();
        assert!(!heard(Duration::from_secs(1)), "round {round}: silent after stop");
        alarm.play(Sound::FeedLost);
        assert!(heard(Duration::from_secs(5)), "round {round}: the feed-lost warning is heard");
        alarm.stop();
    }
}
