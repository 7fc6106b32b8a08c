//! The settings file: what the person chose, and never a secret (the token is in the keyring).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// The Reveille server; empty until the first sign-in.
    pub server: String,
    /// How this device names itself in receipts.
    pub device: String,
    /// The page sound: "beeps" or "siren".
    pub sound: String,
    /// Alarm level at the start, 0.05–1.0.
    pub start_level: f32,
    /// Seconds to full loudness.
    pub ramp_seconds: u64,
    pub snooze_minutes: u64,
    /// Seconds without the feed, while on duty, before the red tray and the warning.
    pub feed_lost_seconds: u64,
    pub on_duty: bool,
    /// While a page rings, unmute the default output and raise it to full; restore after.
    pub make_sure_i_hear_it: bool,
    /// Start Reveille at login.
    pub autostart: bool,
    /// The pagers besides Reveille (their credentials are in the keyring).
    pub sources: Vec<reveille_client::sources::SourceConfig>,
}

impl Default for Settings {
    fn default() -> Self {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "desktop".into());
        Self {
            server: String::new(),
            device: format!("{host}-reveille"),
            sound: "beeps".into(),
            start_level: 0.4,
            ramp_seconds: 30,
            snooze_minutes: 15,
            feed_lost_seconds: 60,
            on_duty: true,
            make_sure_i_hear_it: false,
            autostart: false,
            sources: Vec::new(),
        }
    }
}

impl Settings {
    pub fn file(dir: &Path) -> PathBuf {
        dir.join("settings.json")
    }

    pub fn load(dir: &Path) -> Self {
        std::fs::read(Self::file(dir))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let tmp = dir.join("settings.json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?)?;
        std::fs::rename(tmp, Self::file(dir))
    }

    /// The page sound, as chosen.
    pub fn page_sound(&self) -> reveille_alarm::Sound {
        reveille_alarm::Sound::PageWith(self.curve(), reveille_alarm::Tone::parse(&self.sound))
    }

    /// How the feed connection behaves, with the feed-lost threshold chosen here.
    pub fn policy(&self) -> reveille_client::conn::Policy {
        reveille_client::conn::Policy {
            lost_after: std::time::Duration::from_secs(self.feed_lost_seconds.max(5)),
            ..Default::default()
        }
    }

    pub fn curve(&self) -> reveille_core::alarm::Curve {
        reveille_core::alarm::Curve {
            start: self.start_level.clamp(0.05, 1.0),
            ramp: std::time::Duration::from_secs(self.ramp_seconds.min(600)),
        }
    }
}
