//! Reveille's headless subscriber, shared by the desktop app and any other device.
//!
//! The pure parts — the connection state machine ([`conn`]) and the ringing state ([`pages`]) —
//! take time as an argument and return effects; [`outbox`] keeps acknowledgements on disk until
//! the server has them; [`runbook`] renders markdown to safe HTML; [`desktop`] decides what a
//! desktop's tray shows and its speakers play. No UI, audio or OS secret store
//! here: the apps implement those.

pub mod api;
pub mod conn;
pub mod desktop;
pub mod device;
pub mod outbox;
pub mod pages;
pub mod runbook;
pub mod signin;
pub mod sources;
pub mod subscriber;

pub use api::{Api, ApiError};
pub use device::{Device, Sound};
pub use subscriber::{Config, Status, Subscriber};
