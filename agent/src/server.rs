//! The agent's HTTP side and its main loop: collect every interval, serve
//! the latest cycle on `/metrics` and the latest report on `/api/v1/report`.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use brokerwatch_common::config::redact_url;
use brokerwatch_common::daemon::Supervisor;
use brokerwatch_common::outage::Outage;
use brokerwatch_common::{codec, Report, SCHEMA_VERSION};
use tokio::time::MissedTickBehavior;
use tracing::{info, warn};

use crate::config::Config;
use crate::host::Host;
use crate::metrics::AgentMetrics;
use crate::push::{push_forever, Destination, Outbox};

/// How long buffered reports may take to reach the collector on shutdown.
const SHUTDOWN_DELIVERY: Duration = Duration::from_secs(5);

#[derive(Clone)]
struct Shared {
    metrics: AgentMetrics,
    latest_report: Arc<Mutex<Option<Report>>>,
    supervisor: Supervisor,
}

/// Binds the listener, then collects `host` and serves until `shutdown`
/// completes.
pub async fn run(
    config: Config,
    host: Host,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    let (listener, local) = brokerwatch_common::daemon::bind(config.listen).await?;
    let scheme = config.web.scheme();
    info!(broker_id = config.broker_id, from = %config.broker_id_from, interval = %humantime::format_duration(config.interval), "serving {scheme}://{local}/metrics");
    let supervisor = Supervisor::default();
    let shared = Shared {
        metrics: AgentMetrics::new(config.broker_id, &host.names()),
        latest_report: Arc::new(Mutex::new(None)),
        supervisor: supervisor.clone(),
    };
    // One buffer and one task per collector: a pair's members each get
    // every report, and one down delays nothing to the other.
    let mut outboxes = Vec::new();
    if !config.collectors.is_empty() {
        let client = config
            .collector_tls
            .client(config.interval.max(Duration::from_secs(5)))
            .map_err(|e| format!("cannot build the HTTP client for the collector: {e}"))?;
        for url in &config.collectors {
            let shown = redact_url(url);
            let outbox = Outbox::new(config.report_buffer, shared.metrics.push_counters(&shown));
            let destination = Destination {
                url: url.clone(),
                token: config.collector_token.clone(),
                client: client.clone(),
            };
            info!(collector = %shown, buffer = config.report_buffer, token = destination.token.is_some(), "pushing reports");
            supervisor.spawn("push", push_forever(destination, outbox.clone()));
            outboxes.push(outbox);
        }
    }
    let web = config.web.clone();
    let outboxes_at_exit = outboxes.clone();
    let (stop_collecting, collecting_stopped) = tokio::sync::oneshot::channel();
    supervisor.spawn(
        "collect",
        collect_forever(config, host, shared.clone(), outboxes, collecting_stopped),
    );
    let app = web.with_basic_auth(
        Router::new()
            .route("/metrics", get(metrics))
            .route("/api/v1/report", get(report))
            .route("/healthz", get(healthz))
            .route("/", get(index))
            .with_state(shared),
    );
    let failed = supervisor.failed();
    let stop = async move {
        tokio::select! {
            () = shutdown => {}
            () = failed => {}
        }
    };
    let served = web.serve(listener, app, stop).await;
    supervisor.stopping();
    let _ = stop_collecting.send(());
    if !outboxes_at_exit.is_empty() {
        // Reports in flight or buffered get a last chance to reach the collectors.
        let backlog = || outboxes_at_exit.iter().map(Outbox::backlog).sum::<usize>();
        let deadline = Instant::now() + SHUTDOWN_DELIVERY;
        while backlog() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        match backlog() {
            0 => info!("every report delivered; stopped"),
            left => warn!(
                left,
                "on shutdown: reports the collector did not take in {} are dropped",
                humantime::format_duration(SHUTDOWN_DELIVERY)
            ),
        }
    }
    served.map_err(|e| format!("serving {scheme}://{local}: {e}"))?;
    supervisor.failure().map_or(Ok(()), Err)
}

async fn collect_forever(
    config: Config,
    mut host: Host,
    shared: Shared,
    outboxes: Vec<Outbox>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    let mut ticker = tokio::time::interval(config.interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut failing: BTreeMap<&'static str, Outage> = BTreeMap::new();
    let mut previous_start: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = &mut stop => return,
        }
        let started = Instant::now();
        host.fetch().await;
        let cycle = host.collect(Instant::now());

        // Log once per state change, not once per cycle: a missing file
        // would otherwise fill the journal every 10 seconds.
        for source in host.names() {
            let outage = failing.entry(source).or_default();
            match cycle.errors.iter().find(|(s, _)| *s == source) {
                Some((_, error)) => {
                    if outage.failed(error.to_string()) {
                        warn!(source, "source failing: {error}");
                    }
                }
                None => {
                    if outage.recovered() {
                        info!(source, "source recovered");
                    }
                }
            }
        }
        let failed: Vec<&str> = cycle.errors.iter().map(|(source, _)| *source).collect();
        shared
            .metrics
            .record_cycle(&host, started.elapsed().as_secs_f64(), &failed);

        if let Some(previous) = previous_start {
            let report = Report {
                schema_version: SCHEMA_VERSION,
                broker_id: config.broker_id,
                agent_version: env!("CARGO_PKG_VERSION").to_owned(),
                timestamp_ms: SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as u64),
                interval_seconds: started.duration_since(previous).as_secs_f64(),
                host: cycle.report,
            };
            if !outboxes.is_empty() {
                let body = codec::encode(&report);
                for outbox in &outboxes {
                    outbox.queue(body.clone());
                }
            }
            *shared
                .latest_report
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(report);
        }
        previous_start = Some(started);
    }
}

async fn metrics(State(shared): State<Shared>) -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        shared.metrics.exposition(),
    )
}

async fn report(State(shared): State<Shared>) -> impl IntoResponse {
    let latest = shared
        .latest_report
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    match latest {
        Some(report) => Json(report).into_response(),
        None => (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "no report yet: the first one is ready one interval after start\n",
        )
            .into_response(),
    }
}

async fn healthz(State(shared): State<Shared>) -> impl IntoResponse {
    match shared.supervisor.failure() {
        Some(failure) => (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            format!("unhealthy: {failure}; the agent is stopping\n"),
        ),
        None => (axum::http::StatusCode::OK, "ok\n".to_owned()),
    }
}

async fn index() -> &'static str {
    "brokerwatch-agent\n\n/metrics         Prometheus metrics\n/api/v1/report   the latest interval report (JSON)\n/healthz         ok, or 503 naming the task that failed\n"
}
