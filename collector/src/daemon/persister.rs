//! Writes the state file off the hot path: the evaluator hands over each
//! evaluation's state and goes on; this task writes the newest one it has
//! (fsync and all) on a blocking thread, so a slow or full disk delays only
//! the file, never intake, the API or the next evaluation. A failing write
//! is said once, counted, shown on `/healthz`, and retried with the next state.
//!
//! The alerts go to the Alertmanagers once their state is on disk, so that
//! an alert an Alertmanager saw firing is firing after a crash and restart
//! too; a disk slower than [`WRITE_WAIT`] (or failing) delays them by that
//! much at most.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use brokerwatch_common::outage::Outage;
use tokio::sync::watch;
use tracing::{error, info};

use crate::alerts::notify::Notifier;
use crate::metrics::CollectorMetrics;
use crate::persist::{self, Persisted, TrafficHistory};

/// How often the traffic history is written (and once more on the way out):
/// it is larger than the state and a few minutes of it lost cost little.
pub const TRAFFIC_WRITE_INTERVAL: Duration = Duration::from_secs(300);

/// How long alerts wait for their state to be written.
pub const WRITE_WAIT: Duration = Duration::from_secs(1);

/// An evaluation's state, numbered in order.
pub type Numbered = Option<(u64, Persisted)>;

/// Writes every state published on `states` until the sender is dropped;
/// `on_disk` says the number of the last one written.
pub async fn persist_forever(
    path: PathBuf,
    mut states: watch::Receiver<Numbered>,
    on_disk: watch::Sender<u64>,
    metrics: CollectorMetrics,
    failing: Arc<AtomicBool>,
) {
    let mut outage = Outage::default();
    while states.changed().await.is_ok() {
        let Some((number, state)) = states.borrow_and_update().clone() else {
            continue;
        };
        let at = path.clone();
        let written = tokio::task::spawn_blocking(move || persist::save(&at, &state))
            .await
            .unwrap_or_else(|e| Err(format!("state {}: the write failed ({e})", path.display())));
        match written {
            Ok(()) => {
                on_disk.send_replace(number);
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

/// Hands each state's alerts to `notifier` once the state is written, or
/// after [`WRITE_WAIT`]; until the sender of `states` is dropped.
pub async fn publish_when_written(
    mut states: watch::Receiver<Numbered>,
    mut written: watch::Receiver<u64>,
    notifier: Arc<Notifier>,
) {
    while states.changed().await.is_ok() {
        let Some((number, state)) = states.borrow_and_update().clone() else {
            continue;
        };
        let _ = tokio::time::timeout(WRITE_WAIT, written.wait_for(|w| *w >= number)).await;
        notifier.publish(&state.alerts);
    }
}

/// Writes every traffic history published on `histories` until the sender
/// is dropped; a failing write is said once per outage (the next is tried
/// at the next interval).
pub async fn write_traffic_forever(
    path: PathBuf,
    mut histories: watch::Receiver<Option<TrafficHistory>>,
) {
    let mut outage = Outage::default();
    while histories.changed().await.is_ok() {
        let Some(history) = histories.borrow_and_update().clone() else {
            continue;
        };
        let at = path.clone();
        let written = tokio::task::spawn_blocking(move || persist::save_traffic(&at, &history))
            .await
            .unwrap_or_else(|e| Err(format!("state {}: the write failed ({e})", path.display())));
        match written {
            Ok(()) if outage.recovered() => {
                info!(traffic = %path.display(), "traffic history writable again")
            }
            Ok(()) => {}
            Err(e) => {
                if outage.failed(e.clone()) {
                    error!("{e}; the no-traffic and anomaly judgements go on from memory, and the write is retried every {}", humantime::format_duration(TRAFFIC_WRITE_INTERVAL));
                }
            }
        }
    }
}
