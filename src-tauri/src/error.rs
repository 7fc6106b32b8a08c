//! The app's one error type; commands return it, and the UI shows its message.

use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The OS keyring cannot be used; the message says why in plain words.
    #[error("{0}")]
    Keyring(String),
    #[error("{0}")]
    Server(String),
    #[error("sign in first")]
    SignedOut,
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Tauri(#[from] tauri::Error),
}

impl Serialize for Error {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
