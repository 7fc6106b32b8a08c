//! Real `reveille serve` processes for a benchmark: a generated configuration with `users`
//! users, one service per user that pages only that user, an integration key per service, a
//! token per user and a phone topic per user, all written to the database before the servers
//! start. On SQLite one server; on PostgreSQL (the test server of `reveille-tests`) `nodes`
//! servers, behind haproxy when there are several.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use jiff::Timestamp;
use reveille_server::deliver::ntfy::new_topic;
use reveille_server::http::auth::{mint_key, mint_token};
use reveille_store::{KeyInfo, Store, TokenInfo};
use reveille_store_postgres::Postgres;
use reveille_store_sqlite::Sqlite;
use reveille_tests::Server;

/// Which database a site runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    /// PostgreSQL with this many nodes.
    Postgres(usize),
}

pub struct Site {
    dir: tempfile::TempDir,
    /// Integration key of service `s{i}`, which pages user `u{i}`.
    pub keys: Vec<String>,
    /// Token of user `u{i}` (read, respond).
    pub tokens: Vec<String>,
    /// ntfy topic of user `u{i}`'s phone.
    pub topics: Vec<String>,
    pub server: Server,
    /// With several nodes: the others, and the balancer in front of them all.
    pub others: Vec<Option<Server>>,
    balancer: Option<(reveille_tests::cluster::Proc, String)>,
    /// The PostgreSQL database, if the site runs on one.
    pub postgres: Option<String>,
}

impl Site {
    /// Builds the site in a temporary directory and starts the server on it.
    pub async fn start(users: usize) -> Result<Site> {
        Self::start_on(users, Db::Sqlite).await
    }

    /// Builds the site on `db` and starts its servers.
    pub async fn start_on(users: usize, db: Db) -> Result<Site> {
        Self::start_with(users, db, "").await
    }

    /// Builds the site on `db` with `extra` appended to its configuration, and starts it.
    pub async fn start_with(users: usize, db: Db, extra: &str) -> Result<Site> {
        Self::start_people(users, db, extra, |_| String::new()).await
    }

    /// As [`Site::start_with`], with `person(i)` written into user `u{i}`'s table.
    pub async fn start_people(
        users: usize,
        db: Db,
        extra: &str,
        person: impl Fn(usize) -> String,
    ) -> Result<Site> {
        let dir = tempfile::Builder::new().prefix("reveille-bench-").tempdir()?;
        let config = dir.path().join("reveille.toml");
        let (url, nodes) = match db {
            Db::Sqlite => ("sqlite://reveille.db".to_owned(), 1),
            Db::Postgres(nodes) => (reveille_tests::postgres::server().database(), nodes),
        };
        std::fs::write(&config, config_text(users, &url, &person) + extra)?;
        let store: Box<dyn Store> = match db {
            Db::Sqlite => {
                Box::new(Sqlite::open(dir.path().join("reveille.db")).context("open the database")?)
            }
            Db::Postgres(_) => {
                reveille_server::http::links::rotate(&dir.path().join("reveille.link-key"))?;
                Box::new(Postgres::open(&url, &Default::default()).context("open the database")?)
            }
        };
        let (mut keys, mut tokens, mut topics) = (Vec::new(), Vec::new(), Vec::new());
        let now = Timestamp::now();
        for i in 0..users {
            let key = mint_key();
            let info = KeyInfo {
                prefix: key.prefix,
                service: format!("s{i}"),
                created_at: now,
                revoked: false,
            };
            store.add_key(&key.hash, info).await?;
            keys.push(key.secret);
            let token = mint_token();
            let info = TokenInfo {
                prefix: token.prefix,
                user: format!("u{i}"),
                scopes: vec!["read".into(), "respond".into()],
                created_at: now,
                last_used_at: None,
                revoked: false,
            };
            store.add_token(&token.hash, info).await?;
            tokens.push(token.secret);
            topics.push(store.phone_topic(&format!("u{i}"), &new_topic(), now).await?);
        }
        drop(store);
        let config = config.display().to_string();
        let mut servers: Vec<Server> = (0..nodes).map(|_| Server::start(&config)).collect();
        let server = servers.remove(0);
        let balancer = if nodes > 1 {
            let urls: Vec<String> =
                std::iter::once(&server).chain(&servers).map(|s| s.url.clone()).collect();
            Some(reveille_tests::cluster::balance(dir.path(), &urls).await)
        } else {
            None
        };
        let postgres = matches!(db, Db::Postgres(_)).then_some(url);
        let others = servers.into_iter().map(Some).collect();
        Ok(Site { dir, keys, tokens, topics, server, others, balancer, postgres })
    }

    /// Where devices and senders go: the balancer, or the one server.
    pub fn url(&self) -> &str {
        self.balancer.as_ref().map_or(&self.server.url, |(_, url)| url)
    }

    pub fn pid(&self) -> u32 {
        self.server.child.id()
    }

    /// The directory holding the server's database: the disk every durable number is about.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A read-only look at the server's database.
    pub fn database(&self) -> Result<rusqlite::Connection> {
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY;
        Ok(rusqlite::Connection::open_with_flags(self.dir.path().join("reveille.db"), flags)?)
    }

    /// `SELECT count(*)` of a query's rows, for checking what the servers stored.
    pub fn count(&self, sql: &str) -> Result<u64> {
        match &self.postgres {
            Some(url) => {
                let out = reveille_tests::postgres::server().psql(url, sql);
                Ok(out.trim().parse()?)
            }
            None => Ok(self.database()?.query_row(sql, [], |row| row.get(0))?),
        }
    }
}

/// Deaf detection is off: benchmark subscribers come and go, and no ladder should move on.
fn config_text(users: usize, database: &str, person: &dyn Fn(usize) -> String) -> String {
    let mut text = format!(
        r#"[server]
listen = "127.0.0.1:0"
base_url = "http://127.0.0.1"
heartbeat_seconds = 15
max_streams_per_user = 10000
# Every subscriber of the benchmark connects from this one address.
max_connections = 20000
max_connections_per_ip = 0

[database]
url = "{database}"
link_key_file = "reveille.link-key"

[ingest]
rate_per_minute = 100000000

[escalation]
deaf_after_seconds = 0
"#
    );
    for i in 0..users {
        let _ = write!(
            text,
            "\n[[users]]\nname = \"u{i}\"\nemail = \"u{i}@bench.test\"\n{}",
            person(i)
        );
    }
    for i in 0..users {
        let _ = write!(text, "\n[[services]]\nname = \"s{i}\"\npage = [\"u{i}\"]\n");
    }
    text
}
