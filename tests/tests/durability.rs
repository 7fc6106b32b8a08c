//! A 2xx means durable: SIGKILL the server right after a burst of accepted events, restart it,
//! and every accepted event must be there.

use std::sync::{Arc, Mutex};

use reveille_tests::{Server, Site};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_accepted_event_survives_sigkill() {
    let site = Site::new();
    let mut server = site.start();
    let http = reqwest::Client::new();
    let accepted = Arc::new(Mutex::new(Vec::<String>::new()));
    let target = 300;

    // Senders keep firing until the server dies under them.
    let mut senders = Vec::new();
    for sender in 0..16 {
        let (http, url, key, accepted) =
            (http.clone(), server.url.clone(), site.key.clone(), accepted.clone());
        senders.push(tokio::spawn(async move {
            for n in 0.. {
                let dedup = format!("s{sender}-e{n}");
                let body = json!({"routing_key": key, "event_action": "trigger", "dedup_key": dedup,
                    "payload": {"summary": format!("event {dedup}"), "source": "burst", "severity": "critical"}});
                match http.post(format!("{url}/v2/enqueue")).json(&body).send().await {
                    Ok(r) if r.status() == 202 => accepted.lock().unwrap().push(dedup),
                    Ok(r) => panic!("unexpected {}", r.status()),
                    Err(_) => return,
                }
            }
        }));
    }
    loop {
        tokio::task::yield_now().await;
        if accepted.lock().unwrap().len() >= target {
            server.kill();
            break;
        }
    }
    for sender in senders {
        sender.await.unwrap();
    }
    let accepted = accepted.lock().unwrap().clone();
    assert!(accepted.len() >= target);

    let server = Server::start(&site.config());
    let list: serde_json::Value = http
        .get(format!("{}/api/v1/incidents?all=true&limit=1000", server.url))
        .bearer_auth(&site.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let stored: std::collections::HashSet<&str> = list["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["dedup_key"].as_str().unwrap())
        .collect();
    let lost: Vec<&String> = accepted.iter().filter(|k| !stored.contains(k.as_str())).collect();
    assert!(
        lost.is_empty(),
        "{} of {} accepted events lost after SIGKILL: {lost:?}",
        lost.len(),
        accepted.len()
    );
}
