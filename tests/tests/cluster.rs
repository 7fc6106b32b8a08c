//! Cluster mode for real: three `reveille serve` processes on one PostgreSQL (started by the test
//! as an ordinary process) behind Debian's haproxy, with devices following feeds through the
//! balancer. Nodes are SIGKILLed mid-ladder and mid-storm, one is cut off its database, a key is
//! revoked: what a person on call would notice is checked each time. Skips, saying why, where
//! PostgreSQL or haproxy is missing; CI installs both.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reveille_tests::cluster::Cluster;
use reveille_tests::device::Device;
use serde_json::{Value, json};
use tokio::sync::watch;

/// One cluster at a time: on two cores, parallel clusters would make "on time" a matter of luck.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn skip() -> bool {
    match reveille_tests::cluster::missing() {
        Some(why) => {
            assert!(std::env::var_os("CI").is_none(), "CI must run the cluster suite: {why}");
            eprintln!("SKIPPED the cluster test: {why}");
            true
        }
        None => false,
    }
}

/// Sends a page through `url`; the incident's id.
async fn page(url: &str, key: &str, dedup: &str) -> i64 {
    let body =
        json!({"summary": format!("{dedup} failing"), "dedup_key": dedup, "severity": "critical"});
    let response = reqwest::Client::new()
        .post(format!("{url}/api/v1/events"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    response.json::<Value>().await.unwrap()["incident_id"].as_i64().unwrap()
}

async fn incident(url: &str, token: &str, id: i64) -> Value {
    let response = reqwest::Client::new()
        .get(format!("{url}/api/v1/incidents/{id}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    response.json().await.unwrap()
}

fn lines<'a>(incident: &'a Value, kind: &str) -> Vec<&'a Value> {
    incident["timeline"].as_array().unwrap().iter().filter(|e| e["kind"] == kind).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_ladder_and_the_next_level_is_paged_on_time_once_by_a_survivor() {
    if skip() {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().await;
    let mut cluster = Cluster::start("").await;
    let mut bob = Device::follow(&cluster.url, &cluster.bob, Some(0));
    let id = page(&cluster.url, &cluster.key, "ladder").await;
    // Mid-ladder: alice is paged, bob is due in 4 s. Whichever node would have moved it dies.
    cluster.kill(0);

    bob.until(Duration::from_secs(15), |seen| {
        seen.iter().any(|s| s.kind == "page" && s.incident == id)
    })
    .await;
    let survivor = &cluster.node_urls[1];
    let ended = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            let now = incident(survivor, &cluster.bob, id).await;
            if !lines(&now, "escalation_ended").is_empty() {
                return now;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let done = ended.await.expect("the ladder never ended");
    let escalated = lines(&done, "escalated");
    assert_eq!(escalated.len(), 1, "the next level is paged exactly once: {done}");
    let opened: jiff::Timestamp = done["created_at"].as_str().unwrap().parse().unwrap();
    let at: jiff::Timestamp = escalated[0]["at"].as_str().unwrap().parse().unwrap();
    let late = at.duration_since(opened).as_secs_f64();
    assert!((4.0..7.0).contains(&late), "paged {late:.1} s after opening, due at 4 s");
    let pages =
        bob.seen.lock().unwrap().iter().filter(|s| s.kind == "page" && s.incident == id).count();
    assert_eq!(pages, 1, "bob's device rang once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_whose_node_died_resumes_through_the_balancer_with_no_gap() {
    if skip() {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().await;
    let mut cluster = Cluster::start("").await;
    let mut alice = Device::follow(&cluster.url, &cluster.alice, Some(0));
    for n in 0..10 {
        page(&cluster.url, &cluster.key, &format!("before-{n}")).await;
    }
    alice.until(Duration::from_secs(10), |seen| seen.len() >= 10).await;
    let node = cluster.node_following(1).await.expect("alice's device is on a node");
    cluster.kill(node);
    // Pages keep coming while the device finds another node.
    for n in 0..10 {
        page(&cluster.url, &cluster.key, &format!("after-{n}")).await;
    }
    let survivor = (0..3).find(|n| *n != node).unwrap();
    let mut everything = Device::follow(&cluster.node_urls[survivor], &cluster.alice, Some(0));
    let all = everything.until(Duration::from_secs(10), |seen| seen.len() >= 20).await;
    let seen = alice.until(Duration::from_secs(20), |seen| seen.len() >= 20).await;
    let ids: Vec<i64> = seen.iter().map(|s| s.id).collect();
    let expected: Vec<i64> = all.iter().map(|s| s.id).collect();
    assert_eq!(ids, expected, "every entry once, in order, across the node's death");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ack_on_one_node_silences_devices_on_the_others() {
    if skip() {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().await;
    let cluster = Cluster::start("").await;
    let mut on_b = Device::follow(&cluster.node_urls[1], &cluster.alice, Some(0));
    let mut on_c = Device::follow(&cluster.node_urls[2], &cluster.alice, Some(0));
    let id = page(&cluster.node_urls[0], &cluster.key, "disk").await;
    for device in [&mut on_b, &mut on_c] {
        device.until(Duration::from_secs(10), |s| s.iter().any(|e| e.incident == id)).await;
    }
    let acked = reqwest::Client::new()
        .post(format!("{}/api/v1/incidents/{id}/ack", cluster.node_urls[0]))
        .bearer_auth(&cluster.alice)
        .send()
        .await
        .unwrap();
    assert_eq!(acked.status(), 200);
    for device in [&mut on_b, &mut on_c] {
        device
            .until(Duration::from_secs(3), |s| {
                s.iter()
                    .any(|e| e.incident == id && e.kind == "incident" && e.state == "acknowledged")
            })
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_an_ingest_storm_loses_no_event_that_got_a_2xx() {
    if skip() {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().await;
    let mut cluster = Cluster::start("").await;
    let accepted = Arc::new(Mutex::new(HashSet::new()));
    let (count, mut counted) = watch::channel(0usize);
    let count = Arc::new(count);
    let mut senders = Vec::new();
    for s in 0..8 {
        let (url, key, accepted, count) =
            (cluster.url.clone(), cluster.key.clone(), accepted.clone(), count.clone());
        senders.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            for n in 0..60 {
                let dedup = format!("storm-{s}-{n}");
                let body = json!({"summary": "storm", "dedup_key": dedup, "severity": "warning"});
                let sent =
                    http.post(format!("{url}/api/v1/events")).bearer_auth(&key).json(&body).send();
                if sent.await.is_ok_and(|r| r.status().is_success()) {
                    let mut keys = accepted.lock().unwrap();
                    keys.insert(dedup);
                    count.send_replace(keys.len());
                }
            }
        }));
    }
    counted.wait_for(|n| *n >= 100).await.unwrap();
    cluster.kill(1);
    for sender in senders {
        sender.await.unwrap();
    }
    let list = reqwest::Client::new()
        .get(format!("{}/api/v1/incidents?all=true&limit=1000", cluster.node_urls[0]))
        .bearer_auth(&cluster.alice)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let stored: HashSet<String> = list["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["dedup_key"].as_str().unwrap().to_owned())
        .collect();
    let accepted = accepted.lock().unwrap();
    let lost: Vec<&String> = accepted.iter().filter(|k| !stored.contains(*k)).collect();
    assert!(accepted.len() > 300, "the storm went on through the kill: {}", accepted.len());
    assert!(lost.is_empty(), "{} accepted events lost: {lost:?}", lost.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_off_its_database_answers_503_and_recovers_on_its_own() {
    if skip() {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().await;
    let cluster = Cluster::start("").await;
    let cut_off = &cluster.node_urls[2];
    let http = reqwest::Client::new();
    let send = |n: usize| {
        let body = json!({"summary": "cut", "dedup_key": format!("cut-{n}")});
        http.post(format!("{cut_off}/api/v1/events")).bearer_auth(&cluster.key).json(&body).send()
    };
    assert_eq!(send(0).await.unwrap().status(), 202);
    cluster.proxies[2].set_cut(true);
    for n in 1..4 {
        let status = send(n).await.unwrap().status();
        assert_eq!(status, 503, "never a 2xx without a commit");
    }
    let health = http.get(format!("{cut_off}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 503);
    // The other nodes never noticed.
    let elsewhere = page(&cluster.node_urls[0], &cluster.key, "elsewhere").await;
    assert!(elsewhere > 0);

    cluster.proxies[2].set_cut(false);
    let recovered = tokio::time::timeout(Duration::from_secs(15), async {
        for n in 10.. {
            if send(n).await.is_ok_and(|r| r.status() == 202) {
                return n;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        unreachable!()
    });
    let n = recovered.await.expect("the node never recovered");
    let url = format!("{}/api/v1/incidents?all=true&limit=100", cluster.node_urls[0]);
    let list = reveille_tests::get_json(&url, &cluster.alice).await;
    let keys: Vec<&str> = list["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["dedup_key"].as_str().unwrap())
        .collect();
    assert!(keys.contains(&format!("cut-{n}").as_str()) && keys.contains(&"cut-0"));
    assert!(!keys.iter().any(|k| ["cut-1", "cut-2", "cut-3"].contains(k)), "503s stored nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_key_stops_on_every_node_within_a_second() {
    if skip() {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().await;
    let cluster = Cluster::start("").await;
    for url in &cluster.node_urls {
        page(url, &cluster.key, "warm-the-key-cache").await;
    }
    let config = cluster.config.display().to_string();
    let prefix: String = cluster.key.chars().take(6).collect();
    let revoked = reveille_tests::reveille(&["key", "revoke", "-c", &config, &prefix], &[]);
    assert!(revoked.status.success(), "{}", String::from_utf8_lossy(&revoked.stderr));
    let since = std::time::Instant::now();
    let http = reqwest::Client::new();
    for url in &cluster.node_urls {
        loop {
            let body = json!({"summary": "after revoke"});
            let sent =
                http.post(format!("{url}/api/v1/events")).bearer_auth(&cluster.key).json(&body);
            if sent.send().await.unwrap().status() == 401 {
                break;
            }
            assert!(
                since.elapsed() < Duration::from_millis(1500),
                "{url} still takes the revoked key"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// `GET /healthz` of every node: its status, or 0 when it does not answer.
async fn health(cluster: &Cluster) -> Vec<(u16, String)> {
    let http = reqwest::Client::new();
    let mut all = Vec::new();
    for url in &cluster.node_urls {
        let answer =
            http.get(format!("{url}/healthz")).timeout(Duration::from_secs(10)).send().await;
        all.push(match answer {
            Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
            Err(e) => (0, e.to_string()),
        });
    }
    all
}

/// Waits until the health of every node is `expected` (up to 15 s; nodes report every second).
async fn until_health(cluster: &Cluster, expected: &[u16]) -> Vec<(u16, String)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let now = health(cluster).await;
        if now.iter().map(|(s, _)| *s).collect::<Vec<_>>() == expected {
            return now;
        }
        assert!(tokio::time::Instant::now() < deadline, "health stayed {now:?}, not {expected:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Puts a copy of `from` at `to` the way the README says: beside it, then moved into place.
fn install(from: &std::path::Path, to: &std::path::Path) {
    let staged = to.with_extension("new");
    std::fs::copy(from, &staged).unwrap();
    std::fs::rename(&staged, to).unwrap();
}

/// Signs in on `node` with a one-time link minted from `config`'s key file: whether it worked.
async fn signs_in(config: &std::path::Path, node: &str) -> bool {
    let c = config.display().to_string();
    let link = reveille_tests::last_line(&reveille_tests::reveille(
        &["web-link", "-c", &c, "--user", "alice"],
        &[],
    ));
    let code = link.rsplit('/').next().unwrap().to_owned();
    let answer = reqwest::Client::new()
        .post(format!("{node}/api/v1/session"))
        .json(&json!({ "code": code }))
        .send()
        .await
        .unwrap();
    answer.status().is_success()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_another_link_key_fails_its_own_health_and_no_other() {
    if skip() {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().await;
    let cluster = Cluster::start("").await;
    until_health(&cluster, &[200, 200, 200]).await;
    // Node 2 gets another key file (a copy gone wrong): it alone is the odd one.
    let c = cluster.node_config(2).display().to_string();
    assert!(reveille_tests::reveille(&["rotate-link-key", "-c", &c], &[]).status.success());
    let now = until_health(&cluster, &[200, 200, 503]).await;
    assert!(now[2].1.contains("link"), "it says why: {}", now[2].1);
    assert!(
        page(&cluster.url, &cluster.key, "still-paging").await > 0,
        "the balancer keeps serving"
    );
    // Put right, it is healthy again.
    install(&cluster.key_file(0), &cluster.key_file(2));
    until_health(&cluster, &[200, 200, 200]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_link_key_changes_step_by_step_with_every_node_healthy_and_every_link_working() {
    if skip() {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().await;
    let cluster = Cluster::start("").await;
    until_health(&cluster, &[200, 200, 200]).await;
    let mut sent = 0;
    for step in ["stage", "promote", "retire"] {
        let c = cluster.node_config(0).display().to_string();
        let done = reveille_tests::reveille(&["link-key", step, "-c", &c], &[]);
        assert!(done.status.success(), "{step}: {}", String::from_utf8_lossy(&done.stderr));
        // The new file goes to the other nodes one at a time, as an operator would copy it.
        for n in 0..3 {
            if n > 0 {
                install(&cluster.key_file(0), &cluster.key_file(n));
            }
            // Reports are a second apart: look, and page, for over two of them.
            let watched = tokio::time::Instant::now() + Duration::from_millis(2500);
            while tokio::time::Instant::now() < watched {
                let now = health(&cluster).await;
                assert!(now.iter().all(|(s, _)| *s == 200), "{step}, {n} copied: {now:?}");
                sent += 1;
                assert!(page(&cluster.url, &cluster.key, &format!("rotation-{sent}")).await > 0);
            }
            // A link any node signs now works on every node.
            for signer in 0..3 {
                for node in &cluster.node_urls {
                    assert!(
                        signs_in(&cluster.node_config(signer), node).await,
                        "{step}, {n} copied: node {signer}'s link refused by {node}"
                    );
                }
            }
        }
    }
}
