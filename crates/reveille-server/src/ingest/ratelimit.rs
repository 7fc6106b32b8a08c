//! A token bucket per integration key, so one runaway sender cannot flood the pager. The bucket is
//! the store's, shared by every node of a cluster; each node takes tokens from it a few at a
//! time and spends them locally, so the store is asked once in a while, not per request.

use std::collections::HashMap;
use std::sync::Mutex;

use jiff::Timestamp;
use reveille_store::Store;

#[cfg(test)]
mod tests;

pub struct RateLimiter {
    /// Changed by a configuration reload.
    per_minute: std::sync::atomic::AtomicU32,
    /// Tokens taken from the shared bucket and not spent yet, by key.
    taken: Mutex<HashMap<String, u32>>,
    /// One refill at a time: requests that find no token wait for it, rather than each taking a
    /// chunk of their own (a burst of them drained the bucket and refused the rest).
    refill: tokio::sync::Mutex<()>,
}

impl RateLimiter {
    /// Allows `per_minute` requests per key per minute, in bursts of up to `per_minute`.
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute: per_minute.max(1).into(),
            taken: Mutex::default(),
            refill: Default::default(),
        }
    }

    /// A reload's new rate.
    pub fn set_rate(&self, per_minute: u32) {
        self.per_minute.store(per_minute.max(1), std::sync::atomic::Ordering::Relaxed);
    }

    fn per_minute(&self) -> u32 {
        self.per_minute.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Tokens taken from the shared bucket at a time: a twentieth of a minute's worth.
    fn chunk(&self) -> u32 {
        (self.per_minute() / 20).max(1)
    }

    /// Spends one request of `key`'s; `Err(seconds)` says when to retry. When the store cannot
    /// answer, the request is let through: a limiter must never be why a page is lost.
    pub async fn check(&self, store: &dyn Store, key: &str, now: Timestamp) -> Result<(), u64> {
        self.check_with(key, |want, per_minute| store.take_tokens(key, want, per_minute, now)).await
    }

    /// [`Self::check`], taking tokens from the shared bucket with `take(want, per_minute)`.
    pub async fn check_with<F, Fut>(&self, key: &str, take: F) -> Result<(), u64>
    where
        F: FnOnce(u32, u32) -> Fut,
        Fut: std::future::Future<Output = reveille_store::Result<u32>>,
    {
        if self.spend(key) {
            return Ok(());
        }
        let _refilling = self.refill.lock().await;
        if self.spend(key) {
            return Ok(());
        }
        match take(self.chunk(), self.per_minute()).await {
            Ok(0) => Err((60 / u64::from(self.per_minute())).max(1)),
            Ok(granted) => {
                let mut taken = self.taken.lock().unwrap_or_else(|p| p.into_inner());
                *taken.entry(key.to_owned()).or_default() += granted - 1;
                Ok(())
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the rate bucket; letting the request through");
                Ok(())
            }
        }
    }

    fn spend(&self, key: &str) -> bool {
        let mut taken = self.taken.lock().unwrap_or_else(|p| p.into_inner());
        match taken.get_mut(key) {
            Some(n) if *n > 0 => {
                *n -= 1;
                true
            }
            _ => false,
        }
    }
}
