//! The alarm's sound: synthesised patterns whose loudness follows `reveille_core::alarm::Curve`,
//! played through rodio, or rendered to a WAV file so tests can measure what would be heard.
//!
//! No sound file is shipped: every sound is computed here (see assets/sounds/LICENSE).

mod player;
mod pulse;
mod synth;

pub use player::{Alarm, Status};
pub use synth::{SAMPLE_RATE, Sound, Synth, Tone, render, write_wav};

/// The one error type of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No output device could be opened: pages are silent on this machine.
    #[error("no audio output: {0}")]
    NoOutput(String),
    #[error("cannot write the recording: {0}")]
    Wav(#[from] hound::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
