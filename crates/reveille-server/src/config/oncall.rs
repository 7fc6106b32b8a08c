//! Who gets woken: escalation policies, schedules (rotations, layers, overrides, shadows) and
//! heartbeat monitors in the configuration, their validation, and their translation into the
//! core's types.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use jiff::civil::{DateTime, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use reveille_core::schedule::{Layer, Override, Restriction, Schedule, ShiftLength};
use reveille_core::{Level, Policy, Target};
use serde::Deserialize;

use super::Settings;
use super::check::{Reporter, Seg};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalationSettings {
    /// A user all of whose devices have been away this long cannot hear a page; 0 turns this off.
    #[serde(default = "default_deaf_after")]
    pub deaf_after_seconds: u64,
}

fn default_deaf_after() -> u64 {
    120
}

impl Default for EscalationSettings {
    fn default() -> Self {
        Self { deaf_after_seconds: default_deaf_after() }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSettings {
    pub name: String,
    /// An IANA time zone, e.g. "Europe/Berlin".
    pub time_zone: String,
    #[serde(default)]
    pub layers: Vec<LayerSettings>,
    #[serde(default)]
    pub overrides: Vec<OverrideSettings>,
    /// Send the incoming primary a drill page at every handoff.
    #[serde(default)]
    pub drill_at_handoff: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerSettings {
    pub members: Vec<String>,
    #[serde(default)]
    pub shadows: Vec<String>,
    /// When the first member's first shift starts, on the schedule's clock: "2026-01-05T09:00".
    pub start: String,
    /// "12h", "1d", "1w", …
    pub shift: String,
    /// Limit the layer to these days ("mon" … "sun"); empty means every day.
    #[serde(default)]
    pub days: Vec<String>,
    /// Limit the layer to these hours: "09:00-17:00", or "18:00-09:00" across midnight.
    #[serde(default)]
    pub hours: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverrideSettings {
    pub user: String,
    /// On the schedule's clock, "2026-12-24T09:00", or an instant with an offset.
    pub start: String,
    pub end: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySettings {
    pub name: String,
    pub levels: Vec<LevelSettings>,
    /// How many more times the whole ladder runs after the first time.
    #[serde(default)]
    pub repeat: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LevelSettings {
    #[serde(default)]
    pub users: Vec<String>,
    #[serde(default)]
    pub schedules: Vec<String>,
    /// Minutes to wait for an acknowledgement before the next level.
    #[serde(default = "default_delay")]
    pub delay_minutes: u32,
    /// The wait in seconds instead (for drills of the ladder itself, and tests); wins when set.
    #[serde(default)]
    pub delay_seconds: Option<u32>,
}

impl LevelSettings {
    /// How long the level waits for an acknowledgement.
    pub fn delay(&self) -> SignedDuration {
        match self.delay_seconds {
            Some(seconds) => SignedDuration::from_secs(i64::from(seconds)),
            None => SignedDuration::from_mins(i64::from(self.delay_minutes)),
        }
    }
}

fn default_delay() -> u32 {
    15
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatSettings {
    pub name: String,
    /// The service whose incident opens when a ping is missed.
    pub service: String,
    pub interval_seconds: u64,
    #[serde(default)]
    pub grace_seconds: u64,
}

fn parse_shift(text: &str) -> Option<ShiftLength> {
    let (number, unit) = text.trim().split_at(text.trim().len().checked_sub(1)?);
    let n: i64 = number.trim().parse().ok().filter(|n| *n > 0 && *n <= 10_000)?;
    match unit {
        "h" => Some(ShiftLength::Hours(n)),
        "d" => Some(ShiftLength::Days(n)),
        "w" => Some(ShiftLength::Days(n * 7)),
        _ => None,
    }
}

fn parse_day(text: &str) -> Option<Weekday> {
    Some(match text.trim().to_ascii_lowercase().get(..3)? {
        "mon" => Weekday::Monday,
        "tue" => Weekday::Tuesday,
        "wed" => Weekday::Wednesday,
        "thu" => Weekday::Thursday,
        "fri" => Weekday::Friday,
        "sat" => Weekday::Saturday,
        "sun" => Weekday::Sunday,
        _ => return None,
    })
}

pub(super) fn parse_hours(text: &str) -> Option<(Time, Time)> {
    let (from, to) = text.split_once('-')?;
    let (from, to): (Time, Time) = (from.trim().parse().ok()?, to.trim().parse().ok()?);
    (from != to).then_some((from, to))
}

/// An instant written either with an offset, or on the given zone's wall clock.
pub fn parse_instant(text: &str, tz: &TimeZone) -> Option<Timestamp> {
    if let Ok(t) = text.parse::<Timestamp>() {
        return Some(t);
    }
    let local: DateTime = text.parse().ok()?;
    tz.to_ambiguous_timestamp(local).compatible().ok()
}

/// Validates schedules, policies, heartbeats and each service's paging.
pub(super) fn validate(settings: &Settings, r: &mut Reporter) {
    let users: HashSet<&str> = settings.users.iter().map(|u| u.name.as_str()).collect();
    let known = |r: &mut Reporter, path: Vec<Seg>, name: &str| {
        if !users.contains(name) {
            r.report(path, format!("unknown user {name:?} (not in [[users]])"));
        }
    };
    let mut schedules = HashSet::new();
    for (i, s) in settings.schedules.iter().enumerate() {
        let at = |k: &'static str| vec![Seg::Key("schedules"), Seg::Index(i), Seg::Key(k)];
        if !schedules.insert(s.name.as_str()) {
            r.report(at("name"), format!("schedule {:?} is defined twice", s.name));
        }
        let tz = TimeZone::get(&s.time_zone);
        if tz.is_err() {
            r.report(
                at("time_zone"),
                format!("{:?} is not an IANA time zone like \"Europe/Berlin\"", s.time_zone),
            );
        }
        let tz = tz.unwrap_or(TimeZone::UTC);
        if s.layers.is_empty() && s.overrides.is_empty() {
            r.report(
                at("layers"),
                format!("schedule {:?} has no layers: nobody would ever be on call", s.name),
            );
        }
        for (j, l) in s.layers.iter().enumerate() {
            let at = |k: &'static str| {
                vec![
                    Seg::Key("schedules"),
                    Seg::Index(i),
                    Seg::Key("layers"),
                    Seg::Index(j),
                    Seg::Key(k),
                ]
            };
            if l.members.is_empty() {
                r.report(
                    at("members"),
                    "an empty rotation: give the layer at least one member".into(),
                );
            }
            for (k, m) in l.members.iter().enumerate() {
                let mut p = at("members");
                p.push(Seg::Index(k));
                known(r, p, m);
            }
            for (k, m) in l.shadows.iter().enumerate() {
                let mut p = at("shadows");
                p.push(Seg::Index(k));
                known(r, p.clone(), m);
                if l.members.contains(m) {
                    r.report(
                        p,
                        format!("{m:?} is both a member and a shadow; a shadow is never primary"),
                    );
                }
            }
            if l.start.parse::<DateTime>().is_err() {
                r.report(
                    at("start"),
                    format!("{:?} is not a date and time like \"2026-01-05T09:00\"", l.start),
                );
            }
            if parse_shift(&l.shift).is_none() {
                r.report(
                    at("shift"),
                    format!("{:?} is not a shift length like \"12h\", \"1d\" or \"1w\"", l.shift),
                );
            }
            for (k, d) in l.days.iter().enumerate() {
                if parse_day(d).is_none() {
                    let mut p = at("days");
                    p.push(Seg::Index(k));
                    r.report(p, format!("{d:?} is not a day (mon, tue, wed, thu, fri, sat, sun)"));
                }
            }
            if let Some(h) = &l.hours
                && parse_hours(h).is_none()
            {
                r.report(
                    at("hours"),
                    format!(
                        "{h:?} is not a window like \"09:00-17:00\" (start and end must differ)"
                    ),
                );
            }
        }
        for (j, o) in s.overrides.iter().enumerate() {
            let at = |k: &'static str| {
                vec![
                    Seg::Key("schedules"),
                    Seg::Index(i),
                    Seg::Key("overrides"),
                    Seg::Index(j),
                    Seg::Key(k),
                ]
            };
            known(r, at("user"), &o.user);
            match (parse_instant(&o.start, &tz), parse_instant(&o.end, &tz)) {
                (Some(a), Some(b)) if a < b => {}
                (Some(_), Some(_)) => {
                    r.report(at("end"), "the override ends before it starts".into())
                }
                (None, _) => r.report(
                    at("start"),
                    format!("{:?} is not a time like \"2026-12-24T09:00\"", o.start),
                ),
                (_, None) => r.report(
                    at("end"),
                    format!("{:?} is not a time like \"2026-12-24T09:00\"", o.end),
                ),
            }
        }
    }
    let mut policies = HashSet::new();
    for (i, p) in settings.policies.iter().enumerate() {
        let at = |k: &'static str| vec![Seg::Key("policies"), Seg::Index(i), Seg::Key(k)];
        if !policies.insert(p.name.as_str()) {
            r.report(at("name"), format!("policy {:?} is defined twice", p.name));
        }
        if p.levels.is_empty() {
            r.report(at("levels"), format!("policy {:?} has no levels", p.name));
        }
        for (j, level) in p.levels.iter().enumerate() {
            let at = |k: &'static str| {
                vec![
                    Seg::Key("policies"),
                    Seg::Index(i),
                    Seg::Key("levels"),
                    Seg::Index(j),
                    Seg::Key(k),
                ]
            };
            if level.users.is_empty() && level.schedules.is_empty() {
                r.report(at("users"), "a level must page at least one user or schedule".into());
            }
            for (k, u) in level.users.iter().enumerate() {
                let mut path = at("users");
                path.push(Seg::Index(k));
                known(r, path, u);
            }
            for (k, s) in level.schedules.iter().enumerate() {
                if !schedules.contains(s.as_str()) {
                    let mut path = at("schedules");
                    path.push(Seg::Index(k));
                    r.report(path, format!("unknown schedule {s:?} (not in [[schedules]])"));
                }
            }
            if level.delay_minutes == 0 {
                r.report(at("delay_minutes"), "must be at least 1".into());
            }
            if level.delay_seconds == Some(0) {
                r.report(at("delay_seconds"), "must be at least 1".into());
            }
        }
    }
    for (i, s) in settings.services.iter().enumerate() {
        let at = |k: &'static str| vec![Seg::Key("services"), Seg::Index(i), Seg::Key(k)];
        match (&s.policy, s.page.is_empty()) {
            (Some(_), false) => {
                r.report(at("policy"), "give either page or policy, not both".into())
            }
            (None, true) => r.report(
                at("page"),
                format!("service {:?} pages nobody: give page or policy", s.name),
            ),
            (Some(p), true) if !policies.contains(p.as_str()) => {
                r.report(at("policy"), format!("unknown policy {p:?} (not in [[policies]])"));
            }
            _ => {}
        }
        let mut seen = HashSet::new();
        for (j, name) in s.page.iter().enumerate() {
            let mut p = at("page");
            p.push(Seg::Index(j));
            if !seen.insert(name) {
                r.report(p.clone(), format!("{name:?} is listed twice"));
            }
            known(r, p, name);
        }
    }
    let mut beats = HashSet::new();
    for (i, h) in settings.heartbeats.iter().enumerate() {
        let at = |k: &'static str| vec![Seg::Key("heartbeats"), Seg::Index(i), Seg::Key(k)];
        if !super::check::valid_name(&h.name) || !beats.insert(h.name.as_str()) {
            r.report(
                at("name"),
                format!("{:?} must be a unique name (letters, digits, - _ .)", h.name),
            );
        }
        if settings.service(&h.service).is_none() {
            r.report(at("service"), format!("unknown service {:?}", h.service));
        }
        if h.interval_seconds == 0 {
            r.report(at("interval_seconds"), "must be at least 1".into());
        }
    }
}

/// The core's schedules, with the config's overrides (the store's are added by the caller).
pub fn schedules(settings: &Settings) -> HashMap<String, Schedule> {
    settings.schedules.iter().map(|s| (s.name.clone(), schedule(s))).collect()
}

fn schedule(s: &ScheduleSettings) -> Schedule {
    let tz = TimeZone::get(&s.time_zone).unwrap_or(TimeZone::UTC);
    let layers = s
        .layers
        .iter()
        .map(|l| Layer {
            members: l.members.clone(),
            shadows: l.shadows.clone(),
            start: l.start.parse().unwrap_or_default(),
            shift: parse_shift(&l.shift).unwrap_or(ShiftLength::Days(7)),
            restriction: (l.hours.is_some() || !l.days.is_empty()).then(|| {
                let (from, to) =
                    l.hours.as_deref().and_then(parse_hours).unwrap_or((Time::MIN, Time::MIN));
                Restriction { days: l.days.iter().filter_map(|d| parse_day(d)).collect(), from, to }
            }),
        })
        .collect();
    let overrides = s
        .overrides
        .iter()
        .filter_map(|o| {
            let (start, end) = (parse_instant(&o.start, &tz)?, parse_instant(&o.end, &tz)?);
            Some(Override { user: o.user.clone(), start, end })
        })
        .collect();
    Schedule { name: s.name.clone(), tz, layers, overrides }
}

/// The escalation policy a service pages through.
pub fn policy(settings: &Settings, service: &super::Service) -> Policy {
    let Some(p) =
        service.policy.as_ref().and_then(|n| settings.policies.iter().find(|p| &p.name == n))
    else {
        return Policy::users(&service.page);
    };
    let levels = p
        .levels
        .iter()
        .map(|l| Level {
            targets: l
                .users
                .iter()
                .cloned()
                .map(Target::User)
                .chain(l.schedules.iter().cloned().map(Target::Schedule))
                .collect(),
            delay: l.delay(),
        })
        .collect();
    Policy { levels, repeat: p.repeat }
}

/// Whether a schedule wants a drill at each handoff.
pub fn drills_at_handoff(settings: &Settings) -> Arc<HashSet<String>> {
    Arc::new(
        settings.schedules.iter().filter(|s| s.drill_at_handoff).map(|s| s.name.clone()).collect(),
    )
}
