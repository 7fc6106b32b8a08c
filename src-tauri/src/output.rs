//! "Make sure I hear it": for the length of a page, unmute the default output and raise it to
//! full, then put it back as it was. Uses `pactl`, which PulseAudio and PipeWire both answer.

use std::process::Command;

/// How the default output was before the page.
#[derive(Debug, Clone, PartialEq)]
pub struct Saved {
    muted: bool,
    volume: String,
}

fn pactl(args: &[&str]) -> Option<String> {
    let out = Command::new("pactl").args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Unmutes and raises the default output; returns what to restore, None if it cannot.
pub fn raise() -> Option<Saved> {
    let muted = pactl(&["get-sink-mute", "@DEFAULT_SINK@"])?.ends_with("yes");
    // "Volume: front-left: 32768 /  50% / -18.06 dB, …": the first percentage is enough.
    let volume = pactl(&["get-sink-volume", "@DEFAULT_SINK@"])?
        .split('/')
        .nth(1)
        .map(|v| v.trim().to_owned())
        .filter(|v| v.ends_with('%'))?;
    pactl(&["set-sink-mute", "@DEFAULT_SINK@", "0"])?;
    pactl(&["set-sink-volume", "@DEFAULT_SINK@", "100%"])?;
    Some(Saved { muted, volume })
}

pub fn restore(saved: &Saved) {
    let _ = pactl(&["set-sink-volume", "@DEFAULT_SINK@", &saved.volume]);
    let _ = pactl(&["set-sink-mute", "@DEFAULT_SINK@", if saved.muted { "1" } else { "0" }]);
}

/// What the sound server says of the default output.
#[derive(Debug, Clone, PartialEq)]
pub enum Heard {
    /// A real output: its name, and whether it is muted.
    Output { name: String, muted: bool },
    /// No output that anyone can hear: none at all, or only PulseAudio's dummy `auto_null`
    /// (what it falls back to when the last real output is unplugged or removed).
    Nothing,
    /// No sound server to ask (`pactl` missing or not answering): say nothing either way.
    Unknown,
}

/// The default output now: a receipt says the page is silent when it is muted or gone.
pub fn heard() -> Heard {
    let Ok(out) = Command::new("pactl").arg("get-default-sink").output() else {
        return Heard::Unknown;
    };
    let name = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if !out.status.success() {
        // pactl ran: either no server (unknown) or a server with no sink at all.
        return match pactl(&["info"]) {
            Some(_) => Heard::Nothing,
            None => Heard::Unknown,
        };
    }
    if name.is_empty() || name == "auto_null" {
        return Heard::Nothing;
    }
    match pactl(&["get-sink-mute", &name]) {
        Some(mute) => Heard::Output { muted: mute.ends_with("yes"), name },
        // The sink named as default does not exist (removed a moment ago).
        None => Heard::Nothing,
    }
}

/// Opens a link in the system browser, never inside the app.
pub fn open_in_browser(url: &str) {
    if ["http://", "https://", "mailto:"].iter().any(|s| url.starts_with(s)) {
        let mut open = Command::new("xdg-open");
        // The app turned GL off for itself only (see main.rs): not for the browser.
        if std::env::var_os(crate::WITHOUT_GL).is_some() {
            open.env_remove("GDK_GL").env_remove(crate::WITHOUT_GL);
        }
        let _ = open.arg(url).spawn();
    }
}

/// Starts the app at login (an XDG autostart entry), or stops doing so.
pub fn autostart(enabled: bool) -> std::io::Result<()> {
    let dir = std::env::var_os("XDG_CONFIG_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".config")))
        .ok_or_else(|| std::io::Error::other("no home directory"))?
        .join("autostart");
    let file = dir.join("dev.reveille.desktop.desktop");
    if !enabled {
        return match std::fs::remove_file(&file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
    }
    std::fs::create_dir_all(&dir)?;
    let exe = std::env::current_exe()?;
    std::fs::write(
        file,
        format!(
            "[Desktop Entry]\nType=Application\nName=Reveille\nExec={}\nX-GNOME-Autostart-enabled=true\n",
            exe.display()
        ),
    )
}
