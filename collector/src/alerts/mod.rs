//! Alerting: rules turn the load picture into verdicts, the state machine
//! turns verdicts into alerts, the notifier takes them to Alertmanager.

pub mod notify;
pub mod rules;
pub mod state;
