//! Schedules: unit tests, and property tests over a year of generated rotations in real zones.

use jiff::civil::{Weekday, date, time};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan, Unit};
use proptest::prelude::*;

use super::*;

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn weekly(tz: &str) -> Schedule {
    Schedule {
        name: "primary".into(),
        tz: TimeZone::get(tz).unwrap(),
        layers: vec![Layer {
            members: names(&["alice", "bob", "carol"]),
            shadows: names(&["dave"]),
            start: date(2026, 1, 5).at(9, 0, 0, 0),
            shift: ShiftLength::Days(7),
            restriction: None,
        }],
        overrides: vec![],
    }
}

fn at(s: &Schedule, y: i16, m: i8, d: i8, h: i8, min: i8) -> Timestamp {
    date(y, m, d).at(h, min, 0, 0).to_zoned(s.tz.clone()).unwrap().timestamp()
}

fn primary(s: &Schedule, t: Timestamp) -> Option<String> {
    s.on_call(t).primary
}

#[test]
fn a_weekly_rotation_hands_over_at_the_wall_clock_time() {
    let s = weekly("Europe/Berlin");
    assert_eq!(primary(&s, at(&s, 2026, 1, 5, 8, 59)), None, "before the rotation starts");
    assert_eq!(primary(&s, at(&s, 2026, 1, 5, 9, 0)).as_deref(), Some("alice"));
    assert_eq!(primary(&s, at(&s, 2026, 1, 12, 8, 59)).as_deref(), Some("alice"));
    assert_eq!(primary(&s, at(&s, 2026, 1, 12, 9, 0)).as_deref(), Some("bob"));
    assert_eq!(primary(&s, at(&s, 2026, 1, 26, 9, 0)).as_deref(), Some("alice"), "wraps around");
    let next = s.next_change(at(&s, 2026, 1, 6, 0, 0)).unwrap();
    assert_eq!(next, at(&s, 2026, 1, 12, 9, 0));
}

#[test]
fn handoffs_across_dst_keep_their_local_time() {
    let mut s = weekly("Europe/Berlin");
    s.layers[0].shift = ShiftLength::Days(1);
    // Berlin springs forward on 2026-03-29 and falls back on 2026-10-25.
    for (m, d) in [(3, 28), (3, 29), (3, 30), (10, 24), (10, 25), (10, 26)] {
        let before = at(&s, 2026, m, d, 8, 0);
        let next = s.next_change(before).unwrap();
        let local = next.to_zoned(s.tz.clone());
        assert_eq!((local.date(), local.time()), (date(2026, m, d), time(9, 0, 0, 0)));
    }
    let spring = s.next_change(at(&s, 2026, 3, 28, 10, 0)).unwrap();
    let autumn = s.next_change(at(&s, 2026, 10, 24, 10, 0)).unwrap();
    assert_eq!(spring.duration_since(at(&s, 2026, 3, 28, 9, 0)).as_hours(), 23);
    assert_eq!(autumn.duration_since(at(&s, 2026, 10, 24, 9, 0)).as_hours(), 25);
}

#[test]
fn an_override_wins_and_a_shadow_is_never_primary() {
    let mut s = weekly("UTC");
    let t = at(&s, 2026, 2, 3, 12, 0);
    assert_eq!(s.on_call(t), OnCall { primary: Some("bob".into()), shadows: names(&["dave"]) });
    s.overrides.push(Override {
        user: "erin".into(),
        start: at(&s, 2026, 2, 3, 0, 0),
        end: at(&s, 2026, 2, 4, 0, 0),
    });
    assert_eq!(s.on_call(t), OnCall { primary: Some("erin".into()), shadows: vec![] });
    assert_eq!(
        primary(&s, at(&s, 2026, 2, 4, 0, 0)).as_deref(),
        Some("bob"),
        "the override has ended"
    );
    assert_eq!(s.next_change(t), Some(at(&s, 2026, 2, 4, 0, 0)));
    for day in 0..400 {
        let t = at(&s, 2026, 1, 5, 9, 0) + (day * 24).hours();
        assert_ne!(primary(&s, t).as_deref(), Some("dave"));
    }
}

#[test]
fn a_restricted_layer_covers_only_its_window_over_the_base_rotation() {
    let mut s = weekly("America/New_York");
    s.layers.push(Layer {
        members: names(&["erin"]),
        shadows: vec![],
        start: date(2026, 1, 1).at(0, 0, 0, 0),
        shift: ShiftLength::Days(1),
        restriction: Some(Restriction {
            days: vec![
                Weekday::Monday,
                Weekday::Tuesday,
                Weekday::Wednesday,
                Weekday::Thursday,
                Weekday::Friday,
            ],
            from: time(9, 0, 0, 0),
            to: time(17, 0, 0, 0),
        }),
    });
    assert_eq!(
        primary(&s, at(&s, 2026, 2, 3, 10, 0)).as_deref(),
        Some("erin"),
        "Tuesday office hours"
    );
    assert_eq!(
        primary(&s, at(&s, 2026, 2, 3, 17, 0)).as_deref(),
        Some("bob"),
        "after hours: the base layer"
    );
    assert_eq!(primary(&s, at(&s, 2026, 2, 7, 10, 0)).as_deref(), Some("bob"), "Saturday");
    assert_eq!(s.next_change(at(&s, 2026, 2, 3, 12, 0)), Some(at(&s, 2026, 2, 3, 17, 0)));
}

#[test]
fn a_night_window_runs_past_midnight_and_belongs_to_its_start_day() {
    let mut s = weekly("UTC");
    s.layers[0].restriction = Some(Restriction {
        days: vec![Weekday::Friday],
        from: time(18, 0, 0, 0),
        to: time(6, 0, 0, 0),
    });
    assert_eq!(primary(&s, at(&s, 2026, 2, 6, 19, 0)).as_deref(), Some("bob"), "Friday night");
    assert_eq!(primary(&s, at(&s, 2026, 2, 7, 5, 0)).as_deref(), Some("bob"), "early Saturday");
    assert_eq!(primary(&s, at(&s, 2026, 2, 7, 6, 0)), None);
    assert_eq!(primary(&s, at(&s, 2026, 2, 5, 19, 0)), None, "Thursday night is not covered");
}

const ZONES: &[&str] = &[
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Sydney",
    "Asia/Kolkata",
    "America/Santiago",
];

prop_compose! {
    fn rotation()(zone in 0..ZONES.len(), n in 1..6usize, days in 1..15i64,
                  hour in 0..24i8, minute in 0..4i8, start_day in 0..365i32)
                 -> (Schedule, i64, jiff::civil::Time, jiff::civil::Date) {
        let start_date = date(2026, 1, 1).checked_add(start_day.days()).unwrap();
        let handoff = time(hour, minute * 15, 0, 0);
        let members = (0..n).map(|i| format!("m{i}")).collect();
        let schedule = Schedule {
            name: "s".into(),
            tz: TimeZone::get(ZONES[zone]).unwrap(),
            layers: vec![Layer { members, shadows: vec![], start: start_date.to_datetime(handoff), shift: ShiftLength::Days(days), restriction: None }],
            overrides: vec![],
        };
        (schedule, days, handoff, start_date)
    }
}

/// The same answer worked out differently: by calendar dates, not by shift arithmetic.
fn expected(
    s: &Schedule,
    days: i64,
    handoff: jiff::civil::Time,
    start: jiff::civil::Date,
    t: Timestamp,
) -> Option<String> {
    let local = t.to_zoned(s.tz.clone());
    let mut day = local.date();
    if t < day.to_datetime(handoff).to_zoned(s.tz.clone()).unwrap().timestamp() {
        day = day.yesterday().unwrap();
    }
    let elapsed = start.until((Unit::Day, day)).unwrap().get_days() as i64;
    if elapsed < 0 {
        return None;
    }
    let members = &s.layers[0].members;
    Some(members[((elapsed / days) % members.len() as i64) as usize].clone())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn the_expected_person_is_on_call_at_every_instant_of_a_year(
        (s, days, handoff, start) in rotation(),
        offsets in prop::collection::vec(0..(400 * 24 * 3600i64), 200),
    ) {
        let origin = date(2026, 1, 1).at(0, 0, 0, 0).to_zoned(s.tz.clone()).unwrap().timestamp();
        for offset in offsets {
            let t = origin + offset.seconds();
            prop_assert_eq!(primary(&s, t), expected(&s, days, handoff, start, t), "at {}", t);
        }
    }

    #[test]
    fn every_handoff_of_a_year_happens_at_the_configured_wall_clock_time(
        (s, _days, handoff, start) in rotation(),
    ) {
        let mut t = start.to_datetime(handoff).to_zoned(s.tz.clone()).unwrap().timestamp();
        let end = t + (366 * 24).hours();
        let members = s.layers[0].members.len();
        while let Some(next) = s.next_change(t) {
            if next > end { break; }
            let local = next.to_zoned(s.tz.clone());
            let intended = local.date().to_datetime(handoff);
            match s.tz.to_ambiguous_timestamp(intended).offset() {
                // The handoff time does not exist that day (a DST gap): it moves forward by the gap.
                jiff::tz::AmbiguousOffset::Gap { .. } => {
                    prop_assert_eq!(next, intended.to_zoned(s.tz.clone()).unwrap().timestamp());
                }
                _ => prop_assert_eq!(local.time(), handoff, "handoff at {}", local),
            }
            prop_assert!(members > 1, "a one-person rotation never changes hands");
            t = next;
        }
    }
}
