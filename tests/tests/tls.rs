//! Native TLS: `reveille serve` with `server.tls_cert`/`tls_key` signed by a test CA. PagerDuty's
//! official Python client (which refuses `http://`) and Apprise's `ntfys://` page through it; the
//! SSE and ntfy feeds are followed over HTTP/2; a renewed certificate is served without a restart,
//! and a broken one is refused while the old one stays.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use futures_util::StreamExt;
use reveille_tests::{Feed, Site, python_bin, reveille};
use serde_json::Value;

const PATIENCE: Duration = Duration::from_secs(15);

/// A test CA and what it signs.
struct Ca {
    cert: rcgen::Certificate,
    key: rcgen::KeyPair,
}

impl Ca {
    fn new() -> Self {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, "Reveille test CA");
        params.key_usages =
            vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
        let key = rcgen::KeyPair::generate().unwrap();
        Ca { cert: params.self_signed(&key).unwrap(), key }
    }

    /// A server certificate for 127.0.0.1 and localhost named `name`: (cert PEM, key PEM).
    fn leaf(&self, name: &str) -> (String, String) {
        let mut params =
            rcgen::CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

fn tls_config() -> String {
    reveille_tests::CONFIG.replace(
        "heartbeat_seconds = 1\n",
        "heartbeat_seconds = 1\ntls_cert = \"tls/cert.pem\"\ntls_key = \"tls/key.pem\"\n",
    ) + "ntfy_topics = [\"payments-alerts\"]\n"
}

/// Replaces a file the way certificate tools do: a new file renamed over the old one.
fn replace(path: &Path, content: &str) {
    let fresh = path.with_extension("new");
    std::fs::write(&fresh, content).unwrap();
    std::fs::rename(fresh, path).unwrap();
}

/// The common name of the certificate the server presents now (curl's verbose output).
fn served_name(url: &str, ca: &Path) -> String {
    let out = Command::new("curl")
        .args(["-sv", "-o", "/dev/null", "--cacert"])
        .arg(ca)
        .arg(format!("{url}/healthz"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    said.lines()
        .find_map(|l| l.trim_start_matches(['*', ' ']).strip_prefix("subject: CN="))
        .unwrap_or_else(|| panic!("no certificate subject in: {said}"))
        .to_owned()
}

async fn until_served(url: &str, ca: &Path, name: &str) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if served_name(url, ca) == name {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{name} was never served");
        // Polling another process's state: nothing to wait on but its answer.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn pagerdutys_client_apprise_and_the_feeds_over_native_tls() {
    let Some(python) = python_bin("python") else { return };
    let Some(apprise) = python_bin("apprise") else { return };
    let ca = Ca::new();
    let (cert, key) = ca.leaf("reveille-1");
    let site = Site::with_files(&tls_config(), &[("tls/cert.pem", &cert), ("tls/key.pem", &key)]);
    let ca_file = site.dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.cert.pem()).unwrap();
    let server = site.start();
    assert!(server.url.starts_with("https://"), "{}", server.url);

    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.cert.pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    // The SSE feed, over HTTP/2 (offered by ALPN).
    let feed = http
        .get(format!("{}/api/v1/feed", server.url))
        .bearer_auth(&site.token)
        .send()
        .await
        .unwrap();
    assert_eq!(feed.version(), reqwest::Version::HTTP_2);
    let mut sse = Feed::from_response(feed);
    // The ntfy JSON stream of alice's phone topic, over HTTP/2 too.
    let out = reveille(&["phone", "setup", "-c", &site.config(), "--user", "alice"], &[]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let phone_token = stdout.lines().last().unwrap().to_owned();
    let topic =
        stdout.lines().find_map(|l| l.trim().strip_prefix("Topic")).unwrap().trim().to_owned();
    let ntfy = http
        .get(format!("{}/{topic}/json", server.url))
        .bearer_auth(&phone_token)
        .send()
        .await
        .unwrap();
    assert_eq!((ntfy.status().as_u16(), ntfy.version()), (200, reqwest::Version::HTTP_2));
    let mut ntfy = ntfy.bytes_stream();

    // PagerDuty's official client, which takes only https:// base URLs, trusting the test CA.
    let script = r#"
import ssl, sys, pagerduty
context = ssl.create_default_context(cafile=sys.argv[3])
client = pagerduty.EventsApiV2Client(sys.argv[2], base_url=sys.argv[1], verify=context)
print(client.trigger("Disk full on db-1", "db-1", dedup_key="db-1/disk", severity="critical"))
"#;
    let out = Command::new(&python)
        .args(["-c", script, &server.url, &site.key])
        .arg(&ca_file)
        .output()
        .unwrap();
    assert!(out.status.success(), "pagerduty client: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "db-1/disk");

    let (_, page) = sse.entry(PATIENCE).await;
    assert_eq!(page["incident"]["summary"], "Disk full on db-1");
    let mut lines = String::new();
    let message = loop {
        let chunk = tokio::time::timeout(PATIENCE, ntfy.next())
            .await
            .expect("no ntfy message")
            .unwrap()
            .unwrap();
        lines.push_str(&String::from_utf8_lossy(&chunk));
        let found = lines
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|m| m["event"] == "message");
        if let Some(m) = found {
            break m;
        }
    };
    assert_eq!(message["message"], "Disk full on db-1");

    // Apprise's ntfys:// URL, trusting the test CA through requests' own variable.
    let host = server.url.trim_start_matches("https://");
    let url = format!("ntfys://apprise:{}@{host}/payments-alerts?priority=max", site.key);
    let out = Command::new(&apprise)
        .args(["-t", "Checkout down", "-b", "over TLS", &url])
        .env("REQUESTS_CA_BUNDLE", &ca_file)
        .output()
        .unwrap();
    assert!(out.status.success(), "apprise: {}", String::from_utf8_lossy(&out.stderr));
    let (_, page) = sse.entry(PATIENCE).await;
    assert_eq!(page["incident"]["summary"], "Checkout down");

    // Renewal: a new pair renamed over the old one, then SIGHUP; served without a restart.
    let tls_dir = site.dir.path().join("tls");
    assert_eq!(served_name(&server.url, &ca_file), "reveille-1");
    let (cert2, key2) = ca.leaf("reveille-2");
    replace(&tls_dir.join("key.pem"), &key2);
    replace(&tls_dir.join("cert.pem"), &cert2);
    let pid = server.child.id().to_string();
    assert!(Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    until_served(&server.url, &ca_file, "reveille-2").await;
    // A key that does not match its certificate is refused; the working pair stays in use.
    // (A look between the two renames above may have counted a failure already.)
    let metrics = format!("{}/metrics", server.url);
    let failures = || async {
        let text = http.get(&metrics).send().await.unwrap().text().await.unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix("reveille_tls_reload_failures_total "))
            .map_or(0, |n| n.trim().parse::<u64>().unwrap())
    };
    let before = failures().await;
    let (cert3, _) = ca.leaf("reveille-3");
    replace(&tls_dir.join("cert.pem"), &cert3);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if failures().await > before {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the bad pair was never noticed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(served_name(&server.url, &ca_file), "reveille-2");
    // Fixed on disk with no signal at all: the change alone is enough.
    let (cert4, key4) = ca.leaf("reveille-4");
    replace(&tls_dir.join("key.pem"), &key4);
    replace(&tls_dir.join("cert.pem"), &cert4);
    until_served(&server.url, &ca_file, "reveille-4").await;
    // The feed opened before the renewals is still the same connection, still delivering.
    assert!(server_still_serves(&http, &server.url, &site.key).await);
    let (_, page) = sse.entry(PATIENCE).await;
    assert_eq!(page["incident"]["summary"], "after renewal");
}

async fn server_still_serves(http: &reqwest::Client, url: &str, key: &str) -> bool {
    let body = serde_json::json!({"summary": "after renewal", "severity": "critical"});
    let sent = http.post(format!("{url}/api/v1/events")).bearer_auth(key).json(&body).send().await;
    sent.is_ok_and(|r| r.status() == 202)
}

#[test]
fn check_config_names_a_certificate_that_cannot_be_used() {
    let ca = Ca::new();
    let (cert, key) = ca.leaf("a");
    let site = Site::with_files(&tls_config(), &[("tls/cert.pem", &cert), ("tls/key.pem", &key)]);
    let (_, other_key) = ca.leaf("b");
    replace(&site.dir.path().join("tls/key.pem"), &other_key);
    let out = reveille(&["check-config", "-c", &site.config()], &[]);
    let said =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("server.tls_cert") && said.contains("do not make a usable pair"),
        "{said}"
    );
}
