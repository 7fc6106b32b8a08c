//! Retention on a moved clock: history older than `retention.days` goes, nothing an open
//! incident needs does, and a device resuming from before what went is told so.

mod common;

use std::time::Duration;

use common::Harness;
use reveille_protocol::feed::FeedOpen;

#[tokio::test]
async fn history_past_the_retention_goes_and_open_incidents_and_resume_points_stay() {
    let h = Harness::with_config(
        &common::CONFIG.replace("[ingest]", "[retention]\ndays = 30\n\n[ingest]"),
    )
    .await;
    let old = h.trigger("old", "long resolved").await;
    let open = h.trigger("open", "still burning").await;
    let bob = format!("Bearer {}", h.bob);
    let (status, _) = h.post(&format!("/api/v1/incidents/{old}/resolve"), Some(&bob), "").await;
    assert_eq!(status, 200);
    let mut feed = h.feed(&h.alice, Some(0)).await;
    let mut seen = Vec::new();
    for _ in 0..3 {
        let (id, _, entry) = feed.entry().await;
        seen.push((id, entry["incident"]["id"].as_i64().unwrap()));
    }
    drop(feed);

    h.advance(29 * 24 * 3600);
    h.advance(2 * 24 * 3600);
    let mut commits = h.store().hub().commits();
    while h.store().incident(old).await.is_ok() {
        tokio::time::timeout(Duration::from_secs(20), commits.changed())
            .await
            .expect("retention never pruned the old incident")
            .unwrap();
    }
    let still = h.store().incident(open).await.unwrap();
    assert_eq!(still.incident.summary, "still burning", "an open incident is never pruned");
    assert!(still.timeline.iter().any(|e| e.kind == "triggered"), "nor its timeline");
    let conn = rusqlite::Connection::open(&h.db).unwrap();
    let events: i64 = conn.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0)).unwrap();
    assert_eq!(events, 0, "raw events past the retention are gone");

    // A device that last read before the pruned entries learns it, and still gets the open page.
    let mut feed = h.feed(&h.alice, Some(0)).await;
    let first = feed.next().await;
    assert_eq!(first.event, "open");
    let opened: FeedOpen = serde_json::from_str(&first.data).unwrap();
    let newest_old = seen.iter().filter(|(_, i)| *i == old).map(|(id, _)| *id).max().unwrap();
    // bob's entries of the old incident went too: the horizon is the whole feed's.
    assert!(opened.pruned_through >= newest_old, "{opened:?}");
    let (_, kind, entry) = feed.entry().await;
    assert_eq!((kind.as_str(), entry["incident"]["id"].as_i64()), ("page", Some(open)));
}
