//! Reveille's rules, as pure functions of `(state, event, now)` that return effects as data.
//!
//! Nothing here performs I/O, reads a clock or spawns a task: the store loads the state, asks the
//! core what should happen, and persists the effects. That keeps every rule testable without a
//! runtime and without waiting.

pub mod alarm;
pub mod escalation;
pub mod incident;
pub mod notify;
pub mod policy;
pub mod schedule;
pub mod service;

pub use escalation::on_escalate;
pub use incident::{Command, Effect, Refusal, apply, on_alert, on_command, on_wake};
pub use policy::{Level, Paging, Policy, Target};
pub use service::{ServiceRules, UrgencyRule};
