//! Bodies of the ingest formats other tools already speak, field for field as their vendors
//! document them. Everything is optional here so that the adapters can name exactly which field is
//! missing or wrong instead of failing on the first serde error.

pub mod alertmanager;
pub mod opsgenie;
pub mod pagerduty;
