//! The Matrix bot against a real homeserver on loopback (Synapse from PyPI, SQLite, accounts
//! registered with the shared secret): a page is posted mentioning the person; an `ack` from
//! someone not mapped to a Reveille user is refused out loud; a ✅ reaction or an `ack` reply from
//! the person acknowledges as them; the message is edited to show the change.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::Harness;
use reveille_protocol::IncidentState;
use serde_json::{Value, json};

const SHARED_SECRET: &str = "reveille-test-registration-secret";
const PATIENCE: Duration = Duration::from_secs(30);

struct Synapse {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Synapse {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_synapse(bin: &std::path::Path) -> Synapse {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let d = dir.path().display();
    let limit = "{per_second: 1000, burst_count: 1000}";
    let config = format!(
        "server_name: localhost\npid_file: {d}/homeserver.pid\n\
         listeners:\n  - port: {port}\n    bind_addresses: ['127.0.0.1']\n    type: http\n    tls: false\n    x_forwarded: false\n    resources:\n      - names: [client]\n        compress: false\n\
         database:\n  name: sqlite3\n  args:\n    database: {d}/homeserver.db\n\
         media_store_path: {d}/media\nsigning_key_path: {d}/signing.key\n\
         registration_shared_secret: {SHARED_SECRET}\nreport_stats: false\n\
         macaroon_secret_key: test-macaroon-secret\nform_secret: test-form-secret\n\
         trusted_key_servers: []\nsuppress_key_server_warning: true\n\
         rc_message: {limit}\nrc_registration: {limit}\nrc_joins:\n  local: {limit}\n\
         rc_login:\n  address: {limit}\n  account: {limit}\n  failed_attempts: {limit}\n"
    );
    let config_path = dir.path().join("homeserver.yaml");
    std::fs::write(&config_path, config).unwrap();
    let python = bin.join("python");
    let keys = Command::new(&python)
        .args(["-m", "synapse.app.homeserver", "--generate-keys", "-c"])
        .arg(&config_path)
        .output()
        .unwrap();
    assert!(keys.status.success(), "{}", String::from_utf8_lossy(&keys.stderr));
    let log = std::fs::File::create(dir.path().join("synapse.log")).unwrap();
    let child = Command::new(&python)
        .args(["-m", "synapse.app.homeserver", "-c"])
        .arg(&config_path)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let synapse = Synapse { child, url: format!("http://127.0.0.1:{port}"), _dir: dir };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    let http = reqwest::Client::new();
    loop {
        let up = http.get(format!("{}/_matrix/client/versions", synapse.url)).send().await;
        if up.is_ok_and(|r| r.status().is_success()) {
            return synapse;
        }
        assert!(tokio::time::Instant::now() < deadline, "Synapse did not start");
        // Readiness poll of another process: nothing to wait on but its answer.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Registers `name` with the shared secret (Synapse's own tool) and signs in: its token.
async fn account(bin: &std::path::Path, url: &str, name: &str) -> String {
    let password = format!("{name}-password-1");
    let made = Command::new(bin.join("register_new_matrix_user"))
        .args(["-u", name, "-p", &password, "--no-admin", "-k", SHARED_SECRET, url])
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let login = json!({"type": "m.login.password", "identifier": {"type": "m.id.user", "user": name}, "password": password});
    let answer: Value = reqwest::Client::new()
        .post(format!("{url}/_matrix/client/v3/login"))
        .json(&login)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["access_token"].as_str().unwrap().to_owned()
}

/// One person's view of the room.
struct Member {
    http: reqwest::Client,
    url: String,
    token: String,
    room: String,
}

impl Member {
    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let url = format!("{}/_matrix/client/v3{path}", self.url);
        let response = self
            .http
            .request(method, url)
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{path}: {}", response.status());
        response.json().await.unwrap()
    }

    fn room_path(&self) -> String {
        self.room.replace('!', "%21").replace(':', "%3A")
    }

    async fn say(&self, content: Value) {
        let txn = format!("t{}", jiff::Timestamp::now().as_nanosecond());
        let path = format!(
            "/rooms/{}/send/{}/{txn}",
            self.room_path(),
            content["__type"].as_str().unwrap_or("m.room.message")
        );
        let mut content = content;
        content.as_object_mut().unwrap().remove("__type");
        self.call(reqwest::Method::PUT, &path, content).await;
    }

    /// Waits for an event of the room's recent history that `wanted` accepts.
    async fn until(&self, what: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let path = format!("/rooms/{}/messages?dir=b&limit=50", self.room_path());
            let url = format!("{}/_matrix/client/v3{path}", self.url);
            let page: Value = self
                .http
                .get(url)
                .bearer_auth(&self.token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if let Some(found) = page["chunk"].as_array().and_then(|c| c.iter().find(|e| wanted(e)))
            {
                return found.clone();
            }
            assert!(tokio::time::Instant::now() < deadline, "never saw {what}");
            // Polling the homeserver's history: nothing to wait on but its answer.
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

#[tokio::test]
async fn pages_go_to_the_room_and_people_acknowledge_there() {
    let Some(bin) = common::python_tools("register_new_matrix_user") else { return };
    let synapse = start_synapse(&bin).await;
    let bot_token = account(&bin, &synapse.url, "reveille").await;
    let alice_token = account(&bin, &synapse.url, "alice").await;
    let carol_token = account(&bin, &synapse.url, "carol").await;
    let http = reqwest::Client::new();
    let member = |token: &str, room: &str| Member {
        http: http.clone(),
        url: synapse.url.clone(),
        token: token.into(),
        room: room.into(),
    };
    let bot = member(&bot_token, "");
    let created = bot
        .call(
            reqwest::Method::POST,
            "/createRoom",
            json!({"preset": "public_chat", "invite": ["@alice:localhost", "@carol:localhost"]}),
        )
        .await;
    let room = created["room_id"].as_str().unwrap().to_owned();
    let alice = member(&alice_token, &room);
    let carol = member(&carol_token, &room);
    for m in [&alice, &carol] {
        m.call(reqwest::Method::POST, &format!("/join/{}", m.room_path()), json!({})).await;
    }

    let people = "[[users]]\nname = \"alice\"\nmatrix = \"@alice:localhost\"\n[users.notify]\nhigh = [\"matrix\"]\n";
    let config = format!(
        "{}\n[matrix]\nhomeserver = \"{}\"\naccess_token_file = \"matrix.token\"\nroom = \"{room}\"\n",
        common::CONFIG.replace("[[users]]\nname = \"alice\"\n", people),
        synapse.url
    );
    let h =
        Harness::with_files(&config, jiff::Timestamp::now(), &[("matrix.token", &bot_token)]).await;
    let from_bot = |e: &Value| e["sender"] == "@reveille:localhost";

    // A page: one message mentioning alice, naming the incident.
    let id = h.trigger("db-1/disk", "Disk full on db-1").await;
    let page = alice
        .until("the page", |e| from_bot(e) && e["content"]["org.reveille.incidents"] == json!([id]))
        .await;
    let body = page["content"]["body"].as_str().unwrap();
    assert!(body.starts_with("@alice:localhost") && body.contains("Disk full on db-1"), "{body}");
    assert_eq!(page["content"]["m.mentions"]["user_ids"], json!(["@alice:localhost"]));
    let page_id = page["event_id"].as_str().unwrap().to_owned();
    h.timeline_line(id, "matrix_sent", &page_id).await;

    // Carol is no Reveille user: her ack is refused, out loud, and changes nothing.
    carol.say(json!({"msgtype": "m.text", "body": "ack", "m.relates_to": {"m.in_reply_to": {"event_id": page_id}}})).await;
    alice.until("the refusal", |e| from_bot(e) && e["content"]["msgtype"] == "m.notice").await;
    assert_eq!(h.store().incident(id).await.unwrap().incident.state, IncidentState::Triggered);

    // Alice's ✅ acknowledges as alice; the message is edited to say so.
    alice.say(json!({"__type": "m.reaction", "m.relates_to": {"rel_type": "m.annotation", "event_id": page_id, "key": "✅"}})).await;
    h.timeline_line(id, "matrix_ack", "@alice:localhost").await;
    assert_eq!(
        h.store().incident(id).await.unwrap().incident.acknowledged_by.as_deref(),
        Some("alice")
    );
    h.advance(61);
    let edit = alice
        .until("the edit", |e| {
            from_bot(e) && e["content"]["m.relates_to"]["rel_type"] == "m.replace"
        })
        .await;
    assert_eq!(edit["content"]["m.relates_to"]["event_id"], page_id.as_str());
    assert!(
        edit["content"]["m.new_content"]["body"]
            .as_str()
            .unwrap()
            .contains("acknowledged by alice")
    );

    // An `ack` reply works as well.
    h.advance(61);
    let second = h.trigger("db-2/disk", "Disk full on db-2").await;
    let page = alice
        .until("the second page", |e| {
            from_bot(e) && e["content"]["org.reveille.incidents"] == json!([second])
        })
        .await;
    alice.say(json!({"msgtype": "m.text", "body": "ack", "m.relates_to": {"m.in_reply_to": {"event_id": page["event_id"]}}})).await;
    h.timeline_line(second, "matrix_ack", "@alice:localhost").await;
    assert_eq!(
        h.store().incident(second).await.unwrap().incident.state,
        IncidentState::Acknowledged
    );

    // While Reveille is down, alice acks a page and the room fills with more than one sync
    // holds: after the restart the bot reads the gap, and the ack still counts, once.
    h.advance(61);
    let third = h.trigger("db-3/disk", "Disk full on db-3").await;
    // (The edit of the second page may have just gone: a minute between two messages.)
    h.advance(61);
    let page = alice
        .until("the third page", |e| {
            from_bot(e) && e["content"]["org.reveille.incidents"] == json!([third])
        })
        .await;
    let mut h = h;
    h.stop().await;
    alice.say(json!({"msgtype": "m.text", "body": "ack", "m.relates_to": {"m.in_reply_to": {"event_id": page["event_id"]}}})).await;
    for n in 0..120 {
        carol.say(json!({"msgtype": "m.text", "body": format!("chatter {n}")})).await;
    }
    let h = h.start_again(&config).await;
    h.timeline_line(third, "matrix_ack", "@alice:localhost").await;
    let timeline = h.store().incident(third).await.unwrap().timeline;
    assert_eq!(timeline.iter().filter(|e| e.kind == "matrix_ack").count(), 1, "{timeline:?}");
}
