//! Reaching people: every way a committed page leaves the server. Devices follow their
//! person's feed ([`feed`] over SSE, [`ntfy`] for the stock ntfy app, both through one
//! [`follow`]er); the rest read the committed feed through an [`outbox`] each (cursor in the
//! store, a lease with several nodes, never skipping an entry): native and browser [`push`],
//! email, Matrix, calls ([`voice`], [`twilio`]) and texts ([`sms`]) by each person's rules
//! ([`notify`]), and [`webhooks`].

pub mod email;
pub mod feed;
pub mod follow;
pub mod matrix;
pub mod notify;
pub mod ntfy;
pub mod outbox;
pub mod push;
pub mod sms;
pub mod twilio;
pub mod voice;
pub mod webhooks;

use axum::Router;
use axum::routing::{delete, get, post};

use crate::AppState;

/// This area's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/feed", get(feed::subscribe))
        .route(
            "/api/v1/me/notify",
            get(notify::rules::get).put(notify::rules::put).delete(notify::rules::delete),
        )
        .route("/api/v1/people/{user}/notify-test", post(notify::trial::run))
        .route("/api/v1/devices", post(push::devices::register).get(push::devices::list))
        .route("/api/v1/devices/{id}", delete(push::devices::remove))
        .route("/api/v1/webpush", get(push::browsers::info))
        .route(
            "/api/v1/webpush/subscriptions",
            post(push::browsers::subscribe).delete(push::browsers::unsubscribe),
        )
        .route("/hooks/twilio/voice/{token}", post(twilio::hooks::voice))
        .route("/hooks/twilio/keys/{token}", post(twilio::hooks::keys))
        .route("/hooks/twilio/status/{token}", post(twilio::hooks::status))
        .route("/hooks/twilio/sms", post(twilio::hooks::sms))
        .route("/hooks/twilio/incoming", post(twilio::hooks::incoming))
        .merge(ntfy::routes())
}
