//! Local fakes of Google's OAuth token endpoint, FCM HTTP v1 and APNs, served over HTTPS on
//! 127.0.0.1 with a self-signed certificate. They check what the real services check — the
//! JWT signatures, claims and headers, and the payload shapes — and answer with the documented
//! bodies, including the scripted failures a test asks for.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode, Version};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// What a fake answers, in order, for one device token; the last answer repeats.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub retry_after: Option<u64>,
}

impl Answer {
    pub fn ok() -> Self {
        Self { status: 200, body: Value::Null, retry_after: None }
    }

    pub fn new(status: u16, body: Value) -> Self {
        Self { status, body, retry_after: None }
    }

    pub fn fcm_error(status: u16, grpc: &str, code: &str) -> Self {
        Self::new(
            status,
            json!({"error": {"code": status, "message": format!("{code} from the fake"), "status": grpc,
            "details": [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code}]}}),
        )
    }

    pub fn apns_error(status: u16, reason: &str) -> Self {
        Self::new(status, json!({"reason": reason}))
    }

    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }
}

/// A request a fake accepted as well-formed, whatever it answered.
#[derive(Debug, Clone)]
pub struct Seen {
    pub provider: &'static str,
    pub device: String,
    pub body: Value,
    pub headers: HashMap<String, String>,
}

pub struct Keys {
    pub rsa_private: String,
    pub rsa_public: String,
    pub ec_private: String,
    pub ec_public: String,
}

/// Test keys, made once per test binary (RSA generation is slow).
pub fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let rsa = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
        let ec = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        Keys {
            rsa_private: rsa.to_pkcs8_pem(LineEnding::LF).unwrap().to_string(),
            rsa_public: rsa.to_public_key().to_public_key_pem(LineEnding::LF).unwrap(),
            ec_private: ec.serialize_pem(),
            ec_public: ec.public_key_pem(),
        }
    })
}

pub const PROJECT: &str = "reveille-test";
pub const CLIENT_EMAIL: &str = "pager@reveille-test.iam.gserviceaccount.com";
pub const KEY_ID: &str = "ABC123DEFG";
pub const TEAM_ID: &str = "TEAM123456";
pub const TOPIC: &str = "dev.reveille.app";

struct Inner {
    url: String,
    answers: Mutex<HashMap<String, Vec<Answer>>>,
    issued: Mutex<Vec<String>>,
    seen: mpsc::UnboundedSender<Seen>,
    /// While held, FCM sends wait for a release before answering (a provider that hangs).
    held: tokio::sync::watch::Sender<bool>,
    /// FCM sends being answered now, and the most there ever were at once.
    in_flight: Mutex<(usize, usize)>,
}

#[derive(Clone)]
struct Fake(Arc<Inner>);

pub struct Providers {
    pub url: String,
    /// The self-signed certificate to trust.
    pub ca_pem: String,
    pub seen: mpsc::UnboundedReceiver<Seen>,
    fake: Fake,
}

impl Providers {
    pub async fn start() -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
            .unwrap();
        let (ca_pem, key_pem) = (cert.cert.pem(), cert.key_pair.serialize_pem());
        let tls = axum_server::tls_rustls::RustlsConfig::from_pem(
            ca_pem.clone().into_bytes(),
            key_pem.into_bytes(),
        )
        .await
        .unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let url = format!("https://127.0.0.1:{}", addr.port());
        let (tx, seen) = mpsc::unbounded_channel();
        let fake = Fake(Arc::new(Inner {
            url: url.clone(),
            answers: Mutex::default(),
            issued: Mutex::default(),
            seen: tx,
            held: tokio::sync::watch::channel(false).0,
            in_flight: Mutex::default(),
        }));
        let app = Router::new()
            .route("/token", post(token))
            .route("/v1/projects/{project}/{send}", post(fcm_send))
            .route("/3/device/{device}", post(apns_send))
            .with_state(fake.clone());
        tokio::spawn(axum_server::from_tcp_rustls(listener, tls).serve(app.into_make_service()));
        Providers { url, ca_pem, seen, fake }
    }

    /// Scripts the answers for one device token.
    pub fn answer(&self, device: &str, answers: Vec<Answer>) {
        self.fake.0.answers.lock().unwrap().insert(device.to_owned(), answers);
    }

    /// Makes FCM sends hang until released (false), as a provider in trouble does.
    pub fn hold(&self, held: bool) {
        self.fake.0.held.send_replace(held);
    }

    /// FCM sends being answered now, and the most there ever were at once.
    pub fn in_flight(&self) -> (usize, usize) {
        *self.fake.0.in_flight.lock().unwrap()
    }

    /// The service-account JSON a server needs to use this fake (token_uri points here).
    pub fn service_account(&self) -> String {
        json!({
            "type": "service_account", "project_id": PROJECT, "private_key_id": "kid-1",
            "private_key": keys().rsa_private, "client_email": CLIENT_EMAIL, "client_id": "1",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth", "token_uri": format!("{}/token", self.url),
        })
        .to_string()
    }

    /// The next request a fake accepted.
    pub async fn next(&mut self) -> Seen {
        tokio::time::timeout(std::time::Duration::from_secs(20), self.seen.recv())
            .await
            .expect("no push request within 20 s")
            .unwrap()
    }
}

fn answer_for(fake: &Fake, device: &str) -> Answer {
    let mut answers = fake.0.answers.lock().unwrap();
    match answers.get_mut(device) {
        Some(list) if list.len() > 1 => list.remove(0),
        Some(list) => list[0].clone(),
        None => Answer::ok(),
    }
}

fn reply(answer: Answer, ok_body: Value, extra: (&'static str, String)) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap();
    let body = if answer.status == 200 { ok_body } else { answer.body };
    let mut response = (status, axum::Json(body)).into_response();
    if let Some(seconds) = answer.retry_after {
        response.headers_mut().insert("retry-after", seconds.into());
    }
    response.headers_mut().insert(extra.0, extra.1.parse().unwrap());
    response
}

fn headers_map(headers: &HeaderMap) -> HashMap<String, String> {
    headers.iter().map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned())).collect()
}

/// Google's token endpoint: a JWT-bearer grant signed by the service account's key.
async fn token(State(fake): State<Fake>, Form(form): Form<HashMap<String, String>>) -> Response {
    let invalid = |why: &str| {
        (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "invalid_grant", "error_description": why})),
        )
            .into_response()
    };
    if form.get("grant_type").map(String::as_str)
        != Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
    {
        return invalid("unsupported grant_type");
    }
    let assertion = form.get("assertion").cloned().unwrap_or_default();
    let header = jsonwebtoken::decode_header(&assertion);
    if header.as_ref().map(|h| (h.alg, h.kid.as_deref())) != Ok((Algorithm::RS256, Some("kid-1"))) {
        return invalid("the assertion must be RS256 with the key id of the service account");
    }
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[format!("{}/token", fake.0.url)]);
    validation.set_issuer(&[CLIENT_EMAIL]);
    let key = DecodingKey::from_rsa_pem(keys().rsa_public.as_bytes()).unwrap();
    let claims = match jsonwebtoken::decode::<Value>(&assertion, &key, &validation) {
        Ok(data) => data.claims,
        Err(_) => return invalid("Invalid JWT Signature."),
    };
    let (iat, exp) = (claims["iat"].as_i64().unwrap_or(0), claims["exp"].as_i64().unwrap_or(0));
    let scope = claims["scope"].as_str().unwrap_or("");
    if exp - iat > 3600
        || !scope.split(' ').any(|s| s == "https://www.googleapis.com/auth/firebase.messaging")
    {
        return invalid("bad claims");
    }
    let mut issued = fake.0.issued.lock().unwrap();
    let token = format!("ya29.fake-{}", issued.len() + 1);
    issued.push(token.clone());
    axum::Json(json!({"access_token": token, "expires_in": 3599, "token_type": "Bearer"}))
        .into_response()
}

/// FCM HTTP v1 `messages:send`.
async fn fcm_send(
    State(fake): State<Fake>,
    Path((project, send)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let bad = |why: &str| {
        (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": {"code": 400, "message": why, "status": "INVALID_ARGUMENT",
            "details": [{"@type": "type.googleapis.com/google.rpc.BadRequest"}]}})),
        )
            .into_response()
    };
    if project != PROJECT || send != "messages:send" {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    }
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if !bearer.is_some_and(|b| fake.0.issued.lock().unwrap().iter().any(|t| t == b)) {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": {"code": 401, "status": "UNAUTHENTICATED",
            "message": "Request had invalid authentication credentials."}})),
        )
            .into_response();
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return bad("Invalid JSON payload received.");
    };
    let message = &body["message"];
    let Some(device) = message["token"].as_str() else { return bad("message.token is required") };
    let data_ok = message["data"].as_object().is_some_and(|d| d.values().all(Value::is_string));
    let priority = message["android"]["priority"].as_str().unwrap_or("").to_ascii_lowercase();
    let ttl_ok = message["android"]["ttl"]
        .as_str()
        .is_some_and(|t| t.ends_with('s') && t[..t.len() - 1].parse::<f64>().is_ok());
    if !data_ok || priority != "high" || !ttl_ok {
        return bad("Invalid value at 'message.data' / 'message.android'");
    }
    {
        let mut in_flight = fake.0.in_flight.lock().unwrap();
        in_flight.0 += 1;
        in_flight.1 = in_flight.1.max(in_flight.0);
    }
    let _ = fake.0.seen.send(Seen {
        provider: "fcm",
        device: device.into(),
        body: body.clone(),
        headers: headers_map(&headers),
    });
    let _ = fake.0.held.subscribe().wait_for(|held| !held).await;
    fake.0.in_flight.lock().unwrap().0 -= 1;
    let answer = answer_for(&fake, device);
    reply(
        answer,
        json!({"name": format!("projects/{PROJECT}/messages/0:{}", device.len())}),
        ("x-fake", "fcm".into()),
    )
}

/// APNs `POST /3/device/{token}` over HTTP/2 with a provider token.
async fn apns_send(
    State(fake): State<Fake>,
    Path(device): Path<String>,
    version: Version,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let refuse = |status: u16, reason: &str| {
        reply(
            Answer::apns_error(status, reason),
            Value::Null,
            ("apns-id", "00000000-0000-0000-0000-000000000000".into()),
        )
    };
    if version != Version::HTTP_2 {
        return refuse(405, "MethodNotAllowed");
    }
    let header =
        |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let Some(jwt) = header("authorization").strip_prefix("bearer ").map(str::to_owned) else {
        return refuse(403, "MissingProviderToken");
    };
    let jwt_header = jsonwebtoken::decode_header(&jwt);
    if jwt_header.as_ref().map(|h| (h.alg, h.kid.as_deref()))
        != Ok((Algorithm::ES256, Some(KEY_ID)))
    {
        return refuse(403, "InvalidProviderToken");
    }
    let mut validation = Validation::new(Algorithm::ES256);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.set_issuer(&[TEAM_ID]);
    let key = DecodingKey::from_ec_pem(keys().ec_public.as_bytes()).unwrap();
    let Ok(claims) = jsonwebtoken::decode::<Value>(&jwt, &key, &validation) else {
        return refuse(403, "InvalidProviderToken");
    };
    let age = jiff::Timestamp::now().as_second() - claims.claims["iat"].as_i64().unwrap_or(0);
    if !(0..3600).contains(&age) {
        return refuse(403, "ExpiredProviderToken");
    }
    if header("apns-topic") != TOPIC {
        return refuse(
            400,
            if header("apns-topic").is_empty() { "MissingTopic" } else { "TopicDisallowed" },
        );
    }
    if !["10", "5", "1"].contains(&header("apns-priority").as_str()) {
        return refuse(400, "BadPriority");
    }
    if header("apns-push-type") != "alert" || body.len() > 4096 {
        return refuse(400, "BadMessageId");
    }
    let Ok(payload) = serde_json::from_slice::<Value>(&body) else {
        return refuse(400, "PayloadEmpty");
    };
    if !payload["aps"]["alert"].is_object() {
        return refuse(400, "PayloadEmpty");
    }
    let _ = fake.0.seen.send(Seen {
        provider: "apns",
        device: device.clone(),
        body: payload,
        headers: headers_map(&headers),
    });
    let answer = answer_for(&fake, &device);
    reply(answer, Value::Null, ("apns-id", format!("5e7c1b2a-0000-4000-8000-{:012}", device.len())))
}
