//! Server-side commands that work on the configuration and the database directly:
//! `serve`, `check-config`, `migrate`, `token …`, `key …`, `rotate-link-key`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use jiff::Timestamp;
use reveille_server::clock::SystemClock;
use reveille_server::config::Backend;
use reveille_server::config::Settings;
use reveille_server::http::auth::{Scope, mint_key, mint_token};
use reveille_server::{AppState, serve as serve_http};
use reveille_store::{KeyInfo, Store, TokenInfo};
use reveille_store_postgres::{Deadlines, Postgres};
use reveille_store_sqlite::Sqlite;

use crate::ConfigPath;

pub fn settings(path: &Path) -> Result<Settings> {
    Settings::load(path).map_err(|e| anyhow::anyhow!("the configuration has mistakes:\n{e}"))
}

/// The database `database.url` names, opened (and migrated).
pub fn store(settings: &Settings) -> Result<Arc<dyn Store>> {
    Ok(match backend(settings)? {
        Backend::Sqlite(path) => Arc::new(
            Sqlite::open(&path)
                .with_context(|| format!("cannot open the database {}", path.display()))?,
        ),
        Backend::Postgres(url) => Arc::new(
            Postgres::open(&url, &deadlines(settings))
                .with_context(|| format!("cannot open the database {}", redacted(&url)))?,
        ),
    })
}

/// How long PostgreSQL may keep this node waiting, from `[database]`.
fn deadlines(settings: &Settings) -> Deadlines {
    let db = &settings.database;
    Deadlines {
        lock: Duration::from_millis(db.lock_timeout_ms),
        statement: Duration::from_millis(db.statement_timeout_ms),
        idle_in_transaction: Duration::from_millis(db.idle_in_transaction_timeout_ms),
        keepalive: Duration::from_secs(db.tcp_keepalive_seconds),
        tcp_user: Duration::from_secs(db.tcp_user_timeout_seconds),
    }
}

fn backend(settings: &Settings) -> Result<Backend> {
    settings.backend().context("database.url names no database Reveille can use")
}

/// A database URL with its password (if any) left out, for messages and logs.
fn redacted(url: &str) -> String {
    match url.split_once("://").and_then(|(scheme, rest)| Some((scheme, rest.split_once('@')?))) {
        Some((scheme, (credentials, host))) => {
            let user = credentials.split(':').next().unwrap_or("");
            format!("{scheme}://{user}@{host}")
        }
        None => url.to_owned(),
    }
}

/// `reveille migrate`: the schema brought up to date, saying from which version to which.
pub fn migrate(config: &Path) -> Result<()> {
    let settings = settings(config)?;
    let (name, migrated) = match backend(&settings)? {
        Backend::Sqlite(path) => (path.display().to_string(), Sqlite::migrate(&path)),
        Backend::Postgres(url) => (redacted(&url), Postgres::migrate(&url)),
    };
    let (before, after) =
        migrated.with_context(|| format!("cannot migrate the database {name}"))?;
    if before == after {
        println!("{name}: schema version {after}, up to date");
    } else {
        println!("{name}: schema version {before} → {after}");
    }
    Ok(())
}

pub async fn serve(config: &Path) -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("REVEILLE_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let mut settings = settings(config)?;
    raise_open_files(&mut settings.server);
    if let Backend::Postgres(_) = backend(&settings)? {
        // Every node must sign acknowledge links with the same key: it is never made up here.
        let key = settings.link_key_path();
        anyhow::ensure!(
            key.is_file(),
            "{} is missing: with PostgreSQL every node signs acknowledge links with the same key; \
             make it once with `reveille rotate-link-key -c …` and copy it to every node (0600)",
            key.display()
        );
    }
    // The embedded database's first start makes the key; a file that is there must be usable.
    let key = settings.link_key_path();
    reveille_server::http::links::ensure(&settings)
        .with_context(|| format!("cannot use the link key file {}", key.display()))?;
    let store = store(&settings)?;
    let listener = tokio::net::TcpListener::bind(&settings.server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.server.listen))?;
    let address = listener.local_addr()?;
    match backend(&settings)? {
        Backend::Sqlite(path) => tracing::info!(database = %path.display(), "database open"),
        Backend::Postgres(url) => tracing::info!(database = %redacted(&url), "database open"),
    }
    let scheme = if settings.tls_files().is_some() { "https" } else { "http" };
    let state = AppState::new(store, settings, Arc::new(SystemClock));
    // Tests and scripts wait for this line.
    println!("reveille listening on {scheme}://{address}");
    serve_http(listener, state, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

/// Raises the soft open-file limit to the hard one: every device holds a connection, and the
/// usual soft limit of 1024 would refuse them long before `server.max_connections`. Keeps the
/// connection cap below what the limit allows, leaving room for the database and push clients.
fn raise_open_files(server: &mut reveille_server::config::ServerSettings) {
    const RESERVE: u64 = 256;
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => {
            let room = usize::try_from(limit.saturating_sub(RESERVE)).unwrap_or(usize::MAX).max(1);
            if room < server.max_connections {
                tracing::warn!(
                    open_files = limit,
                    max_connections = room,
                    "the open-file limit is too low for server.max_connections; serving fewer"
                );
                server.max_connections = room;
            } else {
                tracing::info!(open_files = limit, "open-file limit");
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
    }
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("cannot listen for SIGTERM");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// `reveille rotate-link-key`: a new signing key for acknowledge links, taking effect at once
/// on a running server (it reads the key file for every link).
pub fn rotate_link_key(config: &Path) -> Result<()> {
    let path = reveille_server::http::links::key_path(&settings(config)?);
    reveille_server::http::links::rotate(&path)
        .with_context(|| format!("cannot write the link key {}", path.display()))?;
    println!(
        "New acknowledge-link key in {}; links sent before now no longer work.",
        path.display()
    );
    Ok(())
}

/// A step of changing the link keys of a running cluster without refusing a link.
#[derive(Subcommand)]
pub enum LinkKeyCommand {
    /// Add a new key that every node accepts but none signs with yet.
    Stage(ConfigPath),
    /// Sign with the newest key; the older ones are still accepted.
    Promote(ConfigPath),
    /// Keep only the signing key (links signed with the others stop working).
    Retire(ConfigPath),
    /// Print the fingerprints of the keys (the signing key's first), never the keys.
    Show(ConfigPath),
}

/// `reveille link-key stage|promote|retire|show`. Each step writes the key file in place; copy
/// it to every node before the next step (a node reads its file again at once).
pub fn link_key(command: LinkKeyCommand) -> Result<()> {
    use reveille_server::http::links::{LinkKeys, load_or_create, write};
    type Step = fn(&LinkKeys) -> LinkKeys;
    let (config, step): (&ConfigPath, Option<Step>) = match &command {
        LinkKeyCommand::Stage(c) => (c, Some(LinkKeys::staged)),
        LinkKeyCommand::Promote(c) => (c, Some(LinkKeys::promoted)),
        LinkKeyCommand::Retire(c) => (c, Some(LinkKeys::retired)),
        LinkKeyCommand::Show(c) => (c, None),
    };
    let path = reveille_server::http::links::key_path(&settings(&config.config)?);
    let mut keys = load_or_create(&path)
        .with_context(|| format!("cannot read the link key {}", path.display()))?;
    if let Some(step) = step {
        if matches!(command, LinkKeyCommand::Promote(_)) && keys.fingerprints().len() < 2 {
            bail!("there is no staged key to promote: run `reveille link-key stage` first");
        }
        keys = step(&keys);
        write(&path, &keys).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let prints = keys.fingerprints();
    println!("{}: signs with {}", path.display(), prints[0]);
    for other in &prints[1..] {
        println!("  also accepts {other}");
    }
    if step.is_some() {
        println!("Copy this file to every node (mode 0600) before the next step.");
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct WebLinkArgs {
    #[command(flatten)]
    config: crate::ConfigPath,
    /// Whom the link signs in.
    #[arg(long)]
    user: String,
    /// Minutes the link stays valid (it works once).
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u32).range(1..=1440))]
    minutes: u32,
}

/// `reveille web-link --user alice`: a sign-in link for the web console, signed with the link
/// key (so it works on every node that shares it), valid for minutes and once.
pub fn web_link(args: WebLinkArgs) -> Result<()> {
    let settings = settings(&args.config.config)?;
    if settings.users.iter().all(|u| u.name != args.user) {
        anyhow::bail!("{:?} is not a user in {}", args.user, args.config.config.display());
    }
    let path = reveille_server::http::links::key_path(&settings);
    let key = reveille_server::http::links::load_or_create(&path)
        .with_context(|| format!("cannot read the link key {}", path.display()))?;
    let expires = jiff::Timestamp::now() + jiff::SignedDuration::from_mins(i64::from(args.minutes));
    let code = reveille_server::http::session::signin_code(key.signing(), &args.user, expires);
    println!("{}", reveille_server::http::session::signin_url(&settings.server.base_url, &code));
    Ok(())
}

pub fn check_config(config: &Path) -> Result<()> {
    let settings = settings(config)?;
    println!(
        "{}: OK ({} users, {} services, database {})",
        config.display(),
        settings.users.len(),
        settings.services.len(),
        match backend(&settings)? {
            Backend::Sqlite(path) => path.display().to_string(),
            Backend::Postgres(url) => redacted(&url),
        }
    );
    Ok(())
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Create a token for a user; it is printed once, alone on the last line.
    Create {
        #[command(flatten)]
        config: ConfigPath,
        #[arg(long)]
        user: String,
        /// Comma-separated: read, respond, ingest.
        #[arg(long, value_delimiter = ',', default_value = "read,respond")]
        scope: Vec<String>,
    },
    /// List tokens (prefix, user, scopes, last used).
    List {
        #[command(flatten)]
        config: ConfigPath,
    },
    /// Revoke the token whose prefix starts with PREFIX.
    Revoke {
        #[command(flatten)]
        config: ConfigPath,
        prefix: String,
    },
}

#[derive(Subcommand)]
pub enum KeyCommand {
    /// Create an integration key for a service; it is printed once, alone on the last line.
    Create {
        #[command(flatten)]
        config: ConfigPath,
        #[arg(long)]
        service: String,
    },
    /// List integration keys.
    List {
        #[command(flatten)]
        config: ConfigPath,
    },
    /// Revoke the key whose prefix starts with PREFIX.
    Revoke {
        #[command(flatten)]
        config: ConfigPath,
        prefix: String,
    },
}

pub async fn token(command: TokenCommand) -> Result<()> {
    match command {
        TokenCommand::Create { config, user, scope } => {
            let settings = settings(&config.config)?;
            if settings.users.iter().all(|u| u.name != user) {
                bail!("no user {user:?} in {}", config.config.display());
            }
            let mut scopes = Vec::new();
            for name in &scope {
                // `web` is a browser session's, made only by signing in.
                let parsed =
                    Scope::parse(name.trim()).filter(|s| *s != Scope::Web).with_context(|| {
                        format!("unknown scope {name:?}: use read, respond, ingest")
                    })?;
                scopes.push(parsed.as_str().to_owned());
            }
            let minted = mint_token();
            let info = TokenInfo {
                prefix: minted.prefix.clone(),
                user: user.clone(),
                scopes: scopes.clone(),
                created_at: Timestamp::now(),
                last_used_at: None,
                revoked: false,
            };
            store(&settings)?.add_token(&minted.hash, info).await?;
            println!(
                "Token {} for {user} (scopes: {}). It is shown only this once:",
                minted.prefix,
                scopes.join(", ")
            );
            println!("{}", minted.secret);
        }
        TokenCommand::List { config } => {
            let tokens = store(&settings(&config.config)?)?.tokens().await?;
            println!("{:<12} {:<16} {:<22} {:<26} STATUS", "PREFIX", "USER", "SCOPES", "LAST USED");
            for t in tokens {
                let used = t.last_used_at.map_or("never".into(), |at| at.to_string());
                let status = if t.revoked { "revoked" } else { "active" };
                println!(
                    "{:<12} {:<16} {:<22} {:<26} {status}",
                    t.prefix,
                    t.user,
                    t.scopes.join(","),
                    used
                );
            }
        }
        TokenCommand::Revoke { config, prefix } => {
            let revoked = store(&settings(&config.config)?)?.revoke_token(&prefix).await?;
            println!("Revoked token {} of {}", revoked.prefix, revoked.user);
        }
    }
    Ok(())
}

pub async fn key(command: KeyCommand) -> Result<()> {
    match command {
        KeyCommand::Create { config, service } => {
            let settings = settings(&config.config)?;
            if settings.service(&service).is_none() {
                bail!("no service {service:?} in {}", config.config.display());
            }
            let minted = mint_key();
            let info = KeyInfo {
                prefix: minted.prefix.clone(),
                service: service.clone(),
                created_at: Timestamp::now(),
                revoked: false,
            };
            store(&settings)?.add_key(&minted.hash, info).await?;
            println!(
                "Integration key {} for service {service}. It is shown only this once:",
                minted.prefix
            );
            println!("{}", minted.secret);
        }
        KeyCommand::List { config } => {
            let keys = store(&settings(&config.config)?)?.keys().await?;
            println!("{:<8} {:<20} {:<26} STATUS", "PREFIX", "SERVICE", "CREATED");
            for k in keys {
                let status = if k.revoked { "revoked" } else { "active" };
                println!(
                    "{:<8} {:<20} {:<26} {status}",
                    k.prefix,
                    k.service,
                    k.created_at.to_string()
                );
            }
        }
        KeyCommand::Revoke { config, prefix } => {
            let revoked = store(&settings(&config.config)?)?.revoke_key(&prefix).await?;
            println!("Revoked key {} of service {}", revoked.prefix, revoked.service);
        }
    }
    Ok(())
}
