//! `GET /api/v1/readiness`: for everyone on call now or next, whether they would hear a page
//! right now: their live devices by kind, their last receipt, their last drill, and whether the
//! escalation ladder counts them deaf. A person is not ready, with the reasons, when nothing of
//! theirs is live, when the server counts them deaf, or when their device last said it rang
//! silent. A channel (email, Matrix, calls and texts to the person's numbers) counts as live
//! unless the last message on it failed or is being tried again after failing
//! ([`crate::deliver::notify::reach`]); a push device unless its last push failed. Numbers show
//! with their last test (`reveille notify-test`): someone whose only way is a number whose last
//! call failed is not ready.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use jiff::{SignedDuration, Timestamp};
use reveille_core::notify::Channel;
use reveille_protocol::console::{DeviceStatus, Duty, LastReceipt, PersonReadiness, Readiness};
use reveille_store::IncidentFilter;

use crate::AppState;
use crate::error::ApiResult;
use crate::http::auth::{Caller, Scope};

/// The board as last computed for the streams: when, after which commit and device count.
pub type Shared = (std::time::Instant, (u64, usize), Readiness);

/// How far ahead "next" looks for a person's coming duty.
const AHEAD: SignedDuration = SignedDuration::from_hours(24 * 14);

/// `GET /api/v1/readiness`
pub async fn board(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Readiness>> {
    caller.require(Scope::Read)?;
    Ok(Json(compute(&state).await?))
}

/// Who holds which duty now and next, by person.
fn duties(state: &AppState, now: Timestamp) -> BTreeMap<String, Vec<Duty>> {
    let directory = state.directory();
    let mut out: BTreeMap<String, Vec<Duty>> = BTreeMap::new();
    let mut schedules: Vec<_> = directory.schedules.values().collect();
    schedules.sort_by(|a, b| a.name.cmp(&b.name));
    for s in schedules {
        let shifts = s.shifts(now, now + AHEAD);
        for (when, (start, end, who)) in ["now", "next"].into_iter().zip(shifts) {
            let duty = |shadow| Duty {
                schedule: s.name.clone(),
                when: when.to_owned(),
                start,
                end,
                shadow,
            };
            if let Some(primary) = &who.primary {
                out.entry(primary.clone()).or_default().push(duty(false));
            }
            for shadow in &who.shadows {
                out.entry(shadow.clone()).or_default().push(duty(true));
            }
        }
    }
    // People a service pages directly, not through a schedule.
    for svc in &state.settings().services {
        let Some(rules) = directory.service(&svc.name) else { continue };
        for level in 0..rules.policy.levels.len() {
            let paging = rules.policy.paging(level, &rules.schedules, now);
            for user in paging.primaries {
                let listed = out.get(&user).is_some_and(|d| d.iter().any(|d| d.when == "now"));
                if !listed {
                    let schedule = format!("{} (level {})", svc.name, level + 1);
                    let end = now + AHEAD;
                    let duty =
                        Duty { schedule, when: "now".into(), start: now, end, shadow: false };
                    out.entry(user).or_default().push(duty);
                }
            }
        }
    }
    out
}

/// The board for the live streams: shared by every open board on this node, computed again when
/// something was committed or a device came or went (at most every 250 ms), and at least every
/// second.
pub async fn shared(state: &AppState) -> ApiResult<Readiness> {
    use std::time::{Duration, Instant};
    let key = (*state.store.hub().commits().borrow(), *state.presence.watch().borrow());
    let mut cached = state.readiness.lock().await;
    if let Some((at, seen, board)) = cached.as_ref() {
        let age = at.elapsed();
        if age < Duration::from_millis(250) || (*seen == key && age < Duration::from_secs(1)) {
            return Ok(board.clone());
        }
    }
    let board = compute(state).await?;
    *cached = Some((Instant::now(), key, board.clone()));
    Ok(board)
}

/// The readiness of everyone on call now or next.
pub async fn compute(state: &AppState) -> ApiResult<Readiness> {
    let now = state.clock.now();
    let deaf = crate::oncall::escalation::deaf_users(state).await;
    let devices = state.store.devices(None).await?;
    let cluster = state.cluster.read().unwrap_or_else(|p| p.into_inner()).clone();
    let mut people = Vec::new();
    for (user, on_call) in duties(state, now) {
        let mut live = Vec::new();
        for (kind, n) in state.presence.kinds(&user) {
            let name = if n == 1 { "1 connection".to_owned() } else { format!("{n} connections") };
            live.push(DeviceStatus { kind: kind.into(), name, live: true, detail: None });
        }
        for (node, p) in
            cluster.presence.iter().filter(|(n, p)| **n != *state.node && p.user == user)
        {
            if p.open > 0 {
                let name = format!("{} on node {node}", p.open);
                live.push(DeviceStatus { kind: "feed".into(), name, live: true, detail: None });
            }
        }
        let push = &state.settings().push;
        for d in devices.iter().filter(|d| d.user == user) {
            let configured = match d.platform.as_str() {
                "fcm" => push.fcm.is_some(),
                "apns" => push.apns.is_some(),
                "webpush" => push.webpush.enabled,
                _ => false,
            };
            let detail = match (configured, d.push_ok) {
                (false, _) => Some(format!("{} push is not configured on this server", d.platform)),
                (true, Some(false)) => Some("the last push to it failed".to_owned()),
                _ => None,
            };
            let ok = configured && d.push_ok != Some(false);
            live.push(DeviceStatus {
                kind: d.platform.clone(),
                name: d.name.clone(),
                live: ok,
                detail,
            });
        }
        if let Some(u) = state.settings().users.iter().find(|u| u.name == user) {
            for channel in state.settings().channels(u) {
                let last = crate::deliver::notify::reach(state, &user, channel).await?;
                let (name, reached, detail) = match last {
                    None => ("configured, nothing sent yet".into(), true, None),
                    Some(r) if r.ok => {
                        (format!("last message went through at {}", r.at), true, None)
                    }
                    Some(r) => (
                        "failing".into(),
                        false,
                        Some(format!(
                            "the last message failed at {}: {}",
                            r.at,
                            r.failure.unwrap_or_default()
                        )),
                    ),
                };
                let (name, detail) = match channel {
                    Channel::Call | Channel::Sms => {
                        let tested = crate::deliver::notify::tested(state, &user, channel).await?;
                        let test = tested.map(|t| match t.failure {
                            None => format!("last test at {}: passed", t.at),
                            Some(why) => format!("last test at {}: FAILED: {why}", t.at),
                        });
                        let detail = match (detail, test) {
                            (Some(d), Some(t)) => Some(format!("{d}; {t}")),
                            (d, t) => d.or(t),
                        };
                        (format!("{}: {name}", u.phone.list().join(", ")), detail)
                    }
                    Channel::Email | Channel::Matrix => (name, detail),
                };
                let kind = channel.as_str().to_owned();
                live.push(DeviceStatus { kind, name, live: reached, detail });
            }
        }
        let (last_receipt, silent) = receipts(state, &user).await?;
        let last_drill = last_drill(state, &user).await?;
        let deaf = deaf.get(&user).map(|why| format!("{user} {why}"));
        let mut reasons = Vec::new();
        if let Some(why) = &deaf {
            reasons.push(format!("the escalation ladder passes them: {why}"));
        }
        // A browser is a fallback: closed, it hears nothing (the ladder does not count it either).
        if !live.iter().any(|d| d.live && d.kind != "webpush") {
            reasons.push("no device of theirs is connected or reachable".to_owned());
        }
        if let Some(device) = silent {
            reasons.push(format!("their last page rang SILENT on {device}"));
        }
        people.push(PersonReadiness {
            user,
            on_call,
            devices: live,
            last_receipt,
            last_drill,
            deaf,
            ready: reasons.is_empty(),
            reasons,
        });
    }
    Ok(Readiness { at: now, people })
}

/// The newest receipt from `user`'s devices among their last incidents, and the device that said
/// it rang silent if the newest `ringing` receipt says so (an `acked` after it does not make a
/// muted phone loud).
async fn receipts(
    state: &AppState,
    user: &str,
) -> ApiResult<(Option<LastReceipt>, Option<String>)> {
    let filter = IncidentFilter { user: Some(user.to_owned()), limit: 10, ..Default::default() };
    let (mut newest, mut ringing) = (None, None);
    for incident in state.store.incidents(filter).await? {
        let detail = state.store.incident(incident.id).await?;
        let mine = detail.timeline.iter().rev().filter(|e| e.kind == "receipt" && e.actor == user);
        for e in mine {
            let muted = e.data["muted"].as_bool();
            let volume = e.data["volume"].as_f64().map(|v| v as f32);
            let receipt = LastReceipt {
                at: e.at,
                incident_id: incident.id,
                kind: e.data["kind"].as_str().unwrap_or("").to_owned(),
                device: e.data["device"].as_str().unwrap_or("").to_owned(),
                volume,
                muted,
                silent: muted == Some(true) || volume.is_some_and(|v| v <= 0.0),
            };
            if ringing.is_none() && receipt.kind == "ringing" {
                ringing = Some(receipt.clone());
            }
            newest.get_or_insert(receipt);
        }
        if ringing.is_some() {
            break;
        }
    }
    let silent = ringing.filter(|r| r.silent).map(|r| r.device);
    Ok((newest, silent))
}

async fn last_drill(
    state: &AppState,
    user: &str,
) -> ApiResult<Option<reveille_protocol::api::DrillResult>> {
    let filter = IncidentFilter {
        user: Some(user.to_owned()),
        drill: Some(true),
        limit: 1,
        ..Default::default()
    };
    let Some(incident) = state.store.incidents(filter).await?.into_iter().next() else {
        return Ok(None);
    };
    Ok(Some(crate::oncall::drills::result(&state.store.incident(incident.id).await?)))
}
