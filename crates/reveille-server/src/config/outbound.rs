//! Settings of the channels that reach outside: outbound webhooks.

use std::collections::HashSet;
use std::path::PathBuf;

use serde::Deserialize;

use super::Settings;
use super::check::{Reporter, Seg, valid_name};

/// One receiver of signed incident events (`[[webhooks]]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    pub name: String,
    pub url: String,
    /// A file (relative to the config file, private to Reveille's user) holding the signing
    /// secret: secrets never go in the config.
    pub secret_file: PathBuf,
    /// Only incidents of these services; all when empty.
    #[serde(default)]
    pub services: Vec<String>,
}

/// The shortest signing secret taken, in bytes.
pub const MIN_SECRET: usize = 16;

impl Settings {
    /// Makes each webhook's secret file private to this user (0600), saying so when it was not:
    /// a secret others can read is a secret others can sign with.
    pub fn tighten_webhook_secrets(&self) {
        use std::os::unix::fs::PermissionsExt;
        for hook in &self.webhooks {
            let path = self.dir.join(&hook.secret_file);
            let Ok(meta) = std::fs::metadata(&path) else { continue };
            let mode = meta.permissions().mode();
            if mode & 0o077 != 0 {
                tracing::warn!(file = %path.display(), mode = format!("{:o}", mode & 0o777), "webhook secret was readable by others; made it 0600");
                if let Err(e) =
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                {
                    tracing::error!(file = %path.display(), error = %e, "cannot make the webhook secret private");
                }
            }
        }
    }

    /// The signing secret of a webhook, read now (so a rotated file takes effect at once).
    pub fn webhook_secret(&self, hook: &Webhook) -> Result<Vec<u8>, String> {
        let path = self.dir.join(&hook.secret_file);
        let text = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let secret = text.trim_ascii().to_vec();
        if secret.len() < MIN_SECRET {
            return Err(format!(
                "{} holds {} bytes; a signing secret needs at least {MIN_SECRET}",
                path.display(),
                secret.len()
            ));
        }
        Ok(secret)
    }
}

/// Validates `[[webhooks]]`.
pub(super) fn validate(settings: &Settings, r: &mut Reporter) {
    let mut names = HashSet::new();
    for (i, hook) in settings.webhooks.iter().enumerate() {
        let at = |k: &'static str| vec![Seg::Key("webhooks"), Seg::Index(i), Seg::Key(k)];
        if !valid_name(&hook.name) || !names.insert(hook.name.as_str()) {
            let message = format!("{:?} must be a unique name (letters, digits, - _ .)", hook.name);
            r.report(at("name"), message);
        }
        if !(hook.url.starts_with("https://") || hook.url.starts_with("http://"))
            || reqwest::Url::parse(&hook.url).is_err()
        {
            r.report(at("url"), format!("{:?} is not an http(s) URL", hook.url));
        }
        if let Err(e) = settings.webhook_secret(hook) {
            r.report(at("secret_file"), e);
        }
        for (j, service) in hook.services.iter().enumerate() {
            if settings.service(service).is_none() {
                let mut path = at("services");
                path.push(Seg::Index(j));
                r.report(path, format!("unknown service {service:?} (not in [[services]])"));
            }
        }
    }
}
