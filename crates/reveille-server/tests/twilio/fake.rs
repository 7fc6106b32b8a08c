//! A local Twilio: the parts of its documented REST API Reveille uses (`2010-04-01`: Calls,
//! Messages, basic auth, its error bodies), and the phone network behind it, which calls
//! Reveille's webhooks as Twilio does, each signed with `X-Twilio-Signature` over the URL it
//! requested and the form, and reads the TwiML they answer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::json;

use super::common::Harness;

pub const SID: &str = "AC0123456789abcdef0123456789abcdef";
pub const TOKEN: &str = "twilio-auth-token-for-tests";
pub const FROM: &str = "+15550001111";
pub const ALICE: &str = "+4915112345678";

/// How a number behaves when called.
#[derive(Clone, Copy, Debug)]
pub enum Phone {
    /// Answers, listens, and presses the key (or nothing).
    Answers(Option<char>),
    Busy,
    NoAnswer,
}

#[derive(Default)]
pub struct Network {
    /// Where Reveille really listens, and the public URL it signs for.
    reveille: String,
    public: String,
    phones: HashMap<String, Phone>,
    calls: HashMap<String, String>,
    /// Everything said on calls, in order.
    said: Vec<String>,
    texts: Vec<(String, String)>,
}

pub type Shared = Arc<Mutex<Network>>;

/// Twilio's signature: Base64(HMAC-SHA1(token, url + sorted name/value pairs)).
pub fn sign(url: &str, params: &[(String, String)]) -> String {
    let mut sorted = params.to_vec();
    sorted.sort();
    let mut data = url.to_owned();
    for (k, v) in sorted {
        data.push_str(&k);
        data.push_str(&v);
    }
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(TOKEN.as_bytes()).unwrap();
    mac.update(data.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let to = text[from..].find(end)? + from;
    Some(&text[from..to])
}

/// Requests a webhook as Twilio does; the TwiML answered.
pub async fn webhook(net: &Shared, url: &str, params: Vec<(String, String)>) -> (u16, String) {
    let (reveille, public) = {
        let n = net.lock().unwrap();
        (n.reveille.clone(), n.public.clone())
    };
    let signature = sign(url, &params);
    let target = url.replacen(&public, &reveille, 1);
    let response = reqwest::Client::new()
        .post(target)
        .header("X-Twilio-Signature", signature)
        .form(&params)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

fn authorized(headers: &HeaderMap) -> bool {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{SID}:{TOKEN}"))
    );
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(expected.as_str())
}

fn error(status: StatusCode, code: u32, message: &str) -> axum::response::Response {
    let body = json!({"code": code, "message": message, "more_info": format!("https://www.twilio.com/docs/errors/{code}"), "status": status.as_u16()});
    (status, axum::Json(body)).into_response()
}

fn param<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

async fn create_call(
    State(net): State<Shared>,
    Path(account): Path<String>,
    headers: HeaderMap,
    Form(form): Form<Vec<(String, String)>>,
) -> axum::response::Response {
    if account != SID || !authorized(&headers) {
        return error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
    }
    let (Some(to), Some(url), Some(status)) =
        (param(&form, "To"), param(&form, "Url"), param(&form, "StatusCallback"))
    else {
        return error(StatusCode::BAD_REQUEST, 21205, "Url parameter is required.");
    };
    if param(&form, "From") != Some(FROM) {
        return error(
            StatusCode::BAD_REQUEST,
            21210,
            "The source phone number provided is not yet verified for your account.",
        );
    }
    let sid = format!("CA{:032x}", rand::random::<u128>());
    let phone = net.lock().unwrap().phones.get(to).copied();
    net.lock().unwrap().calls.insert(sid.clone(), "queued".into());
    let (net2, sid2, to, url, status) =
        (net.clone(), sid.clone(), to.to_owned(), url.to_owned(), status.to_owned());
    tokio::spawn(async move { play(net2, sid2, to, url, status, phone).await });
    (StatusCode::CREATED, axum::Json(json!({"sid": sid, "account_sid": SID, "status": "queued", "to": form.iter().find(|(k, _)| k == "To").map(|(_, v)| v.clone()), "from": FROM}))).into_response()
}

/// The call, as the network and the person play it.
async fn play(
    net: Shared,
    sid: String,
    to: String,
    url: String,
    status_url: String,
    phone: Option<Phone>,
) {
    let set = |s: &str| {
        net.lock().unwrap().calls.insert(sid.clone(), s.to_owned());
    };
    let base = |status: &str| {
        vec![
            ("CallSid".to_owned(), sid.clone()),
            ("AccountSid".to_owned(), SID.to_owned()),
            ("From".to_owned(), FROM.to_owned()),
            ("To".to_owned(), to.clone()),
            ("CallStatus".to_owned(), status.to_owned()),
            ("Direction".to_owned(), "outbound-api".to_owned()),
        ]
    };
    let Some(phone) = phone else {
        set("failed");
        return;
    };
    set("ringing");
    webhook(&net, &status_url, base("ringing")).await;
    let press = match phone {
        Phone::Busy => return set("busy"),
        Phone::NoAnswer => return set("no-answer"),
        Phone::Answers(press) => press,
    };
    set("in-progress");
    let mut next = Some(url);
    let mut params = base("in-progress");
    let mut steps = 0;
    while let Some(url) = next.take() {
        steps += 1;
        assert!(steps < 20, "a call that never ends");
        let (code, twiml) = webhook(&net, &url, params.clone()).await;
        assert_eq!(code, 200, "{twiml}");
        let mut rest = twiml.as_str();
        while let Some(said) = between(rest, "<Say>", "</Say>") {
            net.lock().unwrap().said.push(unescape(said));
            rest = &rest[rest.find("</Say>").unwrap() + 6..];
        }
        if twiml.contains("<Hangup/>") {
            break;
        }
        params = base("in-progress");
        if let (Some(key), Some(action)) = (press, between(&twiml, "action=\"", "\"")) {
            params.push(("Digits".into(), key.to_string()));
            next = Some(unescape(action));
        } else {
            next = between(&twiml, "<Redirect method=\"POST\">", "</Redirect>").map(unescape);
        }
    }
    set("completed");
    webhook(&net, &status_url, base("completed")).await;
}

async fn call_status(
    State(net): State<Shared>,
    Path((account, call)): Path<(String, String)>,
    headers: HeaderMap,
) -> axum::response::Response {
    if account != SID || !authorized(&headers) {
        return error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
    }
    let call = call.trim_end_matches(".json").to_owned();
    match net.lock().unwrap().calls.get(&call) {
        Some(status) => axum::Json(json!({"sid": call, "status": status})).into_response(),
        None => error(StatusCode::NOT_FOUND, 20404, "The requested resource was not found"),
    }
}

async fn create_message(
    State(net): State<Shared>,
    Path(account): Path<String>,
    headers: HeaderMap,
    Form(form): Form<Vec<(String, String)>>,
) -> axum::response::Response {
    if account != SID || !authorized(&headers) {
        return error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
    }
    let (Some(to), Some(body)) = (param(&form, "To"), param(&form, "Body")) else {
        return error(StatusCode::BAD_REQUEST, 21602, "Message body is required.");
    };
    net.lock().unwrap().texts.push((to.to_owned(), body.to_owned()));
    let sid = format!("SM{:032x}", rand::random::<u128>());
    (
        StatusCode::CREATED,
        axum::Json(json!({"sid": sid, "status": "queued", "to": to, "body": body})),
    )
        .into_response()
}

pub struct Twilio {
    pub url: String,
    pub net: Shared,
}

impl Twilio {
    pub async fn start(phones: &[(&str, Phone)]) -> Self {
        let net = Shared::default();
        net.lock().unwrap().phones = phones.iter().map(|(n, p)| ((*n).to_owned(), *p)).collect();
        let app = Router::new()
            .route("/2010-04-01/Accounts/{account}/Calls.json", post(create_call))
            .route("/2010-04-01/Accounts/{account}/Calls/{call}", get(call_status))
            .route("/2010-04-01/Accounts/{account}/Messages.json", post(create_message))
            .with_state(net.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, net }
    }

    pub fn attach(&self, h: &Harness) {
        let mut n = self.net.lock().unwrap();
        n.reveille = h.url.clone();
        n.public = "http://reveille.test".into();
    }

    /// A text from `from` to the Twilio number; Reveille's TwiML answer.
    pub async fn text_in(&self, from: &str, body: &str) -> (u16, String) {
        let params = vec![
            ("From".into(), from.into()),
            ("To".into(), FROM.into()),
            ("Body".into(), body.into()),
            ("MessageSid".into(), "SM1".into()),
        ];
        webhook(&self.net, "http://reveille.test/hooks/twilio/sms", params).await
    }

    /// Waits (up to 20 s) until every call placed has ended.
    pub async fn calls_ended(&self) {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let calls = self.net.lock().unwrap().calls.clone();
            let open = |s: &String| matches!(s.as_str(), "queued" | "ringing" | "in-progress");
            if !calls.is_empty() && !calls.values().any(open) {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "calls still open: {calls:?}");
            // The fake's own tasks: nothing to wait on but their state.
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    pub fn said(&self) -> Vec<String> {
        self.net.lock().unwrap().said.clone()
    }

    pub fn texts(&self) -> Vec<(String, String)> {
        self.net.lock().unwrap().texts.clone()
    }
}
