//! Fetching a runbook is bounded: a server that sends without end, or never answers, cannot hold
//! the alarm window or fill the laptop's memory.

use std::time::Duration;

use reveille_client::runbook::{FetchError, MAX_BYTES, fetch};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A server that answers every request with `head` and then `body` bytes of `x`, forever when
/// `body` is None (or nothing at all when `head` is empty).
async fn server(head: &'static str, body: Option<usize>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/api/v1/runbooks/payments", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).await;
                if head.is_empty() {
                    // Holds the connection and says nothing.
                    let _ = socket.read(&mut request).await;
                    return;
                }
                let _ = socket.write_all(head.as_bytes()).await;
                let chunk = vec![b'x'; 64 * 1024];
                let mut sent = 0;
                while body.is_none_or(|n| sent < n) {
                    if socket.write_all(&chunk).await.is_err() {
                        return;
                    }
                    sent += chunk.len();
                }
            });
        }
    });
    url
}

#[tokio::test]
async fn a_runbook_that_never_ends_is_cut_at_the_cap() {
    let url = server("HTTP/1.1 200 OK\r\nContent-Type: text/markdown\r\n\r\n", None).await;
    let http = reqwest::Client::new();
    let fetched = fetch(&http, &url, "token", Duration::from_secs(30)).await;
    assert!(matches!(fetched, Err(FetchError::TooLarge)), "{fetched:?}");
    let declared = server("HTTP/1.1 200 OK\r\nContent-Length: 99999999\r\n\r\n", Some(0)).await;
    let fetched = fetch(&http, &declared, "token", Duration::from_secs(30)).await;
    assert!(matches!(fetched, Err(FetchError::TooLarge)), "{fetched:?}");
    let fine = server("HTTP/1.1 200 OK\r\nContent-Length: 65536\r\n\r\n", Some(64 * 1024)).await;
    let text = fetch(&http, &fine, "token", Duration::from_secs(30)).await.unwrap();
    assert!(text.len() == 64 * 1024 && text.len() < MAX_BYTES);
}

#[tokio::test]
async fn a_server_that_never_answers_gives_up_in_time() {
    let url = server("", None).await;
    let fetched = fetch(&reqwest::Client::new(), &url, "t", Duration::from_millis(300)).await;
    assert!(matches!(fetched, Err(FetchError::Timeout(_))), "{fetched:?}");
}
