//! The alarm's loudness curve: how loud a page rings, and in which pattern, at each moment
//! after it starts. Pure numbers; `reveille-alarm` turns them into sound.
//!
//! The level rises exponentially from the start level to full over the ramp, so each second
//! sounds a similar step louder (hearing is logarithmic); once at full it switches to the urgent
//! pattern and stays there until someone acts.

use std::time::Duration;

/// Which sound to play.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    /// Measured double beeps while the level rises.
    Rising,
    /// Fast alternating tones once the ramp is over.
    Urgent,
}

/// A rising alarm.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Curve {
    /// Gain at the first moment, from 0.0 to 1.0 (default 0.4).
    pub start: f32,
    /// Time to reach full loudness (default 30 s).
    pub ramp: Duration,
}

impl Default for Curve {
    fn default() -> Self {
        Self { start: 0.4, ramp: Duration::from_secs(30) }
    }
}

impl Curve {
    /// Gain (0.0–1.0) and pattern `elapsed` after the alarm started.
    pub fn at(&self, elapsed: Duration) -> (f32, Pattern) {
        let start = self.start.clamp(0.01, 1.0);
        if self.ramp.is_zero() || elapsed >= self.ramp {
            return (1.0, Pattern::Urgent);
        }
        let progress = elapsed.as_secs_f32() / self.ramp.as_secs_f32();
        (start * (1.0 / start).powf(progress), Pattern::Rising)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_at_the_set_level_rises_to_full_then_turns_urgent() {
        let curve = Curve::default();
        assert_eq!(curve.at(Duration::ZERO), (0.4, Pattern::Rising));
        let (mid, pattern) = curve.at(Duration::from_secs(15));
        assert!((mid - 0.4f32.sqrt()).abs() < 1e-4 && pattern == Pattern::Rising, "{mid}");
        assert_eq!(curve.at(Duration::from_secs(30)), (1.0, Pattern::Urgent));
        assert_eq!(curve.at(Duration::from_secs(600)), (1.0, Pattern::Urgent));
        let mut last = 0.0;
        for ms in (0..30_000).step_by(250) {
            let (gain, _) = curve.at(Duration::from_millis(ms));
            assert!(gain > last && gain <= 1.0, "rises at {ms} ms");
            last = gain;
        }
    }

    #[test]
    fn a_full_start_or_no_ramp_is_urgent_at_once() {
        let flat = Curve { start: 1.0, ramp: Duration::ZERO };
        assert_eq!(flat.at(Duration::ZERO), (1.0, Pattern::Urgent));
        let silent_start = Curve { start: 0.0, ramp: Duration::from_secs(10) };
        assert!(silent_start.at(Duration::ZERO).0 > 0.0, "never starts inaudible");
    }
}
