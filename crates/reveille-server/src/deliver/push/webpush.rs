//! Web Push to browsers that subscribed in the web console: RFC 8030 delivery, the payload
//! encrypted to the subscription as RFC 8291 says (`aes128gcm`), and the server identified to the
//! push service by its own VAPID key (RFC 8292), so no vendor account is needed.
//!
//! The VAPID key is a P-256 key made on first use and kept in the database, so every node of a
//! cluster signs with the same one (a browser subscribed through one node refuses pushes signed
//! by another key). A key an earlier version left in a file beside the link key is taken into the
//! database, so existing subscriptions keep working. (The database already holds what a push
//! needs besides the key, the subscriptions' own secrets; a file of its own would protect
//! nothing more.) A subscription is stored as a device of platform `webpush` whose token is the
//! subscription's JSON; the push service answering 404 or 410 removes it.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes128Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hkdf::Hkdf;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::ecdh::diffie_hellman;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use p256::{PublicKey, SecretKey};
use reveille_protocol::FeedKind;
use reveille_protocol::console::{WebPushMessage, WebPushSubscription};
use sha2::Sha256;

use super::{Outcome, Push, retry_after};

/// Record size announced in the header; a page fits one record.
const RECORD_SIZE: u32 = 4096;

pub struct WebPush {
    http: reqwest::Client,
    signing: EncodingKey,
    /// `base64url` of the uncompressed public point, as browsers take `applicationServerKey`.
    pub public_key: String,
    subject: String,
    base_url: String,
    insecure: bool,
}

impl WebPush {
    pub fn new(
        http: reqwest::Client,
        settings: &crate::config::Settings,
        key: &SecretKey,
    ) -> Result<Self, String> {
        let pem = key.to_pkcs8_pem(LineEnding::LF).map_err(|e| e.to_string())?;
        let signing = EncodingKey::from_ec_pem(pem.as_bytes()).map_err(|e| e.to_string())?;
        let public = key.public_key().to_encoded_point(false);
        let base_url = settings.server.base_url.trim_end_matches('/').to_owned();
        let webpush = &settings.push.webpush;
        Ok(Self {
            http,
            signing,
            public_key: URL_SAFE_NO_PAD.encode(public.as_bytes()),
            subject: webpush.subject.clone().unwrap_or_else(|| base_url.clone()),
            base_url,
            insecure: webpush.insecure_endpoints,
        })
    }

    /// The `Authorization` header for a push to `endpoint` (RFC 8292).
    fn vapid(&self, endpoint: &reqwest::Url) -> Result<String, String> {
        let audience = endpoint.origin().ascii_serialization();
        let exp = jiff::Timestamp::now().as_second() + 12 * 3600;
        let claims = serde_json::json!({ "aud": audience, "exp": exp, "sub": self.subject });
        let jwt = jsonwebtoken::encode(&Header::new(Algorithm::ES256), &claims, &self.signing)
            .map_err(|e| e.to_string())?;
        Ok(format!("vapid t={jwt}, k={}", self.public_key))
    }

    pub async fn send(&self, token: &str, push: &Push) -> Outcome {
        let Ok(subscription) = serde_json::from_str::<WebPushSubscription>(token) else {
            return Outcome::InvalidToken("the stored subscription is unreadable".into());
        };
        let endpoint = match reqwest::Url::parse(&subscription.endpoint) {
            Ok(url) if endpoint_allowed(url.as_str(), self.insecure) => url,
            _ => return Outcome::InvalidToken("the endpoint is not a known push service".into()),
        };
        // Push services take about 4 KB; a long summary is cut, never the page.
        let body: String = push.body.chars().take(1000).collect();
        let message = WebPushMessage {
            title: push.title.chars().take(200).collect(),
            body,
            incident_id: push.incident_id,
            url: format!("{}/#/incidents/{}", self.base_url, push.incident_id),
        };
        let plain = serde_json::to_vec(&message).expect("a message always serialises");
        let keys = |text: &str| URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).ok();
        let (Some(ua_public), Some(auth)) =
            (keys(&subscription.keys.p256dh), keys(&subscription.keys.auth))
        else {
            return Outcome::InvalidToken("the subscription's keys are not base64url".into());
        };
        let salt: [u8; 16] = crate::http::auth::random();
        let ephemeral = random_key();
        let Ok(body) = encrypt(&plain, &ua_public, &auth, &salt, &ephemeral) else {
            return Outcome::InvalidToken(
                "the subscription's public key is not a P-256 point".into(),
            );
        };
        let authorization = match self.vapid(&endpoint) {
            Ok(header) => header,
            Err(e) => return Outcome::Failed(format!("cannot sign the VAPID token: {e}")),
        };
        let urgency = if push.kind == FeedKind::Page { "high" } else { "normal" };
        let sent = self
            .http
            .post(endpoint)
            .header("authorization", authorization)
            .header("content-encoding", "aes128gcm")
            .header("content-type", "application/octet-stream")
            .header("ttl", "3600")
            .header("urgency", urgency)
            .header("topic", format!("incident-{}", push.incident_id))
            .body(body)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(e) => return Outcome::Retry { after: None, reason: format!("push service: {e}") },
        };
        let status = response.status();
        let after = retry_after(response.headers());
        match status.as_u16() {
            200..=299 => Outcome::Delivered(format!("push service answered {status}")),
            404 | 410 => Outcome::InvalidToken(format!("the push service answered {status}")),
            429 | 500..=599 => Outcome::Retry { after, reason: format!("push service {status}") },
            _ => Outcome::Failed(format!("the push service answered {status}")),
        }
    }
}

/// The push services browsers subscribe through (Chrome and Edge's FCM, Firefox's autopush,
/// Windows' WNS, Safari's): a subscription naming anything else is refused, so the server never
/// posts where a user points it (an internal address, say).
const PUSH_SERVICES: [&str; 5] = [
    "fcm.googleapis.com",
    ".push.services.mozilla.com",
    ".notify.windows.com",
    "web.push.apple.com",
    ".push.apple.com",
];

/// Whether the server may post to `endpoint`: https at a known push service, or (testing only,
/// `insecure`) anywhere.
pub fn endpoint_allowed(endpoint: &str, insecure: bool) -> bool {
    let Ok(url) = reqwest::Url::parse(endpoint) else { return false };
    if insecure {
        return matches!(url.scheme(), "https" | "http");
    }
    let host = url.host_str().unwrap_or("");
    url.scheme() == "https"
        && url.port().is_none()
        && PUSH_SERVICES
            .iter()
            .any(|s| host == s.trim_start_matches('.') || (s.starts_with('.') && host.ends_with(s)))
}

/// A fresh random P-256 key.
fn random_key() -> SecretKey {
    loop {
        // All but a 2^-32 sliver of 32-byte strings are valid scalars.
        if let Ok(key) = SecretKey::from_slice(&crate::http::auth::random::<32>()) {
            return key;
        }
    }
}

/// This cluster's VAPID public key (made on first use), as browsers take it.
pub async fn public_key(state: &crate::AppState) -> Result<String, String> {
    let key = vapid_key(state).await?;
    Ok(URL_SAFE_NO_PAD.encode(key.public_key().to_encoded_point(false).as_bytes()))
}

/// Where the VAPID key is kept in the database.
const META: &str = "vapid_key";

/// The cluster's VAPID key: the database's, or one made now (or taken from the file an earlier
/// version kept) and stored unless another node stored one first.
pub async fn vapid_key(state: &crate::AppState) -> Result<SecretKey, String> {
    let stored = state.store.meta(META).await.map_err(|e| e.to_string())?;
    let pem = match stored {
        Some(pem) => pem,
        None => {
            let fresh = match std::fs::read_to_string(state.settings().vapid_key_path()) {
                Ok(pem) => pem,
                Err(_) => random_key()
                    .to_pkcs8_pem(LineEnding::LF)
                    .map_err(|e| e.to_string())?
                    .to_string(),
            };
            state.store.meta_or_insert(META, &fresh).await.map_err(|e| e.to_string())?
        }
    };
    SecretKey::from_pkcs8_pem(&pem).map_err(|e| format!("the stored VAPID key: {e}"))
}

/// Encrypts `plain` to a subscription's public key and auth secret (RFC 8291 §3.4), as one
/// `aes128gcm` record with `salt` and the sender's `ephemeral` key in its header (RFC 8188).
pub fn encrypt(
    plain: &[u8],
    ua_public: &[u8],
    auth: &[u8],
    salt: &[u8; 16],
    ephemeral: &SecretKey,
) -> Result<Vec<u8>, String> {
    let ua = PublicKey::from_sec1_bytes(ua_public).map_err(|e| e.to_string())?;
    let as_public = ephemeral.public_key().to_encoded_point(false);
    let shared = diffie_hellman(ephemeral.to_nonzero_scalar(), ua.as_affine());
    let expand = |salt: &[u8], ikm: &[u8], info: &[u8], out: &mut [u8]| {
        Hkdf::<Sha256>::new(Some(salt), ikm).expand(info, out).map_err(|e| e.to_string())
    };
    let mut key_info = b"WebPush: info\0".to_vec();
    key_info.extend_from_slice(ua_public);
    key_info.extend_from_slice(as_public.as_bytes());
    let mut ikm = [0u8; 32];
    expand(auth, shared.raw_secret_bytes(), &key_info, &mut ikm)?;
    let mut cek = [0u8; 16];
    expand(salt, &ikm, b"Content-Encoding: aes128gcm\0", &mut cek)?;
    let mut nonce = [0u8; 12];
    expand(salt, &ikm, b"Content-Encoding: nonce\0", &mut nonce)?;
    let mut padded = plain.to_vec();
    padded.push(2); // the last (and only) record
    let sealed = Aes128Gcm::new_from_slice(&cek)
        .map_err(|e| e.to_string())?
        .encrypt(Nonce::from_slice(&nonce), Payload { msg: &padded, aad: b"" })
        .map_err(|e| e.to_string())?;
    let mut body = Vec::with_capacity(86 + sealed.len());
    body.extend_from_slice(salt);
    body.extend_from_slice(&RECORD_SIZE.to_be_bytes());
    body.push(as_public.as_bytes().len() as u8);
    body.extend_from_slice(as_public.as_bytes());
    body.extend_from_slice(&sealed);
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(text: &str) -> Vec<u8> {
        URL_SAFE_NO_PAD.decode(text).unwrap()
    }

    #[test]
    fn encryption_matches_rfc_8291_appendix_a() {
        let ephemeral =
            SecretKey::from_slice(&b64("yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw")).unwrap();
        let ua_public = b64(
            "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4",
        );
        let salt: [u8; 16] = b64("DGv6ra1nlYgDCS1FRnbzlw").try_into().unwrap();
        let body = encrypt(
            b"When I grow up, I want to be a watermelon",
            &ua_public,
            &b64("BTBZMqHH6r4Tts7J_aSIgg"),
            &salt,
            &ephemeral,
        )
        .unwrap();
        assert_eq!(
            URL_SAFE_NO_PAD.encode(body),
            "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN"
        );
    }

    #[test]
    fn only_known_push_services_are_posted_to() {
        for ok in [
            "https://fcm.googleapis.com/fcm/send/abc",
            "https://updates.push.services.mozilla.com/wpush/v2/abc",
            "https://wns2-par02p.notify.windows.com/w/?token=abc",
            "https://web.push.apple.com/QGuQ",
        ] {
            assert!(endpoint_allowed(ok, false), "{ok}");
        }
        for bad in [
            "https://169.254.169.254/latest/meta-data",
            "https://10.0.0.5:8443/push",
            "http://fcm.googleapis.com/fcm/send/abc",
            "https://fcm.googleapis.com:8443/fcm/send/abc",
            "https://fcm.googleapis.com.evil.example/x",
            "https://evilpush.services.mozilla.com.example/x",
            "https://attacker.example/x",
        ] {
            assert!(!endpoint_allowed(bad, false), "{bad}");
        }
        assert!(endpoint_allowed("http://127.0.0.1:9/push/1", true));
    }

    #[test]
    fn a_point_that_is_not_on_the_curve_is_refused() {
        let ephemeral = random_key();
        assert!(encrypt(b"x", &[4; 65], &[0; 16], &[0; 16], &ephemeral).is_err());
    }
}
