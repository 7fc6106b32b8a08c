//! A TCP proxy between a node and its database that a test controls: it can cut the link
//! (every connection dropped, new ones refused), or freeze it as a node frozen in the middle of
//! a transaction would (nothing flows either way, connections stay open) and thaw it again.
//! `freeze_after` freezes right after the node sends a statement containing some text, so a test
//! can stop a node at an exact point of its transaction.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxy lets through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    Open,
    Frozen,
    Cut,
}

/// A proxy to `127.0.0.1:target`.
pub struct Cuttable {
    pub port: u16,
    link: watch::Sender<Link>,
    /// Freeze once the node has sent a chunk containing this.
    trigger: Arc<Mutex<Option<Vec<u8>>>>,
}

impl Cuttable {
    pub async fn start(target: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let link = watch::channel(Link::Open).0;
        let trigger = Arc::new(Mutex::new(None));
        let (watching, armed) = (link.clone(), trigger.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if *watching.borrow() == Link::Cut {
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)).await else { continue };
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                let (up, down) = (watching.clone(), watching.clone());
                tokio::spawn(forward(client_read, server_write, up, Some(armed.clone())));
                tokio::spawn(forward(server_read, client_write, down, None));
            }
        });
        Self { port, link, trigger }
    }

    /// Drops every connection and refuses new ones (`true`), or lets them through again.
    pub fn set_cut(&self, cut: bool) {
        self.link.send_replace(if cut { Link::Cut } else { Link::Open });
    }

    /// Holds everything in both directions until [`Self::thaw`]; connections stay open.
    pub fn freeze(&self) {
        self.link.send_replace(Link::Frozen);
    }

    /// Freezes right after the node sends a chunk containing `text` (once).
    pub fn freeze_after(&self, text: &str) {
        *self.trigger.lock().unwrap() = Some(text.as_bytes().to_vec());
    }

    /// Whether the link is frozen now (a `freeze_after` has fired).
    pub fn frozen(&self) -> bool {
        *self.link.borrow() == Link::Frozen
    }

    /// Waits until the link is frozen.
    pub async fn until_frozen(&self) {
        let _ = self.link.subscribe().wait_for(|l| *l == Link::Frozen).await;
    }

    /// Lets everything held go on.
    pub fn thaw(&self) {
        self.link.send_replace(Link::Open);
    }
}

/// Copies one direction chunk by chunk, waiting while frozen and stopping when cut.
async fn forward(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    link: watch::Sender<Link>,
    trigger: Option<Arc<Mutex<Option<Vec<u8>>>>>,
) {
    let mut state = link.subscribe();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let read = tokio::select! {
            read = from.read(&mut chunk) => read,
            _ = state.wait_for(|l| *l == Link::Cut) => break,
        };
        // Frozen: hold the chunk (or the end of the connection) until thawed or cut.
        let open =
            matches!(state.wait_for(|l| *l != Link::Frozen).await.map(|l| *l), Ok(Link::Open));
        let n = match read {
            Ok(n) if n > 0 && open => n,
            _ => break,
        };
        if to.write_all(&chunk[..n]).await.is_err() {
            break;
        }
        if let Some(trigger) = &trigger {
            let mut armed = trigger.lock().unwrap();
            let hit = armed.as_ref().is_some_and(|t| chunk[..n].windows(t.len()).any(|w| w == t));
            if hit {
                *armed = None;
                link.send_replace(Link::Frozen);
            }
        }
    }
    let _ = to.shutdown().await;
}
