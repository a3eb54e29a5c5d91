//! Alerting: the rules turn what the collector knows into verdicts (worded
//! from the catalogue by the judge), the alert book turns verdicts into
//! alerts, the notifier takes them to Alertmanager.

pub mod judge;
pub mod notify;
pub mod rules;
pub mod state;
