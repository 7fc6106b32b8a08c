use jiff::civil::time;

use super::*;

fn berlin() -> TimeZone {
    TimeZone::get("Europe/Berlin").unwrap()
}

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn rules() -> NotifyRules {
    let step = |channel, minutes| Step { channel, after: SignedDuration::from_mins(minutes) };
    NotifyRules {
        high: vec![step(Channel::Matrix, 5), step(Channel::Email, 2)],
        low: vec![step(Channel::Email, 0)],
        quiet: Some(QuietHours::new(time(22, 0, 0, 0), time(7, 0, 0, 0), berlin())),
    }
}

#[test]
fn high_urgency_follows_the_delays_in_order_and_ignores_quiet_hours() {
    // 23:30 in Berlin (CET, UTC+1): inside the quiet hours.
    let paged = at("2026-01-15T22:30:00Z");
    assert_eq!(
        rules().plan(Urgency::High, paged),
        [
            (Channel::Email, at("2026-01-15T22:32:00Z")),
            (Channel::Matrix, at("2026-01-15T22:35:00Z"))
        ]
    );
}

#[test]
fn low_urgency_in_quiet_hours_waits_for_their_end_on_the_persons_clock() {
    // 23:30 Berlin → 07:00 Berlin the next morning = 06:00 UTC.
    assert_eq!(
        rules().plan(Urgency::Low, at("2026-01-15T22:30:00Z")),
        [(Channel::Email, at("2026-01-16T06:00:00Z"))]
    );
    // 05:00 Berlin, after midnight but still quiet → 07:00 the same day.
    assert_eq!(
        rules().plan(Urgency::Low, at("2026-01-16T04:00:00Z")),
        [(Channel::Email, at("2026-01-16T06:00:00Z"))]
    );
    // 12:00 Berlin: not quiet, at once.
    let noon = at("2026-01-16T11:00:00Z");
    assert_eq!(rules().plan(Urgency::Low, noon), [(Channel::Email, noon)]);
    // A delay that ends inside the quiet hours waits too: 21:55 + 10 min.
    let mut late = rules();
    late.low = vec![Step { channel: Channel::Email, after: SignedDuration::from_mins(10) }];
    assert_eq!(
        late.plan(Urgency::Low, at("2026-01-16T20:55:00Z")),
        [(Channel::Email, at("2026-01-17T06:00:00Z"))]
    );
}

#[test]
fn quiet_hours_end_on_the_wall_clock_across_a_dst_change() {
    // The night of 28–29 March 2026: Berlin moves from UTC+1 to UTC+2 at 02:00.
    // Paged 23:30 CET (22:30 UTC); quiet hours end at 07:00 CEST = 05:00 UTC.
    assert_eq!(
        rules().plan(Urgency::Low, at("2026-03-28T22:30:00Z")),
        [(Channel::Email, at("2026-03-29T05:00:00Z"))]
    );
}

#[test]
fn no_rules_no_channels() {
    assert!(NotifyRules::default().plan(Urgency::High, at("2026-01-15T22:30:00Z")).is_empty());
}
