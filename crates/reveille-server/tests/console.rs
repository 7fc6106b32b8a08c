//! The API the web console stands on, over real HTTP with a moved clock: sessions (sign-in by
//! token and by one-time link, CSRF, expiry, sign-out), the incident list's filters and pages,
//! the team's live stream, calendar feeds and the readiness board.

mod common;

use common::{CONFIG, Harness};
use jiff::{SignedDuration, Timestamp};
use reqwest::StatusCode;
use reveille_server::http::session::signin_code;
use serde_json::{Value, json};

/// The usual config with a schedule bob holds now and alice holds a week on, Berlin time.
fn config() -> String {
    format!(
        "{CONFIG}
[[schedules]]
name = \"primary\"
time_zone = \"Europe/Berlin\"
[[schedules.layers]]
members = [\"bob\", \"alice\"]
shadows = [\"carol\"]
start = \"2026-01-05T09:00\"
shift = \"1w\"
"
    )
}

/// A moment in a Berlin winter week when bob holds `primary`, just before the DST change.
fn now() -> Timestamp {
    "2027-03-17T12:00:00Z".parse().unwrap()
}

/// Signs in through the API with a token; the session cookie and CSRF token.
async fn sign_in(h: &Harness, body: Value) -> (reqwest::Response, Option<(String, String)>) {
    let response =
        h.http.post(format!("{}/api/v1/session", h.url)).json(&body).send().await.unwrap();
    let cookie = response
        .headers()
        .get("set-cookie")
        .map(|c| c.to_str().unwrap().split(';').next().unwrap().to_owned());
    if response.status() != StatusCode::OK {
        return (response, None);
    }
    let cookie = cookie.expect("a session sets a cookie");
    let response2 = h
        .http
        .get(format!("{}/api/v1/session", h.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    let csrf = response2.json::<Value>().await.unwrap()["csrf"].as_str().unwrap().to_owned();
    (response, Some((cookie, csrf)))
}

#[tokio::test]
async fn a_session_is_a_cookie_that_changes_nothing_without_its_csrf_token() {
    let h = Harness::at(&config(), now()).await;
    let id = h.trigger("k1", "Checkout down").await;
    let (response, session) = sign_in(&h, json!({ "token": h.alice })).await;
    let set_cookie = response.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"),
        "{set_cookie}"
    );
    assert!(!set_cookie.contains("Secure"), "a plain-HTTP server cannot set a Secure cookie");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["user"], "alice");
    assert!(!body.to_string().contains("rvt_"), "the session's secret reached the page: {body}");
    let (cookie, csrf) = session.unwrap();

    let ack = format!("{}/api/v1/incidents/{id}/ack", h.url);
    let refused = h.http.post(&ack).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let wrong = h.http.post(&ack).header("cookie", &cookie).header("x-csrf-token", "AAAA").send();
    assert_eq!(wrong.await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(h.store().incident(id).await.unwrap().incident.state.as_str(), "triggered");
    let ok = h.http.post(&ack).header("cookie", &cookie).header("x-csrf-token", &csrf).send();
    let ok = ok.await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let view: Value = ok.json().await.unwrap();
    assert_eq!(view["acknowledged_by"], "alice");
    assert!(view.get("escalation").is_none(), "the escalation cursor stays server-side: {view}");

    // The session's secret is not a bearer token.
    let secret = cookie.split_once('=').unwrap().1;
    assert_eq!(h.get("/api/v1/incidents", secret).await.0, 401);

    // Revoking the token a session was made with ends the session.
    let (_, bobs) = sign_in(&h, json!({ "token": h.bob })).await;
    let (bobs, _) = bobs.unwrap();
    let session = format!("{}/api/v1/session", h.url);
    let alive = h.http.get(&session).header("cookie", &bobs).send().await.unwrap();
    assert_eq!(alive.status(), StatusCode::OK);
    h.store().revoke_token(&h.bob[..10]).await.unwrap();
    let ended = h.http.get(&session).header("cookie", &bobs).send().await.unwrap();
    assert_eq!(ended.status(), StatusCode::UNAUTHORIZED);

    // Sessions end after server.session_hours (12 by default).
    h.advance(12 * 3600);
    let late = h.http.get(format!("{}/api/v1/session", h.url)).header("cookie", &cookie).send();
    assert_eq!(late.await.unwrap().status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_sign_in_link_works_once_and_sign_out_ends_the_session() {
    let h = Harness::at(&config(), now()).await;
    let key = reveille_server::http::links::secret(&h.state).await.unwrap();
    let code = signin_code(&key, "bob", now() + SignedDuration::from_mins(15));
    let (response, session) = sign_in(&h, json!({ "code": code })).await;
    assert_eq!(response.status(), StatusCode::OK);
    let (second, _) = sign_in(&h, json!({ "code": code })).await;
    assert_eq!(second.status(), StatusCode::UNAUTHORIZED);
    assert!(second.text().await.unwrap().contains("already used"));

    let expired = signin_code(&key, "bob", now() - SignedDuration::from_secs(1));
    let (response, _) = sign_in(&h, json!({ "code": expired })).await;
    assert!(response.text().await.unwrap().contains("expired"));
    let (response, _) = sign_in(&h, json!({ "code": "bob.1.2.3" })).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    let (cookie, csrf) = session.unwrap();
    let url = format!("{}/api/v1/session", h.url);
    let out = h.http.delete(&url).header("cookie", &cookie).header("x-csrf-token", &csrf).send();
    assert_eq!(out.await.unwrap().status(), StatusCode::NO_CONTENT);
    let after = h.http.get(&url).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_incident_list_filters_and_pages() {
    let h = Harness::at(&config(), now()).await;
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(h.trigger(&format!("k{n}"), &format!("alert {n}")).await);
        h.advance(60);
    }
    h.post(
        &format!("/api/v1/incidents/{}/resolve", ids[0]),
        Some(&format!("Bearer {}", h.alice)),
        "",
    )
    .await;
    let list = |q: &str| {
        let q = q.to_owned();
        let h = &h;
        async move { h.get(&format!("/api/v1/incidents?{q}"), &h.alice).await }
    };
    let ids_of = |v: &Value| -> Vec<i64> {
        v["incidents"].as_array().unwrap().iter().map(|i| i["id"].as_i64().unwrap()).collect()
    };
    let (_, open) = list("").await;
    assert_eq!(ids_of(&open), [ids[4], ids[3], ids[2], ids[1]]);
    let (_, first) = list("state=all&limit=2").await;
    assert_eq!(ids_of(&first), [ids[4], ids[3]]);
    let next = first["next_before"].as_i64().unwrap();
    let (_, second) = list(&format!("state=all&limit=2&before={next}")).await;
    assert_eq!(ids_of(&second), [ids[2], ids[1]]);
    let (_, resolved) = list("state=resolved").await;
    assert_eq!(ids_of(&resolved), [ids[0]]);
    let since = (now() + SignedDuration::from_secs(120)).to_string();
    let (_, recent) =
        list(&format!("since={since}&until={}", now() + SignedDuration::from_secs(240))).await;
    assert_eq!(ids_of(&recent), [ids[3], ids[2]]);
    let (status, bad) = list("urgency=loud").await;
    assert_eq!((status, bad["field"].as_str()), (400, Some("urgency")));
    let (status, bad) = list("since=yesterday").await;
    assert_eq!((status, bad["field"].as_str()), (400, Some("since")));
}

#[tokio::test]
async fn the_team_stream_shows_every_change_once() {
    let h = Harness::at(&config(), now()).await;
    let response = h
        .http
        .get(format!("{}/api/v1/incidents/stream", h.url))
        .bearer_auth(&h.bob)
        .send()
        .await
        .unwrap();
    let mut lines = common::Lines::new(response);
    let mut next_event = async || loop {
        let line = lines.next().await.expect("the stream ended");
        if let Some(data) = line.strip_prefix("data: ") {
            let value: Value = serde_json::from_str(data).unwrap();
            if value.get("state").is_some() {
                return value;
            }
        }
    };
    let id = h.trigger("k1", "Checkout down").await;
    let opened = next_event().await;
    assert_eq!((opened["id"].as_i64(), opened["state"].as_str()), (Some(id), Some("triggered")));
    h.post(&format!("/api/v1/incidents/{id}/ack"), Some(&format!("Bearer {}", h.alice)), "").await;
    let acked = next_event().await;
    assert_eq!(acked["state"], "acknowledged", "alice and bob were both paged: one event, not two");
}

#[tokio::test]
async fn calendars_show_shifts_and_overrides_on_their_own_key() {
    let h = Harness::at(&config(), now()).await;
    let (_, links) = h.get("/api/v1/calendars", &h.alice).await;
    let mine = links["me"].as_str().unwrap().replace("http://reveille.test", &h.url);
    let schedule =
        links["schedules"][0]["url"].as_str().unwrap().replace("http://reveille.test", &h.url);
    // alice takes bob's shift on Thursday.
    let body =
        json!({"user": "alice", "start": "2027-03-18T08:00:00Z", "end": "2027-03-18T20:00:00Z"});
    let (status, _) = h
        .post(
            "/api/v1/schedules/primary/overrides",
            Some(&format!("Bearer {}", h.alice)),
            &body.to_string(),
        )
        .await;
    assert_eq!(status, 200);

    let ics = h.http.get(&mine).send().await.unwrap();
    assert_eq!(ics.headers()["content-type"], "text/calendar; charset=utf-8");
    let ics = ics.text().await.unwrap().replace("\r\n ", "");
    assert!(ics.starts_with("BEGIN:VCALENDAR\r\n"), "{ics}");
    assert!(ics.contains("SUMMARY:On call: primary (override)\r\n"), "{ics}");
    assert!(ics.contains("DTSTART:20270318T080000Z\r\nDTEND:20270318T200000Z\r\n"), "{ics}");
    // alice's own week starts Monday 09:00 Berlin: 08:00 UTC before the DST change, and the
    // week after it ends at 07:00 UTC.
    assert!(ics.contains("DTSTART:20270322T080000Z\r\nDTEND:20270329T070000Z\r\n"), "{ics}");
    assert!(ics.matches("TRANSP:TRANSPARENT").count() == ics.matches("BEGIN:VEVENT").count());

    let all = h.http.get(&schedule).send().await.unwrap().text().await.unwrap();
    assert!(all.contains("SUMMARY:primary: bob\\, shadow carol"), "{all}");
    // The key opens only its own calendar.
    let bobs = mine.replace("/user/alice.ics", "/user/bob.ics");
    assert_eq!(h.http.get(&bobs).send().await.unwrap().status(), StatusCode::NOT_FOUND);
    let keyless = mine.split('?').next().unwrap().to_owned();
    assert_ne!(h.http.get(&keyless).send().await.unwrap().status(), StatusCode::OK);

    // alice's URL leaked: she makes a new one, and the old one opens nothing any more.
    let (status, fresh) =
        h.post("/api/v1/calendars/reset", Some(&format!("Bearer {}", h.alice)), "").await;
    assert_eq!(status, 200, "{fresh}");
    let renewed = fresh["me"].as_str().unwrap().replace("http://reveille.test", &h.url);
    assert_ne!(renewed, mine);
    assert_eq!(h.http.get(&mine).send().await.unwrap().status(), StatusCode::NOT_FOUND);
    let ics = h.http.get(&renewed).send().await.unwrap();
    assert_eq!(ics.status(), StatusCode::OK);
    assert_eq!(h.http.get(&schedule).send().await.unwrap().status(), StatusCode::OK, "others stay");
}

#[tokio::test]
async fn the_readiness_board_says_who_would_not_hear_a_page() {
    let h = Harness::at(&config(), now()).await;
    let (_, board) = h.get("/api/v1/readiness", &h.alice).await;
    let person = |board: &Value, user: &str| {
        board["people"].as_array().unwrap().iter().find(|p| p["user"] == user).cloned().unwrap()
    };
    let bob = person(&board, "bob");
    assert_eq!(bob["on_call"][0]["when"], "now");
    assert_eq!(bob["ready"], false);
    assert!(bob["reasons"][0].as_str().unwrap().contains("no device"), "{bob}");
    assert_eq!(person(&board, "alice")["on_call"][0]["when"], "next");
    assert_eq!(person(&board, "carol")["on_call"][0]["shadow"], true);

    let _device = h.feed(&h.bob, None).await;
    let (_, board) = h.get("/api/v1/readiness", &h.alice).await;
    let bob = person(&board, "bob");
    assert_eq!(bob["ready"], true, "{bob}");
    assert_eq!(bob["devices"][0]["live"], true);

    // A page bob's device says rang silent turns him red.
    let id = h.trigger("k1", "Checkout down").await;
    let receipt = json!({"kind": "ringing", "device": "laptop", "volume": 0.8, "muted": true});
    let auth = format!("Bearer {}", h.bob);
    h.post(&format!("/api/v1/incidents/{id}/receipts"), Some(&auth), &receipt.to_string()).await;
    let (_, board) = h.get("/api/v1/readiness", &h.alice).await;
    let bob = person(&board, "bob");
    assert_eq!(bob["ready"], false);
    assert_eq!(bob["last_receipt"]["silent"], true);
    assert!(bob["reasons"].to_string().contains("SILENT on laptop"), "{bob}");
}

#[tokio::test]
async fn a_person_holds_a_bounded_number_of_console_streams() {
    let h = Harness::at(&format!("{CONFIG}\n"), now()).await;
    let open =
        || h.http.get(format!("{}/api/v1/incidents/stream", h.url)).bearer_auth(&h.bob).send();
    let mut held = Vec::new();
    for _ in 0..20 {
        let response = open().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        held.push(response);
    }
    assert_eq!(open().await.unwrap().status(), StatusCode::TOO_MANY_REQUESTS);
    // Someone else is not held back by bob's tabs.
    let alices = h.http.get(format!("{}/api/v1/readiness/stream", h.url)).bearer_auth(&h.alice);
    assert_eq!(alices.send().await.unwrap().status(), StatusCode::OK);
    // A closed tab frees its place once the server notices (at the next event or heartbeat).
    drop(held.pop());
    let mut commits = h.store().hub().commits();
    loop {
        let response = open().await.unwrap();
        if response.status() == StatusCode::OK {
            break;
        }
        h.trigger(&format!("k{}", *commits.borrow()), "wake the streams").await;
        commits.changed().await.unwrap();
    }
}

#[tokio::test]
async fn revoking_a_token_ends_the_streams_of_the_sessions_made_from_it() {
    let h = Harness::at(&config(), now()).await;
    let (_, session) = sign_in(&h, json!({ "token": h.bob })).await;
    let (cookie, _) = session.unwrap();
    let stream = h.http.get(format!("{}/api/v1/incidents/stream", h.url)).header("cookie", &cookie);
    let response = stream.send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut lines = common::Lines::new(response);
    assert!(lines.next().await.is_some(), "the stream is open");

    h.store().revoke_token(&h.bob[..10]).await.unwrap();
    h.advance(2);
    let ended = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        while lines.next().await.is_some() {}
    });
    ended.await.expect("the session's stream outlived the token it was made from");
}

#[tokio::test]
async fn signing_in_again_and_again_keeps_a_bounded_number_of_sessions() {
    let h = Harness::at(&config(), now()).await;
    let (_, first) = sign_in(&h, json!({ "token": h.alice })).await;
    let (first, _) = first.unwrap();
    for _ in 0..reveille_server::http::session::MAX_SESSIONS {
        h.advance(1);
        sign_in(&h, json!({ "token": h.alice })).await;
    }
    let session = format!("{}/api/v1/session", h.url);
    let oldest = h.http.get(&session).header("cookie", &first).send().await.unwrap();
    assert_eq!(oldest.status(), StatusCode::UNAUTHORIZED, "the oldest session was ended");
    let live = h.store().tokens().await.unwrap();
    let sessions = live.iter().filter(|t| !t.revoked && t.scopes.contains(&"web".to_owned()));
    assert_eq!(sessions.count(), reveille_server::http::session::MAX_SESSIONS);
}

#[tokio::test]
async fn a_schedule_holds_a_bounded_number_of_overrides() {
    let h = Harness::at(&config(), now()).await;
    let auth = format!("Bearer {}", h.alice);
    let add = |day: i64| {
        let start = now() + SignedDuration::from_hours(24 * day);
        let body =
            json!({"user": "alice", "start": start, "end": start + SignedDuration::from_hours(1)});
        let h = &h;
        let auth = auth.clone();
        async move {
            h.post("/api/v1/schedules/primary/overrides", Some(&auth), &body.to_string()).await
        }
    };
    for day in 0..reveille_server::oncall::MAX_OVERRIDES as i64 {
        assert_eq!(add(day).await.0, 200);
    }
    let (status, error) = add(600).await;
    assert_eq!(status, 409, "{error}");
    assert!(error["message"].as_str().unwrap().contains("still to come"), "{error}");
    let start = now();
    let long = json!({"user": "alice", "start": start, "end": start + SignedDuration::from_hours(400 * 24)});
    let (status, error) =
        h.post("/api/v1/schedules/primary/overrides", Some(&auth), &long.to_string()).await;
    assert_eq!((status, error["field"].as_str()), (400, Some("end")), "{error}");
}
