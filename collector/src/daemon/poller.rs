//! Reads the cluster on a thread of its own (librdkafka calls block): runs
//! each check when it is due and publishes what they found after every
//! round. The cluster being unreachable is said once per outage.

use std::sync::Arc;
use std::time::Instant;

use brokerwatch_common::outage::Outage;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::clock::unix_now;
use crate::kafka::checks::{Check, ClusterState};
use crate::kafka::Kafka;

/// What the log says of a check's result: once when the cluster stops
/// answering, once when it answers again.
#[derive(Debug, PartialEq)]
enum Said {
    Failing(String),
    AnswersAgain,
}

/// Notes a check's result in `state`: any failure is the cluster's error
/// until a check that proves the cluster reachable (the metadata) succeeds;
/// another check succeeding (offsets of no group) proves nothing.
fn note(
    outage: &mut Outage,
    state: &mut ClusterState,
    proves_reachable: bool,
    result: Result<(), String>,
) -> Option<Said> {
    match result {
        Ok(()) if proves_reachable => {
            state.error = None;
            outage.recovered().then_some(Said::AnswersAgain)
        }
        Ok(()) => None,
        Err(e) => {
            state.error = Some(e.clone());
            outage.failed(e.clone()).then_some(Said::Failing(e))
        }
    }
}

/// Runs `checks` forever, publishing to `publish`; `state` holds what is
/// known at start (the brokers seen before a restart).
pub fn poll_forever(
    mut kafka: Kafka,
    mut checks: Vec<Box<dyn Check>>,
    mut state: ClusterState,
    publish: &watch::Sender<Arc<ClusterState>>,
) {
    let mut due: Vec<Instant> = vec![Instant::now(); checks.len()];
    let mut outage = Outage::default();
    loop {
        for (check, next) in checks.iter_mut().zip(due.iter_mut()) {
            if Instant::now() < *next {
                continue;
            }
            *next = Instant::now() + check.every();
            let result = check.run(&mut kafka, &mut state, unix_now());
            match note(&mut outage, &mut state, check.proves_reachable(), result) {
                Some(Said::Failing(e)) => {
                    warn!(
                        "{e}; retrying, and alerts on the cluster's state wait for fresh metadata"
                    )
                }
                Some(Said::AnswersAgain) => info!("kafka: the cluster answers again"),
                None => {}
            }
            publish.send_replace(Arc::new(state.clone()));
        }
        let next = due.iter().min().copied().unwrap_or_else(Instant::now);
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_stays_until_the_metadata_answers_and_each_way_is_said_once() {
        let (mut outage, mut state) = (Outage::default(), ClusterState::default());
        let refused = || Err::<(), _>("kafka: metadata request failed: refused".to_owned());
        assert_eq!(
            note(&mut outage, &mut state, true, refused()),
            Some(Said::Failing(
                "kafka: metadata request failed: refused".into()
            ))
        );
        // The offsets round of no group succeeds without a word to the cluster.
        assert_eq!(note(&mut outage, &mut state, false, Ok(())), None);
        assert!(state.error.is_some(), "the outage is not over");
        assert_eq!(
            note(&mut outage, &mut state, true, refused()),
            None,
            "said once"
        );
        assert_eq!(
            note(&mut outage, &mut state, true, Ok(())),
            Some(Said::AnswersAgain)
        );
        assert_eq!(state.error, None);
        assert_eq!(
            note(&mut outage, &mut state, true, Ok(())),
            None,
            "said once"
        );
    }
}
