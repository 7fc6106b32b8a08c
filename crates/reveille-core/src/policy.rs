//! Escalation policies: ordered levels of who to page, and how long to wait before the next.

use std::collections::HashMap;

use jiff::{SignedDuration, Timestamp};

use crate::schedule::Schedule;

/// Whom a level pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    User(String),
    /// Whoever is on call in this schedule at the moment of paging.
    Schedule(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Level {
    pub targets: Vec<Target>,
    /// How long to wait for an acknowledgement before the next level.
    pub delay: SignedDuration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub levels: Vec<Level>,
    /// How many more times the whole ladder runs after the first time.
    pub repeat: u32,
}

/// The people a level pages at an instant.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Paging {
    /// Those who answer for the level.
    pub primaries: Vec<String>,
    /// Paged too, but never counted as the ones who answer.
    pub shadows: Vec<String>,
}

impl Paging {
    /// Everyone to page, primaries first, each once.
    pub fn everyone(&self) -> Vec<String> {
        let mut all = self.primaries.clone();
        for s in &self.shadows {
            if !all.contains(s) {
                all.push(s.clone());
            }
        }
        all
    }
}

impl Policy {
    /// A one-level policy that pages these users and never escalates.
    pub fn users(users: &[String]) -> Self {
        let targets = users.iter().cloned().map(Target::User).collect();
        Self { levels: vec![Level { targets, delay: SignedDuration::ZERO }], repeat: 0 }
    }

    /// Who `level` pages at `t`.
    pub fn paging(
        &self,
        level: usize,
        schedules: &HashMap<String, Schedule>,
        t: Timestamp,
    ) -> Paging {
        let mut out = Paging::default();
        let Some(level) = self.levels.get(level) else {
            return out;
        };
        for target in &level.targets {
            match target {
                Target::User(u) => push(&mut out.primaries, u),
                Target::Schedule(name) => {
                    if let Some(on_call) = schedules.get(name).map(|s| s.on_call(t)) {
                        if let Some(p) = &on_call.primary {
                            push(&mut out.primaries, p);
                        }
                        on_call.shadows.iter().for_each(|s| push(&mut out.shadows, s));
                    }
                }
            }
        }
        out.shadows.retain(|s| !out.primaries.contains(s));
        out
    }

    /// The step after (`level`, `round`): the next level, or the first one of the next round.
    pub fn after(&self, level: usize, round: u32) -> Option<(usize, u32)> {
        if level + 1 < self.levels.len() {
            Some((level + 1, round))
        } else if round < self.repeat {
            Some((0, round + 1))
        } else {
            None
        }
    }

    /// When (`level`, `round`) must hand over to the next step, or — for the last step with a
    /// delay — when the ladder is declared ended; None if nothing is left to happen.
    pub fn due(&self, level: usize, round: u32, paged_at: Timestamp) -> Option<Timestamp> {
        let delay = self.levels.get(level).map_or(SignedDuration::ZERO, |l| l.delay);
        if self.after(level, round).is_none() && delay.is_zero() {
            return None;
        }
        Some(paged_at + delay)
    }
}

fn push(list: &mut Vec<String>, user: &str) {
    if !list.iter().any(|u| u == user) {
        list.push(user.to_owned());
    }
}
