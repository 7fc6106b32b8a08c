//! A throwaway PostgreSQL server for tests: Debian's PostgreSQL binaries run as an ordinary
//! process (`initdb` into a temporary directory, `postgres` on a free loopback port), never a
//! system service. One server per test process, started on first use and stopped with the
//! process (the kernel signals it when the process ends); every caller gets a database of its own.
//!
//! As root, the server runs as the `postgres` user (PostgreSQL refuses to run as root).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A running test server.
pub struct Server {
    pub port: u16,
    bin: PathBuf,
    databases: AtomicUsize,
    /// Kept so the directory outlives every test of the process.
    dir: tempfile::TempDir,
}

/// Where Debian keeps a version's server binaries.
fn bin_dir() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("postgres").is_file() && bin.join("initdb").is_file())
        .collect();
    found.sort();
    found.pop()
}

/// Why PostgreSQL tests cannot run here, if they cannot.
pub fn missing() -> Option<String> {
    match bin_dir() {
        Some(_) => None,
        None => Some(
            "PostgreSQL's server binaries are not installed (apt install postgresql-15)".into(),
        ),
    }
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// `program`, run as the `postgres` user when this process is root, and signalled to stop when
/// the thread that starts it ends, if `tied`. (One `setpriv` does both: the death signal is
/// cleared by a change of user, so it must be set after it.)
fn as_server_user(program: &Path, tied: bool) -> Command {
    let mut command = Command::new("setpriv");
    if is_root() {
        command.args(["--reuid=postgres", "--regid=postgres", "--init-groups"]);
    }
    if tied {
        command.arg("--pdeathsig=INT");
    }
    command.arg("--").arg(program);
    command
}

/// The process's server, started on first use.
pub fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(start)
}

fn start() -> Server {
    let bin = bin_dir().expect("PostgreSQL's server binaries (apt install postgresql-15)");
    // In /tmp itself: the server's user must reach its directory, and a private TMPDIR (the
    // desktop session's) is closed to it.
    let dir = tempfile::Builder::new().prefix("reveille-pg-").tempdir_in("/tmp").unwrap();
    if is_root() {
        let owner = Command::new("id").args(["-u", "postgres"]).output().unwrap();
        let uid: u32 = String::from_utf8_lossy(&owner.stdout).trim().parse().unwrap();
        std::os::unix::fs::chown(dir.path(), Some(uid), None).unwrap();
    }
    let data = dir.path().join("data");
    let initdb = as_server_user(&bin.join("initdb"), false)
        .arg("-D")
        .arg(&data)
        .args(["--auth=trust", "--username=reveille", "--encoding=UTF8", "--no-instructions"])
        .stdout(Stdio::null())
        .output()
        .unwrap();
    assert!(initdb.status.success(), "initdb: {}", String::from_utf8_lossy(&initdb.stderr));
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let server = Server { port, bin, databases: AtomicUsize::new(0), dir };
    server.run();
    server
}

impl Server {
    /// Starts the server on its data directory and waits until it takes connections.
    fn run(&self) {
        let (bin, dir, port) = (&self.bin, self.dir.path(), self.port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("postgres.log"))
            .unwrap();
        // Started by a thread that lives as long as the process: no server outlives its tests.
        let mut server = as_server_user(&bin.join("postgres"), true);
        server
            .arg("-D")
            .arg(dir.join("data"))
            .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"])
            .arg("-c")
            .arg(format!("unix_socket_directories={}", dir.display()))
            .args(["-c", "max_connections=300", "-c", "fsync=on"])
            .stdout(Stdio::null())
            .stderr(log);
        let (started, spawned) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let child = server.spawn();
            let _ = started.send(child.map(|_| ()));
            loop {
                std::thread::park();
            }
        });
        spawned.recv().unwrap().expect("start postgres");
        let ready = Instant::now();
        while !self.ready() {
            let log = std::fs::read_to_string(dir.join("postgres.log")).unwrap_or_default();
            assert!(ready.elapsed() < Duration::from_secs(30), "postgres did not start:\n{log}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn ready(&self) -> bool {
        Command::new(self.bin.join("pg_isready"))
            .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string()])
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Stops the server (a fast shutdown: every session is ended) and starts it again on the
    /// same port and data, as an operator's restart or a failover would.
    pub fn restart(&self) {
        let pid_file = self.dir.path().join("data/postmaster.pid");
        let pid = std::fs::read_to_string(&pid_file).unwrap();
        let pid = pid.lines().next().unwrap().trim().to_owned();
        let stopped = Command::new("kill").args(["-INT", &pid]).status();
        assert!(stopped.is_ok_and(|s| s.success()), "kill -INT {pid}");
        let since = Instant::now();
        while pid_file.exists() {
            assert!(since.elapsed() < Duration::from_secs(30), "postgres did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
        self.run();
    }

    /// Ends every session on the database at `url` but the one asking (as an administrator
    /// clearing connections does).
    pub fn terminate_backends(&self, url: &str) {
        self.psql(
            url,
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        );
    }

    /// A new, empty database; its URL.
    pub fn database(&self) -> String {
        let name = format!("reveille_{}", self.databases.fetch_add(1, Ordering::SeqCst));
        let created = Command::new(self.bin.join("createdb"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "reveille", &name])
            .output()
            .unwrap();
        assert!(created.status.success(), "createdb: {}", String::from_utf8_lossy(&created.stderr));
        format!("postgres://reveille@127.0.0.1:{}/{name}", self.port)
    }

    /// Runs SQL on a database with `psql` (for tests that break things on purpose).
    pub fn psql(&self, url: &str, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args([url, "-v", "ON_ERROR_STOP=1", "-qAtc", sql])
            .output()
            .unwrap();
        assert!(out.status.success(), "psql: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}
