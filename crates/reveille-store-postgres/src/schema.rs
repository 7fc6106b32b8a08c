//! The PostgreSQL schema: the SQL files in `migrations/`, applied in order, each in its own
//! transaction under an advisory lock, so that nodes starting together migrate once. The version
//! is kept in `schema_version`; a database newer than this build knows is refused, never run.

use postgres::Client;
use reveille_store::{Error, Result};

const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_init.sql"),
    include_str!("../migrations/0002_cluster.sql"),
    include_str!("../migrations/0003_console_filters.sql"),
    include_str!("../migrations/0004_node_start.sql"),
];

/// The schema version this build writes.
pub const LATEST: usize = MIGRATIONS.len();

/// Any number will do, as long as nothing else in the database takes the same advisory lock.
const LOCK: i64 = 0x7265_7665_696c_6c65;

fn read_version(client: &mut impl postgres::GenericClient) -> Result<usize> {
    client.batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")?;
    let row = client.query_one("SELECT COALESCE(MAX(version), 0) FROM schema_version", &[])?;
    Ok(usize::try_from(row.get::<_, i32>(0)).unwrap_or(0))
}

/// The database's schema version.
pub(crate) fn version(client: &mut Client) -> Result<usize> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK])?;
    let version = read_version(&mut tx)?;
    tx.commit()?;
    Ok(version)
}

/// Brings the database up to [`LATEST`]; refuses one that is newer. A migration may wait for
/// another node's and run long: the connection's deadlines are lifted while it does.
pub(crate) fn migrate(client: &mut Client) -> Result<()> {
    client.batch_execute("SET lock_timeout = 0; SET statement_timeout = 0")?;
    let migrated = apply(client);
    client.batch_execute("RESET lock_timeout; RESET statement_timeout")?;
    migrated
}

fn apply(client: &mut Client) -> Result<()> {
    for (i, sql) in MIGRATIONS.iter().enumerate() {
        let mut tx = client.transaction()?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK])?;
        let version = read_version(&mut tx)?;
        if version > LATEST {
            return Err(Error::Unavailable(format!(
                "the database is at schema version {version}, newer than this Reveille knows \
                 ({LATEST}): run the newer Reveille that wrote it"
            )));
        }
        if version <= i {
            tx.batch_execute(sql)?;
            tx.execute("DELETE FROM schema_version", &[])?;
            tx.execute("INSERT INTO schema_version (version) VALUES ($1)", &[&((i + 1) as i32)])?;
        }
        tx.commit()?;
    }
    Ok(())
}
