//! Feed disconnects mid-stream. A proxy between the subscriber and a real server cuts each of the
//! first twenty feed connections after a planned number of bytes (inside the HTTP headers,
//! inside the `open` frame, inside a page's JSON) while pages keep coming. Afterwards the device
//! must have done what an unbroken stream would have made it do: every page notified once, the
//! alarm started and stopped once; nothing missed (a gap), nothing twice (a duplicate). A page
//! answered while the device was away rings not at all, unlike on an unbroken stream: the
//! answers here come once the device has heard every page.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Recorder, add_token, config, page, serve};
use reveille_client::Subscriber;
use reveille_client::pages::{Effect, Pages};
use reveille_core::Command;
use reveille_store::prelude::*;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

const DISCONNECTS: usize = 20;
/// How a feed response is recognised; cuts count bytes from the end of this header value.
const MARKER: &[u8] = b"text/event-stream";

/// Where to cut each feed connection, and what has happened so far.
struct Plan {
    cuts: Vec<usize>,
    opened: Mutex<usize>,
    /// Feed connections cut so far.
    done: watch::Sender<usize>,
    /// A feed connection is streaming now.
    live: watch::Sender<bool>,
}

impl Plan {
    fn new() -> Self {
        // In the headers first, then around the `open` frame, then anywhere: a fixed
        // pseudo-random sequence, so that every run cuts at the same places.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let cuts = (0..DISCONNECTS)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                match i {
                    0 => 0,
                    1 => 9,
                    2..=7 => 40 * i,
                    _ => (x % 3_000) as usize,
                }
            })
            .collect();
        Plan {
            cuts,
            opened: Mutex::new(0),
            done: watch::channel(0).0,
            live: watch::channel(false).0,
        }
    }

    /// A feed response begins: how many bytes it may carry (None: all, the cuts are used up).
    fn begin(&self) -> Option<usize> {
        let mut opened = self.opened.lock().unwrap();
        let cut = self.cuts.get(*opened).copied();
        *opened += 1;
        self.live.send_replace(true);
        cut
    }

    fn cut(&self) {
        self.live.send_replace(false);
        self.done.send_modify(|n| *n += 1);
    }
}

async fn proxy(listener: TcpListener, server: SocketAddr, plan: Arc<Plan>) {
    while let Ok((client, _)) = listener.accept().await {
        let plan = plan.clone();
        tokio::spawn(async move {
            if let Ok(upstream) = TcpStream::connect(server).await {
                relay(client, upstream, &plan).await;
            }
        });
    }
}

/// Relays one connection both ways until a side ends or a planned cut drops both.
async fn relay(mut client: TcpStream, mut server: TcpStream, plan: &Plan) {
    let (mut from_client, mut to_client) = client.split();
    let (mut from_server, mut to_server) = server.split();
    tokio::select! {
        _ = tokio::io::copy(&mut from_client, &mut to_server) => {}
        _ = downstream(&mut from_server, &mut to_client, plan) => {}
    }
}

/// Copies the server's bytes to the client; a feed response is cut where the plan says.
async fn downstream(
    from: &mut (impl AsyncRead + Unpin),
    to: &mut (impl AsyncWrite + Unpin),
    plan: &Plan,
) -> std::io::Result<()> {
    let mut buffer = [0u8; 8192];
    // The end of what was read so far, to find the marker across reads.
    let mut seen: Vec<u8> = Vec::new();
    let mut budget: Option<usize> = None;
    let mut feed = false;
    loop {
        let n = from.read(&mut buffer).await?;
        if n == 0 {
            return Ok(());
        }
        let chunk = &buffer[..n];
        if !feed {
            let start = seen.len();
            seen.extend_from_slice(chunk);
            if let Some(at) = seen.windows(MARKER.len()).position(|w| w == MARKER) {
                feed = true;
                let after = at + MARKER.len() - start;
                budget = plan.begin().map(|cut| after + cut);
            } else {
                seen.drain(..seen.len().saturating_sub(MARKER.len()));
            }
        }
        let Some(left) = budget.as_mut() else {
            to.write_all(chunk).await?;
            continue;
        };
        let take = (*left).min(n);
        to.write_all(&chunk[..take]).await?;
        *left -= take;
        if *left == 0 {
            plan.cut();
            return Ok(());
        }
    }
}

/// The device call the recorder notes for one effect of the ringing state, if any.
fn call(effect: Effect) -> Option<String> {
    match effect {
        Effect::Notify(incident) => Some(format!("notify {}", incident.id)),
        Effect::Show(incident) => Some(format!("show {}", incident.id)),
        Effect::Ring => Some("ring".into()),
        Effect::Silence => Some("silence".into()),
        Effect::Withdraw(id) => Some(format!("withdraw {id}")),
        _ => None,
    }
}

fn tally(calls: impl IntoIterator<Item = String>) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for call in calls {
        *counts.entry(call).or_default() += 1;
    }
    counts
}

/// How many of `want`'s calls `got` lacks.
fn missing(want: &BTreeMap<String, usize>, got: &BTreeMap<String, usize>) -> Vec<String> {
    want.iter()
        .filter(|(call, n)| got.get(*call).copied().unwrap_or(0) < **n)
        .map(|(call, n)| format!("{call} ({} of {n})", got.get(call).copied().unwrap_or(0)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_cuts_mid_stream_lose_no_page_and_ring_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let (server, port) = serve(dir.path(), 0).await;
    add_token(&server.store).await;
    let plan = Arc::new(Plan::new());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(proxy(listener, ([127, 0, 0, 1], port).into(), plan.clone()));
    let device = Arc::new(Recorder::default());
    let client = Subscriber::start(config(url, dir.path()), device.clone()).unwrap();

    // Pages keep coming while a feed connection streams, until every planned cut is made.
    let mut live = plan.live.subscribe();
    let mut pages = Vec::new();
    while *plan.done.borrow() < DISCONNECTS {
        tokio::time::timeout(Duration::from_secs(20), live.wait_for(|up| *up))
            .await
            .unwrap_or_else(|_| {
                let (opened, cut) = (*plan.opened.lock().unwrap(), *plan.done.borrow());
                panic!("the device stopped reconnecting after {opened} feed connections, {cut} cut")
            })
            .unwrap();
        pages.push(page(&server.store, &format!("p{}", pages.len())).await);
    }
    // A few more on the unbroken stream; once the device rings for every page, bob acknowledges
    // each. (Answers that come while the device is away are not compared with an unbroken
    // stream: a page answered meanwhile must not ring at all; `pages.rs` tests that.)
    tokio::time::timeout(Duration::from_secs(20), live.wait_for(|up| *up)).await.unwrap().unwrap();
    for _ in 0..3 {
        pages.push(page(&server.store, &format!("p{}", pages.len())).await);
    }
    let mut status = client.status.clone();
    common::until(&mut status, |s| s.ringing_total == pages.len()).await;
    for &id in &pages {
        let now = jiff::Timestamp::now();
        server.store.command(id, "bob", Command::Acknowledge, now).await.unwrap();
    }
    // The feed is in order: once the last change is seen, everything before it was too.
    device.wait_for(&format!("withdraw {}", pages.last().unwrap())).await;

    // What an unbroken stream makes a device do: the server's feed for alice, replayed.
    let feed = server.store.feed_since("alice", 0, 100_000).await.unwrap();
    let mut ringing = Pages::default();
    let want = tally(feed.iter().flat_map(|entry| ringing.on_entry(entry)).filter_map(call));
    let calls = device.calls.lock().unwrap().clone();
    let got = tally(calls.into_iter().filter(|c| !c.starts_with("lost")));
    let gaps = missing(&want, &got);
    let duplicates = missing(&got, &want);
    let cuts = *plan.done.borrow();
    println!(
        "disconnects: {cuts} cuts, {} pages, {} feed entries, {} gaps, {} duplicates",
        pages.len(),
        feed.len(),
        gaps.len(),
        duplicates.len()
    );
    assert!(gaps.is_empty(), "the device missed: {gaps:?}");
    assert!(duplicates.is_empty(), "the device did twice: {duplicates:?}");
    assert_eq!((got["ring"], got["silence"]), (1, 1), "one alarm, started once, stopped once");
}
