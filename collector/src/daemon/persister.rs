//! Writes the state file off the hot path: the evaluator hands over each
//! evaluation's state and goes on; this task writes the newest one it has
//! (fsync and all) on a blocking thread, so a slow or full disk delays only
//! the file, never intake, the API or the next evaluation. A failing write
//! is said once, counted, shown on `/healthz`, and retried with the next state.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use brokerwatch_common::outage::Outage;
use tokio::sync::watch;
use tracing::{error, info};

use crate::metrics::CollectorMetrics;
use crate::persist::{self, Persisted};

/// Writes every state published on `states` until the sender is dropped.
pub async fn persist_forever(
    path: PathBuf,
    mut states: watch::Receiver<Option<Persisted>>,
    metrics: CollectorMetrics,
    failing: Arc<AtomicBool>,
) {
    let mut outage = Outage::default();
    while states.changed().await.is_ok() {
        let Some(state) = states.borrow_and_update().clone() else {
            continue;
        };
        let at = path.clone();
        let written = tokio::task::spawn_blocking(move || persist::save(&at, &state))
            .await
            .unwrap_or_else(|e| Err(format!("state {}: the write failed ({e})", path.display())));
        match written {
            Ok(()) => {
                if outage.recovered() {
                    info!(state = %path.display(), "state file writable again");
                }
                metrics.state_writable.set(1);
            }
            Err(e) => {
                // Alerts keep flowing from memory; the write is retried with the next state.
                if outage.failed(e.clone()) {
                    error!("{e}; alerts keep being evaluated and delivered, the write is retried every evaluation");
                }
                metrics.state_write_errors.inc();
                metrics.state_writable.set(0);
            }
        }
        failing.store(outage.is_failing(), Ordering::Relaxed);
    }
}
