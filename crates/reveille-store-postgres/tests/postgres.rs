//! Runs the conformance suite against PostgreSQL (a real server, started by the test on a free
//! loopback port), plus what only several writers on one database can show.

use std::sync::Arc;

use std::time::Duration;

use reveille_protocol::Action::Trigger;
use reveille_store::conformance::{batch, send};
use reveille_store::{Cluster, Error, Incidents, Store};
use reveille_store_postgres::{Postgres, WRITE_LOCK};

async fn fresh() -> Arc<dyn Store> {
    let url = reveille_tests::postgres::server().database();
    Arc::new(
        tokio::task::spawn_blocking(move || Postgres::open(&url, &Default::default()))
            .await
            .unwrap()
            .unwrap(),
    )
}

reveille_store::conformance_suite!(fresh);

/// A small deterministic random sequence (the seed is printed, so a failure can be replayed).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 =
            self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

/// What a device sees, following alice's feed on `node` from `start` the way the server's
/// follower does: subscribe first, then replay from the store, then take live entries newer than
/// the last one seen. Stops once it has seen `until`.
async fn device(node: Postgres, start: i64, until: tokio::sync::watch::Receiver<i64>) -> Vec<i64> {
    let mut live = node.hub().subscribe("alice");
    let mut seen = Vec::new();
    let mut last = start;
    loop {
        let replay = node.feed_since("alice", last, 500).await.unwrap();
        let done = replay.len() < 500;
        for entry in replay {
            seen.push(entry.id);
            last = entry.id;
        }
        if done {
            break;
        }
    }
    let mut until = until;
    loop {
        let target = *until.borrow();
        if target > 0 && last >= target {
            return seen;
        }
        tokio::select! {
            received = live.recv() => match received {
                Ok(entry) if entry.id > last => {
                    seen.push(entry.id);
                    last = entry.id;
                }
                Ok(_) => {}
                Err(e) => panic!("the device fell behind or the hub closed: {e}"),
            },
            _ = until.changed() => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_writing_at_once_leave_no_gap_and_no_duplicate_for_any_device() {
    let url = reveille_tests::postgres::server().database();
    let nodes: Vec<Postgres> =
        (0..3).map(|_| Postgres::open(&url, &Default::default()).unwrap()).collect();
    let seed =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
            as u64;
    println!("seed {seed}");
    let mut rng = Rng(seed);
    let (done, until) = tokio::sync::watch::channel(0i64);

    // Devices on every node, resuming from points all along what will be written.
    let mut devices = Vec::new();
    for _ in 0..9 {
        let node = nodes[rng.below(3) as usize].clone();
        let start = rng.below(1500) as i64;
        devices.push((start, tokio::spawn(device(node, start, until.clone()))));
    }
    // Many writers on every node at once: 3 nodes × 10 writers × 40 pages, each paging alice.
    let mut writers = Vec::new();
    for (n, node) in nodes.iter().enumerate() {
        for w in 0..10 {
            let node = node.clone();
            writers.push(tokio::spawn(async move {
                for i in 0..40 {
                    let key = format!("n{n}-w{w}-{i}");
                    send(&node, "db", reveille_protocol::Action::Trigger, &key, 0).await;
                }
            }));
        }
    }
    for writer in writers {
        writer.await.unwrap();
    }
    let all: Vec<i64> = {
        let mut all = Vec::new();
        let mut last = 0;
        loop {
            let page = nodes[0].feed_since("alice", last, 1000).await.unwrap();
            if page.is_empty() {
                break;
            }
            last = page.last().unwrap().id;
            all.extend(page.iter().map(|e| e.id));
        }
        all
    };
    assert_eq!(all.len(), 1200, "every page reached alice's feed");
    done.send_replace(*all.last().unwrap());
    for (start, device) in devices {
        let seen = device.await.unwrap();
        let expected: Vec<i64> = all.iter().copied().filter(|id| *id > start).collect();
        let gaps = expected.iter().filter(|id| !seen.contains(id)).count();
        let mut unique = seen.clone();
        unique.dedup();
        assert_eq!(
            (gaps, seen.len() - unique.len()),
            (0, 0),
            "a device resuming after {start}: gaps and duplicates (seed {seed})"
        );
        assert_eq!(seen, expected, "in order (seed {seed})");
    }
}

fn at(secs: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_second(1_800_000_000 + secs).unwrap()
}

#[tokio::test]
async fn nodes_share_leases_presence_and_rate_buckets() {
    use reveille_store::{Lease, NodeInfo, UserPresence};
    let url = reveille_tests::postgres::server().database();
    let (a, b) = (
        Postgres::open(&url, &Default::default()).unwrap(),
        Postgres::open(&url, &Default::default()).unwrap(),
    );

    assert_eq!(
        a.lease("push", "a", at(0), at(10)).await.unwrap(),
        Lease::Granted { took_over: None }
    );
    assert_eq!(b.lease("push", "b", at(5), at(15)).await.unwrap(), Lease::Held("a".into()));
    assert_eq!(
        a.lease("push", "a", at(8), at(18)).await.unwrap(),
        Lease::Granted { took_over: None }
    );
    // a stops renewing: once its lease runs out, b takes over and learns from whom.
    let taken = b.lease("push", "b", at(19), at(29)).await.unwrap();
    assert_eq!(taken, Lease::Granted { took_over: Some("a".into()) });

    let node = |name: &str| NodeInfo {
        name: name.into(),
        seen: at(30),
        started: at(1),
        link_keys: vec!["k1".into(), "k0".into()],
    };
    let alice = |open| UserPresence { user: "alice".into(), open, since: at(1) };
    a.report_node(node("a"), vec![alice(1)]).await.unwrap();
    let view = b.report_node(node("b"), vec![alice(0)]).await.unwrap();
    assert_eq!(view.nodes, [node("a"), node("b")], "every node as it reported itself");
    assert_eq!(view.presence.len(), 2, "{view:?}");
    assert!(view.presence.contains(&("a".into(), alice(1))), "a device on a counts on b");

    // One bucket for every node: 60 a minute in all, not 60 on each.
    assert_eq!(a.take_tokens("key", 40, 60, at(0)).await.unwrap(), 40);
    assert_eq!(b.take_tokens("key", 40, 60, at(0)).await.unwrap(), 20);
}

/// A node on a database that another session holds the `feed_seq` row of (a node that froze in
/// the middle of its commit): its ingest is refused as unavailable within the lock deadline, not
/// left hanging, and goes through once the row is free.
#[tokio::test]
async fn a_lock_held_elsewhere_is_unavailable_within_the_deadline_not_a_hang() {
    let url = reveille_tests::postgres::server().database();
    let node = Postgres::open(&url, &Default::default()).unwrap();
    let held = url.clone();
    let (hold, release) = std::sync::mpsc::channel::<()>();
    let (locked, is_locked) = tokio::sync::oneshot::channel();
    let holder = std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&held, postgres::NoTls).unwrap();
        client.batch_execute("BEGIN; UPDATE feed_seq SET last = last").unwrap();
        locked.send(()).unwrap();
        let _ = release.recv();
        client.batch_execute("ROLLBACK").unwrap();
    });
    is_locked.await.unwrap();
    let answer =
        tokio::time::timeout(Duration::from_secs(10), node.ingest(batch("db", Trigger, "held", 0)));
    let refused = answer.await.expect("no answer: the write hangs behind the lock");
    assert!(matches!(refused, Err(Error::Unavailable(_))), "{refused:?}");
    assert!(node.feed_since("alice", 0, 10).await.unwrap().is_empty(), "nothing half-written");

    hold.send(()).unwrap();
    holder.join().unwrap();
    let landed = node.ingest(batch("db", Trigger, "held", 0)).await.unwrap();
    assert!(landed[0].incident_id.is_some(), "the same event goes through once the row is free");
}

/// A node frozen in the middle of its transaction (its link to the database frozen right after
/// it took the write lock) holds up the other nodes no longer than its idle-in-transaction
/// deadline; after it wakes, what it was writing is refused (never half-kept), and what the
/// others wrote meanwhile is there once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_frozen_mid_transaction_holds_up_the_others_for_seconds_and_loses_nothing() {
    let pg = reveille_tests::postgres::server();
    let url = pg.database();
    let proxy = reveille_tests::proxy::Cuttable::start(pg.port).await;
    let proxied = url.replace(&format!(":{}/", pg.port), &format!(":{}/", proxy.port));
    let frozen = Postgres::open(&proxied, &Default::default()).unwrap();
    let other = Postgres::open(&url, &Default::default()).unwrap();
    proxy.freeze_after(&format!("pg_advisory_xact_lock({WRITE_LOCK})"));
    let stuck = {
        let frozen = frozen.clone();
        tokio::spawn(async move { frozen.ingest(batch("db", Trigger, "frozen", 0)).await })
    };
    proxy.until_frozen().await;

    let started = std::time::Instant::now();
    let mut refused = 0;
    let id = loop {
        let answer = tokio::time::timeout(
            Duration::from_secs(10),
            other.ingest(batch("db", Trigger, "elsewhere", 0)),
        );
        match answer.await.expect("no answer: a frozen node stalls the others") {
            Ok(landed) => break landed[0].incident_id.unwrap(),
            Err(Error::Unavailable(_)) => refused += 1,
            Err(e) => panic!("{e}"),
        }
    };
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(5), "held up {waited:?} ({refused} refusals)");
    assert!(!stuck.is_finished(), "the frozen node is still frozen");

    proxy.thaw();
    // Its transaction was ended while it slept: on waking it either says so, or (its connection
    // found dead before anything began) writes the event anew. Never half, never twice.
    let woke = tokio::time::timeout(Duration::from_secs(10), stuck).await.unwrap().unwrap();
    let feed: Vec<i64> =
        other.feed_since("alice", 0, 10).await.unwrap().iter().map(|e| e.incident.id).collect();
    match woke {
        Ok(landed) => assert_eq!(feed, [id, landed[0].incident_id.unwrap()], "each page once"),
        Err(_) => {
            assert_eq!(feed, [id], "the other node's page, once; nothing of the frozen one's")
        }
    }
    let again = frozen.ingest(batch("db", Trigger, "frozen", 0)).await.unwrap();
    assert!(again[0].incident_id.is_some(), "the woken node writes again");
}
