//! The accept loop: every TCP connection Reveille serves goes through here, so every one of them
//! is bounded.
//!
//! - At most `server.max_connections` at once, at most `server.max_connections_per_ip` from one
//!   address, and the last `server.reserved_connections` only for requests with a credential
//!   ([`slots`]). One over a cap is answered `503` with `Retry-After` and closed (senders retry a
//!   5xx; they drop on a 4xx), never left waiting.
//! - A connection that sends no complete request head for `server.idle_timeout_seconds` (an idle
//!   keep-alive connection, or a request trickling in byte by byte) is closed; so is one whose
//!   body does not arrive within `server.body_timeout_seconds` (see [`crate::router`]).
//! - TCP keepalive and a user timeout drop a peer that vanished (a laptop gone to sleep), and
//!   with it the device it counted as.
//! - On shutdown, connections get `server.shutdown_seconds` to finish; the rest are cut.
//! - With TLS ([`crate::http::tls`]), the handshake must finish within the idle timeout; HTTP/2 is
//!   served where the client asks for it by ALPN, HTTP/1.1 otherwise. An HTTP/2 connection with
//!   nothing in flight for the idle timeout is closed too ([`idle`]).
//!
//! A WebSocket keeps its connection's slot for as long as it is open ([`Slot`]).

mod idle;
mod slots;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::metrics::Metrics;

pub use self::slots::{Refused, Slot, Slots};

/// How long a connection on a reserved slot may take to send its request head.
const RESERVED_PATIENCE: Duration = Duration::from_secs(2);

/// What bounds the connections of one server.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_connections: usize,
    /// Connections one address may hold (0: no limit).
    pub per_ip: usize,
    /// The last slots, kept for requests with a credential.
    pub reserved: usize,
    /// Longest wait for a complete request head, idle keep-alive time included.
    pub idle: Duration,
    /// A peer that acknowledges nothing for this long is dropped by the kernel.
    pub dead_peer: Duration,
    /// How long open connections get to finish once shutdown starts.
    pub shutdown: Duration,
}

/// HTTP/1 alone on plain TCP (as every client of plain `http://` speaks it); HTTP/2 or HTTP/1
/// by ALPN over TLS. A reserved slot's connection gets less time for its request head.
#[derive(Clone)]
struct Http {
    plain: http1::Builder,
    reserved: http1::Builder,
    tls: auto::Builder<TokioExecutor>,
    tls_reserved: auto::Builder<TokioExecutor>,
    idle: Duration,
}

/// What a listener serves: the app for every connection, the one for a reserved slot (which
/// refuses requests without a credential), and over TLS the acceptors for each.
pub struct Apps {
    pub app: Router,
    pub reserved: Router,
    /// HTTP/2 and HTTP/1.1, and HTTP/1.1 alone (reserved slots).
    pub tls: Option<(TlsAcceptor, TlsAcceptor)>,
}

/// Serves `apps` on `listener` until `closing` turns true, then waits for open connections up
/// to the shutdown deadline.
pub async fn run(
    listener: TcpListener,
    apps: Apps,
    limits: Limits,
    mut closing: watch::Receiver<bool>,
    metrics: Arc<Metrics>,
) {
    let slots = Slots::new(limits.max_connections, limits.per_ip, limits.reserved);
    let mut plain = http1::Builder::new();
    plain.timer(TokioTimer::new()).header_read_timeout(limits.idle).keep_alive(true);
    let mut reserved = http1::Builder::new();
    reserved.timer(TokioTimer::new()).header_read_timeout(RESERVED_PATIENCE.min(limits.idle));
    let mut secure = auto::Builder::new(TokioExecutor::new());
    secure.http1().timer(TokioTimer::new()).header_read_timeout(limits.idle).keep_alive(true);
    // HTTP/2 has no header timer; pings find a peer that stopped answering.
    secure
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(limits.idle))
        .keep_alive_timeout(limits.dead_peer)
        .max_concurrent_streams(256);
    let mut tls_reserved = auto::Builder::new(TokioExecutor::new());
    tls_reserved
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(RESERVED_PATIENCE.min(limits.idle));
    let http = Http { plain, reserved, tls: secure, tls_reserved, idle: limits.idle };
    let mut share_warned = false;
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (tcp, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        accept_failed(&e).await;
                        continue;
                    }
                };
                live_socket(&tcp, limits.dead_peer);
                match slots.admit(peer.ip()) {
                    Ok(slot) => {
                        // A reserved slot: one request with a credential, HTTP/1.1, little time.
                        let (app, tls, patience) = match slot.reserved() {
                            false => (apps.app.clone(), apps.tls.as_ref().map(|t| t.0.clone()), limits.idle),
                            true => (apps.reserved.clone(), apps.tls.as_ref().map(|t| t.1.clone()), RESERVED_PATIENCE.min(limits.idle)),
                        };
                        let serving = serve_one(
                            http.clone(), tcp, tls, patience, app, slot, closing.clone(), metrics.clone(),
                        );
                        connections.spawn(serving);
                    }
                    Err(why) => {
                        if why == Refused::Share && !std::mem::replace(&mut share_warned, true) {
                            tracing::warn!(peer = %peer.ip(), per_ip = limits.per_ip, "one address holds its whole share of connections (server.max_connections_per_ip; set it to 0 behind a proxy); refusing more from it");
                        }
                        metrics.connections_refused.inc();
                        connections.spawn(refuse(tcp));
                    }
                }
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            () = closed(&mut closing) => break,
        }
    }
    drop(listener);
    let drained = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(limits.shutdown, drained).await.is_err() {
        tracing::warn!(
            deadline = ?limits.shutdown, left = connections.len(),
            "shutdown deadline passed; closing the connections left"
        );
        connections.shutdown().await;
    }
}

/// Serves one connection until it ends, or until shutdown lets its current request finish.
#[expect(clippy::too_many_arguments, reason = "one connection's whole context, passed once")]
async fn serve_one(
    http: Http,
    tcp: TcpStream,
    tls: Option<TlsAcceptor>,
    handshake: Duration,
    app: Router,
    slot: Slot,
    closing: watch::Receiver<bool>,
    metrics: Arc<Metrics>,
) {
    metrics.connections.inc();
    let reserved = slot.reserved();
    let service = app.map_request(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(slot.clone());
        request.map(Body::new)
    });
    let ended = match tls {
        None => {
            let builder = if reserved { &http.reserved } else { &http.plain };
            let connection = builder
                .serve_connection(TokioIo::new(tcp), TowerToHyperService::new(service))
                .with_upgrades();
            tokio::pin!(connection);
            let mut closing = closing;
            tokio::select! {
                ended = connection.as_mut() => ended.map_err(Into::into),
                () = closed(&mut closing) => {
                    connection.as_mut().graceful_shutdown();
                    connection.await.map_err(Into::into)
                }
            }
        }
        Some(acceptor) => match tokio::time::timeout(handshake, acceptor.accept(tcp)).await {
            Ok(Ok(stream)) => {
                let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
                let builder = if reserved { &http.tls_reserved } else { &http.tls };
                serve_tls(builder, stream, service, closing, h2.then_some(http.idle)).await
            }
            Ok(Err(e)) => Err(format!("TLS handshake failed: {e}").into()),
            Err(_) => Err("TLS handshake timed out".into()),
        },
    };
    if let Err(e) = ended {
        tracing::debug!(error = %e, "connection ended with an error");
    }
    metrics.connections.dec();
}

type Ended = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// Serves a TLS connection; with `idle` (HTTP/2), closes it once nothing was in flight that long.
async fn serve_tls<I, S>(
    http: &auto::Builder<TokioExecutor>,
    io: I,
    service: S,
    closing: watch::Receiver<bool>,
    idle: Option<Duration>,
) -> Ended
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: Service + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    let Some(limit) = idle else {
        return serve_until(http, io, service, closing, std::future::pending()).await;
    };
    let activity = idle::Activity::default();
    let tracking = activity.clone();
    let tracked = tower::service_fn(move |request: Request<Incoming>| {
        let busy = tracking.start();
        let answer = service.clone().oneshot(request);
        async move { answer.await.map(|response| idle::Activity::track(busy, response)) }
    });
    serve_until(http, io, tracked, closing, activity.idle_for(limit)).await
}

/// What serves one connection's requests.
trait Service:
    tower::Service<
        Request<Incoming>,
        Response = axum::response::Response,
        Error = std::convert::Infallible,
    >
{
}

impl<S> Service for S where
    S: tower::Service<
            Request<Incoming>,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        >
{
}

/// Serves `io` until it ends, shutting it down gracefully at shutdown or once `quiet` resolves.
async fn serve_until<I, S>(
    http: &auto::Builder<TokioExecutor>,
    io: I,
    service: S,
    mut closing: watch::Receiver<bool>,
    quiet: impl std::future::Future<Output = ()>,
) -> Ended
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: Service + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    let connection =
        http.serve_connection_with_upgrades(TokioIo::new(io), TowerToHyperService::new(service));
    tokio::pin!(connection);
    tokio::select! {
        ended = connection.as_mut() => ended,
        () = closed(&mut closing) => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
        () = quiet => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    }
}

/// Returns once shutdown has started.
async fn closed(closing: &mut watch::Receiver<bool>) {
    // A dropped sender means the server is gone: that is a shutdown too.
    let _ = closing.wait_for(|closing| *closing).await;
}

/// Answers a connection over the cap with a 503 that senders retry, and closes it.
async fn refuse(mut tcp: TcpStream) {
    const BODY: &str =
        r#"{"code":"unavailable","message":"too many connections to this server; retry shortly"}"#;
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nContent-Type: application/json\r\n\
         Connection: close\r\nContent-Length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    let answered = tokio::time::timeout(Duration::from_secs(5), async {
        tcp.write_all(answer.as_bytes()).await?;
        tcp.shutdown().await
    });
    let _ = answered.await;
}

/// A failed accept: a connection that went away before it was taken is nothing; running out of
/// file descriptors is worth a log line and a pause, not a busy loop.
async fn accept_failed(e: &std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if !matches!(e.kind(), ConnectionAborted | ConnectionRefused | ConnectionReset) {
        tracing::error!(error = %e, "cannot accept connections; retrying in 1 s");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// TCP keepalive and a user timeout on every connection: a peer that vanished (a laptop that
/// went to sleep, a cut network) is dropped by the kernel within `dead_peer`, and with it stops
/// counting as a live device.
fn live_socket(tcp: &TcpStream, dead_peer: Duration) {
    let socket = socket2::SockRef::from(tcp);
    let probe = (dead_peer / 3).max(Duration::from_secs(1));
    let keepalive =
        socket2::TcpKeepalive::new().with_time(probe).with_interval(probe).with_retries(3);
    let set = socket
        .set_tcp_keepalive(&keepalive)
        .and_then(|()| socket.set_tcp_user_timeout(Some(dead_peer)));
    if let Err(e) = set.and_then(|()| tcp.set_nodelay(true)) {
        tracing::warn!(error = %e, "cannot set keepalive on a connection");
    }
}
