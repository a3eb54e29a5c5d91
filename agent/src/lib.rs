//! brokerwatch-agent: reads a broker host every interval and serves what it
//! read on `/metrics` for Prometheus.

pub mod config;
pub mod host;
pub mod metrics;
pub mod push;
pub mod server;
pub mod sources;

#[cfg(test)]
#[path = "../tests/fixtures/host.rs"]
mod fixture_host;
