//! The collector daemon, as a pipeline of tasks that own their state:
//!
//! ```text
//! intake (HTTP) ─▶ store ─┐
//! poller (Kafka checks) ──┴▶ evaluator ─▶ latest evaluation ─▶ HTTP API, /metrics
//!                            (alert book)  └▶ persister ─▶ state.json
//!                                                 └▶ (once written, or 1 s) notifiers ─▶ Alertmanager(s)
//! ```
//!
//! The store has its own lock, taken by intake for an insert and by the
//! evaluator while it computes; the poller and the evaluator publish over
//! channels; the persister writes off both. Nothing waits on a disk or a
//! peer while holding what intake or the API need.

mod evaluator;
mod http;
mod intake;
pub mod page;
mod persister;
mod poller;
pub mod views;

use std::future::Future;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::time::MissedTickBehavior;
use tracing::{error, info, warn};

use brokerwatch_common::daemon::Supervisor;

use crate::alerts::notify::{Delivery, Notifier};
use crate::alerts::state::AlertBook;
use crate::clock::unix_now;
use crate::config::Config;
use crate::kafka::checks::{self, ClusterState};
use crate::kafka::Kafka;
use crate::metrics::CollectorMetrics;
use crate::persist::{self, Persisted, TrafficHistory};
use crate::store::Store;

pub use evaluator::{Evaluation, Evaluator};
pub use intake::check_token;

/// How long the last deliveries may take on shutdown (systemd waits 15 s).
const SHUTDOWN_DELIVERY: Duration = Duration::from_secs(5);

/// What the HTTP handlers read.
pub struct Shared {
    config: Arc<Config>,
    intake: intake::Intake,
    /// The Kafka threads' latest findings.
    cluster: Merged,
    /// The latest evaluation (none before the first).
    latest: watch::Receiver<Option<Arc<Evaluation>>>,
    /// The alerts restored at start, until the first evaluation.
    restored: AlertBook,
    metrics: CollectorMetrics,
    state_write_failing: Arc<AtomicBool>,
    supervisor: Supervisor,
}

/// Binds, restores the state, and runs until `shutdown` completes; the state
/// is written once more on the way out.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    let config = Arc::new(config);
    let (listener, local) = brokerwatch_common::daemon::bind(config.listen).await?;
    let state_path = config.state_dir.join("state.json");
    let state = persist::load(&state_path).unwrap_or_else(|e| {
        error!("{e}");
        Persisted::default()
    });
    let traffic_path = config.state_dir.join("traffic.json");
    let traffic = persist::load_traffic(&traffic_path).unwrap_or_else(|e| {
        error!("{e}");
        TrafficHistory::default()
    });
    let firing = state.alerts.firing().count();
    let at_start = state.clone();
    let scheme = config.web.scheme();
    info!(cluster = %config.cluster, state = %state_path.display(), firing, "serving {scheme}://{local} (reports at /api/v1/reports)");

    let metrics = CollectorMetrics::new(&config.cluster);
    let supervisor = Supervisor::default();
    let client = reqwest::Client::builder()
        .timeout(config.alertmanager_timeout)
        .build()
        .map_err(|e| format!("cannot build the HTTP client for Alertmanager: {e}"))?;
    let notifier = Notifier::start(
        &config.alertmanagers,
        Delivery {
            client,
            resend: config.resend_interval,
            generator_url: format!("{scheme}://{local}/api/v1/alerts"),
            posts: metrics.alertmanager_posts.clone(),
            dropped: metrics.alertmanager_dropped.clone(),
        },
        &supervisor,
    );
    notifier.publish(&state.alerts);
    let notifier = Arc::new(notifier);

    let known = ClusterState {
        brokers_seen: state.kafka_brokers_seen.clone(),
        ..ClusterState::default()
    };
    let (cluster_tx, cluster_rx) = watch::channel(Arc::new(known.clone()));
    let (controllers_tx, controllers_rx) = watch::channel(None);
    let (probe_tx, probe_rx) = watch::channel(None);
    if let Some(settings) = &config.kafka {
        // A client that cannot be made is a config error, said at start.
        let kafka = Kafka::new(settings.properties.clone(), settings.timeout)?;
        let checks = checks::checks(&config, traffic.topics.clone(), controllers_rx.clone());
        supervisor.spawn_thread("Kafka poller", move || {
            poller::poll_forever(kafka, checks, known, &cluster_tx);
        })?;
        let controllers = checks::ControllersCheck::new(settings.clone());
        supervisor.spawn_thread("Kafka controllers", move || {
            controllers.run_forever(&controllers_tx);
        })?;
        if config.probe.enabled {
            let (kafka, probe) = (settings.clone(), config.probe.clone());
            supervisor.spawn_thread("Kafka probe", move || {
                crate::kafka::probe::supervise(kafka, probe, &probe_tx);
                // Off (said why): the thread's end is not a failure.
                loop {
                    std::thread::park();
                }
            })?;
        }
    }
    let cluster_rx = Merged {
        cluster: cluster_rx,
        controllers: controllers_rx,
        probe: probe_rx,
    };
    let (latest_tx, latest_rx) = watch::channel(None);
    let (persist_tx, persist_rx) = watch::channel(None);
    let (written_tx, written_rx) = watch::channel(0);
    let state_write_failing = Arc::new(AtomicBool::new(false));
    let persisting = supervisor.spawn(
        "state writer",
        persister::persist_forever(
            state_path.clone(),
            persist_rx,
            written_tx,
            metrics.clone(),
            state_write_failing.clone(),
        ),
    );
    let publishing = supervisor.spawn(
        "alert publisher",
        persister::publish_when_written(persist_tx.subscribe(), written_rx, notifier.clone()),
    );
    let shared = Arc::new(Shared {
        config: config.clone(),
        intake: intake::Intake::new(
            Store::new(config.window.as_secs_f64()),
            state.last_report.clone(),
        ),
        cluster: cluster_rx.clone(),
        latest: latest_rx,
        restored: state.alerts.clone(),
        metrics: metrics.clone(),
        state_write_failing,
        supervisor: supervisor.clone(),
    });
    let evaluator = Evaluator::new(config.clone(), state.alerts, traffic, unix_now());
    let (traffic_tx, traffic_rx) = watch::channel(None);
    let writing_traffic = supervisor.spawn(
        "traffic history writer",
        persister::write_traffic_forever(traffic_path, traffic_rx),
    );
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
    let evaluating = supervisor.spawn(
        "evaluation",
        evaluate_forever(
            evaluator,
            shared.clone(),
            cluster_rx,
            latest_tx,
            (persist_tx.clone(), traffic_tx),
            stop_rx,
        ),
    );
    let failed = supervisor.failed();
    let stop = async move {
        tokio::select! {
            () = shutdown => {}
            () = failed => {}
        }
    };
    let at_exit = shared.clone();
    let served = config.web.serve(listener, http::router(shared), stop).await;
    supervisor.stopping();
    let _ = stop_tx.send(());
    // Without the evaluation's last word (it failed), the last state it
    // published is what there is to keep.
    let last = match evaluating.await {
        Ok(Some(last)) => last,
        _ => persist_tx
            .borrow()
            .clone()
            .map(|(_, state)| state)
            .unwrap_or_else(|| Persisted {
                last_report: at_exit.intake.lock().last_report.clone(),
                ..at_start
            }),
    };
    drop(persist_tx);
    let _ = persisting.await;
    let _ = writing_traffic.await;
    let _ = publishing.await;
    // The newest state, written here and now: what did not reach an
    // Alertmanager is in it for the next start.
    if let Err(e) = persist::save(&state_path, &last) {
        error!("on shutdown: {e}");
    }
    notifier.publish(&last.alerts);
    let missed = notifier.flush(SHUTDOWN_DELIVERY).await;
    if missed > 0 {
        warn!(missed, "on shutdown: the latest alerts did not reach every Alertmanager in {}; they are in the state file and are sent at the next start", humantime::format_duration(SHUTDOWN_DELIVERY));
    } else {
        info!("state saved and alerts delivered; stopped");
    }
    served.map_err(|e| format!("serving {scheme}://{local}: {e}"))?;
    supervisor.failure().map_or(Ok(()), Err)
}

/// What the Kafka threads found, merged for the evaluation and the API.
#[derive(Clone)]
struct Merged {
    cluster: watch::Receiver<Arc<ClusterState>>,
    controllers: watch::Receiver<Option<checks::Controllers>>,
    probe: watch::Receiver<Option<Arc<crate::kafka::probe::ProbeFindings>>>,
}

impl Merged {
    fn borrow(&self) -> Arc<ClusterState> {
        let cluster = self.cluster.borrow().clone();
        let controllers = self.controllers.borrow().clone();
        let probe = self.probe.borrow().clone();
        if controllers.is_none() && probe.is_none() {
            return cluster;
        }
        Arc::new(ClusterState {
            controllers,
            probe,
            ..(*cluster).clone()
        })
    }
}

/// Evaluates every `evaluation_interval` until `stop`; returns the last
/// state to keep.
async fn evaluate_forever(
    mut evaluator: Evaluator,
    shared: Arc<Shared>,
    cluster: Merged,
    latest: watch::Sender<Option<Arc<Evaluation>>>,
    (persist, traffic): (
        watch::Sender<persister::Numbered>,
        watch::Sender<Option<TrafficHistory>>,
    ),
    mut stop: tokio::sync::oneshot::Receiver<()>,
) -> Persisted {
    let mut ticker = tokio::time::interval(shared.config.evaluation_interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut number = 0;
    let mut traffic_written = Instant::now();
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = &mut stop => {
                // With the reports taken since the last evaluation.
                let cluster = cluster.borrow().clone();
                traffic.send_replace(Some(evaluator.traffic_history(&cluster)));
                return evaluator.persisted(&shared.intake.lock().last_report, &cluster);
            }
        }
        let started = Instant::now();
        let cluster = cluster.borrow().clone();
        let (evaluation, persisted) = {
            let received = shared.intake.lock();
            let evaluation =
                evaluator.evaluate(&received.store, &received.last_report, &cluster, unix_now());
            let persisted = evaluator.persisted(&received.last_report, &cluster);
            (evaluation, persisted)
        };
        for (transition, summary) in &evaluation.transitions {
            info!(alert = %transition.id(), "{}: {summary}", transition.what());
        }
        shared.metrics.publish(evaluation.families.clone());
        shared
            .metrics
            .evaluation_duration
            .set(started.elapsed().as_secs_f64());
        number += 1;
        persist.send_replace(Some((number, persisted)));
        if traffic_written.elapsed() >= persister::TRAFFIC_WRITE_INTERVAL {
            traffic_written = Instant::now();
            traffic.send_replace(Some(evaluator.traffic_history(&cluster)));
        }
        latest.send_replace(Some(Arc::new(evaluation)));
    }
}
