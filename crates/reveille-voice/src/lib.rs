//! Reveille's telephone line, over SIP through the team's own PBX or trunk: places a call to a
//! number, says a page to whoever answers (speech from espeak-ng, G.711 over RTP), and hears
//! the keypad (RFC 4733 telephone-events, SIP INFO as a fallback); answers calls to the line
//! (the hotline). What a call *means* — which key acknowledges, what is said — is the server's;
//! this crate only speaks SIP and RTP.
//!
//! The SIP stack is rsipstack (pinned; see `workarounds`). SDP, RTP and G.711 are small enough
//! to be written here ([`sdp`], `rtp`, `g711`), byte-exact against sox.

mod call;
mod dial;
mod g711;
mod incoming;
mod line;
mod rtp;
pub mod sdp;
pub mod speech;
mod workarounds;

pub use call::{Call, Heard};
pub use dial::{Dialed, Unanswered};
pub use incoming::Incoming;
pub use line::{Line, LineConfig};
pub use rsipstack::sip::StatusCode;
pub use speech::Voice;

/// Samples per second of everything said on a call (G.711's rate).
pub const RATE: usize = 8000;

/// Why the line could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The settings cannot be used (a URI that does not parse, a host that does not resolve).
    #[error("{0}")]
    Config(String),
    /// The SIP stack failed (no route to the server, a transaction that timed out).
    #[error("SIP: {0}")]
    Sip(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The speech could not be rendered (espeak-ng or sox missing or failing).
    #[error("speech: {0}")]
    Speech(String),
}

impl From<rsipstack::Error> for Error {
    fn from(e: rsipstack::Error) -> Self {
        Self::Sip(e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, Error>;
