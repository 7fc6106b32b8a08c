//! A real cluster for tests and benchmarks: three `reveille serve` processes on one PostgreSQL
//! database (the test server of [`crate::postgres`]), behind Debian's haproxy on loopback, each
//! an ordinary process in a temporary directory, all stopped when the cluster is dropped.
//!
//! Every node reaches the database through a [`Cuttable`] proxy of its own, so a test can cut
//! a node off its database (or freeze it there) and give it back; and every node listens on a
//! port of its own for good, so one killed can be started again where the balancer looks for it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::proxy::Cuttable;
use crate::{Server, last_line, reveille};

/// Nodes in a test cluster.
pub const NODES: usize = 3;

/// The config every node shares; `{db}` is the database URL, `{extra}` more settings.
const CONFIG: &str = r#"
[server]
listen = "{listen}"
base_url = "http://127.0.0.1"
heartbeat_seconds = 1

[database]
url = "{db}"
link_key_file = "{key}"

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
    /// Between each node and the database.
    pub proxies: Vec<Cuttable>,
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
        let mut proxies = Vec::new();
        for _ in 0..NODES {
            proxies.push(Cuttable::start(pg.port).await);
        }
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, url: &str, key: &str, listen: &str| {
            let path = dir.path().join(name);
            let text = CONFIG
                .replace("{db}", url)
                .replace("{key}", key)
                .replace("{listen}", listen)
                .replace("{extra}", extra);
            std::fs::write(&path, text).unwrap();
            path
        };
        let config = write("reveille.toml", &db, "reveille.link-key", "127.0.0.1:0");
        let c = config.display().to_string();
        assert!(reveille(&["rotate-link-key", "-c", &c], &[]).status.success());
        // Each node its own copy of the key file, as on separate machines.
        let configs: Vec<PathBuf> = proxies
            .iter()
            .enumerate()
            .map(|(n, proxy)| {
                let key = format!("node{n}.link-key");
                std::fs::copy(dir.path().join("reveille.link-key"), dir.path().join(&key)).unwrap();
                let proxied = db.replace(&format!(":{}/", pg.port), &format!(":{}/", proxy.port));
                let port = std::net::TcpListener::bind("127.0.0.1:0")
                    .and_then(|l| l.local_addr())
                    .unwrap()
                    .port();
                write(&format!("node{n}.toml"), &proxied, &key, &format!("127.0.0.1:{port}"))
            })
            .collect();
        let key = last_line(&reveille(&["key", "create", "-c", &c, "--service", "payments"], &[]));
        let token = |user: &str| {
            let scope = "read,respond,ingest";
            last_line(&reveille(
                &["token", "create", "-c", &c, "--user", user, "--scope", scope],
                &[],
            ))
        };
        let (alice, bob) = (token("alice"), token("bob"));
        let nodes: Vec<Server> =
            configs.iter().map(|c| Server::start(&c.display().to_string())).collect();
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
            proxies,
            _balancer: balancer,
        }
    }

    /// Node `n`'s config file.
    pub fn node_config(&self, n: usize) -> PathBuf {
        self.dir.path().join(format!("node{n}.toml"))
    }

    /// Node `n`'s link key file.
    pub fn key_file(&self, n: usize) -> PathBuf {
        self.dir.path().join(format!("node{n}.link-key"))
    }

    /// SIGKILL: no chance to flush or clean up.
    pub fn kill(&mut self, node: usize) {
        if let Some(mut server) = self.nodes[node].take() {
            server.kill();
        }
    }

    /// Starts node `n` again (after [`Self::kill`]), on its own port.
    pub fn restart(&mut self, n: usize) {
        let server = Server::start(&self.node_config(n).display().to_string());
        assert_eq!(server.url, self.node_urls[n], "the node came back on its own port");
        self.nodes[n] = Some(server);
    }

    /// SIGSTOP (`true`) or SIGCONT: the node freezes as a paused VM does, connections open.
    pub fn freeze(&self, n: usize, frozen: bool) {
        if let Some(server) = &self.nodes[n] {
            let signal = if frozen { "-STOP" } else { "-CONT" };
            let pid = server.child.id().to_string();
            let sent = Command::new("kill").args([signal, &pid]).status();
            assert!(sent.is_ok_and(|s| s.success()), "kill {signal} {pid}");
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
