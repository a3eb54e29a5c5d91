//! The collector daemon: report intake, the evaluation loop (load model,
//! rules, alert state, persistence, delivery), and the HTTP API.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use tokio::time::MissedTickBehavior;
use tracing::{error, info, warn};

use crate::alerts::notify::{rfc3339, Delivery, Notifier};
use crate::alerts::rules;
use crate::alerts::state::{Phase, Retention, Transition};
use crate::config::{Config, KafkaConfig};
use crate::ingest::{self, Limits};
use crate::kafka::Kafka;
use crate::metrics::CollectorMetrics;
use crate::model::cluster::{cluster_load, ClusterLoad};
use crate::model::lag::{evaluate_groups, GroupLag, Histories, Sample};
use crate::model::replication::{analyze, ReplicationFacts};
use crate::model::LoadView;
use crate::persist::{self, Persisted};
use crate::store::Store;

/// Unix seconds, read off the monotonic clock from the wall time at start:
/// a step of the system clock (NTP stepping after a VM resumes, someone's
/// `date -s`) must not make every agent look silent or fresh at once, nor
/// age the cluster's metadata by an hour. Within a run, durations are
/// monotonic; the wall time is taken again at the next start.
pub fn unix_now() -> f64 {
    static ANCHOR: std::sync::OnceLock<(Instant, f64)> = std::sync::OnceLock::new();
    let (at, wall) = ANCHOR.get_or_init(|| {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        (Instant::now(), wall)
    });
    wall + at.elapsed().as_secs_f64()
}

/// How long the last deliveries may take on shutdown (systemd waits 15 s).
const SHUTDOWN_DELIVERY: std::time::Duration = std::time::Duration::from_secs(5);

struct Inner {
    store: Store,
    state: Persisted,
    load: Option<ClusterLoad>,
    /// The latest replication analysis and when its metadata was taken.
    replication: Option<(f64, ReplicationFacts)>,
    /// The lag window of every watched (group, topic, partition).
    lag: Histories,
    /// The groups' verdicts as of the last evaluation.
    groups: Vec<GroupLag>,
    /// Why the last request to the cluster failed, while it does.
    kafka_error: Option<String>,
    /// When the consumer groups' offsets were last read (Unix seconds).
    offsets_at: Option<f64>,
    /// When this run started, for a cluster that never answered.
    started_at: f64,
    /// Whether the last write of the state file failed (to log once per change).
    state_write_failing: bool,
}

struct App {
    config: Config,
    state_path: PathBuf,
    inner: Mutex<Inner>,
    metrics: CollectorMetrics,
    notifier: Notifier,
}

type Shared = Arc<App>;

impl App {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Binds, restores the state, and runs until `shutdown` completes; the state
/// is written once more on the way out.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    let (listener, local) = brokerwatch_common::daemon::bind(config.listen).await?;
    let state_path = config.state_dir.join("state.json");
    let state = persist::load(&state_path).unwrap_or_else(|e| {
        error!("{e}");
        Persisted::default()
    });
    let firing = state.alerts.firing().count();
    let scheme = config.web.scheme();
    info!(cluster = %config.cluster, state = %state_path.display(), firing, "serving {scheme}://{local} (reports at /api/v1/reports)");

    let metrics = CollectorMetrics::new(&config.cluster);
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
    );
    notifier.publish(&state.alerts);
    let app = Arc::new(App {
        inner: Mutex::new(Inner {
            store: Store::new(config.window.as_secs_f64()),
            state,
            load: None,
            replication: None,
            lag: BTreeMap::new(),
            groups: Vec::new(),
            kafka_error: None,
            offsets_at: None,
            started_at: unix_now(),
            state_write_failing: false,
        }),
        state_path,
        metrics,
        notifier,
        config,
    });

    if let Some(kafka) = app.config.kafka.clone() {
        let poller = app.clone();
        std::thread::Builder::new()
            .name("kafka".into())
            .spawn(move || poll_kafka_forever(&poller, &kafka))
            .map_err(|e| format!("cannot start the Kafka thread: {e}"))?;
    }
    let evaluating = tokio::spawn(evaluate_forever(app.clone()));
    // Agents authenticate with their bearer token; the rest is read by
    // people and Prometheus, behind basic auth when it is configured.
    let web = app.config.web.clone();
    let router = web
        .with_basic_auth(
            Router::new()
                .route("/api/v1/load", get(load))
                .route("/api/v1/alerts", get(alerts))
                .route("/api/v1/brokers", get(brokers))
                .route("/api/v1/replication", get(replication))
                .route("/api/v1/consumergroups", get(consumer_groups))
                .route("/metrics", get(metrics_text))
                .route("/healthz", get(healthz)),
        )
        .route("/api/v1/reports", post(receive_report))
        .with_state(app.clone());
    let served = web.serve(listener, router, shutdown).await;
    evaluating.abort();
    {
        let inner = app.lock();
        if let Err(e) = persist::save(&app.state_path, &inner.state) {
            error!("on shutdown: {e}");
        }
        app.notifier.publish(&inner.state.alerts);
    }
    // Deliveries in flight finish, or give up after a bound: what did not
    // reach an Alertmanager is in the state file for the next start.
    let missed = app.notifier.flush(SHUTDOWN_DELIVERY).await;
    if missed > 0 {
        warn!(missed, "on shutdown: the latest alerts did not reach every Alertmanager in {}; they are in the state file and are sent at the next start", humantime::format_duration(SHUTDOWN_DELIVERY));
    } else {
        info!("state saved and alerts delivered; stopped");
    }
    served.map_err(|e| format!("serving {scheme}://{local}: {e}"))
}

async fn evaluate_forever(app: Shared) {
    let mut ticker = tokio::time::interval(app.config.evaluation_interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        evaluate(&app, unix_now());
    }
}

/// One evaluation: the load, the rules, the alert state, its file, the
/// metrics, and the set handed to the Alertmanager tasks.
fn evaluate(app: &App, now: f64) {
    let started = Instant::now();
    let config = &app.config;
    let mut guard = app.lock();
    let inner = &mut *guard;
    let known: BTreeSet<i32> = inner.state.last_report.keys().copied().collect();
    // Metadata older than three refreshes, and offsets older than three
    // fetches, are not reported as fresh: their alerts wait and their series
    // are withheld, and KafkaClusterUnreachable says why.
    let metadata_age = inner.replication.as_ref().map(|(at, _)| now - at);
    let kafka_health = config.kafka.as_ref().map(|kafka| {
        let stale_after = kafka.metadata_stale_after();
        let age = metadata_age.unwrap_or(now - inner.started_at);
        rules::KafkaHealth {
            stale_for_seconds: (age > stale_after).then_some(age),
            error: inner.kafka_error.clone(),
        }
    });
    let fresh_replication = kafka_health
        .as_ref()
        .filter(|health| health.stale_for_seconds.is_none())
        .and_then(|_| inner.replication.as_ref().map(|(_, facts)| facts));
    let offsets_fresh = inner
        .offsets_at
        .is_some_and(|at| now - at <= config.consumer_groups.offsets_stale_after());
    let load = cluster_load(config, &inner.store, &known, now, fresh_replication);
    inner.groups = if offsets_fresh {
        evaluate_groups(&inner.lag, &config.consumer_groups.rules)
    } else {
        Vec::new()
    };
    let mut verdicts = rules::verdicts(config, &load, &inner.store, &inner.state.last_report, now);
    verdicts.extend(rules::cluster_verdicts(
        config,
        kafka_health.as_ref(),
        fresh_replication,
        &inner.groups,
    ));
    let retention = Retention {
        unjudged_seconds: (config.window + config.broker_missing_after).as_secs_f64(),
        resolved_seconds: config.resolved_retention.as_secs_f64(),
    };
    for transition in inner.state.alerts.apply(verdicts, now, retention) {
        let (what, id) = match &transition {
            Transition::Pending(id) => ("pending", id),
            Transition::Fired(id) => ("firing", id),
            Transition::Resolved(id) => ("resolved", id),
        };
        let summary = inner
            .state
            .alerts
            .alerts
            .get(id)
            .and_then(|a| a.annotations.get("summary"))
            .cloned()
            .unwrap_or_default();
        info!(alert = %id, "{what}: {summary}");
    }
    match persist::save(&app.state_path, &inner.state) {
        Ok(()) => {
            if inner.state_write_failing {
                info!(state = %app.state_path.display(), "state file writable again");
            }
            inner.state_write_failing = false;
            app.metrics.state_writable.set(1);
        }
        Err(e) => {
            // Alerts keep flowing from memory; the write is retried next evaluation.
            if !inner.state_write_failing {
                error!("{e}; alerts keep being evaluated and delivered, the write is retried every evaluation");
            }
            inner.state_write_failing = true;
            app.metrics.state_write_errors.inc();
            app.metrics.state_writable.set(0);
        }
    }
    app.metrics
        .record(&load, &inner.state.last_report, &inner.state.alerts);
    app.metrics
        .record_cluster(metadata_age, fresh_replication, &inner.groups);
    app.metrics
        .evaluation_duration
        .set(started.elapsed().as_secs_f64());
    app.notifier.publish(&inner.state.alerts);
    inner.load = Some(load);
}

/// Reads the cluster on a thread of its own (librdkafka calls block): the
/// metadata every `metadata_interval`, topic configs every
/// `topic_config_interval`, consumer-group offsets every `fetch_interval`.
fn poll_kafka_forever(app: &App, settings: &KafkaConfig) {
    let groups_config = &app.config.consumer_groups;
    let mut kafka = match Kafka::new(settings.properties.clone(), settings.timeout) {
        Ok(kafka) => kafka,
        Err(e) => {
            error!("{e}; the collector goes on without the cluster's own state");
            app.lock().kafka_error = Some(e);
            return;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            error!("kafka: cannot start a runtime for admin requests: {e}");
            return;
        }
    };
    let mut min_insync: std::collections::HashMap<String, u32> = std::collections::HashMap::new();
    let mut configs_read_at: Option<Instant> = None;
    let mut partitions: Vec<crate::kafka::PartitionKey> = Vec::new();
    let mut next_metadata = Instant::now();
    let mut next_offsets = Instant::now();
    let mut failing: Option<String> = None;
    let mut report = |result: Result<(), String>| match (result, failing.is_some()) {
        (Ok(()), true) => {
            info!("kafka: the cluster answers again");
            failing = None;
            app.lock().kafka_error = None;
        }
        (Ok(()), false) => {}
        (Err(e), was_failing) => {
            if !was_failing {
                warn!("{e}; retrying, and alerts on the cluster's state wait for fresh metadata");
            }
            app.lock().kafka_error = Some(e.clone());
            failing = Some(e);
        }
    };
    loop {
        if Instant::now() >= next_metadata {
            next_metadata = Instant::now() + settings.metadata_interval;
            let result = kafka.snapshot().map(|mut snapshot| {
                let topics: Vec<String> = snapshot.topics.iter().map(|t| t.name.clone()).collect();
                if configs_read_at.is_none_or(|at| at.elapsed() >= settings.topic_config_interval) {
                    // Asked again after topic_config_interval whether or not it
                    // answered: a cluster without DescribeConfigs would otherwise
                    // hold up every metadata refresh for a whole timeout.
                    configs_read_at = Some(Instant::now());
                    match runtime.block_on(kafka.min_insync_replicas(&topics)) {
                        Ok(found) => min_insync = found,
                        Err(e) => warn!(
                            "{e}; under-min-ISR partitions are not counted; asking again in {}",
                            humantime::format_duration(settings.topic_config_interval)
                        ),
                    }
                }
                for topic in &mut snapshot.topics {
                    topic.min_insync_replicas = min_insync.get(&topic.name).copied();
                }
                partitions = snapshot
                    .topics
                    .iter()
                    .flat_map(|t| t.partitions.iter().map(move |p| (t.name.clone(), p.id)))
                    .collect();
                let expected: BTreeSet<i32> = {
                    let inner = app.lock();
                    settings
                        .expected_brokers
                        .union(&inner.state.kafka_brokers_seen)
                        .copied()
                        .collect()
                };
                let facts = analyze(&snapshot, &expected);
                let mut inner = app.lock();
                inner
                    .state
                    .kafka_brokers_seen
                    .extend(snapshot.brokers.iter().copied());
                inner.replication = Some((unix_now(), facts));
            });
            report(result);
        }
        if Instant::now() >= next_offsets {
            next_offsets = Instant::now() + groups_config.fetch_interval;
            let result = fetch_offsets(app, &mut kafka, &partitions);
            report(result);
        }
        let next = next_metadata.min(next_offsets);
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
}

/// One round of consumer-group offsets: the end offsets of every partition
/// in one request, then each watched group's committed offsets.
fn fetch_offsets(
    app: &App,
    kafka: &mut Kafka,
    partitions: &[crate::kafka::PartitionKey],
) -> Result<(), String> {
    let groups_config = &app.config.consumer_groups;
    let mut groups: BTreeSet<String> = groups_config.groups.iter().cloned().collect();
    match kafka.list_groups() {
        Ok(listed) => groups.extend(listed.into_iter().filter(|g| groups_config.watches(g))),
        // Some clusters and proxies do not answer ListGroups: the configured groups still count.
        Err(e) => tracing::debug!("{e}"),
    }
    if groups.is_empty() || partitions.is_empty() {
        return Ok(());
    }
    let ends: std::collections::HashMap<crate::kafka::PartitionKey, i64> =
        kafka.end_offsets(partitions)?.into_iter().collect();
    let at = unix_now();
    for group in &groups {
        let committed = kafka.committed(group, partitions)?;
        let mut inner = app.lock();
        for (key, offset) in committed {
            if let Some(&end) = ends.get(&key) {
                let sample = Sample {
                    at,
                    committed: offset,
                    end,
                };
                inner
                    .lag
                    .entry((group.clone(), key.0, key.1))
                    .or_default()
                    .record(sample, &groups_config.rules);
            }
        }
    }
    app.lock().offsets_at = Some(at);
    Ok(())
}

fn reject(app: &App, rejection: ingest::Rejection) -> Response {
    app.metrics
        .reports_rejected
        .with_label_values(&[rejection.reason])
        .inc();
    warn!(
        reason = rejection.reason,
        status = rejection.status,
        "report refused: {}",
        rejection.message
    );
    let status = StatusCode::from_u16(rejection.status).unwrap_or(StatusCode::BAD_REQUEST);
    (status, format!("{}\n", rejection.message)).into_response()
}

async fn receive_report(State(app): State<Shared>, request: Request<Body>) -> Response {
    let headers = request.headers();
    let tokens = (!app.config.allow_unauthenticated).then_some(app.config.tokens.as_slice());
    let authorization = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok());
    if let Err(rejection) = ingest::check_token(authorization, tokens) {
        return reject(&app, rejection);
    }
    let encoding = headers
        .get(CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = match axum::body::to_bytes(request.into_body(), app.config.max_body_bytes).await {
        Ok(body) => body,
        Err(_) => {
            return reject(
                &app,
                ingest::Rejection {
                    status: 413,
                    reason: "too_large",
                    message: format!(
                        "the body is over max_body_bytes ({} bytes)",
                        app.config.max_body_bytes
                    ),
                },
            )
        }
    };
    let limits = Limits {
        tokens,
        max_decoded_bytes: app.config.max_decoded_bytes,
    };
    match ingest::decode(&body, encoding.as_deref(), &limits) {
        Ok(report) => {
            let now = unix_now();
            let mut inner = app.lock();
            inner.state.last_report.insert(report.broker_id, now);
            inner.store.insert(report, now);
            app.metrics.reports_received.inc();
            StatusCode::ACCEPTED.into_response()
        }
        Err(rejection) => reject(&app, rejection),
    }
}

async fn load(State(app): State<Shared>) -> Json<LoadView> {
    let inner = app.lock();
    Json(LoadView {
        groups: inner
            .load
            .as_ref()
            .map(ClusterLoad::views)
            .unwrap_or_default(),
    })
}

#[derive(Serialize)]
struct AlertView {
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    state: Phase,
    #[serde(rename = "activeSince")]
    active_since: String,
    #[serde(rename = "startsAt", skip_serializing_if = "Option::is_none")]
    starts_at: Option<String>,
    #[serde(rename = "endsAt", skip_serializing_if = "Option::is_none")]
    ends_at: Option<String>,
}

async fn alerts(State(app): State<Shared>) -> Json<Vec<AlertView>> {
    Json(alert_views(&app.lock().state.alerts))
}

fn alert_views(book: &crate::alerts::state::AlertBook) -> Vec<AlertView> {
    book.alerts
        .values()
        .map(|a| AlertView {
            labels: a.labels.clone(),
            annotations: a.annotations.clone(),
            state: a.phase,
            active_since: rfc3339(a.active_since),
            starts_at: a.starts_at.map(rfc3339),
            ends_at: a.ends_at.map(rfc3339),
        })
        .collect()
}

#[derive(Serialize)]
struct BrokerStatus {
    broker: i32,
    last_report: String,
    fresh: bool,
    report: Option<brokerwatch_common::Report>,
}

/// What the collector holds per broker: when it last heard from it, and the latest report.
async fn brokers(State(app): State<Shared>) -> Json<Vec<BrokerStatus>> {
    let inner = app.lock();
    let now = unix_now();
    let missing_after = app.config.broker_missing_after.as_secs_f64();
    Json(
        inner
            .state
            .last_report
            .iter()
            .map(|(&broker, &at)| BrokerStatus {
                broker,
                last_report: rfc3339(at),
                fresh: inner.store.is_fresh(broker, now, missing_after),
                report: inner.store.get(broker).map(|e| e.latest.clone()),
            })
            .collect(),
    )
}

/// The latest replication analysis of the cluster's metadata.
async fn replication(State(app): State<Shared>) -> Json<serde_json::Value> {
    Json(replication_json(&app.config, &app.lock(), unix_now()))
}

fn replication_json(config: &Config, inner: &Inner, now: f64) -> serde_json::Value {
    match &inner.replication {
        None => {
            serde_json::json!({ "error": inner.kafka_error.clone().unwrap_or_else(|| "no metadata yet (is [kafka] configured?)".into()) })
        }
        Some((at, facts)) => serde_json::json!({
            "age_seconds": now - at,
            // Older than three refreshes: shown for reference, alerts and series wait.
            "stale": config.kafka.as_ref().is_some_and(|k| now - at > k.metadata_stale_after()),
            "error": inner.kafka_error,
            "partitions": facts.partitions,
            "under_replicated": facts.under_replicated,
            "offline": facts.offline,
            "under_min_isr": facts.under_min_isr,
            "brokers_down": facts.brokers_down,
            "suspects": facts.diagnosis.suspects,
            "explained_ratio": facts.diagnosis.explained_ratio,
            "reassigning": facts.diagnosis.reassigning,
            "brokers": facts.brokers.iter().map(|(id, b)| serde_json::json!({
                "broker": id,
                "partitions": b.partitions,
                "leaders": b.leaders,
                "preferred_leader_imbalance_ratio": b.preferred_leader_imbalance_ratio(),
                "under_replicated_led": b.under_replicated_led,
                "missing_from_isr": b.missing_from_isr,
            })).collect::<Vec<_>>(),
        }),
    }
}

/// Each watched group's status and lag, as of the last evaluation.
async fn consumer_groups(State(app): State<Shared>) -> Json<Vec<GroupLag>> {
    Json(app.lock().groups.clone())
}

async fn metrics_text(State(app): State<Shared>) -> impl IntoResponse {
    // Under the lock: an evaluation replaces the series as one step.
    let text = {
        let _inner = app.lock();
        app.metrics.encode()
    };
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        text,
    )
}

async fn healthz(State(app): State<Shared>) -> impl IntoResponse {
    let inner = app.lock();
    if inner.state_write_failing {
        (
            StatusCode::OK,
            "ok, but the state file cannot be written: see the log\n",
        )
    } else {
        (StatusCode::OK, "ok\n")
    }
}

#[cfg(test)]
#[path = "../tests/golden/input.rs"]
mod golden_input;

#[cfg(test)]
mod golden {
    use super::*;
    use crate::model::lag::PartitionHistory;
    use crate::model::replication::{PartitionMeta, Snapshot, TopicMeta};

    use super::golden_input as input;

    fn snapshot() -> Snapshot {
        let (brokers, topics) = input::snapshot();
        Snapshot {
            brokers,
            topics: topics
                .into_iter()
                .map(|(name, min_insync_replicas, partitions)| TopicMeta {
                    name,
                    min_insync_replicas,
                    partitions: partitions
                        .into_iter()
                        .map(|(id, leader, replicas, isr)| PartitionMeta {
                            id,
                            leader,
                            replicas,
                            isr,
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    /// Writes the golden files from this code (BLESS=1), or checks them.
    #[test]
    fn views_match_the_golden_files() {
        let dir = tempfile::tempdir().unwrap();
        let text = input::config(dir.path());
        let config =
            crate::config::from_toml_text(&text, "golden", &crate::config::Flags::default())
                .unwrap();
        let metrics = CollectorMetrics::new(&config.cluster);
        let notifier = Notifier::start(
            &[],
            Delivery {
                client: reqwest::Client::new(),
                resend: config.resend_interval,
                generator_url: String::new(),
                posts: metrics.alertmanager_posts.clone(),
                dropped: metrics.alertmanager_dropped.clone(),
            },
        );
        let app = App {
            inner: Mutex::new(Inner {
                store: Store::new(config.window.as_secs_f64()),
                state: Persisted::default(),
                load: None,
                replication: None,
                lag: BTreeMap::new(),
                groups: Vec::new(),
                kafka_error: None,
                offsets_at: None,
                started_at: input::START,
                state_write_failing: false,
            }),
            state_path: dir.path().join("state.json"),
            metrics,
            notifier,
            config,
        };
        let offsets = input::offsets();
        let mut step = 0;
        let mut now = input::START;
        while now <= input::END {
            {
                let mut inner = app.lock();
                for broker in input::reporting(step) {
                    inner.state.last_report.insert(broker, now - 1.0);
                    inner.store.insert(input::report(broker, step), now - 1.0);
                }
                let expected: BTreeSet<i32> = app
                    .config
                    .kafka
                    .as_ref()
                    .unwrap()
                    .expected_brokers
                    .union(&inner.state.kafka_brokers_seen)
                    .copied()
                    .collect();
                let snapshot = snapshot();
                let facts = analyze(&snapshot, &expected);
                inner
                    .state
                    .kafka_brokers_seen
                    .extend(snapshot.brokers.iter().copied());
                inner.replication = Some((now - input::METADATA_AGE, facts));
                let mut histories = BTreeMap::new();
                for ((group, topic, partition), samples) in &offsets {
                    let history: &mut PartitionHistory = histories
                        .entry((group.clone(), topic.clone(), *partition))
                        .or_default();
                    for (at, committed, end) in samples.iter().filter(|s| s.0 <= now) {
                        history.record(
                            Sample {
                                at: *at,
                                committed: *committed,
                                end: *end,
                            },
                            &app.config.consumer_groups.rules,
                        );
                    }
                }
                inner.lag = histories;
                inner.offsets_at = Some(now - 1.0);
            }
            evaluate(&app, now);
            step += 1;
            now += 60.0;
        }
        let inner = app.lock();
        let load = serde_json::to_string(&LoadView {
            groups: inner
                .load
                .as_ref()
                .map(ClusterLoad::views)
                .unwrap_or_default(),
        })
        .unwrap();
        let alerts = serde_json::to_string(&alert_views(&inner.state.alerts)).unwrap();
        let replication =
            serde_json::to_string(&replication_json(&app.config, &inner, input::END)).unwrap();
        let golden = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
        for (name, actual) in [
            ("load.json", load),
            ("alerts.json", alerts),
            ("replication.json", replication),
        ] {
            let path = golden.join(name);
            if std::env::var_os("BLESS").is_some() {
                std::fs::create_dir_all(&golden).unwrap();
                std::fs::write(&path, &actual).unwrap();
            }
            let expected = std::fs::read_to_string(&path).unwrap();
            assert_eq!(actual, expected, "{name} differs from the golden file");
        }
    }
}
