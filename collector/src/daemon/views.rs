//! What the JSON API answers, as typed views of the latest evaluation.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::alerts::notify::rfc3339;
use crate::alerts::state::{AlertBook, Phase};
use crate::config::Config;
use crate::kafka::checks::ClusterState;

/// One alert of `GET /api/v1/alerts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertView {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub state: Phase,
    #[serde(rename = "activeSince")]
    pub active_since: String,
    #[serde(rename = "startsAt", skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<String>,
    #[serde(rename = "endsAt", skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<String>,
}

pub fn alert_views(book: &AlertBook) -> Vec<AlertView> {
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

/// `GET /api/v1/replication`: the latest analysis of the cluster's
/// metadata, or why there is none. Fields in name order, as clients have
/// always seen them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ReplicationView {
    Analysis(ReplicationAnalysis),
    Missing { error: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplicationAnalysis {
    pub age_seconds: f64,
    pub brokers: Vec<BrokerReplicationView>,
    pub brokers_down: Vec<i32>,
    pub error: Option<String>,
    pub explained_ratio: f64,
    pub offline: u64,
    pub partitions: u64,
    pub reassigning: u64,
    /// Older than three refreshes: shown for reference, alerts and series wait.
    pub stale: bool,
    pub suspects: Vec<(i32, u64)>,
    /// `null` when no topic's `min.insync.replicas` is known.
    pub under_min_isr: Option<u64>,
    pub under_replicated: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BrokerReplicationView {
    pub broker: i32,
    pub leaders: u64,
    pub missing_from_isr: u64,
    pub partitions: u64,
    pub preferred_leader_imbalance_ratio: f64,
    pub under_replicated_led: u64,
}

pub fn replication_view(config: &Config, cluster: &ClusterState, now: f64) -> ReplicationView {
    let Some(metadata) = &cluster.metadata else {
        return ReplicationView::Missing {
            error: cluster
                .error
                .clone()
                .unwrap_or_else(|| "no metadata yet (is [kafka] configured?)".into()),
        };
    };
    let facts = &metadata.facts;
    ReplicationView::Analysis(ReplicationAnalysis {
        age_seconds: now - metadata.at,
        stale: config
            .kafka
            .as_ref()
            .is_some_and(|k| now - metadata.at > k.metadata_stale_after()),
        error: cluster.error.clone(),
        partitions: facts.partitions,
        under_replicated: facts.under_replicated,
        offline: facts.offline,
        under_min_isr: facts.under_min_isr,
        brokers_down: facts.brokers_down.clone(),
        suspects: facts.diagnosis.suspects.clone(),
        explained_ratio: facts.diagnosis.explained_ratio,
        reassigning: facts.diagnosis.reassigning,
        brokers: facts
            .brokers
            .iter()
            .map(|(id, b)| BrokerReplicationView {
                broker: *id,
                partitions: b.partitions,
                leaders: b.leaders,
                preferred_leader_imbalance_ratio: b.preferred_leader_imbalance_ratio(),
                under_replicated_led: b.under_replicated_led,
                missing_from_isr: b.missing_from_isr,
            })
            .collect(),
    })
}

/// One broker of `GET /api/v1/brokers`: when the collector last heard from
/// it, and its latest report.
#[derive(Debug, Clone, Serialize)]
pub struct BrokerStatus {
    pub broker: i32,
    pub last_report: String,
    pub fresh: bool,
    pub report: Option<brokerwatch_common::Report>,
}
