//! The desktop companion for real: the Tauri app under Xvfb with a D-Bus session, dunst, a
//! PulseAudio null sink and an unlocked gnome-keyring (all from `scripts/desktop-session.sh`),
//! driven through its real windows with WebDriver (tauri-driver + WebKitWebDriver), against a
//! real Reveille server. Outside such a session it skips, saying why; CI always provides one.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use reveille_tests::{Site, binary, reveille};
use serde_json::{Value, json};

const CONFIG: &str = r#"
[server]
listen = "127.0.0.1:0"
heartbeat_seconds = 1
[ingest]
rate_per_minute = 100000
[[users]]
name = "alice"
[[services]]
name = "payments"
page = ["alice"]
runbook = "runbooks/payments.md"
"#;

/// What the session must provide; None when everything is there.
fn missing() -> Option<String> {
    if std::env::var_os("IN_DESKTOP_SESSION").is_none() {
        return Some(
            "not inside scripts/desktop-session.sh (no display, bus, sound or keyring)".into(),
        );
    }
    for tool in ["tauri-driver", "WebKitWebDriver", "parecord", "dbus-monitor", "secret-tool"] {
        if which(tool).is_none() {
            return Some(format!("{tool} is not installed"));
        }
    }
    if !desktop_binary().is_file() {
        return Some("the desktop app is not built (cargo build -p reveille-desktop)".into());
    }
    None
}

fn which(tool: &str) -> Option<PathBuf> {
    let cargo_bin = std::env::var_os("CARGO_HOME").map(|h| PathBuf::from(h).join("bin"));
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain(cargo_bin)
        .map(|dir| dir.join(tool))
        .find(|p| p.is_file())
}

fn desktop_binary() -> PathBuf {
    binary().with_file_name("reveille-desktop")
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        // SIGTERM, not SIGKILL: a killed tauri-driver leaves WebKitWebDriver holding its port.
        let _ = Command::new("kill").arg("-TERM").arg(self.0.id().to_string()).status();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Whether the tray (top right of the screen, where the session's tray host sits) shows `rgb`.
fn tray_shows(scratch: &Path, rgb: &str) -> bool {
    let shot = scratch.join("tray.png");
    let took = Command::new("/usr/bin/import")
        .args(["-window", "root", "-crop", "40x40+1240+0"])
        .arg(&shot)
        .status();
    if !took.is_ok_and(|s| s.success()) {
        return false;
    }
    let colours = Command::new("/usr/bin/convert")
        .arg(&shot)
        .args(["-format", "%c", "histogram:info:-"])
        .output();
    colours.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).to_uppercase().contains(rgb))
}

/// Polls `check` until it holds; for other processes' state, which cannot be awaited.
async fn eventually<F: AsyncFnMut() -> bool>(what: &str, within: Duration, mut check: F) {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what} did not happen within {within:?}");
}

struct Recording {
    proc: Proc,
    path: PathBuf,
    started: Instant,
}

fn record(dir: &Path, name: &str) -> Recording {
    let path = dir.join(name);
    let child = Command::new("parecord")
        .args([
            "--device=alarm.monitor",
            "--file-format=wav",
            "--channels=1",
            "--rate=44100",
            "--format=s16le",
        ])
        .arg(&path)
        .spawn()
        .unwrap();
    Recording { proc: Proc(child), path, started: Instant::now() }
}

impl Recording {
    /// Stops recording; returns the samples.
    fn stop(self) -> Vec<i16> {
        let Recording { proc, path, .. } = self;
        drop(proc);
        let mut reader = hound::WavReader::open(&path).unwrap();
        reader.samples::<i16>().map_while(Result::ok).collect()
    }
}

fn rms(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    (samples.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / samples.len() as f64).sqrt()
}

const RATE: usize = 44_100;

/// Nothing audible from 1.1 s after `acked_at` on. The null sink records only while something
/// plays, so sample `i` was played no earlier than `i / RATE` after the recording started: any
/// sample past that index that is loud means the alarm still sounded after the ack.
fn silent_after(samples: &[i16], acked_at: Duration) -> bool {
    let from = ((acked_at.as_secs_f64() + 1.1) * RATE as f64) as usize;
    rms(&samples[from.min(samples.len())..]) < 50.0
}

async fn page(url: &str, key: &str, dedup: &str, summary: &str) {
    let body = json!({"routing_key": key, "event_action": "trigger", "dedup_key": dedup,
        "payload": {"summary": summary, "source": "db-1", "severity": "critical"}});
    let r =
        reqwest::Client::new().post(format!("{url}/v2/enqueue")).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 202);
}

async fn get(url: &str, token: &str) -> Value {
    let response = reqwest::Client::new().get(url).bearer_auth(token).send().await.unwrap();
    response.json().await.unwrap()
}

/// The incident with this dedup key, with its timeline.
async fn incident(url: &str, token: &str, dedup: &str) -> Value {
    let list = get(&format!("{url}/api/v1/incidents?all=true"), token).await;
    let found =
        list["incidents"].as_array().unwrap().iter().find(|i| i["dedup_key"] == dedup).cloned();
    let id = found.expect("incident")["id"].as_i64().unwrap();
    get(&format!("{url}/api/v1/incidents/{id}"), token).await
}

async fn switch_to_title(client: &Client, part: &str) {
    eventually(&format!("a window titled {part:?}"), Duration::from_secs(20), async || {
        for handle in client.windows().await.unwrap_or_default() {
            if client.switch_to_window(handle).await.is_ok()
                && client.title().await.is_ok_and(|t| t.contains(part))
            {
                return true;
            }
        }
        false
    })
    .await;
}

async fn text(client: &Client, id: &str) -> String {
    // Inside `eventually`: a page being re-rendered is a miss, not a failure.
    match client.find(Locator::Id(id)).await {
        Ok(element) => element.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Starts the desktop app (`application`) through tauri-driver and drives it.
async fn start_app(webdriver: &str, application: &Path) -> Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let caps = json!({"browserName": "wry", "tauri:options": {"application": application}});
    ClientBuilder::rustls()
        .unwrap()
        .capabilities(caps.as_object().unwrap().clone())
        .connect(webdriver)
        .await
        .unwrap()
}

/// The id the notification server gave the notification whose text has `needle`: the reply to
/// the Notify call that carried it.
fn notification_id(log: &str, needle: &str) -> Option<u32> {
    let lines: Vec<&str> = log.lines().collect();
    let at = lines.iter().position(|l| l.contains(needle))?;
    let call = lines[..at].iter().rev().find(|l| l.starts_with("method call"))?;
    let serial = call.split_whitespace().find_map(|w| w.strip_prefix("serial="))?;
    let reply = lines.iter().position(|l| {
        l.starts_with("method return") && l.contains(&format!("reply_serial={serial}"))
    })?;
    lines.get(reply + 1)?.trim().strip_prefix("uint32 ")?.parse().ok()
}

/// The desktop tests share the session's screen, speakers and keyring: one at a time.
static SESSION: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_desktop_app_rings_shows_the_runbook_and_stops_when_acknowledged() {
    let _session = SESSION.lock().await;
    if let Some(why) = missing() {
        assert!(std::env::var_os("CI").is_none(), "CI must run the desktop suite: {why}");
        eprintln!("SKIPPED the desktop end-to-end test: {why}");
        return;
    }
    let runbook = "# Payments runbook\n\nRestart the **payment worker**.\n";
    let site = Site::with_files(CONFIG, &[("runbooks/payments.md", runbook)]);
    let mut server = site.start();
    let url = server.url.clone();
    let scratch = PathBuf::from(std::env::var("DESKTOP_SESSION_DIR").unwrap());

    // The app's settings before its first start: a short ramp and a short feed-lost threshold.
    let data = PathBuf::from(std::env::var("XDG_DATA_HOME").unwrap()).join("dev.reveille.desktop");
    std::fs::create_dir_all(&data).unwrap();
    let settings = json!({"device": "alice-laptop", "start_level": 0.3, "ramp_seconds": 6, "snooze_minutes": 5,
        "feed_lost_seconds": 5, "on_duty": true, "make_sure_i_hear_it": true});
    std::fs::write(data.join("settings.json"), settings.to_string()).unwrap();

    let (port, native) = (free_port(), free_port());
    let driver = Proc(
        Command::new(which("tauri-driver").unwrap())
            .args(["--port", &port.to_string(), "--native-port", &native.to_string()])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let webdriver = format!("http://127.0.0.1:{port}");
    eventually("tauri-driver", Duration::from_secs(20), async || {
        reqwest::get(format!("{webdriver}/status")).await.is_ok()
    })
    .await;
    let client = start_app(&webdriver, &desktop_binary()).await;

    // Sign in through the real window.
    switch_to_title(&client, "Reveille").await;
    let settings_window = client.window().await.unwrap();
    client.find(Locator::Id("server")).await.unwrap().send_keys(&url).await.unwrap();
    client.find(Locator::Id("token")).await.unwrap().send_keys(&site.token).await.unwrap();
    client.find(Locator::Id("signin-button")).await.unwrap().click().await.unwrap();
    eventually("signed in", Duration::from_secs(20), async || {
        text(&client, "user").await == "alice"
    })
    .await;

    // The token is in the keyring, and nowhere in the settings file.
    let keyring = Command::new("secret-tool")
        .args(["search", "--all", "--unlock", "service", "dev.reveille.desktop"])
        .output()
        .unwrap();
    let found = String::from_utf8_lossy(&keyring.stdout).to_string()
        + &String::from_utf8_lossy(&keyring.stderr);
    assert!(found.contains(&site.token), "the token is not in the keyring: {found}");
    let file = std::fs::read_to_string(data.join("settings.json")).unwrap();
    assert!(!file.contains(&site.token) && file.contains(&url), "{file}");

    // A page: a notification with its actions on D-Bus, the alarm window with the runbook, and a
    // rising alarm on the speakers.
    let monitor_log = scratch.join("notifications.log");
    let _monitor = Proc(
        Command::new("dbus-monitor")
            .arg("interface='org.freedesktop.Notifications'")
            .arg("type='method_return'")
            .stdout(std::fs::File::create(&monitor_log).unwrap())
            .spawn()
            .unwrap(),
    );
    eventually("the connection", Duration::from_secs(10), async || {
        text(&client, "state").await.contains("all quiet")
    })
    .await;
    // The person left the sound muted: "make sure I hear it" unmutes it for the page.
    let sink_muted = || {
        let out = Command::new("pactl").args(["get-sink-mute", "alarm"]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).contains("yes")
    };
    assert!(
        Command::new("pactl").args(["set-sink-mute", "alarm", "1"]).status().unwrap().success()
    );
    assert!(sink_muted());
    let recording = record(&scratch, "first.wav");
    page(&url, &site.key, "disk", "Disk full on db-1").await;
    eventually("the notification", Duration::from_secs(10), async || {
        let log = std::fs::read_to_string(&monitor_log).unwrap_or_default();
        log.contains("Disk full on db-1")
            && log.contains("\"Acknowledge\"")
            && log.contains("\"urgency\"")
    })
    .await;
    switch_to_title(&client, "Reveille — #").await;
    eventually("the tray ringing (amber)", Duration::from_secs(5), async || {
        tray_shows(&scratch, "#F59E0B")
    })
    .await;
    eventually("the output unmuted for the page", Duration::from_secs(5), async || !sink_muted())
        .await;
    eventually("the alarm window", Duration::from_secs(10), async || {
        text(&client, "summary").await == "Disk full on db-1"
    })
    .await;
    let alarm = client.window().await.unwrap();
    eventually("the rendered runbook", Duration::from_secs(10), async || {
        // Back to the window's top level first: the frame entered on a try before may have been
        // replaced since (the window shows the page first and the runbook after), and a driver
        // left inside a discarded frame finds nothing ever again.
        let _ = client.switch_to_window(alarm.clone()).await;
        let Ok(frame) = client.find(Locator::Id("runbook")).await else { return false };
        let _ = frame.enter_frame().await;
        let heading = match client.find(Locator::Css("h1")).await {
            Ok(h) => h.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        let _ = client.enter_parent_frame().await;
        heading == "Payments runbook"
    })
    .await;
    let _ = client.switch_to_window(alarm.clone()).await;

    // Each window may do only its job: the alarm window may load its incident, but a call to a
    // settings command from it is refused by the app's capabilities, and changes nothing.
    let call = |command: &str, args: Value| {
        let script = r#"
            const [command, args, done] = arguments;
            window.__TAURI_INTERNALS__.invoke(command, args)
                .then(() => done("allowed"), (e) => done("refused: " + e));
        "#;
        client.execute_async(script, vec![json!(command), args])
    };
    let id = incident(&url, &site.token, "disk").await["id"].clone();
    assert_eq!(call("incident", json!({"id": id})).await.unwrap(), "allowed");
    let settings_before = std::fs::read_to_string(data.join("settings.json")).unwrap();
    let mut hijack = serde_json::from_str::<Value>(&settings_before).unwrap();
    hijack["on_duty"] = json!(false);
    for (command, args) in [
        ("save_settings", json!({"settings": hijack})),
        ("sign_out", json!({})),
        ("sign_in", json!({"server": "http://127.0.0.1:9", "token": "x"})),
        ("status", json!({})),
    ] {
        let answer = call(command, args).await.unwrap();
        let answer = answer.as_str().unwrap_or_default();
        assert!(
            answer.starts_with("refused") && answer.contains("not allowed"),
            "{command}: {answer}"
        );
    }
    assert_eq!(std::fs::read_to_string(data.join("settings.json")).unwrap(), settings_before);

    // Let the ramp play, then acknowledge in the window.
    tokio::time::sleep(Duration::from_secs(7)).await;
    let _ = Command::new("/usr/bin/import")
        .args(["-window", "root"])
        .arg(scratch.join("alarm.png"))
        .status();
    let acked_at = recording.started.elapsed();
    client.find(Locator::Id("ack")).await.unwrap().click().await.unwrap();
    eventually("the ack on the server", Duration::from_secs(10), async || {
        incident(&url, &site.token, "disk").await["state"] == "acknowledged"
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1800)).await;
    let samples = recording.stop();

    let onset =
        samples.chunks(RATE / 20).position(|w| rms(w) > 300.0).expect("the alarm was heard")
            * (RATE / 20);
    let window = RATE * 12 / 10;
    let levels: Vec<f64> = samples[onset..].chunks(window).take(4).map(rms).collect();
    assert!(
        levels.windows(2).all(|w| w[1] > w[0] * 1.05),
        "the alarm did not get louder: {levels:?}"
    );
    assert!(silent_after(&samples, acked_at), "still sounding a second after the ack");
    assert!(sink_muted(), "the output is muted again, as the person left it");

    let timeline = incident(&url, &site.token, "disk").await["timeline"].to_string();
    assert!(timeline.contains("delivered on alice-laptop"), "{timeline}");
    // The level at the moment of the receipt: the ramp starts at 30 % and moves within milliseconds.
    let level: u32 = timeline
        .split("ringing on alice-laptop at ")
        .nth(1)
        .and_then(|rest| rest.split('%').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no ringing receipt with a volume: {timeline}"));
    assert!((30..=35).contains(&level), "ringing at {level}%");
    assert!(timeline.contains("acked on alice-laptop"), "{timeline}");

    // Settings take effect without signing in again: the device's new name is on the next
    // page's receipts.
    client.switch_to_window(settings_window.clone()).await.unwrap();
    let device = client.find(Locator::Id("device")).await.unwrap();
    device.clear().await.unwrap();
    device.send_keys("alice-desk").await.unwrap();
    client.find(Locator::Id("save")).await.unwrap().click().await.unwrap();
    eventually("the settings saved", Duration::from_secs(10), async || {
        std::fs::read_to_string(data.join("settings.json")).unwrap().contains("alice-desk")
    })
    .await;

    // A second page, acknowledged from the command line, also stops the sound.
    assert!(
        Command::new("pactl").args(["set-sink-mute", "alarm", "0"]).status().unwrap().success()
    );
    let recording = record(&scratch, "second.wav");
    page(&url, &site.key, "cpu", "CPU on fire").await;
    let id = {
        let mut id = 0;
        eventually("the second page", Duration::from_secs(10), async || {
            id = incident(&url, &site.token, "cpu").await["id"].as_i64().unwrap();
            incident(&url, &site.token, "cpu").await["timeline"]
                .to_string()
                .contains("ringing on alice-desk")
        })
        .await;
        id
    };
    // Let it be heard for a moment (the recording misses the first tenth of a second).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let env = [("REVEILLE_SERVER", url.as_str()), ("REVEILLE_TOKEN", site.token.as_str())];
    assert!(reveille(&["ack", &id.to_string()], &env).status.success());
    let acked_at = recording.started.elapsed();
    tokio::time::sleep(Duration::from_millis(1800)).await;
    let samples = recording.stop();
    let loud_before =
        rms(&samples[..((acked_at.as_secs_f64() * RATE as f64) as usize).min(samples.len())]);
    assert!(
        loud_before > 300.0,
        "the second page did not ring: {loud_before} over {} samples",
        samples.len()
    );
    assert!(silent_after(&samples, acked_at), "still sounding a second after the CLI ack");

    // A third page, acknowledged with the notification's Acknowledge action.
    page(&url, &site.key, "mem", "Memory leak").await;
    let notification_id = {
        let mut found = None;
        eventually("the third notification", Duration::from_secs(10), async || {
            let log = std::fs::read_to_string(&monitor_log).unwrap_or_default();
            found = notification_id(&log, "Memory leak");
            found.is_some()
        })
        .await;
        found.unwrap()
    };
    // What the notification server sends when the person presses "Acknowledge". The app listens
    // for it on a connection of its own, so it is sent again until it has been heard.
    eventually("the ack from the notification", Duration::from_secs(15), async || {
        let invoked = Command::new("dbus-send")
            .args([
                "--session",
                "--type=signal",
                "/org/freedesktop/Notifications",
                "org.freedesktop.Notifications.ActionInvoked",
            ])
            .arg(format!("uint32:{notification_id}"))
            .arg("string:ack")
            .status()
            .unwrap();
        assert!(invoked.success());
        incident(&url, &site.token, "mem").await["state"] == "acknowledged"
    })
    .await;

    // The output goes away while a page rings (headphones unplugged, the sink removed): the app
    // tells the server the page is SILENT, so the ladder does not wait on a device nobody hears.
    page(&url, &site.key, "net", "Network down").await;
    eventually("the fourth page ringing", Duration::from_secs(10), async || {
        incident(&url, &site.token, "net").await["timeline"]
            .to_string()
            .contains("ringing on alice-desk")
    })
    .await;
    let pactl = |args: &[&str]| Command::new("pactl").args(args).status().unwrap().success();
    assert!(pactl(&["unload-module", "module-null-sink"]));
    eventually("the server hearing the page is silent", Duration::from_secs(15), async || {
        incident(&url, &site.token, "net").await["timeline"].to_string().contains("SILENT")
    })
    .await;
    let silent = incident(&url, &site.token, "net").await;
    assert_eq!(silent["silent"], json!(["alice"]), "{silent}");
    // The sink comes back for what follows.
    assert!(pactl(&["load-module", "module-null-sink", "sink_name=alarm"]));
    assert!(pactl(&["set-default-sink", "alarm"]));
    let net = silent["id"].to_string();
    assert!(reveille(&["ack", &net], &env).status.success());

    // Another pager besides Reveille: the person adds the team's Alertmanager in the settings
    // window; its firing alert rings with the same alarm and window, and acknowledging it there
    // makes a silence in Alertmanager.
    let am = reveille_tests::alertmanager::start_with(
        "route:\n  receiver: nobody\nreceivers:\n  - name: nobody\n",
    )
    .await;
    let alert = json!([{"labels": {"alertname": "DiskFull", "team": "db", "severity": "critical"},
        "annotations": {"summary": "Disk full on db-9", "runbook_url": "https://runbooks.example/disk"}}]);
    let http = reqwest::Client::new();
    let posted = http.post(format!("{}/api/v2/alerts", am.url)).json(&alert).send().await.unwrap();
    assert!(posted.status().is_success());
    client.switch_to_window(settings_window.clone()).await.unwrap();
    // The form opens, and Alertmanager is chosen (as a person's click and choice would).
    let choose = r#"
        document.getElementById("add-source-box").open = true;
        const kind = document.getElementById("source-kind");
        kind.value = "alertmanager";
        kind.dispatchEvent(new Event("change"));
    "#;
    client.execute(choose, vec![]).await.unwrap();
    for (id, value) in [
        ("source-name", "prometheus"),
        ("source-url", am.url.as_str()),
        ("source-email", "alice@example.com"),
        ("source-matchers", "team=\"db\""),
    ] {
        client.find(Locator::Id(id)).await.unwrap().send_keys(value).await.unwrap();
    }
    client.find(Locator::Id("add-source")).await.unwrap().click().await.unwrap();
    switch_to_title(&client, "Disk full on db-9").await;
    eventually("the Alertmanager alert's window", Duration::from_secs(10), async || {
        text(&client, "summary").await == "Disk full on db-9"
    })
    .await;
    eventually("the tray ringing for it", Duration::from_secs(5), async || {
        tray_shows(&scratch, "#F59E0B")
    })
    .await;
    let am_alarm = client.window().await.unwrap();
    client.switch_to_window(settings_window.clone()).await.unwrap();
    eventually("the pager's health in the settings", Duration::from_secs(10), async || {
        text(&client, "sources").await.contains("prometheus (Alertmanager): OK, 1 open")
    })
    .await;
    client.switch_to_window(am_alarm).await.unwrap();
    client.find(Locator::Id("ack")).await.unwrap().click().await.unwrap();
    eventually("the silence in Alertmanager", Duration::from_secs(10), async || {
        // Alertmanager asks for no credential: the empty Bearer is ignored.
        let silences = reveille_tests::get_json(&format!("{}/api/v2/silences", am.url), "").await;
        silences[0]["createdBy"] == "alice@example.com"
    })
    .await;
    eventually("the tray acknowledged (green)", Duration::from_secs(5), async || {
        tray_shows(&scratch, "#16A34A")
    })
    .await;
    // Pictures for the README: the settings with both pagers, and the tray's menu.
    client.switch_to_window(settings_window.clone()).await.unwrap();
    eventually("the silence shown in the settings", Duration::from_secs(10), async || {
        text(&client, "sources").await.contains("silenced")
    })
    .await;
    let shoot = |name: &str| {
        let _ = Command::new("/usr/bin/import")
            .args(["-window", "root"])
            .arg(scratch.join(name))
            .status();
    };
    shoot("settings-sources.png");
    let _ = Command::new("xdotool").args(["mousemove", "1262", "20", "click", "1"]).status();
    eventually("the tray menu open", Duration::from_secs(5), async || {
        Command::new("xdotool")
            .args(["search", "--onlyvisible", "--class", "reveille"])
            .output()
            .is_ok_and(|o| o.stdout.split(|b| *b == b'\n').filter(|l| !l.is_empty()).count() > 1)
    })
    .await;
    shoot("tray-menu.png");
    let _ = Command::new("xdotool").args(["key", "Escape"]).status();

    // The server goes away: the app reports the feed lost within its threshold.
    client.switch_to_window(settings_window).await.unwrap();
    server.kill();
    eventually("FEED LOST", Duration::from_secs(15), async || {
        text(&client, "state").await.contains("FEED LOST")
    })
    .await;
    eventually("the tray red", Duration::from_secs(10), async || tray_shows(&scratch, "#DC2626"))
        .await;
    let _ = Command::new("/usr/bin/import")
        .args(["-window", "root"])
        .arg(scratch.join("feed-lost.png"))
        .status();
    client.close().await.unwrap();

    // The next start finds the keyring locked (as it can be right after login): the app says so
    // in words, warns, and keeps trying instead of asking to sign in again.
    let lock = Command::new("dbus-send")
        .args(["--session", "--print-reply", "--dest=org.freedesktop.secrets"])
        .args(["/org/freedesktop/secrets", "org.freedesktop.Secret.Service.Lock"])
        .arg("array:objpath:/org/freedesktop/secrets/collection/login")
        .status()
        .unwrap();
    assert!(lock.success());
    let client = start_app(&webdriver, &desktop_binary()).await;
    switch_to_title(&client, "Reveille").await;
    eventually("the locked keyring named", Duration::from_secs(20), async || {
        let state = text(&client, "state").await;
        state.contains("keyring") && state.contains("NOT ring")
    })
    .await;
    eventually("the tray red", Duration::from_secs(10), async || tray_shows(&scratch, "#DC2626"))
        .await;
    client.close().await.unwrap();
    drop(driver);
    // Later suites in this session need an open keyring: a fresh daemon, unlocked.
    let _ = Command::new("pkill").args(["-f", "gnome-keyring-daemon"]).status();
    // Detached: it serves the rest of the session, and ends with the session's bus.
    let started = Command::new("sh")
        .arg("-c")
        .arg("echo -n reveille | gnome-keyring-daemon --foreground --unlock --components=secrets >/dev/null 2>&1 &")
        .status()
        .unwrap();
    assert!(started.success());
    eventually("the keyring back", Duration::from_secs(10), async || {
        // A locked keyring would hold secret-tool on its prompt: bounded by `timeout`.
        Command::new("timeout")
            .args(["5", "secret-tool", "search", "service", "dev.reveille.desktop"])
            .output()
            .is_ok_and(|o| o.status.success())
    })
    .await;
}

/// Where the package installs the app.
const INSTALLED: &str = "/usr/bin/reveille-desktop";

/// The `.deb` the test command builds with the Tauri bundler and installs with `dpkg -i`: the
/// installed program rings for a page, writes its login entry, and started from that entry (as a
/// session does at login) rings again without signing in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_installed_package_rings_and_starts_at_login() {
    let _session = SESSION.lock().await;
    let installed = Command::new("dpkg-query").args(["-W", "-f=${Status}", "reveille"]).output();
    let why = missing().or_else(|| {
        let ok = installed
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"));
        (!ok || !Path::new(INSTALLED).is_file()).then(|| {
            "the reveille package is not installed (scripts/test.sh builds and installs it)"
                .to_owned()
        })
    });
    if let Some(why) = why {
        assert!(std::env::var_os("CI").is_none(), "CI must run the package test: {why}");
        eprintln!("SKIPPED the package test: {why}");
        return;
    }
    let site = Site::with_files(CONFIG, &[("runbooks/payments.md", "# Payments\n")]);
    let server = site.start();
    let url = server.url.clone();
    let scratch = PathBuf::from(std::env::var("DESKTOP_SESSION_DIR").unwrap()).join("package");
    // A home of its own: nothing of the other test's settings or login entries.
    let (data, config) = (scratch.join("data"), scratch.join("config"));
    let app_dir = data.join("dev.reveille.desktop");
    std::fs::create_dir_all(&app_dir).unwrap();
    let settings = json!({"device": "alice-installed", "start_level": 0.5, "ramp_seconds": 2,
        "feed_lost_seconds": 60, "on_duty": true, "autostart": true});
    std::fs::write(app_dir.join("settings.json"), settings.to_string()).unwrap();
    let env = [("XDG_DATA_HOME", &data), ("XDG_CONFIG_HOME", &config)];

    let (port, native) = (free_port(), free_port());
    let mut driver = Command::new(which("tauri-driver").unwrap());
    driver.args(["--port", &port.to_string(), "--native-port", &native.to_string()]);
    driver.envs(env).stdout(Stdio::null());
    let driver = Proc(driver.spawn().unwrap());
    let webdriver = format!("http://127.0.0.1:{port}");
    eventually("tauri-driver", Duration::from_secs(20), async || {
        reqwest::get(format!("{webdriver}/status")).await.is_ok()
    })
    .await;
    let client = start_app(&webdriver, Path::new(INSTALLED)).await;
    switch_to_title(&client, "Reveille").await;
    client.find(Locator::Id("server")).await.unwrap().send_keys(&url).await.unwrap();
    client.find(Locator::Id("token")).await.unwrap().send_keys(&site.token).await.unwrap();
    client.find(Locator::Id("signin-button")).await.unwrap().click().await.unwrap();
    eventually("signed in", Duration::from_secs(20), async || {
        text(&client, "state").await.contains("all quiet")
    })
    .await;

    // The login entry names the installed program.
    let entry = config.join("autostart/dev.reveille.desktop.desktop");
    let exec = std::fs::read_to_string(&entry).unwrap_or_default();
    let exec = exec.lines().find_map(|l| l.strip_prefix("Exec=")).map(str::to_owned);
    assert_eq!(exec.as_deref(), Some(INSTALLED), "the autostart entry");

    // Page → sound, from the installed program.
    let heard = async |dedup: &str| {
        let recording = record(&scratch, &format!("{dedup}.wav"));
        page(&url, &site.key, dedup, "Installed and ringing").await;
        eventually("the page ringing", Duration::from_secs(15), async || {
            incident(&url, &site.token, dedup).await["timeline"]
                .to_string()
                .contains("ringing on alice-installed")
        })
        .await;
        // Heard: the recording so far (a WAV header, then 16-bit samples) ends in a loud tenth of
        // a second. Before the alarm it holds only the silence of the idle output.
        eventually("the alarm on the speakers", Duration::from_secs(10), async || {
            let bytes = std::fs::read(&recording.path).unwrap_or_default();
            let samples: Vec<i16> = bytes
                .get(44..)
                .unwrap_or_default()
                .chunks_exact(2)
                .map(|b| i16::from_le_bytes([b[0], b[1]]))
                .collect();
            rms(&samples[samples.len().saturating_sub(RATE / 10)..]) > 300.0
        })
        .await;
        drop(recording);
        let id = incident(&url, &site.token, dedup).await["id"].to_string();
        let env = [("REVEILLE_SERVER", url.as_str()), ("REVEILLE_TOKEN", site.token.as_str())];
        assert!(reveille(&["ack", &id], &env).status.success());
    };
    heard("installed").await;
    client.close().await.unwrap();
    drop(driver);
    // Gone for sure: a second start would otherwise hand over to it (one instance only).
    eventually("the first instance gone", Duration::from_secs(15), async || {
        !Command::new("pgrep")
            .args(["-f", "^/usr/bin/reveille-desktop"])
            .status()
            .is_ok_and(|s| s.success())
    })
    .await;

    // Logging in again: the session starts what the entry says; the token comes from the keyring.
    let started =
        Proc(Command::new(exec.unwrap()).envs(env).stdout(Stdio::null()).spawn().unwrap());
    heard("at-login").await;
    drop(started);
    drop(server);
}
