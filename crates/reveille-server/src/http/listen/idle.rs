//! An idle limit for HTTP/2, which has none of its own: a connection with no request and no
//! response body in flight for the idle timeout is shut down gracefully, as an idle HTTP/1
//! connection is by its header timer. A feed stream is a response in flight: never idle.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::response::Response;
use futures_util::StreamExt;

/// What a connection is doing: responses in flight, and when the last one ended.
#[derive(Clone)]
pub struct Activity(Arc<(AtomicUsize, Mutex<Instant>)>);

/// One request and its response body, in flight until dropped.
pub struct Busy(Activity);

impl Drop for Busy {
    fn drop(&mut self) {
        let (busy, last) = &*self.0.0;
        *last.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        busy.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Default for Activity {
    fn default() -> Self {
        Self(Arc::new((AtomicUsize::new(0), Mutex::new(Instant::now()))))
    }
}

impl Activity {
    /// A request has started.
    pub fn start(&self) -> Busy {
        self.0.0.fetch_add(1, Ordering::Relaxed);
        Busy(self.clone())
    }

    /// The response keeps the connection busy until its body is done or dropped.
    pub fn track(busy: Busy, response: Response) -> Response {
        response.map(|body| {
            Body::from_stream(body.into_data_stream().map(move |chunk| {
                let _in_flight = &busy;
                chunk
            }))
        })
    }

    /// Returns once nothing has been in flight for `limit`.
    pub async fn idle_for(&self, limit: Duration) {
        let step = (limit / 4).max(Duration::from_millis(100));
        loop {
            tokio::time::sleep(step).await;
            let (busy, last) = &*self.0;
            let since = last.lock().unwrap_or_else(|p| p.into_inner()).elapsed();
            if busy.load(Ordering::Relaxed) == 0 && since >= limit {
                return;
            }
        }
    }
}
