//! A real cluster for tests and benchmarks: three `reveille serve` processes on one PostgreSQL
//! database (the test server of [`crate::postgres`]), behind Debian's haproxy on loopback, each
//! an ordinary process in a temporary directory, all stopped when the cluster is dropped.
//!
//! The last node reaches the database through a [`Cuttable`] proxy, so a test can cut that one
//! node off its database and give it back.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::{Server, last_line, reveille};

/// Nodes in a test cluster.
pub const NODES: usize = 3;

/// The config every node shares; `{db}` is the database URL, `{extra}` more settings.
const CONFIG: &str = r#"
[server]
listen = "127.0.0.1:0"
base_url = "http://127.0.0.1"
heartbeat_seconds = 1

[database]
url = "{db}"
link_key_file = "reveille.link-key"

[ingest]
rate_per_minute = 1000000

[escalation]
deaf_after_seconds = 0

[[users]]
name = "alice"
[[users]]
name = "bob"

[[policies]]
name = "payments"
[[policies.levels]]
users = ["alice"]
delay_seconds = 4
[[policies.levels]]
users = ["bob"]
delay_seconds = 4

[[services]]
name = "payments"
policy = "payments"
{extra}
"#;

/// A process killed (SIGKILL) when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A TCP proxy to the database that a test can cut (every connection dropped, new ones refused)
/// and restore.
pub struct Cuttable {
    pub port: u16,
    cut: watch::Sender<bool>,
}

impl Cuttable {
    pub async fn start(target: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = watch::channel(false).0;
        let watching = cut.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let mut cut = watching.subscribe();
                if *cut.borrow() {
                    continue;
                }
                tokio::spawn(async move {
                    let Ok(mut server) =
                        tokio::net::TcpStream::connect(("127.0.0.1", target)).await
                    else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.wait_for(|cut| *cut) => {}
                    }
                });
            }
        });
        Self { port, cut }
    }

    /// Drops every connection and refuses new ones (`true`), or lets them through again.
    pub fn set_cut(&self, cut: bool) {
        self.cut.send_replace(cut);
    }
}

/// Three nodes behind a balancer.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    /// The database URL the nodes share.
    pub db: String,
    /// The balancer: where devices and senders go.
    pub url: String,
    pub nodes: Vec<Option<Server>>,
    pub node_urls: Vec<String>,
    /// An integration key of `payments`, and tokens of alice and bob.
    pub key: String,
    pub alice: String,
    pub bob: String,
    /// Between the last node and its database.
    pub proxy: Cuttable,
    _balancer: Proc,
}

/// Why a cluster cannot be started here, if it cannot.
pub fn missing() -> Option<String> {
    crate::postgres::missing().or_else(|| {
        (!Path::new("/usr/sbin/haproxy").is_file())
            .then(|| "haproxy is not installed (apt install haproxy)".to_owned())
    })
}

impl Cluster {
    /// A fresh database, its link key, a key and tokens, three nodes and the balancer; `extra`
    /// is added to every node's config.
    pub async fn start(extra: &str) -> Self {
        let pg = crate::postgres::server();
        let db = pg.database();
        let proxy = Cuttable::start(pg.port).await;
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, url: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, CONFIG.replace("{db}", url).replace("{extra}", extra)).unwrap();
            path
        };
        let config = write("reveille.toml", &db);
        let proxied = db.replace(&format!(":{}/", pg.port), &format!(":{}/", proxy.port));
        let last = write("proxied.toml", &proxied);
        let c = config.display().to_string();
        assert!(reveille(&["rotate-link-key", "-c", &c], &[]).status.success());
        let key = last_line(&reveille(&["key", "create", "-c", &c, "--service", "payments"], &[]));
        let token = |user: &str| {
            let scope = "read,respond,ingest";
            last_line(&reveille(
                &["token", "create", "-c", &c, "--user", user, "--scope", scope],
                &[],
            ))
        };
        let (alice, bob) = (token("alice"), token("bob"));
        let nodes: Vec<Server> = (0..NODES)
            .map(|n| {
                Server::start(&(if n == NODES - 1 { &last } else { &config }).display().to_string())
            })
            .collect();
        let node_urls: Vec<String> = nodes.iter().map(|n| n.url.clone()).collect();
        let (balancer, url) = balance(dir.path(), &node_urls).await;
        Cluster {
            dir,
            config,
            db,
            url,
            nodes: nodes.into_iter().map(Some).collect(),
            node_urls,
            key,
            alice,
            bob,
            proxy,
            _balancer: balancer,
        }
    }

    /// SIGKILL: no chance to flush or clean up.
    pub fn kill(&mut self, node: usize) {
        if let Some(mut server) = self.nodes[node].take() {
            server.kill();
        }
    }

    /// The node that holds `user`'s feed connection, by its metrics (one connection at a time).
    pub async fn node_following(&self, connections: u32) -> Option<usize> {
        for (n, url) in self.node_urls.iter().enumerate() {
            if self.nodes[n].is_none() {
                continue;
            }
            let Ok(metrics) = reqwest::get(format!("{url}/metrics")).await else { continue };
            let text = metrics.text().await.unwrap_or_default();
            if text.contains(&format!("reveille_feed_connections {connections}\n")) {
                return Some(n);
            }
        }
        None
    }
}

/// Starts haproxy in front of `nodes`; returns it and its URL, once it serves.
pub async fn balance(dir: &Path, nodes: &[String]) -> (Proc, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let servers: String = nodes
        .iter()
        .enumerate()
        .map(|(n, url)| {
            let address = url.trim_start_matches("http://");
            format!("    server n{n} {address} check inter 300ms fall 2 rise 1\n")
        })
        .collect();
    // Feeds are long-lived: the client, server and tunnel timeouts are an hour. A node that
    // refuses connections is retried on another (redispatch); health checks take it out. A feed
    // frame is small and must not wait for more data to join it (http-no-delay).
    let config = format!(
        "global\n    maxconn 8000\n\
         defaults\n    mode http\n    timeout connect 1s\n    timeout client 1h\n    \
         timeout server 1h\n    timeout tunnel 1h\n    option redispatch\n    retries 3\n    \
         option http-no-delay\n\
         frontend reveille\n    bind 127.0.0.1:{port}\n    default_backend nodes\n\
         backend nodes\n    balance roundrobin\n    option httpchk GET /healthz\n    \
         http-check expect status 200\n{servers}"
    );
    let path = dir.join("haproxy.cfg");
    std::fs::write(&path, config).unwrap();
    let child = Command::new("/usr/sbin/haproxy")
        .arg("-db")
        .arg("-f")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start haproxy");
    let url = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    let http = reqwest::Client::new();
    while !http.get(format!("{url}/healthz")).send().await.is_ok_and(|r| r.status().is_success()) {
        assert!(started.elapsed() < Duration::from_secs(20), "haproxy did not start serving");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (Proc(child), url)
}
