//! Reads the cluster on a thread of its own (librdkafka calls block): runs
//! each check when it is due and publishes what they found after every
//! round. The cluster being unreachable is said once per outage.

use std::sync::Arc;
use std::time::Instant;

use brokerwatch_common::outage::Outage;
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::clock::unix_now;
use crate::config::KafkaConfig;
use crate::kafka::checks::{Check, ClusterState};
use crate::kafka::Kafka;

/// Runs `checks` forever, publishing to `publish`; `state` holds what is
/// known at start (the brokers seen before a restart).
pub fn poll_forever(
    settings: &KafkaConfig,
    mut checks: Vec<Box<dyn Check>>,
    mut state: ClusterState,
    publish: &watch::Sender<Arc<ClusterState>>,
) {
    let mut kafka = match Kafka::new(settings.properties.clone(), settings.timeout) {
        Ok(kafka) => kafka,
        Err(e) => {
            error!("{e}; the collector goes on without the cluster's own state");
            state.error = Some(e);
            publish.send_replace(Arc::new(state));
            return;
        }
    };
    let mut due: Vec<Instant> = vec![Instant::now(); checks.len()];
    let mut outage = Outage::default();
    loop {
        for (check, next) in checks.iter_mut().zip(due.iter_mut()) {
            if Instant::now() < *next {
                continue;
            }
            *next = Instant::now() + check.every();
            match check.run(&mut kafka, &mut state, unix_now()) {
                Ok(()) => {
                    if outage.recovered() {
                        info!("kafka: the cluster answers again");
                    }
                    state.error = None;
                }
                Err(e) => {
                    if outage.failed(e.clone()) {
                        warn!("{e}; retrying, and alerts on the cluster's state wait for fresh metadata");
                    }
                    state.error = Some(e);
                }
            }
            publish.send_replace(Arc::new(state.clone()));
        }
        let next = due.iter().min().copied().unwrap_or_else(Instant::now);
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
}
