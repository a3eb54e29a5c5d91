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
use brokerwatch_common::outage::Outage;
use brokerwatch_common::{Report, SCHEMA_VERSION};
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
}

/// Binds the listener, then collects and serves until `shutdown` completes.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    let (listener, local) = brokerwatch_common::daemon::bind(config.listen).await?;
    let scheme = config.web.scheme();
    info!(broker_id = config.broker_id, interval = %humantime::format_duration(config.interval), "serving {scheme}://{local}/metrics");
    let host = Host::from_config(&config);
    let shared = Shared {
        metrics: AgentMetrics::new(config.broker_id, &host.names()),
        latest_report: Arc::new(Mutex::new(None)),
    };
    let outbox = config.collector.as_ref().map(|url| {
        let outbox = Outbox::new(config.report_buffer, shared.metrics.push_counters());
        let destination = Destination {
            url: url.clone(),
            token: config.collector_token.clone(),
            timeout: config.interval.max(Duration::from_secs(5)),
            tls: config.collector_tls.clone(),
        };
        info!(collector = %url, buffer = config.report_buffer, token = destination.token.is_some(), "pushing reports");
        tokio::spawn(push_forever(destination, outbox.clone()));
        outbox
    });
    let web = config.web.clone();
    let outbox_at_exit = outbox.clone();
    let collecting = tokio::spawn(collect_forever(config, host, shared.clone(), outbox));
    let app = web.with_basic_auth(
        Router::new()
            .route("/metrics", get(metrics))
            .route("/api/v1/report", get(report))
            .route("/", get(index))
            .with_state(shared),
    );
    let served = web.serve(listener, app, shutdown).await;
    collecting.abort();
    if let Some(outbox) = &outbox_at_exit {
        // Reports in flight or buffered get a last chance to reach the collector.
        let deadline = Instant::now() + SHUTDOWN_DELIVERY;
        while outbox.backlog() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        match outbox.backlog() {
            0 => info!("every report delivered; stopped"),
            left => warn!(
                left,
                "on shutdown: reports the collector did not take in {} are dropped",
                humantime::format_duration(SHUTDOWN_DELIVERY)
            ),
        }
    }
    served.map_err(|e| format!("serving {scheme}://{local}: {e}"))
}

async fn collect_forever(config: Config, mut host: Host, shared: Shared, outbox: Option<Outbox>) {
    let mut ticker = tokio::time::interval(config.interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut failing: BTreeMap<&'static str, Outage> = BTreeMap::new();
    let mut previous_start: Option<Instant> = None;
    loop {
        ticker.tick().await;
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
            if let Some(outbox) = &outbox {
                outbox.queue(&report);
                shared.metrics.set_report_backlog(outbox.backlog());
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

async fn index() -> &'static str {
    "brokerwatch-agent\n\n/metrics         Prometheus metrics\n/api/v1/report   the latest interval report (JSON)\n"
}
