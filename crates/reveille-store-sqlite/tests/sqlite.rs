//! Runs the conformance suite against SQLite, plus what only a file-backed database can show.

use std::sync::Arc;

use reveille_protocol::{Action, IncidentState};
use reveille_store::conformance::{send, t};
use reveille_store::prelude::*;
use reveille_store_sqlite::Sqlite;

async fn fresh() -> Arc<dyn Store> {
    let dir = tempfile::tempdir().unwrap();
    let store = Sqlite::open(dir.path().join("reveille.db")).unwrap();
    // The directory lives as long as the test process; each test has its own.
    std::mem::forget(dir);
    Arc::new(store)
}

reveille_store::conformance_suite!(fresh);

#[tokio::test]
async fn everything_committed_is_there_after_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("reveille.db");
    let id = {
        let store = Sqlite::open(&path).unwrap();
        let id = send(&store, "db", Action::Trigger, "k1", 0).await.unwrap();
        store.command(id, "alice", reveille_core::Command::Acknowledge, t(1)).await.unwrap();
        id
    };
    let store = Sqlite::open(&path).unwrap();
    let detail = store.incident(id).await.unwrap();
    assert_eq!(detail.incident.state, IncidentState::Acknowledged);
    assert_eq!(store.feed_since("alice", 0, 10).await.unwrap().len(), 2);
    let mode: String = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    // A commit is fsynced before it is acknowledged: what a 2xx promises.
    assert_eq!(store.writer_pragma("synchronous").await.unwrap(), "2", "synchronous=FULL");
    assert_eq!(store.writer_pragma("journal_mode").await.unwrap(), "wal");
}

#[test]
fn a_database_written_by_a_newer_reveille_is_refused_not_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("reveille.db");
    drop(Sqlite::open(&path).unwrap());
    let newer = reveille_store_sqlite::SCHEMA_VERSION + 1;
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", newer).unwrap();
    drop(conn);
    let refused = Sqlite::open(&path).err().expect("a newer schema must be refused");
    assert!(refused.to_string().contains("newer than this Reveille knows"), "{refused}");
    assert_eq!(Sqlite::migrate(dir.path().join("fresh.db")).unwrap(), (0, newer - 1));
}

/// The files this process has open on `path` (its descriptors, as the kernel lists them).
fn open_on(path: &std::path::Path) -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter(|target| target == path)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_reads_opens_a_bounded_number_of_connections() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("reveille.db");
    let store = Arc::new(Sqlite::open(&path).unwrap());
    send(store.as_ref(), "db", Action::Trigger, "k1", 0).await.unwrap();
    let before = open_on(&path);
    let reads: Vec<_> = (0..500)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.incidents(Default::default()).await.unwrap().len() })
        })
        .collect();
    for read in reads {
        assert_eq!(read.await.unwrap(), 1, "every read answered");
    }
    let opened = open_on(&path) - before;
    assert!(
        opened <= reveille_store_sqlite::READERS,
        "500 reads at once opened {opened} connections (at most {})",
        reveille_store_sqlite::READERS
    );
}
