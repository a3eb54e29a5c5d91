//! What the JSON API answers, as typed views of the latest evaluation.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::alerts::notify::rfc3339;
use crate::alerts::state::{AlertBook, Phase};
use crate::config::Config;
use crate::kafka::checks::ClusterState;

use super::Evaluation;

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

/// One topic of `GET /api/v1/topics` (and, with its partitions,
/// `GET /api/v1/topics/{topic}`), as of the last round of end offsets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopicView {
    pub topic: String,
    pub internal: bool,
    pub partitions: usize,
    pub replication_factor: usize,
    pub min_insync_replicas: Option<u32>,
    /// Brokers holding its replicas and leading its partitions, of the
    /// brokers in the cluster.
    pub replica_brokers: usize,
    pub leader_brokers: usize,
    pub brokers: usize,
    /// `null` until two reads of its end offsets.
    pub records_per_second: Option<f64>,
    pub records_produced_since_start: u64,
    /// From the agents (`null` without them): bytes in and out per second
    /// over its brokers, and bytes held by every replica.
    pub bytes_in_per_second: Option<f64>,
    pub bytes_out_per_second: Option<f64>,
    pub size_bytes: Option<u64>,
    /// `null`: no record seen since brokerwatch first saw it.
    pub last_message_at: Option<String>,
    pub quiet_seconds: f64,
    pub no_traffic: bool,
    /// The hottest partition over the mean per partition.
    pub skew_ratio: Option<f64>,
    pub leader_changes: u64,
    /// The topic's alerts pending or firing now.
    pub alerts: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition_details: Option<Vec<PartitionView>>,
    /// Its largest and fastest-written partitions, as the agents name them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub large_partitions: Option<Vec<LargePartitionView>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LargePartitionView {
    pub partition: i32,
    pub broker: i32,
    pub log_dir: String,
    pub size_bytes: u64,
    pub written_bytes_per_day: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartitionView {
    pub partition: i32,
    /// -1 without a leader.
    pub leader: i32,
    pub end_offset: Option<i64>,
    /// Smoothed over about five minutes.
    pub records_per_second: Option<f64>,
}

/// `GET /api/v1/topics`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopicsView {
    /// Age of the end offsets the figures come from (`null`: none yet).
    pub age_seconds: Option<f64>,
    /// The busiest first.
    pub topics: Vec<TopicView>,
}

/// Every topic (`flag`: `no_traffic`, or an alert name, keeps those with it;
/// `topic`: that one, with its partitions).
pub fn topics_view(
    config: &Config,
    cluster: &ClusterState,
    evaluation: Option<&Evaluation>,
    book: &AlertBook,
    now: f64,
    (flag, topic): (Option<&str>, Option<&str>),
) -> TopicsView {
    let on_brokers = evaluation.map(|e| &*e.topics_on_brokers);
    let large = evaluation.map_or(&[][..], |e| &e.large_partitions[..]);
    let Some(topics) = &cluster.topics else {
        return TopicsView {
            age_seconds: None,
            topics: Vec::new(),
        };
    };
    let mut alerts: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for alert in book
        .alerts
        .values()
        .filter(|a| matches!(a.phase, Phase::Pending | Phase::Firing))
    {
        if let Some(t) = alert.labels.get("topic") {
            alerts
                .entry(t.as_str())
                .or_default()
                .push(alert.labels["alertname"].clone());
        }
    }
    let after = config.topics.no_traffic_after.as_secs_f64();
    let facts = &topics.facts;
    let mut views: Vec<TopicView> = facts
        .topics
        .iter()
        .filter(|t| topic.is_none_or(|name| t.topic == name))
        .map(|t| {
            let quiet = now - t.quiet_since();
            let mut flagged = alerts.get(t.topic.as_str()).cloned().unwrap_or_default();
            flagged.sort();
            flagged.dedup();
            TopicView {
                topic: t.topic.clone(),
                internal: t.internal,
                partitions: t.partitions.len(),
                replication_factor: t.replication_factor,
                min_insync_replicas: t.min_insync_replicas,
                replica_brokers: t.replica_brokers,
                leader_brokers: t.leader_brokers,
                brokers: facts.brokers,
                records_per_second: t.records_per_second,
                records_produced_since_start: t.produced_total,
                bytes_in_per_second: on_brokers
                    .and_then(|o| o.get(&t.topic))
                    .and_then(|o| o.bytes_in_per_second),
                bytes_out_per_second: on_brokers
                    .and_then(|o| o.get(&t.topic))
                    .and_then(|o| o.bytes_out_per_second),
                size_bytes: on_brokers
                    .and_then(|o| o.get(&t.topic))
                    .and_then(|o| o.size_bytes),
                last_message_at: t.last_message_at.map(rfc3339),
                quiet_seconds: quiet,
                no_traffic: !t.internal && quiet >= after,
                skew_ratio: t.skew_ratio(),
                leader_changes: t.leader_changes_total,
                alerts: flagged,
                partition_details: topic.map(|_| {
                    t.partitions
                        .iter()
                        .map(|p| PartitionView {
                            partition: p.partition,
                            leader: p.leader,
                            end_offset: p.end_offset,
                            records_per_second: p.records_per_second,
                        })
                        .collect()
                }),
                large_partitions: topic.map(|_| {
                    large
                        .iter()
                        .filter(|p| p.size.topic == t.topic)
                        .map(|p| LargePartitionView {
                            partition: p.size.partition,
                            broker: p.broker,
                            log_dir: p.log_dir.clone(),
                            size_bytes: p.size.size_bytes,
                            written_bytes_per_day: p.size.written_bytes_per_day,
                        })
                        .collect()
                }),
            }
        })
        .filter(|v| match flag {
            None => true,
            Some("no_traffic") => v.no_traffic,
            Some(alert) => v.alerts.iter().any(|a| a == alert),
        })
        .collect();
    views.sort_by(|a, b| {
        b.records_per_second
            .unwrap_or(0.0)
            .total_cmp(&a.records_per_second.unwrap_or(0.0))
            .then_with(|| a.topic.cmp(&b.topic))
    });
    TopicsView {
        age_seconds: Some(now - topics.at),
        topics: views,
    }
}
