//! `/api/v1/me/notify`: a person reads and sets their own notification rules through the API.
//! Rules set here replace the config's `[users.notify]` for that person (they live in the
//! database, so every node of a cluster uses them); `DELETE` goes back to the config's.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use reveille_core::notify::{NotifyRules, Step};
use serde::Serialize;

use crate::AppState;
use crate::config::outbound::{NotifySettings, check_notify};
use crate::error::{ApiError, ApiResult};
use crate::http::auth::{Caller, Scope};

fn key(user: &str) -> String {
    format!("notify:{user}")
}

impl AppState {
    /// The rules set through the API for `user`, if any.
    pub async fn written_rules(
        &self,
        user: &str,
    ) -> reveille_store::Result<Option<NotifySettings>> {
        let stored = self.store.meta(&key(user)).await?;
        Ok(stored.filter(|s| !s.is_empty()).and_then(|s| serde_json::from_str(&s).ok()))
    }

    /// The rules `user` is reached by now: set through the API, else the config's.
    pub async fn notify_rules(&self, user: &str) -> reveille_store::Result<NotifyRules> {
        let written = self.written_rules(user).await?;
        Ok(self.settings().notify_rules_with(user, written.as_ref()))
    }
}

/// The rules as the API shows them.
#[derive(Debug, Serialize)]
pub struct Shown {
    pub user: String,
    /// `api` when set through the API, `config` when written in the config, `default` otherwise
    /// (every channel the person has, at once).
    pub source: &'static str,
    /// The channels the person can be reached on besides their devices.
    pub channels: Vec<&'static str>,
    pub time_zone: String,
    pub high: Vec<String>,
    pub low: Vec<String>,
    pub quiet_hours: Option<String>,
}

fn step_text(step: &Step) -> String {
    let seconds = step.after.as_secs();
    match seconds {
        0 => step.channel.as_str().to_owned(),
        s if s % 60 == 0 => format!("{} after {}m", step.channel.as_str(), s / 60),
        s => format!("{} after {s}s", step.channel.as_str()),
    }
}

async fn show(state: &AppState, user: &str) -> ApiResult<Shown> {
    let settings = state.settings();
    let person = settings.users.iter().find(|u| u.name == user);
    let person =
        person.ok_or_else(|| ApiError::not_found(format!("user {user:?} is not configured")))?;
    let written = state.written_rules(user).await?;
    let source = match (&written, &person.notify) {
        (Some(_), _) => "api",
        (None, Some(_)) => "config",
        (None, None) => "default",
    };
    let rules = state.settings().notify_rules_with(user, written.as_ref());
    let quiet = written.as_ref().or(person.notify.as_ref()).and_then(|n| n.quiet_hours.clone());
    Ok(Shown {
        user: user.to_owned(),
        source,
        channels: state.settings().channels(person).iter().map(|c| c.as_str()).collect(),
        time_zone: person.time_zone.clone().unwrap_or_else(|| "UTC".into()),
        high: rules.high.iter().map(step_text).collect(),
        low: rules.low.iter().map(step_text).collect(),
        quiet_hours: quiet,
    })
}

/// `GET /api/v1/me/notify`
pub async fn get(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Shown>> {
    caller.require(Scope::Read)?;
    Ok(Json(show(&state, &caller.user).await?))
}

/// `PUT /api/v1/me/notify` with `{"high": ["email after 2m"], "low": [...], "quiet_hours": "22:00-07:00"}`.
pub async fn put(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<Json<Shown>> {
    caller.require(Scope::Respond)?;
    let written: NotifySettings = crate::http::incidents::parse_json(&body)?;
    let settings = state.settings();
    let person = settings.users.iter().find(|u| u.name == caller.user);
    let person = person.ok_or_else(|| ApiError::not_found("this user is not configured"))?;
    if let Some(((key, index), message)) =
        check_notify(&state.settings(), person, &written).into_iter().next()
    {
        let field = index.map_or_else(|| key.to_owned(), |i| format!("{key}[{i}]"));
        return Err(ApiError::invalid(field, message));
    }
    let json = serde_json::to_string(&written).expect("rules serialise");
    state.store.set_meta(&key(&caller.user), &json).await?;
    Ok(Json(show(&state, &caller.user).await?))
}

/// `DELETE /api/v1/me/notify`: back to the config's rules.
pub async fn delete(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Shown>> {
    caller.require(Scope::Respond)?;
    state.store.set_meta(&key(&caller.user), "").await?;
    Ok(Json(show(&state, &caller.user).await?))
}
