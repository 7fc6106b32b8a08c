//! Sample generators for each sound, as plain iterators of f32 samples (mono).

use std::f32::consts::TAU;
use std::path::Path;
use std::time::Duration;

use reveille_core::alarm::{Curve, Pattern};

pub const SAMPLE_RATE: u32 = 44_100;

/// The built-in page sounds a person can choose from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tone {
    /// Double beeps.
    #[default]
    Beeps,
    /// A rising and falling sweep.
    Siren,
}

impl Tone {
    pub fn parse(name: &str) -> Self {
        if name == "siren" { Self::Siren } else { Self::Beeps }
    }
}

/// What to play.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sound {
    /// A page in the default tone: rising along the curve, then the urgent pattern, until stopped.
    Page(Curve),
    /// A page in a chosen tone.
    PageWith(Curve, Tone),
    /// The feed is lost: a falling two-tone that sounds nothing like a page.
    FeedLost,
}

/// An endless generator of one sound.
#[derive(Debug, Clone)]
pub struct Synth {
    sound: Sound,
    n: u64,
}

impl Synth {
    pub fn new(sound: Sound) -> Self {
        Self { sound, n: 0 }
    }

    /// Time since the sound started.
    pub fn elapsed(&self) -> Duration {
        Duration::from_secs_f64(self.n as f64 / f64::from(SAMPLE_RATE))
    }

    /// The gain at this moment.
    pub fn gain(&self) -> f32 {
        gain_at(self.sound, self.elapsed())
    }
}

/// The gain of `sound` `elapsed` after it started.
pub fn gain_at(sound: Sound, elapsed: Duration) -> f32 {
    match sound {
        Sound::Page(curve) | Sound::PageWith(curve, _) => curve.at(elapsed).0,
        Sound::FeedLost => 0.8,
    }
}

/// A tone of `hz` between `from` and `to` seconds of a cycle, with 5 ms fades against clicks.
fn tone(t: f32, from: f32, to: f32, hz: f32) -> f32 {
    if t < from || t >= to {
        return 0.0;
    }
    let fade = ((t - from).min(to - t) / 0.005).min(1.0);
    fade * (TAU * hz * t).sin()
}

fn sample(sound: Sound, t: f32) -> (f32, f32) {
    match sound {
        Sound::Page(curve) => sample(Sound::PageWith(curve, Tone::Beeps), t),
        Sound::PageWith(curve, choice) => {
            let (gain, pattern) = curve.at(Duration::from_secs_f32(t));
            let wave = match (pattern, choice) {
                (Pattern::Rising, Tone::Beeps) => {
                    let c = t % 1.2;
                    tone(c, 0.0, 0.15, 880.0) + tone(c, 0.25, 0.40, 880.0)
                }
                (Pattern::Rising, Tone::Siren) => {
                    // A sweep from 600 to 850 Hz and back every 1.2 s; the phase is the integral of
                    // the frequency, so the sweep is smooth.
                    let c = t % 1.2;
                    let phase = 600.0 * c
                        + 250.0 * (1.0 - (std::f32::consts::PI * c / 1.2).cos()) * 1.2
                            / std::f32::consts::PI;
                    (TAU * phase).sin() * tone_envelope(c, 0.0, 1.2)
                }
                (Pattern::Urgent, _) => {
                    let c = t % 0.25;
                    tone(c, 0.0, 0.125, 988.0) + tone(c, 0.125, 0.25, 1319.0)
                }
            };
            (gain, wave)
        }
        Sound::FeedLost => {
            let c = t % 2.0;
            (0.8, tone(c, 0.0, 0.3, 660.0) + tone(c, 0.3, 0.6, 440.0))
        }
    }
}

impl Iterator for Synth {
    type Item = f32;

    fn next(&mut self) -> Option<f32> {
        let t = self.n as f32 / SAMPLE_RATE as f32;
        self.n += 1;
        let (gain, wave) = sample(self.sound, t);
        // Headroom: full gain is 0.9 of full scale.
        Some(0.9 * gain * wave)
    }
}

fn tone_envelope(t: f32, from: f32, to: f32) -> f32 {
    ((t - from).min(to - t) / 0.005).clamp(0.0, 1.0)
}

/// The first `length` of a sound.
pub fn render(sound: Sound, length: Duration) -> Vec<f32> {
    let count = (length.as_secs_f64() * f64::from(SAMPLE_RATE)) as usize;
    Synth::new(sound).take(count).collect()
}

/// Writes mono samples as a 16-bit WAV file.
pub fn write_wav(path: &Path, samples: &[f32]) -> crate::Result<()> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: SAMPLE_RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(path, spec)?;
    for s in samples {
        writer.write_sample((s.clamp(-1.0, 1.0) * f32::from(i16::MAX)) as i16)?;
    }
    writer.finalize()?;
    Ok(())
}
