//! A real `reveille serve` process for a benchmark: a generated configuration with `users`
//! users, one service per user that pages only that user, an integration key per service, a
//! token per user and a phone topic per user, all written to the database before the server starts.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use jiff::Timestamp;
use reveille_server::auth::{mint_key, mint_token};
use reveille_server::ntfy::new_topic;
use reveille_store::{KeyInfo, Store, TokenInfo};
use reveille_store_sqlite::Sqlite;
use reveille_tests::Server;

pub struct Site {
    dir: tempfile::TempDir,
    /// Integration key of service `s{i}`, which pages user `u{i}`.
    pub keys: Vec<String>,
    /// Token of user `u{i}` (read, respond).
    pub tokens: Vec<String>,
    /// ntfy topic of user `u{i}`'s phone.
    pub topics: Vec<String>,
    pub server: Server,
}

impl Site {
    /// Builds the site in a temporary directory and starts the server on it.
    pub async fn start(users: usize) -> Result<Site> {
        let dir = tempfile::Builder::new().prefix("reveille-bench-").tempdir()?;
        let config = dir.path().join("reveille.toml");
        std::fs::write(&config, config_text(users))?;
        let store = Sqlite::open(dir.path().join("reveille.db")).context("open the database")?;
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
        let server = Server::start(&config.display().to_string());
        Ok(Site { dir, keys, tokens, topics, server })
    }

    pub fn url(&self) -> &str {
        &self.server.url
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

    /// `SELECT count(*)` of a query's rows, for checking what the server stored.
    pub fn count(&self, sql: &str) -> Result<u64> {
        Ok(self.database()?.query_row(sql, [], |row| row.get(0))?)
    }
}

/// Deaf detection is off: benchmark subscribers come and go, and no ladder should move on.
fn config_text(users: usize) -> String {
    let mut text = String::from(
        r#"[server]
listen = "127.0.0.1:0"
base_url = "http://127.0.0.1"
heartbeat_seconds = 15

[database]
url = "sqlite://reveille.db"

[ingest]
rate_per_minute = 100000000

[escalation]
deaf_after_seconds = 0
"#,
    );
    for i in 0..users {
        let _ = write!(text, "\n[[users]]\nname = \"u{i}\"\n");
    }
    for i in 0..users {
        let _ = write!(text, "\n[[services]]\nname = \"s{i}\"\npage = [\"u{i}\"]\n");
    }
    text
}
