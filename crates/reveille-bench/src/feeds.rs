//! Many devices following feeds at once: SSE connections to `/api/v1/feed` (the desktop's
//! transport) and ntfy WebSockets to `/{topic}/ws` (the phone app's). Each reports every page it
//! receives, with the instant it arrived, on one channel.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use futures_util::StreamExt;
use reveille_protocol::sse::Parser;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// How many connections are opened at once; more only queue in the listen backlog.
const OPENING: usize = 200;

/// A page one subscriber received.
#[derive(Debug)]
pub struct Seen {
    pub subscriber: usize,
    /// The page's dedup key (it also ends the ntfy message's text, which names it).
    pub key: String,
    pub at: Instant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Sse,
    NtfyWs,
}

impl Transport {
    pub fn name(self) -> &'static str {
        match self {
            Self::Sse => "sse",
            Self::NtfyWs => "ntfy-ws",
        }
    }
}

/// Open subscribers; they close when this is dropped.
pub struct Swarm {
    pub seen: mpsc::UnboundedReceiver<Seen>,
    pub size: usize,
    _tasks: JoinSet<()>,
}

impl Swarm {
    /// Opens `n` subscribers; subscriber `i` follows user `owner(i)` with `tokens[owner(i)]`
    /// (or `topics[owner(i)]` for ntfy). Returns once every one has its stream open.
    pub async fn open(
        transport: Transport,
        url: &str,
        credentials: &[(String, String)],
        n: usize,
        owner: impl Fn(usize) -> usize,
    ) -> Result<Swarm> {
        let (tx, seen) = mpsc::unbounded_channel();
        let http = reqwest::Client::builder().http1_only().build()?;
        let gate = Arc::new(Semaphore::new(OPENING));
        let mut tasks = JoinSet::new();
        let mut opened = Vec::with_capacity(n);
        for subscriber in 0..n {
            let (token, topic) = credentials[owner(subscriber)].clone();
            let (ready, ready_rx) = oneshot::channel();
            let permit = gate.clone().acquire_owned().await?;
            let (tx, url, http) = (tx.clone(), url.to_owned(), http.clone());
            tasks.spawn(async move {
                let on_open = move || {
                    drop(permit);
                    let _ = ready.send(());
                };
                let result = match transport {
                    Transport::Sse => sse(&http, &url, &token, subscriber, on_open, tx).await,
                    Transport::NtfyWs => ntfy(&url, &token, &topic, subscriber, on_open, tx).await,
                };
                if let Err(e) = result {
                    eprintln!("subscriber {subscriber}: {e:#}");
                }
            });
            opened.push(ready_rx);
        }
        for (i, ready) in opened.into_iter().enumerate() {
            ready.await.with_context(|| format!("subscriber {i} never opened its stream"))?;
        }
        Ok(Swarm { seen, size: n, _tasks: tasks })
    }
}

/// The one field of a feed entry the benchmark needs: parsing all of it, ten thousand times per
/// page, would measure the benchmark's own client more than the server.
#[derive(serde::Deserialize)]
struct PageKey {
    incident: DedupKey,
}

#[derive(serde::Deserialize)]
struct DedupKey {
    dedup_key: String,
}

async fn sse(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    subscriber: usize,
    on_open: impl FnOnce(),
    tx: mpsc::UnboundedSender<Seen>,
) -> Result<()> {
    let response = http.get(format!("{url}/api/v1/feed")).bearer_auth(token).send().await?;
    if !response.status().is_success() {
        bail!("feed answered {}", response.status());
    }
    let mut body = response.bytes_stream();
    let mut parser = Parser::default();
    let mut on_open = Some(on_open);
    while let Some(chunk) = body.next().await {
        for event in parser.push(&chunk?) {
            match event.event.as_str() {
                "open" => on_open.take().map_or((), |f| f()),
                "page" => {
                    let at = Instant::now();
                    let entry: PageKey = serde_json::from_str(&event.data)?;
                    let key = entry.incident.dedup_key;
                    let _ = tx.send(Seen { subscriber, key, at });
                }
                _ => {}
            }
        }
    }
    bail!("the feed ended")
}

async fn ntfy(
    url: &str,
    token: &str,
    topic: &str,
    subscriber: usize,
    on_open: impl FnOnce(),
    tx: mpsc::UnboundedSender<Seen>,
) -> Result<()> {
    let ws = url.replacen("http", "ws", 1);
    let mut request = format!("{ws}/{topic}/ws").into_client_request()?;
    request.headers_mut().insert("authorization", format!("Bearer {token}").parse()?);
    let (mut stream, _) = tokio_tungstenite::connect_async(request).await?;
    let mut on_open = Some(on_open);
    while let Some(message) = stream.next().await {
        let Message::Text(text) = message? else { continue };
        let value: serde_json::Value = serde_json::from_str(&text)?;
        match value["event"].as_str() {
            Some("open") => on_open.take().map_or((), |f| f()),
            Some("message") => {
                let at = Instant::now();
                let key = value["message"].as_str().unwrap_or_default().to_owned();
                let _ = tx.send(Seen { subscriber, key, at });
            }
            _ => {}
        }
    }
    bail!("the WebSocket ended")
}
