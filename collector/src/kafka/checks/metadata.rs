//! The metadata (brokers, partitions, leaders, replicas, ISRs) every
//! `metadata_interval`, the topics' `min.insync.replicas` every
//! `topic_config_interval`, and the replication analysis of them.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use brokerwatch_common::exposition::{Column, Families};
use tracing::warn;

use super::{Check, ClusterState, Kafka, Metadata};
use crate::config::KafkaConfig;
use crate::model::replication::{analyze_moving, is_internal, BrokerReplication, ReplicationFacts};
use crate::model::topics::LeaderChanges;

pub struct MetadataCheck {
    config: KafkaConfig,
    /// For the topic configs, which change rarely.
    runtime: Option<tokio::runtime::Runtime>,
    min_insync: HashMap<String, u32>,
    configs_read_at: Option<Instant>,
    /// Whether the log says that no topic's minimum is known (once).
    said_no_min_insync: bool,
    leaders: LeaderChanges,
    /// The controllers' reading: the reassignments in flight.
    controllers: tokio::sync::watch::Receiver<Option<super::Controllers>>,
}

impl MetadataCheck {
    pub fn new(
        config: KafkaConfig,
        controllers: tokio::sync::watch::Receiver<Option<super::Controllers>>,
    ) -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| warn!("kafka: cannot start a runtime for admin requests: {e}; under-min-ISR partitions are not counted"))
            .ok();
        MetadataCheck {
            config,
            runtime,
            min_insync: HashMap::new(),
            configs_read_at: None,
            said_no_min_insync: false,
            leaders: LeaderChanges::default(),
            controllers,
        }
    }
}

impl Check for MetadataCheck {
    fn every(&self) -> Duration {
        self.config.metadata_interval
    }

    fn proves_reachable(&self) -> bool {
        true
    }

    fn run(&mut self, kafka: &mut Kafka, state: &mut ClusterState, now: f64) -> Result<(), String> {
        let mut snapshot = kafka.snapshot()?;
        let interval = self.config.topic_config_interval;
        if self
            .configs_read_at
            .is_none_or(|at| at.elapsed() >= interval)
        {
            // Asked again after topic_config_interval whether or not it
            // answered: a cluster without DescribeConfigs would otherwise
            // hold up every metadata refresh for a whole timeout.
            self.configs_read_at = Some(Instant::now());
            if let Some(runtime) = &self.runtime {
                let topics: Vec<String> = snapshot.topics.iter().map(|t| t.name.clone()).collect();
                match runtime.block_on(kafka.min_insync_replicas(&topics)) {
                    Ok(found) => {
                        if found.is_empty() && !topics.is_empty() && !self.said_no_min_insync {
                            warn!("kafka: DescribeConfigs gave no min.insync.replicas for any topic; under-min-ISR partitions are unknown (not 0) until it does");
                            self.said_no_min_insync = true;
                        }
                        self.min_insync = found;
                    }
                    Err(e) => warn!(
                        "{e}; under-min-ISR partitions are not counted; asking again in {}",
                        humantime::format_duration(interval)
                    ),
                }
            }
        }
        for topic in &mut snapshot.topics {
            topic.min_insync_replicas = self.min_insync.get(&topic.name).copied();
        }
        // Groups consume user topics: the offsets are asked for those only.
        let partitions = snapshot
            .topics
            .iter()
            .filter(|t| !is_internal(&t.name))
            .flat_map(|t| t.partitions.iter().map(move |p| (t.name.clone(), p.id)))
            .collect();
        let expected: BTreeSet<i32> = self
            .config
            .expected_brokers
            .union(&state.brokers_seen)
            .copied()
            .collect();
        // The controller's list of reassignments, where it gave one; else
        // extra replicas tell them.
        let moving = self
            .controllers
            .borrow()
            .as_ref()
            .and_then(super::Controllers::moving);
        let facts = analyze_moving(&snapshot, &expected, moving.as_ref());
        state.brokers_seen.extend(snapshot.brokers.iter().copied());
        self.leaders.observe(&snapshot, now);
        state.metadata = Some(Metadata {
            at: now,
            partitions: Arc::new(partitions),
            facts: Arc::new(facts),
            snapshot: Arc::new(snapshot),
            leaders: Arc::new(self.leaders.summary(now)),
        });
        Ok(())
    }
}

/// The replication series.
pub(super) fn expose(facts: &ReplicationFacts, f: &mut Families) {
    f.gauge(
        "brokerwatch_cluster_under_replicated_partitions",
        "Under-replicated partitions in the cluster.",
    )
    .value(facts.under_replicated as f64);
    f.gauge(
        "brokerwatch_reassigning_partitions",
        "Under-replicated partitions being reassigned (as the controller lists them, else by extra replicas): a reassignment's catch-up, expected.",
    )
    .value(facts.diagnosis.reassigning as f64);
    f.gauge(
        "brokerwatch_offline_partitions",
        "Partitions without a leader.",
    )
    .value(facts.offline as f64);
    if let Some(count) = facts.under_min_isr {
        f.gauge(
            "brokerwatch_under_min_isr_partitions",
            "Partitions with fewer in-sync replicas than min.insync.replicas (absent while no topic's is known).",
        )
        .value(count as f64);
    }
    let per_broker: [Column<BrokerReplication>; 5] = [
        (
            "brokerwatch_under_replicated_partitions",
            "Under-replicated partitions the broker leads (as Kafka's own metric counts them).",
            |b| b.under_replicated_led as f64,
        ),
        (
            "brokerwatch_broker_missing_from_isr_partitions",
            "Under-replicated partitions whose ISR lacks the broker.",
            |b| b.missing_from_isr as f64,
        ),
        (
            "brokerwatch_preferred_leader_imbalance_ratio",
            "Partitions preferring the broker but led elsewhere, over those preferring it.",
            |b| b.preferred_leader_imbalance_ratio(),
        ),
        (
            "brokerwatch_broker_partitions",
            "Replicas the broker hosts.",
            |b| b.partitions as f64,
        ),
        (
            "brokerwatch_broker_leaders",
            "Partitions the broker leads.",
            |b| b.leaders as f64,
        ),
    ];
    for (name, help, value) in per_broker {
        let mut family = f.gauge(name, help);
        for (broker, b) in &facts.brokers {
            family.add(&[("broker", &broker.to_string())], value(b));
        }
    }
    let mut in_metadata = f.gauge(
        "brokerwatch_broker_in_metadata",
        "1 when an expected broker (configured or seen before) is in the cluster's metadata, 0 when it is not.",
    );
    for broker in facts.brokers.keys() {
        in_metadata.add(&[("broker", &broker.to_string())], 1.0);
    }
    for broker in &facts.brokers_down {
        in_metadata.add(&[("broker", &broker.to_string())], 0.0);
    }
}
