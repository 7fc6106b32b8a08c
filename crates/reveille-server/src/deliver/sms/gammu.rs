//! gammu-smsd's files service: a text is a file dropped in its outbox (written aside, then
//! renamed in, so it is never read half-written); what the modem received are files in its
//! inbox, read and removed by a job ([`Inbox`]), which also notes on the timeline what the
//! modem sent or could not send. File names (gammu's own format) carry the number, and ours the
//! incidents: `OUTA20261207_031500_00_+4915112345678_rv12-13.txt`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Timestamp;
use reveille_core::Command;

use crate::AppState;
use crate::config::telephony::{SmsSettings, normalise};
use crate::deliver::notify::Failure;

/// How often the inbox is looked at.
const POLL: Duration = Duration::from_secs(1);

fn dir(base: &Path, path: &Path) -> PathBuf {
    base.join(path)
}

/// Drops a text for `to` in gammu's outbox; the file's name.
pub fn send(
    base: &Path,
    sms: &SmsSettings,
    to: &str,
    body: &str,
    tag: &str,
    now: Timestamp,
) -> Result<String, Failure> {
    let when = now.strftime("%Y%m%d_%H%M%S");
    let unique = now.as_millisecond() % 100;
    let name = format!("OUTA{when}_{unique:02}_{to}_rv{tag}.txt");
    let outbox = dir(base, &sms.outbox);
    let aside = outbox.join(format!(".{name}.part"));
    // UTF-16LE with its BOM: gammu reads it as Unicode whatever its locale.
    let mut bytes = vec![0xFF, 0xFE];
    bytes.extend(body.encode_utf16().flat_map(u16::to_le_bytes));
    let written =
        std::fs::write(&aside, &bytes).and_then(|()| std::fs::rename(&aside, outbox.join(&name)));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&aside);
        let why = format!("cannot write to gammu's outbox {}: {e}", outbox.display());
        return Err(Failure::transient(why));
    }
    // On the disk before it counts as handed over (gammu may send it meanwhile: a failed sync
    // is tried again, a text twice rather than none).
    super::disk::sync(&outbox).map_err(Failure::transient)?;
    Ok(name)
}

/// A received text's file: its sender, from gammu's name `IN<date>_<time>_<serial>_<sender>_<part>.txt`.
pub fn sender(name: &str) -> Option<&str> {
    let rest = name.strip_prefix("IN")?.strip_suffix(".txt")?;
    let parts: Vec<&str> = rest.split('_').collect();
    (parts.len() >= 5).then(|| parts[3]).filter(|s| !s.is_empty())
}

/// A text file's content: UTF-16 with a BOM, or UTF-8.
pub fn decode(bytes: &[u8]) -> String {
    match bytes {
        [0xFF, 0xFE, rest @ ..] => {
            let units: Vec<u16> =
                rest.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
            String::from_utf16_lossy(&units)
        }
        [0xFE, 0xFF, rest @ ..] => {
            let units: Vec<u16> =
                rest.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
            String::from_utf16_lossy(&units)
        }
        _ => String::from_utf8_lossy(bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes))
            .into_owned(),
    }
}

/// The number and incidents of one of our outbox files: `OUTA…_<number>_rv12-13.txt`.
fn ours(name: &str) -> Option<(String, Vec<i64>)> {
    let stem = name.strip_prefix("OUT")?.strip_suffix(".txt")?;
    let (head, tag) = stem.rsplit_once("_rv")?;
    let number = head.rsplit('_').next()?.to_owned();
    Some((number, tag.split('-').filter_map(|n| n.parse().ok()).collect()))
}

/// gammu's inbox and its sent and error folders, as a job.
pub struct Inbox;

#[async_trait::async_trait]
impl crate::jobs::Job for Inbox {
    fn name(&self) -> &'static str {
        "sms"
    }

    async fn step(&mut self, state: &AppState) -> Result<(), String> {
        let settings = state.settings();
        let Some(sms) = &settings.sms else { return Ok(()) };
        let inbox = dir(&settings.dir, &sms.inbox);
        let mut names: Vec<String> = std::fs::read_dir(&inbox)
            .map_err(|e| format!("cannot read gammu's inbox {}: {e}", inbox.display()))?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with("IN") && n.ends_with(".txt"))
            .collect();
        names.sort();
        for name in names {
            received(state, &inbox, &name).await?;
        }
        for (folder, sent) in [(&sms.sent, true), (&sms.error, false)] {
            if let Some(folder) = folder {
                outcomes(state, &dir(&settings.dir, folder), sent).await;
            }
        }
        Ok(())
    }

    async fn until_due(&mut self, _state: &AppState) {
        tokio::time::sleep(POLL).await;
    }
}

/// One received text: claimed (renamed, so one node of several reads it), acted on, removed.
async fn received(state: &AppState, inbox: &Path, name: &str) -> Result<(), String> {
    let claimed = inbox.join(format!(".{name}.reveille"));
    if std::fs::rename(inbox.join(name), &claimed).is_err() {
        return Ok(()); // another node took it
    }
    let text = decode(&std::fs::read(&claimed).unwrap_or_default());
    let from = sender(name).unwrap_or_default().to_owned();
    match super::replies::handle(state, &from, text.trim(), "gammu").await {
        Ok(answer) => {
            let _ = std::fs::remove_file(&claimed);
            if let Some(answer) = answer {
                let settings = state.settings();
                let sms = settings.sms.as_ref().expect("the job runs with [sms]");
                // To the number as the person's entry writes it (the modem saw 0049… for +49…).
                let to = settings
                    .user_by_phone(&from)
                    .and_then(|u| {
                        u.phone.list().into_iter().find(|p| normalise(p) == normalise(&from))
                    })
                    .unwrap_or_else(|| from.clone());
                let sent = send(&settings.dir, sms, &to, &answer, "reply", state.clock.now());
                if let Err(e) = sent {
                    tracing::error!(error = %e.why, %to, "cannot answer a text");
                }
            }
            Ok(())
        }
        // Read again at the next look.
        Err(e) => {
            let _ = std::fs::rename(&claimed, inbox.join(name));
            Err(format!("cannot act on a text now: {e}"))
        }
    }
}

/// Our texts the modem sent (`sent`) or could not (`error`): noted once on their incidents.
async fn outcomes(state: &AppState, folder: &Path, sent: bool) {
    let Ok(entries) = std::fs::read_dir(folder) else { return };
    for name in entries.filter_map(|e| e.ok()?.file_name().into_string().ok()) {
        let Some((number, ids)) = ours(&name) else { continue };
        let settings = state.settings();
        let Some(user) = settings.user_by_phone(&number) else { continue };
        let (kind, message) = if sent {
            ("sms_transmitted", format!("The modem sent the text to {number} ({name})"))
        } else {
            (
                "sms_error",
                format!(
                    "The modem could not send the text to {number} ({name}); see gammu-smsd's log"
                ),
            )
        };
        for id in ids {
            let command = Command::Note { kind: kind.into(), message: message.clone() };
            if let Err(e) = state.store.command(id, &user.name, command, state.clock.now()).await {
                tracing::warn!(error = %e, "cannot note what the modem did with a text");
            }
        }
        let _ = std::fs::rename(folder.join(&name), folder.join(format!("{name}.noted")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gammus_file_names_carry_the_sender_and_ours_the_incidents() {
        assert_eq!(sender("IN20261207_120000_00_+4915112345678_00.txt"), Some("+4915112345678"));
        assert_eq!(sender("IN20261207_120000_00__00.txt"), None);
        assert_eq!(sender("OUT+1.txt"), None);
        let ours = ours("OUTA20261207_031500_07_+4915112345678_rv12-13.txt");
        assert_eq!(ours, Some(("+4915112345678".into(), vec![12, 13])));
    }

    #[test]
    fn texts_decode_from_utf16_and_utf8() {
        let utf16: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain("4 12 Ü".encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        assert_eq!(decode(&utf16), "4 12 Ü");
        assert_eq!(decode("ack 3".as_bytes()), "ack 3");
    }
}
