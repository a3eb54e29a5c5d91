//! What the agent and the collector share: the report schema and its wire
//! codec (usable on their own, with default features), the config helpers
//! both daemons use, and, with the `server` feature, how both serve HTTP and
//! start and stop.

pub mod codec;
pub mod config;
pub mod outage;
mod report;

#[cfg(feature = "server")]
pub mod daemon;
#[cfg(feature = "exposition")]
pub mod exposition;
#[cfg(feature = "server")]
pub mod web;

pub use config::{from_toml, one_line, parse_duration, Secret};
pub use report::*;
