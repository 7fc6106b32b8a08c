//! The alarm rendered to a WAV file, read back and measured: it gets louder across the ramp,
//! then plays the urgent pattern at full loudness.

use std::time::Duration;

use reveille_alarm::{SAMPLE_RATE, Sound, render, write_wav};
use reveille_core::alarm::Curve;

fn rms(samples: &[i16]) -> f64 {
    let sum: f64 = samples.iter().map(|s| f64::from(*s).powi(2)).sum();
    (sum / samples.len() as f64).sqrt()
}

#[test]
fn loudness_rises_monotonically_across_the_ramp() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alarm.wav");
    let curve = Curve { start: 0.4, ramp: Duration::from_secs(30) };
    write_wav(&path, &render(Sound::Page(curve), Duration::from_secs(36))).unwrap();

    let mut reader = hound::WavReader::open(&path).unwrap();
    assert_eq!(reader.spec().sample_rate, SAMPLE_RATE);
    let samples: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
    // One window per 1.2 s beep cycle, so every window holds the same pattern.
    let window = (1.2 * f64::from(SAMPLE_RATE)) as usize;
    let levels: Vec<f64> = samples.chunks(window).take(25).map(rms).collect();
    assert!(levels.windows(2).all(|w| w[1] > w[0]), "not rising: {levels:?}");
    let ratio = levels[24] / levels[0];
    assert!((2.0..2.6).contains(&ratio), "from 40 % to full is about 2.5x: {ratio}");

    let urgent = &samples[31 * SAMPLE_RATE as usize..35 * SAMPLE_RATE as usize];
    assert!(
        rms(urgent) > levels[24],
        "the urgent pattern is at least as loud as the end of the ramp"
    );
    assert!(
        urgent.iter().map(|s| s.unsigned_abs()).max().unwrap() > 29_000,
        "full loudness is near full scale"
    );
}

#[test]
fn the_siren_rises_too() {
    use reveille_alarm::Tone;
    let curve = Curve { start: 0.4, ramp: Duration::from_secs(12) };
    let samples = render(Sound::PageWith(curve, Tone::Siren), Duration::from_secs(12));
    let to_i16: Vec<i16> = samples.iter().map(|s| (s * f32::from(i16::MAX)) as i16).collect();
    let levels: Vec<f64> =
        to_i16.chunks((1.2 * f64::from(SAMPLE_RATE)) as usize).take(10).map(rms).collect();
    assert!(levels.windows(2).all(|w| w[1] > w[0]), "{levels:?}");
    assert_ne!(samples, render(Sound::Page(curve), Duration::from_secs(12)), "a different sound");
}

#[test]
fn the_feed_lost_sound_is_not_the_page_sound() {
    let lost = render(Sound::FeedLost, Duration::from_secs(2));
    let page = render(Sound::Page(Curve::default()), Duration::from_secs(2));
    assert_ne!(lost, page);
    assert!(lost.iter().any(|s| s.abs() > 0.5));
}
