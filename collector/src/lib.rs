//! brokerwatch-collector: one per cluster. It takes the agents' reports,
//! computes every broker's share of the load and its deviation, and raises
//! alerts that reach people through Alertmanager.

pub mod load_report;
pub mod model;
