//! The limiter against a shared bucket that answers after a wait, as a database does.

use std::sync::Mutex;

use jiff::Timestamp;

use super::RateLimiter;

/// A shared bucket of 60 a minute that yields before it answers.
struct Bucket(Mutex<(f64, Timestamp)>);

impl Bucket {
    async fn take(
        &self,
        want: u32,
        per_minute: u32,
        now: Timestamp,
    ) -> reveille_store::Result<u32> {
        tokio::task::yield_now().await;
        let mut bucket = self.0.lock().unwrap();
        let (left, granted) =
            reveille_store::take_tokens(bucket.0, bucket.1, now, f64::from(per_minute), want);
        *bucket = (left, now);
        Ok(granted)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_within_the_rate_is_taken_whole_even_when_it_all_arrives_at_once() {
    let now = Timestamp::from_second(1_800_000_000).unwrap();
    let limiter = RateLimiter::new(60);
    let bucket = Bucket(Mutex::new((60.0, now)));
    let checks =
        (0..60).map(|_| limiter.check_with("key", |want, per| bucket.take(want, per, now)));
    let answers = futures_util::future::join_all(checks).await;
    assert!(answers.iter().all(Result::is_ok), "a burst of 60 of 60 a minute: {answers:?}");
    let over = limiter.check_with("key", |want, per| bucket.take(want, per, now)).await;
    assert_eq!(over, Err(1), "the 61st waits a second");
}
