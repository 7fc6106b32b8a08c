//! The SQLite schema: the SQL files in `migrations/`, applied in order, each in its own
//! transaction, with the version kept in `PRAGMA user_version`.
//!
//! Incidents and feed entries keep their API shape as JSON in `body`, with the columns that
//! queries filter on copied next to it. A database at a version newer than this build knows was
//! written by a newer Reveille: it is refused, never run against.

use reveille_store::{Error, Result};
use rusqlite::Connection;

const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_init.sql"),
    include_str!("../migrations/0002_escalation_overrides_heartbeats.sql"),
    include_str!("../migrations/0003_meta_phones_devices_links.sql"),
    include_str!("../migrations/0004_link_key_out_of_the_database.sql"),
    include_str!("../migrations/0005_retention.sql"),
    include_str!("../migrations/0006_push_outcomes.sql"),
    include_str!("../migrations/0007_console_filters.sql"),
];

/// The schema version this build writes.
pub const LATEST: usize = MIGRATIONS.len();

/// The database's schema version.
pub(crate) fn version(conn: &Connection) -> Result<usize> {
    Ok(conn.pragma_query_value(None, "user_version", |row| row.get(0))?)
}

/// Brings the database up to [`LATEST`]; refuses one that is newer.
pub(crate) fn migrate(conn: &mut Connection) -> Result<()> {
    let version = version(conn)?;
    if version > LATEST {
        return Err(Error::Unavailable(format!(
            "the database is at schema version {version}, newer than this Reveille knows \
             ({LATEST}): run the newer Reveille that wrote it"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i + 1)?;
        tx.commit()?;
    }
    Ok(())
}
