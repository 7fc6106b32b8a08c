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

/// Whether the default output is muted (a receipt then says the page is silent).
pub fn muted() -> bool {
    pactl(&["get-sink-mute", "@DEFAULT_SINK@"]).is_some_and(|m| m.ends_with("yes"))
}

/// Opens a link in the system browser, never inside the app.
pub fn open_in_browser(url: &str) {
    if ["http://", "https://", "mailto:"].iter().any(|s| url.starts_with(s)) {
        let _ = Command::new("xdg-open").arg(url).spawn();
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
