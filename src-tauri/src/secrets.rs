//! The sign-in token lives in the OS keyring (Secret Service on Linux), never in a file or a log.

use keyring::Entry;

use crate::error::{Error, Result};

const SERVICE: &str = "dev.reveille.desktop";

/// Why the keyring cannot be used, in words a person can act on.
fn explain(e: keyring::Error) -> Error {
    let cause = match Entry::store_status() {
        Err(status) => format!("{status}"),
        Ok(()) => e.to_string(),
    };
    Error::Keyring(format!(
        "The system keyring is not available, so Reveille cannot keep your token safely ({cause}). \
         Unlock or start your keyring (GNOME Keyring, KWallet or another Secret Service) and sign in again."
    ))
}

fn entry(server: &str) -> Result<Entry> {
    Entry::new(SERVICE, server).map_err(explain)
}

pub fn save(server: &str, token: &str) -> Result<()> {
    entry(server)?.set_password(token).map_err(explain)
}

pub fn load(server: &str) -> Result<Option<String>> {
    match entry(server)?.get_password() {
        Ok(token) => Ok(Some(token)),
        Err(keyring::Error::NoEntry) => Ok(None),
        Err(e) => Err(explain(e)),
    }
}

pub fn forget(server: &str) -> Result<()> {
    match entry(server)?.delete_credential() {
        Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
        Err(e) => Err(explain(e)),
    }
}
