//! What every request handler and job may use ([`AppState`]): the store, the configuration as
//! it is now (swapped whole on a reload), the clock, the metrics, and the little state this node
//! keeps in memory (caches, presence, the directory built from the configuration and the stored
//! overrides).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use reveille_protocol::api::Reload;
use reveille_store::Store;
use tokio::sync::{Notify, watch};

use crate::clock::Clock;
use crate::config::Settings;
use crate::error::ApiResult;
use crate::http::{auth, health, links, live};
use crate::ingest::ratelimit::RateLimiter;
use crate::metrics::Metrics;
use crate::oncall::directory::Directory;
use crate::oncall::presence::Presence;
use crate::oncall::readiness;

/// Everything a request handler may use; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
    pub limiter: Arc<RateLimiter>,
    pub presence: Arc<Presence>,
    /// Integration keys found live in the last second.
    pub keys: Arc<auth::KeyCache>,
    /// Tokens found live in the last second, by digest (their user as the value).
    pub live_tokens: Arc<auth::KeyCache>,
    /// Poked when something may need the worker now (a snooze, a silent receipt).
    pub wake: Arc<Notify>,
    /// Set when the server is shutting down, so long-lived feed streams end.
    pub closing: Arc<watch::Sender<bool>>,
    /// Counts configuration reloads: the jobs start over with the new configuration.
    pub reloads: Arc<watch::Sender<u64>>,
    /// The ack-link signing key as last read from its file.
    pub link_key: Arc<links::CachedKey>,
    /// The last health check, shared by every caller.
    pub health: Arc<health::Checks>,
    /// This node's name in the cluster.
    pub node: Arc<str>,
    /// When this node started.
    pub started: jiff::Timestamp,
    /// What every node last reported (with SQLite: this one).
    pub cluster: Arc<RwLock<reveille_store::ClusterView>>,
    /// Why this node disagrees with the rest of the cluster, if it does (its health fails).
    pub cluster_problem: Arc<RwLock<Option<String>>>,
    /// The readiness board as last computed, and when.
    pub readiness: Arc<tokio::sync::Mutex<Option<readiness::Shared>>>,
    /// Console streams open per person on this node.
    pub console_streams: Arc<live::Streams>,
    /// This node's SIP line, once open.
    pub line: Arc<crate::deliver::voice::LineSlot>,
    settings: Arc<RwLock<Arc<Settings>>>,
    last_reload: Arc<RwLock<Option<Reload>>>,
    directory: Arc<RwLock<Arc<Directory>>>,
    /// The overrides version the directory was built from, and when it was built.
    directory_source: Arc<tokio::sync::Mutex<Option<(String, Instant)>>>,
    pub(crate) touched: Arc<std::sync::Mutex<HashMap<String, jiff::Timestamp>>>,
}

/// Where the version of the stored overrides is kept: every node rebuilds its schedules when it
/// changes, instead of reading every override every second.
const OVERRIDES_VERSION: &str = "overrides_version";
/// The longest a node goes without reading the overrides again, whatever the version says.
const OVERRIDES_PATIENCE: Duration = Duration::from_secs(60);

impl AppState {
    pub fn new(store: Arc<dyn Store>, settings: Settings, clock: Arc<dyn Clock>) -> Self {
        let limiter = RateLimiter::new(settings.ingest.rate_per_minute);
        let directory = Directory::build(&settings, &[]);
        let started = clock.now();
        Self {
            store,
            presence: Arc::new(Presence::new(clock.clone())),
            keys: Arc::default(),
            live_tokens: Arc::default(),
            settings: Arc::new(RwLock::new(Arc::new(settings))),
            clock,
            metrics: Arc::new(Metrics::default()),
            limiter: Arc::new(limiter),
            wake: Arc::new(Notify::new()),
            closing: Arc::new(watch::channel(false).0),
            reloads: Arc::new(watch::channel(0).0),
            health: Arc::default(),
            node: crate::jobs::cluster::node_name().into(),
            started,
            cluster: Arc::default(),
            cluster_problem: Arc::default(),
            link_key: Arc::default(),
            readiness: Arc::default(),
            console_streams: Arc::default(),
            line: Arc::default(),
            last_reload: Arc::default(),
            directory: Arc::new(RwLock::new(Arc::new(directory))),
            directory_source: Arc::default(),
            touched: Arc::default(),
        }
    }

    /// The configuration as it is now.
    pub fn settings(&self) -> Arc<Settings> {
        self.settings.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Puts a new configuration in place (a reload): the schedules are rebuilt at once and the
    /// jobs start over with it.
    pub async fn replace_settings(&self, fresh: Settings) {
        self.limiter.set_rate(fresh.ingest.rate_per_minute);
        *self.settings.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(fresh);
        *self.directory_source.lock().await = None;
        if let Err(e) = self.refresh().await {
            tracing::error!(error = e.message, "cannot read the overrides; the worker will retry");
        }
        self.reloads.send_modify(|n| *n += 1);
    }

    /// How the last reload went, if there was one.
    pub fn last_reload(&self) -> Option<Reload> {
        self.last_reload.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(crate) fn record_reload(&self, outcome: Reload) {
        *self.last_reload.write().unwrap_or_else(|p| p.into_inner()) = Some(outcome);
    }

    /// Services and schedules as they are now, with the stored overrides.
    pub fn directory(&self) -> Arc<Directory> {
        self.directory.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Rebuilds the directory from the configuration and the overrides in the store, when the
    /// overrides changed (on any node) or a minute has passed.
    pub async fn refresh(&self) -> ApiResult<()> {
        let version = self.store.meta(OVERRIDES_VERSION).await?.unwrap_or_default();
        let mut source = self.directory_source.lock().await;
        let current = source
            .as_ref()
            .is_some_and(|(seen, at)| *seen == version && at.elapsed() < OVERRIDES_PATIENCE);
        if current {
            return Ok(());
        }
        let overrides = self.store.overrides().await?;
        let fresh = Arc::new(Directory::build(&self.settings(), &overrides));
        *self.directory.write().unwrap_or_else(|p| p.into_inner()) = fresh;
        *source = Some((version, Instant::now()));
        Ok(())
    }

    /// The overrides were changed here: every node rebuilds its schedules, this one at once.
    pub async fn overrides_changed(&self) -> ApiResult<()> {
        let version = auth::random::<8>().iter().map(|b| format!("{b:02x}")).collect::<String>();
        self.store.set_meta(OVERRIDES_VERSION, &version).await?;
        self.refresh().await
    }
}
