//! The collector's HTTP side: report intake, and the JSON API, `/metrics`
//! and `/healthz`, which read the latest published evaluation (and the
//! store, for the brokers' freshness) without waiting on anything else.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};

use super::intake::receive_report;
use super::page::{self, AgentRow, PageInput};
use super::views::{
    alert_views, replication_view, topics_view, AlertView, BrokerStatus, ReplicationView,
    TopicsView,
};
use super::Shared;
use crate::alerts::notify::rfc3339;
use crate::clock::unix_now;
use crate::model::lag::GroupLag;
use crate::model::LoadView;

pub fn router(shared: Arc<Shared>) -> Router {
    // Agents authenticate with their bearer token; the rest is read by
    // people and Prometheus, behind basic auth when it is configured.
    shared
        .config
        .web
        .with_basic_auth(
            Router::new()
                .route("/api/v1/load", get(load))
                .route("/api/v1/alerts", get(alerts))
                .route("/api/v1/brokers", get(brokers))
                .route("/api/v1/replication", get(replication))
                .route("/api/v1/consumergroups", get(consumer_groups))
                .route("/api/v1/topics", get(topics))
                .route("/api/v1/topics/{topic}", get(topic))
                .route("/", get(status_page))
                .route("/metrics", get(metrics_text))
                .route("/healthz", get(healthz)),
        )
        .route("/api/v1/reports", post(receive_report))
        .with_state(shared)
}

async fn load(State(shared): State<Arc<Shared>>) -> Json<LoadView> {
    let groups = shared
        .latest
        .borrow()
        .as_ref()
        .map(|e| e.load.views())
        .unwrap_or_default();
    Json(LoadView { groups })
}

async fn alerts(State(shared): State<Arc<Shared>>) -> Json<Vec<AlertView>> {
    let latest = shared.latest.borrow().clone();
    Json(latest.map_or_else(|| alert_views(&shared.restored), |e| alert_views(&e.alerts)))
}

/// What the collector holds per broker: when it last heard from it, and the latest report.
async fn brokers(State(shared): State<Arc<Shared>>) -> Json<Vec<BrokerStatus>> {
    let received = shared.intake.lock();
    let now = unix_now();
    let missing_after = shared.config.broker_missing_after.as_secs_f64();
    Json(
        received
            .last_report
            .iter()
            .map(|(&broker, &at)| BrokerStatus {
                broker,
                last_report: rfc3339(at),
                fresh: received.store.is_fresh(broker, now, missing_after),
                report: received.store.get(broker).map(|e| e.latest.clone()),
            })
            .collect(),
    )
}

async fn replication(State(shared): State<Arc<Shared>>) -> Json<ReplicationView> {
    let cluster = shared.cluster.borrow().clone();
    Json(replication_view(&shared.config, &cluster, unix_now()))
}

/// Each watched group's status and lag, as of the last evaluation.
async fn consumer_groups(State(shared): State<Arc<Shared>>) -> Json<Vec<GroupLag>> {
    let latest = shared.latest.borrow().clone();
    Json(latest.map(|e| e.groups.to_vec()).unwrap_or_default())
}

#[derive(serde::Deserialize)]
struct TopicsQuery {
    /// `no_traffic`, or an alert name.
    flag: Option<String>,
}

/// Every topic as of the last round of end offsets, the busiest first.
async fn topics(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<TopicsQuery>,
) -> Json<TopicsView> {
    Json(topics_of(&shared, query.flag.as_deref(), None))
}

/// One topic, with its partitions (404 for a topic the cluster does not have).
async fn topic(
    State(shared): State<Arc<Shared>>,
    Path(topic): Path<String>,
) -> Result<Json<TopicsView>, (StatusCode, String)> {
    let view = topics_of(&shared, None, Some(&topic));
    if view.topics.is_empty() {
        return Err((
            StatusCode::NOT_FOUND,
            format!(
                "no topic {} in the last round of end offsets\n",
                brokerwatch_common::config::quote_limited(&topic)
            ),
        ));
    }
    Ok(Json(view))
}

fn topics_of(shared: &Shared, flag: Option<&str>, topic: Option<&str>) -> TopicsView {
    let cluster = shared.cluster.borrow().clone();
    let latest = shared.latest.borrow().clone();
    let book = latest.as_ref().map_or(&shared.restored, |e| &e.alerts);
    topics_view(
        &shared.config,
        &cluster,
        latest.as_deref(),
        book,
        unix_now(),
        (flag, topic),
    )
}

/// The status page, from the latest evaluation and the agents' freshness.
async fn status_page(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    let now = unix_now();
    let missing_after = shared.config.broker_missing_after.as_secs_f64();
    let agents: Vec<AgentRow> = {
        let received = shared.intake.lock();
        received
            .last_report
            .iter()
            .map(|(&broker, &at)| AgentRow {
                broker,
                last_report: at,
                fresh: received.store.is_fresh(broker, now, missing_after),
            })
            .collect()
    };
    let latest = shared.latest.borrow().clone();
    let page = page::render(&PageInput {
        config: &shared.config,
        evaluation: latest.as_deref(),
        agents: &agents,
        now,
    });
    ([(CONTENT_TYPE, "text/html; charset=utf-8")], page)
}

async fn metrics_text(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        shared.metrics.encode(),
    )
}

async fn healthz(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    if let Some(failure) = shared.supervisor.failure() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("unhealthy: {failure}; the collector is stopping\n"),
        )
    } else if shared.state_write_failing.load(Ordering::Relaxed) {
        (
            StatusCode::OK,
            "ok, but the state file cannot be written: see the log\n".to_owned(),
        )
    } else {
        (StatusCode::OK, "ok\n".to_owned())
    }
}
