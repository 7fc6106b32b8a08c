//! What a call says, rendered on this machine: espeak-ng speaks the text, sox makes it 8 kHz
//! mono 16-bit without dither (so the same text is the same samples every time). No cloud.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

use crate::{Error, Result};

/// The longest text said at once; a summary longer than this is cut.
pub const MAX_TEXT: usize = 2000;
/// How long rendering may take before it counts as failed.
const RENDERING: Duration = Duration::from_secs(20);

/// How a call speaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Voice {
    /// An espeak-ng voice (`en-us`, `de`, `en-gb+f3`…).
    pub voice: String,
    pub words_per_minute: u32,
}

impl Default for Voice {
    fn default() -> Self {
        Self { voice: "en-us".into(), words_per_minute: 160 }
    }
}

impl Voice {
    /// `text` as 8 kHz samples. The text is read as plain text (never as SSML), from stdin.
    pub async fn render(&self, text: &str) -> Result<Vec<i16>> {
        let text: String =
            text.chars().filter(|c| !c.is_control() || *c == '\n').take(MAX_TEXT).collect();
        tokio::time::timeout(RENDERING, self.run(&text))
            .await
            .map_err(|_| Error::Speech(format!("espeak-ng and sox took over {RENDERING:?}")))?
    }

    async fn run(&self, text: &str) -> Result<Vec<i16>> {
        let missing = |program: &'static str| {
            move |e: std::io::Error| Error::Speech(format!("cannot run {program}: {e}"))
        };
        let mut speak = Command::new("espeak-ng")
            .args([
                "--stdin",
                "--stdout",
                "-v",
                &self.voice,
                "-s",
                &self.words_per_minute.to_string(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(missing("espeak-ng"))?;
        let wav: Stdio = speak.stdout.take().expect("piped").try_into()?;
        let mut convert = Command::new("sox")
            .args(["-D", "-t", "wav", "-", "-t", "raw", "-r", "8000", "-c", "1", "-b", "16"])
            .args(["-e", "signed-integer", "-L", "-"])
            .stdin(wav)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(missing("sox"))?;
        let mut input = speak.stdin.take().expect("piped");
        input.write_all(text.as_bytes()).await?;
        drop(input);
        let mut raw = Vec::new();
        convert.stdout.take().expect("piped").read_to_end(&mut raw).await?;
        let spoke = speak.wait_with_output().await?;
        let converted = convert.wait_with_output().await?;
        for (program, out) in [("espeak-ng", spoke), ("sox", converted)] {
            if !out.status.success() {
                let why = String::from_utf8_lossy(&out.stderr);
                return Err(Error::Speech(format!(
                    "{program} failed ({}): {}",
                    out.status,
                    why.trim()
                )));
            }
        }
        if raw.is_empty() {
            return Err(Error::Speech(format!("espeak-ng said nothing for {text:?}")));
        }
        Ok(raw.chunks_exact(2).map(|s| i16::from_le_bytes([s[0], s[1]])).collect())
    }
}
