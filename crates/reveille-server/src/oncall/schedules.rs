//! Who is on call: `GET /api/v1/oncall`, a schedule's shifts, and overrides made at run time.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use jiff::{SignedDuration, Timestamp};
use reveille_protocol::ErrorCode;
use reveille_protocol::api::{
    LevelOnCall, OnCallReport, OverrideRequest, OverrideView, ScheduleOnCall, ScheduleView,
    ServiceOnCall, Shift,
};
use reveille_store::OverrideRecord;
use serde::Deserialize;

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::http::auth::{Caller, Scope};
use crate::http::incidents::parse_json;

#[derive(Debug, Deserialize)]
pub struct OnCallQuery {
    /// RFC 3339 instant; now when absent.
    at: Option<String>,
    schedule: Option<String>,
}

fn instant(state: &AppState, field: &str, text: Option<&str>) -> ApiResult<Timestamp> {
    let Some(text) = text else {
        return Ok(state.clock.now());
    };
    let refused = || {
        let message = format!(
            "{field} must be an RFC 3339 time between 1970 and 2199, like 2026-12-24T09:00:00Z"
        );
        ApiError::invalid(field, message)
    };
    // Schedules are walked in shifts from the time asked for: a year like 9999 would overflow
    // the arithmetic, not answer a question anyone asks.
    let at: Timestamp = text.parse().map_err(|_| refused())?;
    let year = at.to_zoned(jiff::tz::TimeZone::UTC).year();
    if (1970..2200).contains(&year) { Ok(at) } else { Err(refused()) }
}

/// `GET /api/v1/oncall?at=&schedule=`
pub async fn report(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<OnCallQuery>,
) -> ApiResult<Json<OnCallReport>> {
    caller.require(Scope::Read)?;
    let at = instant(&state, "at", query.at.as_deref())?;
    let directory = state.directory();
    if let Some(name) = &query.schedule
        && !directory.schedules.contains_key(name)
    {
        return Err(ApiError::not_found(format!("no schedule {name:?}")));
    }
    let mut schedules: Vec<ScheduleOnCall> = directory
        .schedules
        .values()
        .filter(|s| query.schedule.as_ref().is_none_or(|n| *n == s.name))
        .map(|s| {
            let now = s.on_call(at);
            ScheduleOnCall {
                schedule: s.name.clone(),
                primary: now.primary,
                shadows: now.shadows,
                until: s.next_change(at),
            }
        })
        .collect();
    schedules.sort_by(|a, b| a.schedule.cmp(&b.schedule));
    let services = if query.schedule.is_some() {
        Vec::new()
    } else {
        state
            .settings()
            .services
            .iter()
            .filter_map(|svc| {
                let rules = directory.service(&svc.name)?;
                let levels = (0..rules.policy.levels.len())
                    .map(|level| {
                        let paging = rules.policy.paging(level, &rules.schedules, at);
                        LevelOnCall {
                            level: level + 1,
                            primaries: paging.primaries,
                            shadows: paging.shadows,
                            delay_minutes: rules.policy.levels[level].delay.as_mins(),
                        }
                    })
                    .collect();
                Some(ServiceOnCall {
                    service: svc.name.clone(),
                    levels,
                    repeat: rules.policy.repeat,
                })
            })
            .collect()
    };
    Ok(Json(OnCallReport { at, schedules, services }))
}

#[derive(Debug, Deserialize)]
pub struct ShiftsQuery {
    from: Option<String>,
    days: Option<u32>,
}

/// `GET /api/v1/schedules/{name}?from=&days=14`: the shifts of the coming days.
pub async fn shifts(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(query): Query<ShiftsQuery>,
) -> ApiResult<Json<ScheduleView>> {
    caller.require(Scope::Read)?;
    let from = instant(&state, "from", query.from.as_deref())?;
    let days = query.days.unwrap_or(14).clamp(1, 92);
    let directory = state.directory();
    let s = directory
        .schedules
        .get(&name)
        .ok_or_else(|| ApiError::not_found(format!("no schedule {name:?}")))?;
    // Whole days on the schedule's own clock, however long DST makes them.
    let until = from
        .to_zoned(s.tz.clone())
        .checked_add(jiff::Span::new().days(i64::from(days)))
        .map_or(from + SignedDuration::from_hours(24 * i64::from(days)), |z| z.timestamp());

    let shifts = s
        .shifts(from, until)
        .into_iter()
        .map(|(start, end, who)| Shift { start, end, primary: who.primary, shadows: who.shadows })
        .collect();
    let time_zone = s.tz.iana_name().unwrap_or("UTC").to_owned();
    Ok(Json(ScheduleView { schedule: name, time_zone, shifts }))
}

fn view(o: OverrideRecord) -> OverrideView {
    OverrideView {
        id: o.id,
        schedule: o.schedule,
        user: o.user,
        start: o.start,
        end: o.end,
        created_by: o.created_by,
    }
}

/// Overrides not yet ended that one schedule may hold: each is read for every shift computed.
pub const MAX_OVERRIDES: usize = 500;
/// The longest override.
const MAX_OVERRIDE: SignedDuration = SignedDuration::from_hours(366 * 24);

/// `POST /api/v1/schedules/{name}/overrides` with `{"user", "start", "end"}`.
pub async fn add_override(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Json<OverrideView>> {
    caller.require(Scope::Respond)?;
    let request: OverrideRequest = parse_json(&body)?;
    if state.settings().schedules.iter().all(|s| s.name != name) {
        return Err(ApiError::not_found(format!("no schedule {name:?}")));
    }
    if state.settings().users.iter().all(|u| u.name != request.user) {
        return Err(ApiError::invalid("user", format!("unknown user {:?}", request.user)));
    }
    if request.end <= request.start {
        return Err(ApiError::invalid("end", "the override must end after it starts"));
    }
    if request.end.duration_since(request.start) > MAX_OVERRIDE {
        return Err(ApiError::invalid("end", "an override lasts a year at most"));
    }
    let now = state.clock.now();
    let upcoming =
        state.store.overrides().await?.iter().filter(|o| o.schedule == name && o.end > now).count();
    if upcoming >= MAX_OVERRIDES {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!("{name:?} has {upcoming} overrides still to come: remove some first"),
        ));
    }
    let record = OverrideRecord {
        id: 0,
        schedule: name,
        user: request.user,
        start: request.start,
        end: request.end,
        created_by: caller.user.clone(),
        created_at: state.clock.now(),
    };
    let saved = state.store.add_override(record).await?;
    state.overrides_changed().await?;
    Ok(Json(view(saved)))
}

/// `GET /api/v1/overrides`
pub async fn list_overrides(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<OverrideView>>> {
    caller.require(Scope::Read)?;
    Ok(Json(state.store.overrides().await?.into_iter().map(view).collect()))
}

/// `DELETE /api/v1/overrides/{id}`
pub async fn remove_override(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<OverrideView>> {
    caller.require(Scope::Respond)?;
    let id = id.parse().map_err(|_| ApiError::not_found(format!("override {id:?} not found")))?;
    let removed = state.store.remove_override(id).await?;
    state.overrides_changed().await?;
    Ok(Json(view(removed)))
}
