//! The connection state machine, driven by an injected clock.

use std::time::Duration;

use super::*;

struct Clock(Now);

impl Clock {
    fn new() -> Self {
        Clock(Now {
            mono: Duration::ZERO,
            wall: jiff::Timestamp::from_second(1_800_000_000).unwrap(),
        })
    }

    fn advance(&mut self, secs: u64) -> Now {
        self.0.mono += Duration::from_secs(secs);
        self.0.wall += jiff::SignedDuration::from_secs(secs as i64);
        self.0
    }

    /// The machine slept: the wall clock moved, the monotonic one did not.
    fn sleep(&mut self, secs: i64) -> Now {
        self.0.wall += jiff::SignedDuration::from_secs(secs);
        self.0
    }
}

#[test]
fn backoff_doubles_up_to_the_cap_with_bounded_jitter() {
    let (conn, _) = Connection::start(Policy::default(), None, Clock::new().0);
    let plain: Vec<u64> = (0..8).map(|a| conn.backoff(a, 0.5).as_secs()).collect();
    assert_eq!(plain, [1, 2, 4, 8, 16, 30, 30, 30]);
    assert_eq!(conn.backoff(3, 0.0), Duration::from_secs_f64(6.4));
    assert_eq!(conn.backoff(3, 0.999_999).as_secs_f64().round(), 10.0);
    assert!(conn.backoff(40, 0.999) <= Duration::from_secs(36), "capped even after many failures");
}

#[test]
fn it_resumes_after_the_last_id_it_saw() {
    let mut clock = Clock::new();
    let (mut conn, first) = Connection::start(Policy::default(), Some(7), clock.0);
    assert_eq!(first, Effect::Connect { after: Some(7) });
    conn.on(Event::Opened, clock.advance(0), 0.5);
    conn.on(Event::Frame { id: Some(12) }, clock.advance(1), 0.5);
    conn.on(Event::Frame { id: None }, clock.advance(1), 0.5);
    assert!(conn.on(Event::Closed, clock.advance(1), 0.5).is_empty());
    assert!(conn.on(Event::Tick, clock.advance(0), 0.5).is_empty(), "waits first");
    assert_eq!(conn.on(Event::Tick, clock.advance(1), 0.5), [Effect::Connect { after: Some(12) }]);
}

#[test]
fn a_stream_dropped_before_its_first_entry_resumes_from_its_head() {
    let mut clock = Clock::new();
    let (mut conn, first) = Connection::start(Policy::default(), None, clock.0);
    assert_eq!(first, Effect::Connect { after: None });
    conn.on(Event::Opened, clock.advance(0), 0.5);
    conn.on(Event::Head(40), clock.advance(0), 0.5);
    conn.on(Event::Closed, clock.advance(1), 0.5);
    assert_eq!(conn.on(Event::Tick, clock.advance(2), 0.5), [Effect::Connect { after: Some(40) }]);
    // Later heads never move the resume point: the entries in between must be replayed.
    conn.on(Event::Opened, clock.advance(0), 0.5);
    conn.on(Event::Head(55), clock.advance(0), 0.5);
    conn.on(Event::Frame { id: Some(41) }, clock.advance(0), 0.5);
    conn.on(Event::Closed, clock.advance(1), 0.5);
    assert_eq!(conn.on(Event::Tick, clock.advance(2), 0.5), [Effect::Connect { after: Some(41) }]);
}

#[test]
fn a_silent_connection_is_dropped_after_three_heartbeats() {
    let mut clock = Clock::new();
    let (mut conn, _) = Connection::start(Policy::default(), None, clock.0);
    conn.on(Event::Opened, clock.0, 0.5);
    assert!(conn.on(Event::Tick, clock.advance(44), 0.5).is_empty());
    assert_eq!(conn.on(Event::Tick, clock.advance(1), 0.5), [Effect::Drop]);
    assert_eq!(conn.on(Event::Tick, clock.advance(1), 0.5), [Effect::Connect { after: None }]);
}

#[test]
fn a_long_outage_is_reported_once_then_its_end() {
    let mut clock = Clock::new();
    let (mut conn, _) = Connection::start(Policy::default(), None, clock.0);
    conn.on(Event::Opened, clock.0, 0.5);
    conn.on(Event::Frame { id: None }, clock.advance(5), 0.5);
    conn.on(Event::Closed, clock.advance(5), 0.5);
    let mut lost = 0;
    let mut connects = 0;
    for _ in 0..59 {
        for e in conn.on(Event::Tick, clock.advance(1), 0.5) {
            match e {
                Effect::Lost => lost += 1,
                Effect::Connect { .. } => {
                    connects += 1;
                    conn.on(Event::Closed, clock.0, 0.5);
                }
                _ => {}
            }
        }
    }
    assert_eq!(lost, 0, "not before the threshold");
    assert_eq!(connects, 5, "1+2+4+8+16 s of backoff");
    assert_eq!(conn.on(Event::Tick, clock.advance(1), 0.5), [Effect::Lost]);
    assert!(conn.is_lost());
    for _ in 0..100 {
        conn.on(Event::Tick, clock.advance(1), 0.5);
    }
    assert_eq!(conn.on(Event::Opened, clock.0, 0.5), [], "not heard yet");
    conn.on(Event::Head(3), clock.0, 0.5);
    assert_eq!(conn.on(Event::Frame { id: None }, clock.0, 0.5), [Effect::Restored]);
    assert!(!conn.is_lost());
}

#[test]
fn a_server_that_drops_every_stream_after_its_open_frame_is_reported_lost() {
    let mut clock = Clock::new();
    let (mut conn, first) = Connection::start(Policy::default(), Some(5), clock.0);
    // Every attempt opens, says `open`, and is cut before any entry or heartbeat.
    let cut = |conn: &mut Connection, now| {
        conn.on(Event::Opened, now, 0.5);
        conn.on(Event::Head(9), now, 0.5);
        conn.on(Event::Closed, now, 0.5);
    };
    assert!(matches!(first, Effect::Connect { .. }));
    cut(&mut conn, clock.0);
    let mut lost = false;
    for _ in 0..120 {
        for effect in conn.on(Event::Tick, clock.advance(1), 0.5) {
            match effect {
                Effect::Connect { .. } => cut(&mut conn, clock.0),
                Effect::Lost => lost = true,
                _ => {}
            }
        }
    }
    assert!(lost, "the device must say it cannot hear the server");
    assert!(conn.attempt >= 5, "and back off: {} attempts in a row", conn.attempt);
}

#[test]
fn waking_from_sleep_reconnects_at_once() {
    let mut clock = Clock::new();
    let (mut conn, _) = Connection::start(Policy::default(), Some(3), clock.0);
    conn.on(Event::Opened, clock.0, 0.5);
    conn.on(Event::Frame { id: Some(9) }, clock.advance(5), 0.5);
    assert_eq!(
        conn.on(Event::Tick, clock.sleep(3600), 0.5),
        [Effect::Drop, Effect::Connect { after: Some(9) }]
    );
    assert_eq!(conn.on(Event::Tick, clock.advance(1), 0.5), [], "no second reconnect");
}
