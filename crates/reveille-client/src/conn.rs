//! The feed connection as an explicit state machine: connecting, up, or waiting to retry with
//! capped exponential backoff and jitter. The feed counts as heard from the first entry or
//! heartbeat of a stream, not from its opening: a stream the server drops after `open` hears
//! nothing. A watchdog drops a connection that has been silent for
//! three heartbeats; a feed down longer than the threshold is reported once as lost, and once as
//! back when it returns; a jump of the wall clock past the monotonic one (the laptop slept)
//! forces a fresh connection. Time comes in with every event: no clock is read here.

use std::time::Duration;

/// The tunables.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    pub base: Duration,
    pub cap: Duration,
    /// ± this fraction of each delay, so that many devices do not reconnect in step.
    pub jitter: f64,
    /// Nothing received for this long means the connection is dead (three heartbeats).
    pub silence: Duration,
    /// Down for this long: tell the user, loudly.
    pub lost_after: Duration,
    /// The wall clock moving this much more than the monotonic one means the machine slept.
    pub sleep_gap: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(30),
            jitter: 0.2,
            silence: Duration::from_secs(45),
            lost_after: Duration::from_secs(60),
            sleep_gap: Duration::from_secs(10),
        }
    }
}

/// A moment, as the driver sees it: monotonic time since it started, and the wall clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    pub mono: Duration,
    pub wall: jiff::Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Event {
    /// The stream is open (the server answered 200).
    Opened,
    /// Anything arrived: an entry, a heartbeat.
    Frame { id: Option<i64> },
    /// The stream's `open` frame: the newest feed id when the stream started.
    Head(i64),
    /// The connection failed or ended.
    Closed,
    /// Time passes.
    Tick,
}

/// What the driver must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Open a stream, resuming after this id.
    Connect { after: Option<i64> },
    /// Drop the current stream (dead, or from before a sleep).
    Drop,
    /// The feed has been down longer than the threshold.
    Lost,
    /// It is back.
    Restored,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Link {
    Connecting,
    Up { last_frame: Duration },
    Waiting { until: Duration },
}

#[derive(Debug, Clone)]
pub struct Connection {
    policy: Policy,
    pub link: Link,
    /// Failures in a row, for the backoff.
    attempt: u32,
    /// When the feed last stopped being up (None while up).
    down_since: Option<Duration>,
    lost: bool,
    pub last_id: Option<i64>,
    last: Option<Now>,
}

impl Connection {
    /// Starts connecting at `now`; the first effect is to connect.
    pub fn start(policy: Policy, last_id: Option<i64>, now: Now) -> (Self, Effect) {
        let conn = Self {
            policy,
            link: Link::Connecting,
            attempt: 0,
            down_since: Some(now.mono),
            lost: false,
            last_id,
            last: Some(now),
        };
        (conn, Effect::Connect { after: last_id })
    }

    /// New tunables, from the next event on.
    pub fn set_policy(&mut self, policy: Policy) {
        self.policy = policy;
    }

    pub fn is_lost(&self) -> bool {
        self.lost
    }

    /// The delay before retry number `attempt`, with `random` in [0, 1) for the jitter.
    pub fn backoff(&self, attempt: u32, random: f64) -> Duration {
        let exp = self.policy.base.saturating_mul(1u32 << attempt.min(16));
        let capped = exp.min(self.policy.cap);
        capped.mul_f64(1.0 + self.policy.jitter * (2.0 * random - 1.0))
    }

    /// Applies an event at `now`; `random` in [0, 1) feeds the jitter.
    pub fn on(&mut self, event: Event, now: Now, random: f64) -> Vec<Effect> {
        let mut effects = Vec::new();
        let slept = self.last.is_some_and(|last| {
            let wall = now.wall.duration_since(last.wall).as_secs_f64();
            let mono = now.mono.saturating_sub(last.mono).as_secs_f64();
            wall - mono > self.policy.sleep_gap.as_secs_f64()
        });
        self.last = Some(now);
        if slept && event == Event::Tick {
            // Whatever the stream looks like, it is from before the sleep: start afresh.
            if matches!(self.link, Link::Up { .. }) {
                effects.push(Effect::Drop);
                self.down_since = Some(now.mono);
            }
            self.attempt = 0;
            self.link = Link::Connecting;
            effects.push(Effect::Connect { after: self.last_id });
            return effects;
        }
        match (event, self.link) {
            // Open is not yet heard: a server that answers and then drops the stream (one that
            // cannot read the feed, say) must not hide that the feed is lost.
            (Event::Opened, _) => self.link = Link::Up { last_frame: now.mono },
            (Event::Frame { id }, Link::Up { .. }) => {
                self.link = Link::Up { last_frame: now.mono };
                if id.is_some() {
                    self.last_id = id;
                }
                self.attempt = 0;
                self.down_since = None;
                if std::mem::take(&mut self.lost) {
                    effects.push(Effect::Restored);
                }
            }
            (Event::Frame { .. }, _) => {}
            (Event::Head(head), Link::Up { .. }) => {
                self.link = Link::Up { last_frame: now.mono };
                // Nothing seen yet: resume from here, so that a drop before the first entry
                // loses nothing committed meanwhile.
                self.last_id.get_or_insert(head);
            }
            (Event::Head(_), _) => {}
            (Event::Closed, Link::Up { .. } | Link::Connecting) => {
                self.down_since.get_or_insert(now.mono);
                let wait = self.backoff(self.attempt, random);
                self.attempt += 1;
                self.link = Link::Waiting { until: now.mono + wait };
            }
            (Event::Closed, Link::Waiting { .. }) => {}
            (Event::Tick, Link::Up { last_frame })
                if now.mono.saturating_sub(last_frame) >= self.policy.silence =>
            {
                effects.push(Effect::Drop);
                self.down_since = Some(now.mono);
                let wait = self.backoff(self.attempt, random);
                self.attempt += 1;
                self.link = Link::Waiting { until: now.mono + wait };
            }
            (Event::Tick, Link::Waiting { until }) if now.mono >= until => {
                self.link = Link::Connecting;
                effects.push(Effect::Connect { after: self.last_id });
            }
            (Event::Tick, _) => {}
        }
        if let Some(since) = self.down_since
            && !self.lost
            && now.mono.saturating_sub(since) >= self.policy.lost_after
        {
            self.lost = true;
            effects.push(Effect::Lost);
        }
        effects
    }
}

#[cfg(test)]
mod tests;
