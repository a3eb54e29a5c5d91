//! brokerwatch-collector: one per cluster. It takes the agents' reports,
//! reads the cluster over the Kafka protocol, computes every broker's share
//! of the load and its deviation, judges replication and consumer lag, and
//! raises alerts that reach people through Alertmanager.
//!
//! Modules, from the bottom up (each uses only those above it in this list):
//! `clock`; `model` (pure: the load model, replication, lag); `catalogue`
//! (every alert's spec); `store` (the agents' reports as typed series);
//! `config`; `kafka` (the client and its checks); `alerts` (the rules, the
//! alert book, delivery); `persist`; `metrics`; `daemon` (the pipeline of
//! tasks and the HTTP API); `load_report` (the offline command).

pub mod alerts;
pub mod catalogue;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod kafka;
pub mod load_report;
pub mod metrics;
pub mod model;
pub mod persist;
pub mod store;
