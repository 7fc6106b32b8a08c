//! Personal notification rules: how a paged person is reached besides their devices, and when.
//!
//! The escalation level decides *who* is paged; these rules decide *how*. Devices (the desktop
//! app, ntfy phones, native push) follow the feed and hear every page at once; each rule adds a
//! channel after a delay, per urgency ("high: email after 2 min, Matrix after 5"). Low-urgency
//! steps that fall in the person's quiet hours (on their own clock) wait for the end of them;
//! high urgency ignores quiet hours. Whatever is still waiting when anyone acknowledges, snoozes
//! or resolves is dropped by the caller, which checks the incident before sending.

use jiff::civil::Time;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use reveille_protocol::Urgency;

use crate::schedule::Restriction;

/// A way to reach a person other than their devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Channel {
    Email,
    Matrix,
    /// A phone call (over the team's SIP line, or Twilio).
    Call,
    /// A text (through a GSM modem's gammu-smsd, or Twilio).
    Sms,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Matrix => "matrix",
            Self::Call => "call",
            Self::Sms => "sms",
        }
    }
}

/// One rule: this channel, this long after the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub channel: Channel,
    pub after: SignedDuration,
}

/// Hours on the person's wall clock when low-urgency steps wait (`22:00-07:00` runs past midnight).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuietHours {
    window: Restriction,
    tz: TimeZone,
}

impl QuietHours {
    pub fn new(from: Time, to: Time, tz: TimeZone) -> Self {
        Self { window: Restriction { days: Vec::new(), from, to }, tz }
    }

    /// `t`, or the end of the quiet hours `t` falls in.
    pub fn defer(&self, t: Timestamp) -> Timestamp {
        let local = t.to_zoned(self.tz.clone());
        if !self.window.covers(local.datetime()) {
            return t;
        }
        let date = if local.time() < self.window.to {
            local.date()
        } else {
            local.date().tomorrow().unwrap_or(local.date())
        };
        self.tz.to_ambiguous_timestamp(date.to_datetime(self.window.to)).compatible().unwrap_or(t)
    }
}

/// One person's rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotifyRules {
    pub high: Vec<Step>,
    pub low: Vec<Step>,
    pub quiet: Option<QuietHours>,
}

impl NotifyRules {
    /// Each channel to use for a page of `urgency` sent at `paged_at`, and when, earliest first.
    pub fn plan(&self, urgency: Urgency, paged_at: Timestamp) -> Vec<(Channel, Timestamp)> {
        let steps = match urgency {
            Urgency::High => &self.high,
            Urgency::Low => &self.low,
        };
        let mut plan: Vec<(Channel, Timestamp)> = steps
            .iter()
            .map(|step| {
                let due = paged_at.saturating_add(step.after).unwrap_or(paged_at);
                match (&self.quiet, urgency) {
                    (Some(quiet), Urgency::Low) => (step.channel, quiet.defer(due)),
                    _ => (step.channel, due),
                }
            })
            .collect();
        plan.sort_by_key(|(channel, due)| (*due, *channel));
        plan
    }
}

#[cfg(test)]
mod tests;
