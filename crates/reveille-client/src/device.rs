//! What a device must be able to do for the subscriber: the app (desktop, or a test) implements it.

use reveille_protocol::{FeedEvent, Incident};

/// How the alarm sounds right now, for the `ringing` receipt.
#[derive(Debug, Clone, PartialEq)]
pub struct Sound {
    /// Gain from 0.0 to 1.0.
    pub volume: Option<f32>,
    /// Muted, or no output at all: nobody can hear this device.
    pub silent: bool,
    pub output: Option<String>,
}

/// The platform side of a subscriber. Calls come from the subscriber's task; keep them quick.
pub trait Device: Send + Sync + 'static {
    /// Start the alarm (a page of high urgency is waiting).
    fn ring(&self);
    /// Stop the alarm: nothing is left to ring for.
    fn silence(&self);
    /// A native notification for a page (both urgencies).
    fn notify(&self, incident: &Incident);
    /// Show the alarm window for a ringing page.
    fn show(&self, incident: &Incident);
    /// The incident no longer needs anyone: take its notification and window away.
    fn withdraw(&self, incident: i64);
    /// How many pages wait without a notification or alarm window of their own, in a storm: keep
    /// one summary notification saying so, and remove it at 0. Only a device that shows every page
    /// some other way may ignore this.
    fn waiting(&self, count: usize) {
        let _ = count;
    }
    /// The feed has been lost for longer than the threshold (true), or is back (false).
    fn feed_lost(&self, lost: bool);
    /// Every entry of the feed as it arrives, before anything is decided about it (a terminal
    /// prints them all). Most devices act only on the calls above.
    fn entry(&self, entry: &FeedEvent) {
        let _ = entry;
    }
    /// The server refused the token (401 or 403): it is unknown, revoked or may not read the
    /// feed. The subscriber keeps trying (an admin may fix it); a terminal may rather stop.
    fn refused(&self, message: &str) {
        let _ = message;
    }
    /// How the alarm sounds now.
    fn sound(&self) -> Sound;
}
