//! The desktop's state as one pure reducer: from whether the person is signed in and on duty,
//! whether a page rings, a feed is lost, the keyring refuses, or a test alarm plays, it decides
//! what the tray shows and what the speakers play. Pages and feeds come from several sources
//! (Reveille's feed, PagerDuty, ...), each named by a small number: the alarm stops only when no
//! source rings, and any lost feed is said. The app feeds it events and carries out the
//! difference; nothing here touches a window, a sound card or a clock.

/// What the tray shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Look {
    Quiet,
    Ringing,
    /// The last page was answered, and nothing has happened since.
    Acknowledged,
    FeedLost,
    OffDuty,
    SignedOut,
}

impl Look {
    /// The words of the tray's first menu line and tooltip.
    pub fn label(self) -> &'static str {
        match self {
            Self::Quiet => "On duty — all quiet",
            Self::Ringing => "RINGING — a page is waiting",
            Self::Acknowledged => "Acknowledged",
            Self::FeedLost => "FEED LOST — you may miss pages",
            Self::OffDuty => "Off duty",
            Self::SignedOut => "Not signed in",
        }
    }
}

/// What the speakers play.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sound {
    Nothing,
    /// The rising page alarm.
    Page,
    /// The page alarm, asked for from the tray or settings to check the speakers.
    Test,
    /// The warning that this computer can no longer hear the server.
    FeedLost,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Following this source: signed in to the Reveille server (0), or a pager added.
    Added(Source),
    OnDuty(bool),
    /// The saved sign-in cannot be read from the keyring now (true), or can again (false).
    KeyringProblem(bool),
    /// A page of high urgency waits, from this source.
    Ring(Source),
    /// Nothing is left to ring for from this source.
    Silence(Source),
    /// This source's feed has been lost for longer than its threshold (true), or is back.
    FeedLost(Source, bool),
    /// No longer following this source (signed out, or removed from the settings): it neither
    /// rings nor is lost.
    Removed(Source),
    TestStarted,
    TestEnded,
}

/// Which source: 0 is the Reveille server, the others are the pagers added in the settings.
pub type Source = u8;

/// Sources a desktop follows at most.
pub const SOURCES: u8 = 64;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct State {
    /// The sources followed, a bit each.
    followed: u64,
    pub on_duty: bool,
    pub keyring_problem: bool,
    /// The sources ringing, a bit each.
    ringing: u64,
    /// The sources whose feed is lost, a bit each.
    lost: u64,
    pub testing: bool,
    answered: bool,
}

impl State {
    pub fn new(on_duty: bool) -> Self {
        Self { on_duty, ..Self::default() }
    }

    /// Applies an event.
    pub fn on(&mut self, event: Event) {
        match event {
            Event::Added(source) => self.followed |= bit(source),
            Event::OnDuty(on) => self.on_duty = on,
            Event::KeyringProblem(problem) => self.keyring_problem = problem,
            Event::Ring(source) => {
                self.ringing |= bit(source);
                self.testing = false;
                self.answered = false;
            }
            Event::Silence(source) => {
                let was = self.ringing();
                self.ringing &= !bit(source);
                self.answered = was && !self.ringing();
            }
            Event::FeedLost(source, true) => self.lost |= bit(source),
            Event::FeedLost(source, false) => self.lost &= !bit(source),
            Event::Removed(source) => {
                self.followed &= !bit(source);
                self.ringing &= !bit(source);
                self.lost &= !bit(source);
                self.answered &= self.followed != 0;
                self.testing &= self.followed != 0;
            }
            // A test never covers a real page.
            Event::TestStarted => self.testing = !self.ringing(),
            Event::TestEnded => self.testing = false,
        }
    }

    /// Signed in to a Reveille server, or following at least one other pager.
    pub fn signed_in(&self) -> bool {
        self.followed != 0
    }

    /// A page rings, from any source.
    pub fn ringing(&self) -> bool {
        self.ringing != 0
    }

    /// A feed is lost, of any source.
    pub fn lost(&self) -> bool {
        self.lost != 0
    }

    pub fn look(&self) -> Look {
        // A keyring that will not give the token back means no pages: as red as a lost feed.
        if self.on_duty && self.keyring_problem {
            Look::FeedLost
        } else if !self.signed_in() {
            Look::SignedOut
        } else if !self.on_duty {
            Look::OffDuty
        } else if self.lost() {
            Look::FeedLost
        } else if self.ringing() {
            Look::Ringing
        } else if self.answered {
            Look::Acknowledged
        } else {
            Look::Quiet
        }
    }

    pub fn sound(&self) -> Sound {
        // A page always has the speakers, even over the feed-lost warning.
        if self.ringing() {
            Sound::Page
        } else if self.testing {
            Sound::Test
        } else if self.lost() && self.on_duty && self.signed_in() {
            Sound::FeedLost
        } else {
            Sound::Nothing
        }
    }
}

fn bit(source: Source) -> u64 {
    1 << (source % SOURCES)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn after(events: &[Event]) -> State {
        let mut state = State::new(true);
        for &event in events {
            state.on(event);
        }
        state
    }

    #[test]
    fn a_page_rings_over_a_lost_feed_and_the_warning_returns_after_it() {
        let mut state = after(&[Event::Added(0), Event::FeedLost(0, true)]);
        assert_eq!((state.look(), state.sound()), (Look::FeedLost, Sound::FeedLost));
        state.on(Event::Ring(0));
        assert_eq!(state.sound(), Sound::Page, "the page has the speakers");
        assert_eq!(state.look(), Look::FeedLost, "the tray still says the feed is lost");
        state.on(Event::Silence(0));
        assert_eq!(state.sound(), Sound::FeedLost);
        state.on(Event::FeedLost(0, false));
        assert_eq!((state.look(), state.sound()), (Look::Acknowledged, Sound::Nothing));
    }

    #[test]
    fn answered_shows_green_until_the_next_page() {
        let mut state = after(&[Event::Added(0), Event::Ring(0)]);
        assert_eq!((state.look(), state.sound()), (Look::Ringing, Sound::Page));
        state.on(Event::Silence(0));
        assert_eq!((state.look(), state.sound()), (Look::Acknowledged, Sound::Nothing));
        state.on(Event::Ring(0));
        assert_eq!(state.look(), Look::Ringing);
        // Silence with nothing ringing (a page answered elsewhere before it rang) is not green.
        let quiet = after(&[Event::Added(0), Event::Silence(0)]);
        assert_eq!(quiet.look(), Look::Quiet);
    }

    #[test]
    fn a_test_alarm_never_covers_or_ends_a_real_page() {
        let mut state = after(&[Event::Added(0), Event::TestStarted]);
        assert_eq!(state.sound(), Sound::Test);
        state.on(Event::Ring(0));
        assert_eq!(state.sound(), Sound::Page);
        state.on(Event::TestEnded);
        assert_eq!(state.sound(), Sound::Page, "ending the test does not stop the page");
        state.on(Event::TestStarted);
        assert_eq!(state.sound(), Sound::Page, "no test over a page");
        state.on(Event::Silence(0));
        assert_eq!(state.sound(), Sound::Nothing);
        // A test while the feed is lost: the warning comes back when the test ends.
        let mut lost = after(&[Event::Added(0), Event::FeedLost(0, true), Event::TestStarted]);
        assert_eq!(lost.sound(), Sound::Test);
        lost.on(Event::TestEnded);
        assert_eq!(lost.sound(), Sound::FeedLost);
    }

    #[test]
    fn the_alarm_stops_only_when_no_source_rings_and_any_lost_feed_is_red() {
        let mut state = after(&[Event::Added(0), Event::Ring(0), Event::Ring(3)]);
        state.on(Event::Silence(0));
        assert_eq!(
            (state.look(), state.sound()),
            (Look::Ringing, Sound::Page),
            "PagerDuty still rings"
        );
        state.on(Event::Silence(3));
        assert_eq!((state.look(), state.sound()), (Look::Acknowledged, Sound::Nothing));
        state.on(Event::FeedLost(2, true));
        state.on(Event::FeedLost(0, false));
        assert_eq!(
            (state.look(), state.sound()),
            (Look::FeedLost, Sound::FeedLost),
            "one source lost"
        );
        state.on(Event::Added(2));
        state.on(Event::Ring(2));
        state.on(Event::Removed(2));
        assert_eq!(
            (state.look(), state.sound()),
            (Look::Quiet, Sound::Nothing),
            "a removed source is forgotten"
        );
    }

    #[test]
    fn off_duty_signed_out_and_a_locked_keyring() {
        let mut state = after(&[Event::Added(0), Event::FeedLost(0, true), Event::OnDuty(false)]);
        assert_eq!((state.look(), state.sound()), (Look::OffDuty, Sound::Nothing));
        state.on(Event::OnDuty(true));
        assert_eq!(state.sound(), Sound::FeedLost);
        state.on(Event::Removed(0));
        assert_eq!((state.look(), state.sound()), (Look::SignedOut, Sound::Nothing));
        // Signed out of Reveille, but following PagerDuty: still on duty, still rings.
        let mut other =
            after(&[Event::Added(0), Event::Added(5), Event::Ring(5), Event::Removed(0)]);
        assert_eq!((other.look(), other.sound()), (Look::Ringing, Sound::Page));
        other.on(Event::Removed(5));
        assert_eq!((other.look(), other.sound()), (Look::SignedOut, Sound::Nothing));
        // Not signed in because the keyring is locked: red while on duty, grey when off.
        let mut locked = after(&[Event::KeyringProblem(true)]);
        assert_eq!(locked.look(), Look::FeedLost);
        locked.on(Event::OnDuty(false));
        assert_eq!(locked.look(), Look::SignedOut);
        locked.on(Event::OnDuty(true));
        locked.on(Event::KeyringProblem(false));
        assert_eq!(locked.look(), Look::SignedOut);
    }
}
