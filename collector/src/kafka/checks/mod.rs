//! What the collector asks the cluster itself, as checks: each asks on its
//! own schedule, makes sense of the answers, and writes its findings into
//! the [`ClusterState`] the poller publishes to the evaluator, with the
//! series they give. Adding a check: its file here, its field and its entry
//! below.

pub mod controllers;
mod metadata;
mod offsets;
pub mod topics;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use brokerwatch_common::exposition::Families;

use super::Kafka;
use crate::config::Config;
use crate::model::lag::GroupLag;
use crate::model::replication::{ReplicationFacts, Snapshot};
use crate::model::topics::{LeaderSummary, TopicMemory, TopicsFacts};

pub use controllers::{Controllers, ControllersCheck};
pub use metadata::MetadataCheck;
pub use offsets::OffsetsCheck;
pub use topics::TopicsCheck;

/// One thing the collector asks the cluster, on its own schedule.
pub trait Check: Send {
    /// How often it asks.
    fn every(&self) -> Duration;
    /// Whether its success shows the cluster answers (the metadata does;
    /// a check with nothing to ask does not).
    fn proves_reachable(&self) -> bool {
        false
    }
    /// One round: asks the cluster (blocking calls with timeouts) and writes
    /// what it found into `state`; `now` is the collector's clock.
    fn run(&mut self, kafka: &mut Kafka, state: &mut ClusterState, now: f64) -> Result<(), String>;
}

/// The checks of a config, in the order they run when due together (the
/// metadata first: the others read its partitions; the topics before the
/// groups, which read the end offsets it read); `topics` is what an earlier
/// run remembered of each topic; `controllers` gives the metadata the
/// reassignments in flight.
pub fn checks(
    config: &Config,
    topics: BTreeMap<String, TopicMemory>,
    controllers: tokio::sync::watch::Receiver<Option<Controllers>>,
) -> Vec<Box<dyn Check>> {
    let Some(kafka) = &config.kafka else {
        return Vec::new();
    };
    vec![
        Box::new(MetadataCheck::new(kafka.clone(), controllers)),
        Box::new(TopicsCheck::new(
            config.consumer_groups.fetch_interval,
            topics,
        )),
        Box::new(OffsetsCheck::new(config.consumer_groups.clone())),
    ]
}

/// The cluster replication analysis, as of one metadata snapshot.
#[derive(Debug, Clone)]
pub struct Metadata {
    /// When the metadata was taken (Unix seconds).
    pub at: f64,
    /// `(topic, partition)` of every partition, for the offsets.
    pub partitions: Arc<Vec<(String, i32)>>,
    pub facts: Arc<ReplicationFacts>,
    /// The metadata as it came (with each topic's `min.insync.replicas`).
    pub snapshot: Arc<Snapshot>,
    /// Leader changes between snapshots.
    pub leaders: Arc<LeaderSummary>,
}

/// Every partition's end offset, as of one round.
#[derive(Debug, Clone)]
pub struct EndOffsets {
    pub at: f64,
    pub offsets: Arc<Vec<(crate::kafka::PartitionKey, i64)>>,
}

/// Every topic, as of one round of end offsets.
#[derive(Debug, Clone)]
pub struct Topics {
    pub at: f64,
    pub facts: Arc<TopicsFacts>,
    /// What to remember of each topic across a restart.
    pub memory: Arc<BTreeMap<String, TopicMemory>>,
}

/// The watched groups' lag, as of one fetch of their offsets.
#[derive(Debug, Clone)]
pub struct Groups {
    pub at: f64,
    pub lag: Arc<Vec<GroupLag>>,
    /// Groups the cluster stopped reporting lately: their alerts resolve.
    pub gone: Vec<String>,
    /// Each group's lag in messages at its last rounds, oldest first (the
    /// status page's sparklines).
    pub history: Arc<BTreeMap<String, Vec<i64>>>,
    /// Each group's state and members, as the cluster describes it (where
    /// it answers ListGroups).
    pub described: Arc<BTreeMap<String, GroupDescription>>,
}

/// A group's state and members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    pub state: String,
    pub members: usize,
}

/// What the checks found so far. Cheap to clone (the poller publishes a
/// copy after every round).
#[derive(Debug, Clone, Default)]
pub struct ClusterState {
    pub metadata: Option<Metadata>,
    pub groups: Option<Groups>,
    pub topics: Option<Topics>,
    /// The last round's end offsets, for the groups' lag.
    pub ends: Option<EndOffsets>,
    /// The quorum, the reassignments and the brokers' log dirs (read on a
    /// thread of their own, merged in for the evaluation).
    pub controllers: Option<Controllers>,
    /// The end-to-end probe's findings (likewise).
    pub probe: Option<Arc<crate::kafka::probe::ProbeFindings>>,
    /// Brokers ever seen in the metadata: one that disappears is down.
    pub brokers_seen: BTreeSet<i32>,
    /// Why the last request to the cluster failed, while it does.
    pub error: Option<String>,
}

impl ClusterState {
    /// The checks' series from fresh findings only (`fresh_metadata`,
    /// `fresh_groups`, `fresh_topics` with their settings): the metadata's
    /// age whenever there is one.
    pub fn expose(
        &self,
        families: &mut Families,
        now: f64,
        fresh_metadata: bool,
        fresh_groups: bool,
        fresh_topics: Option<&crate::config::TopicsConfig>,
    ) {
        if let Some(metadata) = &self.metadata {
            families
                .gauge(
                    "brokerwatch_kafka_metadata_age_seconds",
                    "Age of the metadata the replication figures come from.",
                )
                .value(now - metadata.at);
            if fresh_metadata {
                metadata::expose(&metadata.facts, families);
            }
        }
        if let Some(groups) = self.groups.as_ref().filter(|_| fresh_groups) {
            offsets::expose(groups, families);
        }
        if let Some(found) = &self.controllers {
            controllers::expose(found, families, now);
        }
        if let Some(found) = &self.probe {
            crate::kafka::probe::expose(found, families, now);
        }
        if let (Some(topics), Some(settings)) = (&self.topics, fresh_topics) {
            topics::expose(&topics.facts, settings, families, now);
        }
    }
}
