//! Schedules: who is on call at an instant, and when that changes.
//!
//! A schedule has layers (rotations) and overrides. At any instant an active override wins;
//! otherwise the last layer that covers the instant decides. A layer hands over at the same
//! wall-clock time in the schedule's time zone whatever DST does, because shift boundaries are
//! computed on the civil clock and only then placed on the timeline.

use jiff::civil::{Date, DateTime, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Span, Timestamp, ToSpan};

/// How long one member's turn lasts, on the wall clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShiftLength {
    Hours(i64),
    Days(i64),
}

impl ShiftLength {
    fn span(self, times: i64) -> Span {
        match self {
            Self::Hours(h) => (h * times).hours(),
            Self::Days(d) => (d * times).days(),
        }
    }

    fn nominal(self) -> SignedDuration {
        match self {
            Self::Hours(h) => SignedDuration::from_hours(h),
            Self::Days(d) => SignedDuration::from_hours(24 * d),
        }
    }
}

/// A window a layer is limited to, e.g. weekdays 09:00–17:00, or nights 18:00–09:00 (a window
/// whose end is not after its start runs past midnight and belongs to the day it starts on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restriction {
    /// Empty means every day.
    pub days: Vec<Weekday>,
    pub from: Time,
    pub to: Time,
}

impl Restriction {
    fn day_allowed(&self, day: Weekday) -> bool {
        self.days.is_empty() || self.days.contains(&day)
    }

    pub(crate) fn covers(&self, local: DateTime) -> bool {
        let t = local.time();
        if self.from < self.to {
            (self.from..self.to).contains(&t) && self.day_allowed(local.weekday())
        } else if t >= self.from {
            self.day_allowed(local.weekday())
        } else {
            t < self.to && self.day_allowed(local.weekday().previous())
        }
    }

    /// The wall-clock edges of the window on and around `date`.
    fn edges(&self, date: Date) -> Vec<DateTime> {
        if !self.day_allowed(date.weekday()) {
            return Vec::new();
        }
        let end_day = if self.from < self.to { date } else { date.tomorrow().unwrap_or(date) };
        vec![date.to_datetime(self.from), end_day.to_datetime(self.to)]
    }
}

/// One rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    pub members: Vec<String>,
    /// Get every page this layer sends, but never count as the primary.
    pub shadows: Vec<String>,
    /// When the first member's first shift starts, on the schedule's wall clock.
    pub start: DateTime,
    pub shift: ShiftLength,
    pub restriction: Option<Restriction>,
}

/// Someone else takes the pager from `start` until `end`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    pub user: String,
    pub start: Timestamp,
    pub end: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub name: String,
    pub tz: TimeZone,
    pub layers: Vec<Layer>,
    /// Later overrides win over earlier ones.
    pub overrides: Vec<Override>,
}

/// Who holds the pager of a schedule at an instant.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OnCall {
    /// None when nobody covers the instant.
    pub primary: Option<String>,
    pub shadows: Vec<String>,
}

fn place(tz: &TimeZone, local: DateTime) -> Timestamp {
    // A time in a DST gap moves forward, a repeated time takes its first occurrence.
    tz.to_ambiguous_timestamp(local).compatible().unwrap_or(Timestamp::MAX)
}

impl Layer {
    fn shift_start(&self, tz: &TimeZone, k: i64) -> Timestamp {
        match self.start.checked_add(self.shift.span(k)) {
            Ok(local) => place(tz, local),
            Err(_) => {
                if k < 0 {
                    Timestamp::MIN
                } else {
                    Timestamp::MAX
                }
            }
        }
    }

    /// The number of the shift that `t` falls in, or None before the rotation starts.
    fn shift_index(&self, tz: &TimeZone, t: Timestamp) -> Option<i64> {
        let first = self.shift_start(tz, 0);
        if t < first {
            return None;
        }
        let nominal = self.shift.nominal().as_secs();
        let mut k = t.duration_since(first).as_secs() / nominal.max(1);
        while k > 0 && self.shift_start(tz, k) > t {
            k -= 1;
        }
        while self.shift_start(tz, k + 1) <= t {
            k += 1;
        }
        Some(k)
    }

    fn covers(&self, tz: &TimeZone, t: Timestamp) -> bool {
        self.restriction.as_ref().is_none_or(|r| r.covers(t.to_zoned(tz.clone()).datetime()))
    }

    /// The member holding this layer at `t`, if the layer covers `t`.
    pub fn member_at(&self, tz: &TimeZone, t: Timestamp) -> Option<&str> {
        if self.members.is_empty() || !self.covers(tz, t) {
            return None;
        }
        let k = self.shift_index(tz, t)?;
        Some(&self.members[k.rem_euclid(self.members.len() as i64) as usize])
    }

    /// Instants after `t` at which this layer may change hands or coverage.
    fn edges_after(&self, tz: &TimeZone, t: Timestamp, out: &mut Vec<Timestamp>) {
        let next = self.shift_index(tz, t).map_or(0, |k| k + 1);
        out.push(self.shift_start(tz, next));
        if let Some(r) = &self.restriction {
            let today = t.to_zoned(tz.clone()).date();
            for offset in -1..=8 {
                let Ok(day) = today.checked_add(offset.days()) else {
                    continue;
                };
                out.extend(
                    r.edges(day).into_iter().map(|local| place(tz, local)).filter(|e| *e > t),
                );
            }
        }
    }
}

impl Schedule {
    /// Who is on call at `t`.
    pub fn on_call(&self, t: Timestamp) -> OnCall {
        if let Some(o) = self.overrides.iter().rev().find(|o| o.start <= t && t < o.end) {
            return OnCall { primary: Some(o.user.clone()), shadows: Vec::new() };
        }
        for layer in self.layers.iter().rev() {
            if let Some(member) = layer.member_at(&self.tz, t) {
                let shadows = layer.shadows.iter().filter(|s| *s != member).cloned().collect();
                return OnCall { primary: Some(member.to_owned()), shadows };
            }
        }
        OnCall::default()
    }

    /// The first instant after `t` at which `on_call` changes, looking up to a year ahead.
    pub fn next_change(&self, t: Timestamp) -> Option<Timestamp> {
        let now = self.on_call(t);
        let horizon = t + SignedDuration::from_hours(24 * 366);
        let mut cursor = t;
        while cursor < horizon {
            let mut edges = Vec::new();
            for layer in &self.layers {
                layer.edges_after(&self.tz, cursor, &mut edges);
            }
            for o in &self.overrides {
                edges.extend([o.start, o.end].into_iter().filter(|e| *e > cursor));
            }
            let next = edges.into_iter().filter(|e| *e > cursor).min()?;
            if self.on_call(next) != now {
                return Some(next);
            }
            cursor = next;
        }
        None
    }

    /// The shifts from `from` until `until`: (start, end, who).
    pub fn shifts(&self, from: Timestamp, until: Timestamp) -> Vec<(Timestamp, Timestamp, OnCall)> {
        let mut out = Vec::new();
        let mut start = from;
        while start < until {
            let end = self.next_change(start).unwrap_or(until).min(until);
            out.push((start, end, self.on_call(start)));
            start = end;
        }
        out
    }
}

#[cfg(test)]
mod tests;
