//! The node's listener: one dedicated connection that `LISTEN`s for committed feed entries (from
//! any node, this one's writer included) and publishes them to this node's hub in id order.
//!
//! A notification only says "something committed": the pump reads every entry after the last it
//! published, in id order, so it never publishes out of order or skips one. Notifications sent
//! while the connection was down are lost, so after every reconnect it reads again before
//! waiting; and it reads at least every [`PATIENCE`] even when nothing is heard.

use std::sync::Arc;
use std::time::Duration;

use fallible_iterator::FallibleIterator;
use postgres::Client;
use reveille_protocol::FeedEvent;
use reveille_store::{Hub, Result};

use crate::session::CHANNEL;
use crate::{Target, unjson};

/// Longest wait without reading, whatever the notifications say.
const PATIENCE: Duration = Duration::from_secs(2);
/// Entries read per query.
const PAGE: i64 = 1000;

/// Starts listening on `client`; returns the feed's current head, where the pump starts
/// (entries before it are in the store for whoever replays them).
pub(crate) fn start(client: &mut Client) -> Result<i64> {
    client.batch_execute(&format!("LISTEN {CHANNEL}"))?;
    Ok(client.query_one("SELECT last FROM feed_seq", &[])?.get(0))
}

/// Runs the pump on its own thread, publishing what committed after `head`.
pub(crate) fn run_on_thread(
    target: Target,
    client: Client,
    hub: Arc<Hub>,
    head: i64,
) -> Result<()> {
    std::thread::Builder::new()
        .name("reveille-pg-listener".into())
        .spawn(move || run(&target, client, &hub, head))
        .map_err(reveille_store::Error::unavailable)?;
    Ok(())
}

fn run(target: &Target, mut client: Client, hub: &Hub, mut published: i64) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match publish_new(&mut client, hub, published) {
            Ok(newest) => published = newest,
            Err(e) => {
                tracing::warn!(error = %e, "the feed listener lost its connection; reconnecting");
                client = reconnect(target, &mut backoff);
                continue;
            }
        }
        // Wait for the next notification (ours or another node's), or the patience to run out.
        let heard = client.notifications().timeout_iter(PATIENCE).next().map(|_| ());
        if let Err(e) = heard {
            tracing::warn!(error = %e, "the feed listener lost its connection; reconnecting");
            client = reconnect(target, &mut backoff);
            continue;
        }
        // Drain what else has arrived: one read serves them all.
        while let Ok(Some(_)) = client.notifications().iter().next() {}
        backoff = Duration::from_millis(100);
    }
}

/// Publishes every entry committed after `published`, in id order; returns the newest.
fn publish_new(client: &mut Client, hub: &Hub, mut published: i64) -> Result<i64> {
    loop {
        let rows = client.query(
            "SELECT id, user_name, body FROM feed WHERE id > $1 ORDER BY id LIMIT $2",
            &[&published, &PAGE],
        )?;
        let full = rows.len() as i64 == PAGE;
        let mut entries = Vec::with_capacity(rows.len());
        for row in rows {
            let id: i64 = row.get(0);
            published = id;
            // An entry no one can read is skipped here; feed readers report it.
            if let Ok(mut entry) = unjson::<FeedEvent>(row.get(2)) {
                entry.id = id;
                entries.push((row.get::<_, String>(1), entry));
            }
        }
        hub.publish(entries);
        if !full {
            return Ok(published);
        }
    }
}

/// A new listening connection, trying again with capped backoff until the database answers.
fn reconnect(target: &Target, backoff: &mut Duration) -> Client {
    loop {
        std::thread::sleep(*backoff);
        *backoff = (*backoff * 2).min(Duration::from_secs(5));
        let listening = target.connect().and_then(|mut client| {
            client.batch_execute(&format!("LISTEN {CHANNEL}"))?;
            Ok(client)
        });
        match listening {
            Ok(client) => return client,
            Err(e) => tracing::warn!(error = %e, "cannot reconnect the feed listener yet"),
        }
    }
}
