//! The cluster under a nemesis: three nodes on one PostgreSQL behind haproxy, senders and devices
//! going through the balancer, while nodes are killed (SIGKILL, then started again), frozen
//! (SIGSTOP for 10–30 s, as a paused VM), cut off their database (a proxy drops their
//! connections), and PostgreSQL itself restarts. At the end:
//! - every event a sender got a 2xx for is an incident;
//! - every device got every entry of its person's feed once, in order, with no gap;
//! - every escalation that came due fired exactly once (the policy pages alice, then bob after
//!   4 s, and nobody acknowledges);
//! - no node that was not itself disrupted kept a request waiting more than 5 s.
//!
//! `CHAOS_SECONDS` sets how long the nemesis runs (60 in CI; `scripts/chaos.sh MINUTES` runs it
//! longer and prints the numbers). The nemesis draws from a seed it prints (`CHAOS_SEED` replays).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reveille_tests::cluster::{Cluster, NODES};
use reveille_tests::device::Device;
use serde_json::{Value, json};

/// The policy every node uses: alice, then bob 4 s later, then the ladder ends.
const LADDER_SECONDS: u64 = 4;
/// A request kept waiting longer than this by a node that was not disrupted is a stall.
const STALL: Duration = Duration::from_secs(5);

/// A small deterministic random sequence.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 =
            self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

/// Something the nemesis did, and when: to `Some(node)`, or to the database (`None`).
#[derive(Debug, Clone)]
struct Disruption {
    what: &'static str,
    node: Option<usize>,
    from: Instant,
    until: Instant,
}

/// One probe of a node: when it was sent, how long the answer took (None: no answer), and
/// whether it was a 2xx.
#[derive(Debug, Clone)]
struct Probe {
    node: usize,
    at: Instant,
    took: Option<Duration>,
    ok: bool,
}

fn skip() -> bool {
    match reveille_tests::cluster::missing() {
        Some(why) => {
            assert!(std::env::var_os("CI").is_none(), "CI must run the chaos check: {why}");
            eprintln!("SKIPPED the chaos check: {why}");
            true
        }
        None => false,
    }
}

/// Sends events through the balancer until `stop`; the dedup keys that got a 2xx.
async fn sender(
    url: String,
    key: String,
    name: usize,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Vec<String> {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let mut accepted = Vec::new();
    let mut pace = tokio::time::interval(Duration::from_millis(250));
    for n in 0.. {
        tokio::select! {
            _ = pace.tick() => {}
            _ = stop.wait_for(|stop| *stop) => break,
        }
        let dedup = format!("chaos-{name}-{n}");
        let body = json!({"summary": "chaos", "dedup_key": dedup, "severity": "critical"});
        let sent = http.post(format!("{url}/api/v1/events")).bearer_auth(&key).json(&body).send();
        if sent.await.is_ok_and(|r| r.status().is_success()) {
            accepted.push(dedup);
        }
    }
    accepted
}

/// Asks one node directly, twice a second, how long a write takes, until `stop`.
async fn prober(
    url: String,
    key: String,
    node: usize,
    probes: Arc<Mutex<Vec<Probe>>>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(40)).build().unwrap();
    let mut pace = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            _ = pace.tick() => {}
            _ = stop.wait_for(|stop| *stop) => return,
        }
        let at = Instant::now();
        // A heartbeat's ping writes through the node's writer like any ingest, and pages nobody.
        let answer = http.post(format!("{url}/api/v1/heartbeats/probe")).bearer_auth(&key).send();
        let answer = answer.await;
        let ok = answer.as_ref().is_ok_and(|r| r.status().is_success());
        let took = answer.ok().map(|_| at.elapsed());
        probes.lock().unwrap().push(Probe { node, at, took, ok });
    }
}

/// Runs the nemesis until `deadline`; what it did.
async fn nemesis(cluster: &mut Cluster, deadline: Instant, rng: &mut Rng) -> Vec<Disruption> {
    let mut done = Vec::new();
    let mut restarted_database = false;
    while Instant::now() + Duration::from_secs(12) < deadline {
        let node = rng.below(NODES as u64) as usize;
        let from = Instant::now();
        let room = deadline.saturating_duration_since(from).as_secs().saturating_sub(2).max(10);
        let what = match rng.below(4) {
            0 => {
                tokio::task::block_in_place(|| cluster.kill(node));
                tokio::time::sleep(Duration::from_secs(2 + rng.below(4))).await;
                tokio::task::block_in_place(|| cluster.restart(node));
                "killed"
            }
            1 => {
                tokio::task::block_in_place(|| cluster.freeze(node, true));
                tokio::time::sleep(Duration::from_secs(10 + rng.below(21).min(room - 10))).await;
                tokio::task::block_in_place(|| cluster.freeze(node, false));
                "frozen"
            }
            2 => {
                cluster.proxies[node].set_cut(true);
                tokio::time::sleep(Duration::from_secs(5 + rng.below(6))).await;
                cluster.proxies[node].set_cut(false);
                "cut off the database"
            }
            _ if !restarted_database => {
                restarted_database = true;
                tokio::task::block_in_place(|| reveille_tests::postgres::server().restart());
                done.push(Disruption {
                    what: "database restarted",
                    node: None,
                    from,
                    until: Instant::now(),
                });
                tokio::time::sleep(Duration::from_secs(2)).await;
                continue;
            }
            _ => continue,
        };
        done.push(Disruption { what, node: Some(node), from, until: Instant::now() });
        eprintln!("nemesis: node {node} {what} for {:?}", from.elapsed());
        // A breath between disruptions: the balancer takes a node back within a second.
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    done
}

async fn get(url: &str, token: &str) -> Value {
    reveille_tests::get_json(url, token).await
}

/// Every incident, newest first, through one node.
async fn incidents(node: &str, token: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut before = String::new();
    loop {
        let page =
            get(&format!("{node}/api/v1/incidents?all=true&limit=1000{before}"), token).await;
        let list = page["incidents"].as_array().cloned().unwrap_or_default();
        let Some(last) = list.last() else { break };
        before = format!("&before={}", last["id"]);
        all.extend(list);
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_keeps_every_promise_while_a_nemesis_kills_freezes_and_cuts_it() {
    if skip() {
        return;
    }
    let seconds: u64 =
        std::env::var("CHAOS_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(60);
    let seed = std::env::var("CHAOS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
            as u64
    });
    println!("chaos: {seconds} s, seed {seed} (CHAOS_SEED={seed} replays it)");
    let mut rng = Rng(seed);
    let heartbeat =
        "\n[[heartbeats]]\nname = \"probe\"\nservice = \"payments\"\ninterval_seconds = 3600\n";
    let mut cluster = Cluster::start(heartbeat).await;
    let mut alice = Device::follow(&cluster.url, &cluster.alice, Some(0));
    let mut bob = Device::follow(&cluster.url, &cluster.bob, Some(0));

    let (stop, stopping) = tokio::sync::watch::channel(false);
    let senders: Vec<_> = (0..3)
        .map(|n| {
            tokio::spawn(sender(cluster.url.clone(), cluster.key.clone(), n, stopping.clone()))
        })
        .collect();
    let probes = Arc::new(Mutex::new(Vec::new()));
    let probers: Vec<_> = (0..NODES)
        .map(|n| {
            let url = cluster.node_urls[n].clone();
            tokio::spawn(prober(url, cluster.key.clone(), n, probes.clone(), stopping.clone()))
        })
        .collect();
    let started = Instant::now();
    let disruptions = nemesis(&mut cluster, started + Duration::from_secs(seconds), &mut rng).await;
    stop.send_replace(true);
    let mut accepted = Vec::new();
    for sender in senders {
        accepted.extend(sender.await.unwrap());
    }
    for prober in probers {
        prober.await.unwrap();
    }
    let sent_until = Instant::now();
    println!("chaos: {} events accepted, {} disruptions", accepted.len(), disruptions.len());
    for d in &disruptions {
        let whom = d.node.map_or("the database".to_owned(), |n| format!("node {n}"));
        let lasted = d.until.duration_since(d.from).as_secs_f64();
        println!("chaos: {whom} {} for {lasted:.1} s", d.what);
    }

    // 1. Every event that got a 2xx is an incident.
    let node = cluster.node_urls[0].clone();
    let all = incidents(&node, &cluster.alice).await;
    let chaos: Vec<&Value> = all
        .iter()
        .filter(|i| i["dedup_key"].as_str().is_some_and(|k| k.starts_with("chaos-")))
        .collect();
    let stored: HashSet<&str> = chaos.iter().filter_map(|i| i["dedup_key"].as_str()).collect();
    let lost: Vec<&String> = accepted.iter().filter(|k| !stored.contains(k.as_str())).collect();
    assert!(accepted.len() > 50, "the senders got through the chaos: {}", accepted.len());
    assert!(lost.is_empty(), "{} events that got a 2xx are lost: {lost:?}", lost.len());

    // 2. Every device saw its person's whole feed, once, in order: one page per incident for
    // alice, and for bob once each ladder reached him (LADDER_SECONDS after it opened).
    let patience = Duration::from_secs(60 + 2 * LADDER_SECONDS);
    for (name, device, token) in
        [("alice", &mut alice, &cluster.alice), ("bob", &mut bob, &cluster.bob)]
    {
        let seen = device.until(patience, |seen| seen.len() >= chaos.len()).await;
        let mut reference = Device::follow(&node, token, Some(0));
        let expected = reference.until(patience, |seen| seen.len() >= chaos.len()).await;
        let ids = |s: &[reveille_tests::device::Seen]| s.iter().map(|e| e.id).collect::<Vec<_>>();
        assert_eq!(
            ids(&seen),
            ids(&expected),
            "{name}'s device: every entry once, in order, no gap"
        );
        assert!(seen.iter().all(|e| e.kind == "page"), "{name}: nothing but pages was due");
    }

    // 3. Every ladder that came due moved on exactly once.
    let mut checked = 0;
    for incident in &all {
        if incident["dedup_key"].as_str().is_none_or(|k| !k.starts_with("chaos-")) {
            continue;
        }
        let id = incident["id"].as_i64().unwrap();
        let detail = get(&format!("{node}/api/v1/incidents/{id}"), &cluster.alice).await;
        let escalated = detail["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "escalated")
            .count();
        assert_eq!(escalated, 1, "incident {id}: bob paged {escalated} times: {detail}");
        checked += 1;
    }
    let bob_pages = bob.seen.lock().unwrap().iter().filter(|s| s.kind == "page").count();
    assert_eq!(bob_pages, checked, "bob's device rang once for each escalated incident");

    // 4. No node went without taking a write for that long unless it was itself disrupted (a
    // node may answer 503 for a moment while a frozen peer holds the write lock).
    let disrupted = |p: &Probe| {
        p.at + STALL > sent_until
            || disruptions.iter().any(|d| {
                d.node.is_none_or(|n| n == p.node)
                    && p.at + STALL > d.from
                    && p.at < d.until + Duration::from_secs(3)
            })
    };
    let probes = probes.lock().unwrap().clone();
    let stalls: Vec<&Probe> = probes
        .iter()
        .filter(|p| !disrupted(p))
        .filter(|p| {
            let taken = probes
                .iter()
                .filter(|q| q.node == p.node && q.ok && q.at >= p.at)
                .filter_map(|q| q.took.map(|took| q.at + took))
                .min();
            taken.is_none_or(|done| done > p.at + STALL)
        })
        .collect();
    let worst = probes.iter().filter(|p| !disrupted(p)).filter_map(|p| p.took).max();
    println!(
        "chaos: {} probes, {} during disruptions, worst answer of an undisturbed node {worst:?}, \
         {checked} ladders checked, nemesis for {:?}",
        probes.len(),
        probes.iter().filter(|p| disrupted(p)).count(),
        sent_until.duration_since(started)
    );
    assert!(stalls.is_empty(), "undisturbed nodes stalled: {stalls:?}");
}
