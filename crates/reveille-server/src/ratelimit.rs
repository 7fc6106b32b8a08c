//! A token bucket per integration key, so one runaway sender cannot flood the pager.

use std::collections::HashMap;
use std::sync::Mutex;

use jiff::Timestamp;

pub struct RateLimiter {
    per_minute: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

struct Bucket {
    tokens: f64,
    at: Timestamp,
}

impl RateLimiter {
    /// Allows `per_minute` requests per key per minute, in bursts of up to `per_minute`.
    pub fn new(per_minute: u32) -> Self {
        Self { per_minute: f64::from(per_minute.max(1)), buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes one request from `key`'s bucket; `Err(seconds)` says when to retry.
    pub fn check(&self, key: &str, now: Timestamp) -> Result<(), u64> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let bucket =
            buckets.entry(key.to_owned()).or_insert(Bucket { tokens: self.per_minute, at: now });
        let elapsed = now.duration_since(bucket.at).as_secs_f64().max(0.0);
        bucket.tokens = (bucket.tokens + elapsed * self.per_minute / 60.0).min(self.per_minute);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - bucket.tokens) * 60.0 / self.per_minute;
            Err(wait.ceil().max(1.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use jiff::SignedDuration;

    use super::*;

    #[test]
    fn a_burst_is_allowed_then_refused_until_tokens_refill() {
        let limiter = RateLimiter::new(60);
        let t0 = Timestamp::from_second(1_800_000_000).unwrap();
        for _ in 0..60 {
            assert_eq!(limiter.check("k", t0), Ok(()));
        }
        assert_eq!(limiter.check("k", t0), Err(1));
        assert_eq!(limiter.check("other", t0), Ok(()), "keys have their own buckets");
        let t1 = t0 + SignedDuration::from_secs(1);
        assert_eq!(limiter.check("k", t1), Ok(()));
        assert_eq!(limiter.check("k", t1), Err(1));
    }
}
