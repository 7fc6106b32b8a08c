//! Reveille's durable storage: what every backend shares, written once.
//!
//! [`Store`] is what the server needs, by role: [`Incidents`] (apply alert events and people's
//! commands to incidents atomically, with the rules of `reveille-core` driven by the shared
//! [`engine`]; each user's feed as a durable ordered log), [`Credentials`] (tokens and
//! integration keys, hashed), [`Records`] (overrides, heartbeats, devices, phone topics,
//! signed links, settings and cursors, retention) and [`Cluster`] (leases, nodes, rate
//! buckets). The first three are implemented here once ([`roles`]), for any [`Backend`]: a
//! backend supplies only its connections (the group-commit [`writer`]'s session and a read
//! pool) and its SQL ([`backend`]'s query traits), and the cluster's state, which is what
//! differs between one node and several. The backends live in their own crates, named after
//! their technology: `reveille-store-sqlite` (embedded, the default) and
//! `reveille-store-postgres` (several nodes). A method that returns `Ok` has committed *and*
//! synced its write: callers may promise durability on that basis.
//!
//! Committed feed entries are published to the store's [`Hub`] in feed-id order, so a subscriber
//! that subscribes before reading its backlog sees every entry exactly once. [`conformance`]
//! (feature `conformance`) is the suite every backend must pass.

pub mod backend;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod engine;
mod hub;
pub mod quarantine;
pub mod roles;
mod types;
pub mod writer;

pub use backend::Backend;
pub use hub::{Hub, Published};
pub use roles::{Cluster, Credentials, Incidents, Records, Store};

/// The roles, to call a backend's methods on its own type (`Sqlite`, `Postgres`) rather than
/// through `dyn Store`.
pub mod prelude {
    pub use crate::roles::{Cluster, Credentials, Incidents, Records, Store};
}
pub use types::*;

/// The one error type of this crate.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error("{0} not found")]
    NotFound(String),
    /// The rules refuse the command (e.g. snoozing a resolved incident).
    #[error("{0}")]
    Refused(String),
    /// The database could not do its job; nothing was written. Callers should retry later.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// Another writer (another node) got in the way; running the transaction again will work.
    #[error("storage conflict: {0}")]
    Conflict(String),
    /// A stored row cannot be decoded (written by another version, damaged): trying again
    /// will not help. Readers skip such a row, say so, and go on.
    #[error("a stored row cannot be read: {0}")]
    Corrupt(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The database failed: nothing was written, and trying later may work.
    pub fn unavailable(cause: impl std::fmt::Display) -> Self {
        Error::Unavailable(cause.to_string())
    }
}

// The errors of the drivers the backends use, as this crate's: each backend turns on its
// feature, so its SQL can use `?` on its driver's calls. (They cannot live in the backends: the
// error and the `From` trait are both foreign there, and wrapping every driver call instead
// would bury the SQL in conversions.)
#[cfg(feature = "sqlite")]
impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::unavailable(e)
    }
}

#[cfg(feature = "postgres")]
impl From<postgres::Error> for Error {
    fn from(e: postgres::Error) -> Self {
        use postgres::error::SqlState;
        // Another node's write got in the way: running the transaction again will work. (A
        // deadline that ran out is not one of these: the lock holder may be frozen, so the
        // caller hears `Unavailable` at once and retries later, perhaps on another node.)
        let conflict = [
            SqlState::T_R_SERIALIZATION_FAILURE,
            SqlState::T_R_DEADLOCK_DETECTED,
            SqlState::UNIQUE_VIOLATION,
        ];
        // "db error" alone says nothing: the server's own message does.
        let message = match e.as_db_error() {
            Some(db) => format!("{} ({})", db.message(), db.code().code()),
            None => e.to_string(),
        };
        match e.code() {
            Some(code) if conflict.contains(code) => Error::Conflict(message),
            _ => Error::Unavailable(message),
        }
    }
}
