//! brokerwatch-collector: one per cluster. It takes the agents' reports,
//! computes every broker's share of the load and its deviation, and raises
//! alerts that reach people through Alertmanager.

pub mod alerts;
pub mod config;
pub mod demo;
pub mod ingest;
pub mod kafka;
pub mod load_report;
pub mod metrics;
pub mod model;
pub mod persist;
pub mod server;
pub mod store;
