//! Topics every `fetch_interval`: the end offset of every partition in one
//! batched ListOffsets (librdkafka sends one request per leader), followed
//! over time by the traffic model; and the topics' series: totals over every
//! topic, and per-topic series for the busiest `[topics] top_n` only (a
//! cluster of a hundred thousand topics must not become a million series);
//! every topic is in `/api/v1/topics`. It runs before the offsets check,
//! which reads the groups' lag off the same end offsets, so that nothing the
//! groups' requests wait for holds the topics up.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use brokerwatch_common::exposition::{Column, Families};

use super::{Check, ClusterState, EndOffsets, Kafka, Topics};
use crate::config::TopicsConfig;
use crate::kafka::PartitionKey;
use crate::model::topics::{TopicFacts, TopicMemory, TopicsFacts, Traffic};
use crate::store::{LargePartition, TopicOnBrokers};

pub struct TopicsCheck {
    every: Duration,
    traffic: Traffic,
}

impl TopicsCheck {
    /// `memory`: what an earlier run remembered of each topic.
    pub fn new(every: Duration, memory: BTreeMap<String, TopicMemory>) -> Self {
        TopicsCheck {
            every,
            traffic: Traffic::restore(memory),
        }
    }
}

impl Check for TopicsCheck {
    fn every(&self) -> Duration {
        self.every
    }

    fn run(&mut self, kafka: &mut Kafka, state: &mut ClusterState, now: f64) -> Result<(), String> {
        let Some(metadata) = &state.metadata else {
            return Ok(());
        };
        let partitions: &[PartitionKey] = &metadata.partitions;
        let ends = if partitions.is_empty() {
            Vec::new()
        } else {
            kafka.end_offsets(partitions)?
        };
        self.traffic.observe(
            &metadata.snapshot,
            ends.iter().map(|((t, p), end)| (t.as_str(), *p, *end)),
            now,
        );
        state.topics = Some(Topics {
            at: now,
            facts: Arc::new(
                self.traffic
                    .facts(&metadata.snapshot, &metadata.leaders, now),
            ),
            memory: Arc::new(self.traffic.memory()),
        });
        state.ends = Some(EndOffsets {
            at: now,
            offsets: Arc::new(ends),
        });
        Ok(())
    }
}

/// The busiest `top_n` topics (Kafka's own left out), by records per second.
pub fn busiest(facts: &TopicsFacts, top_n: usize) -> Vec<&TopicFacts> {
    let mut topics: Vec<&TopicFacts> = facts.topics.iter().filter(|t| !t.internal).collect();
    topics.sort_by(|a, b| {
        b.records_per_second
            .unwrap_or(0.0)
            .total_cmp(&a.records_per_second.unwrap_or(0.0))
            .then_with(|| a.topic.cmp(&b.topic))
    });
    topics.truncate(top_n);
    topics
}

/// Topics without a new record for `no_traffic_after`, at `now`.
pub fn without_traffic<'a>(
    facts: &'a TopicsFacts,
    settings: &TopicsConfig,
    now: f64,
) -> impl Iterator<Item = &'a TopicFacts> {
    let after = settings.no_traffic_after.as_secs_f64();
    facts
        .topics
        .iter()
        .filter(move |t| !t.internal && now - t.quiet_since() >= after)
}

pub(super) fn expose(facts: &TopicsFacts, settings: &TopicsConfig, f: &mut Families, now: f64) {
    let user_topics = facts.topics.iter().filter(|t| !t.internal);
    f.gauge(
        "brokerwatch_topics",
        "Topics in the cluster, Kafka's own (__consumer_offsets...) left out.",
    )
    .value(user_topics.clone().count() as f64);
    f.gauge(
        "brokerwatch_topics_without_traffic",
        "Topics that took no record for [topics] no_traffic_after: candidates for clean-up.",
    )
    .value(without_traffic(facts, settings, now).count() as f64);
    f.gauge(
        "brokerwatch_cluster_records_per_second",
        "Records written per second over every topic, from their end offsets.",
    )
    .value(
        user_topics
            .clone()
            .filter_map(|t| t.records_per_second)
            .sum(),
    );
    f.counter(
        "brokerwatch_cluster_records_produced_total",
        "Records written to every topic since the collector started, from their end offsets.",
    )
    .value(user_topics.clone().map(|t| t.produced_total as f64).sum());
    f.gauge(
        "brokerwatch_cluster_partitions",
        "Partitions in the cluster, Kafka's own topics' included.",
    )
    .value(
        facts
            .topics
            .iter()
            .map(|t| t.partitions.len())
            .sum::<usize>() as f64,
    );
    let busiest = busiest(facts, settings.top_n);
    let per_topic: [Column<TopicFacts>; 5] = [
        (
            "brokerwatch_topic_records_per_second",
            "Records written per second to the topic (the busiest [topics] top_n topics).",
            |t| t.records_per_second.unwrap_or(0.0),
        ),
        (
            "brokerwatch_topic_partitions",
            "The topic's partitions (the busiest topics).",
            |t| t.partitions.len() as f64,
        ),
        (
            "brokerwatch_topic_replication_factor",
            "The fewest replicas any of the topic's partitions has (the busiest topics).",
            |t| t.replication_factor as f64,
        ),
        (
            "brokerwatch_topic_replica_brokers",
            "Brokers holding a replica of the topic (the busiest topics).",
            |t| t.replica_brokers as f64,
        ),
        (
            "brokerwatch_topic_partition_skew_ratio",
            "The topic's hottest partition's records per second over its mean per partition (the busiest topics).",
            |t| t.skew_ratio().unwrap_or(1.0),
        ),
    ];
    for (name, help, value) in per_topic {
        let mut family = f.gauge(name, help);
        for topic in &busiest {
            family.add(&[("topic", &topic.topic)], value(topic));
        }
    }
    let mut possible = f.gauge(
        "brokerwatch_topic_replica_brokers_possible",
        "Brokers the topic's replicas span as Kafka lays them out: partitions + RF - 1, at most every broker (the busiest topics).",
    );
    for topic in &busiest {
        possible.add(
            &[("topic", &topic.topic)],
            topic.replica_brokers_possible(facts.brokers) as f64,
        );
    }
    let mut produced = f.counter(
        "brokerwatch_topic_records_produced_total",
        "Records written to the topic since the collector started (the busiest topics).",
    );
    for topic in &busiest {
        produced.add(&[("topic", &topic.topic)], topic.produced_total as f64);
    }
    // Only topics that had one: few, and a counter must not vanish with the top N.
    let mut changes = f.counter(
        "brokerwatch_partition_leader_changes_total",
        "Leader changes of the topic's partitions seen between metadata snapshots since the collector started.",
    );
    for topic in facts.topics.iter().filter(|t| t.leader_changes_total > 0) {
        changes.add(
            &[("topic", &topic.topic)],
            topic.leader_changes_total as f64,
        );
    }
}

/// A per-topic series of the agents' figures: name, help, value.
type AgentColumn = (
    &'static str,
    &'static str,
    fn(&TopicOnBrokers) -> Option<f64>,
);

/// The agents' figures per topic (bytes in and out, size, the fastest-written
/// partition), for the busiest topics: by records per second where the
/// cluster's end offsets are fresh, else by bytes in.
pub fn expose_agents(
    f: &mut Families,
    facts: Option<&TopicsFacts>,
    on_brokers: &BTreeMap<String, TopicOnBrokers>,
    large: &[LargePartition],
    top_n: usize,
) {
    if on_brokers.is_empty() {
        return;
    }
    let names: Vec<&str> = match facts {
        Some(facts) => busiest(facts, top_n)
            .iter()
            .map(|t| t.topic.as_str())
            .collect(),
        None => {
            let mut by_bytes: Vec<(&String, &TopicOnBrokers)> = on_brokers.iter().collect();
            by_bytes.sort_by(|a, b| {
                b.1.bytes_in_per_second
                    .unwrap_or(0.0)
                    .total_cmp(&a.1.bytes_in_per_second.unwrap_or(0.0))
            });
            by_bytes
                .iter()
                .take(top_n)
                .map(|(t, _)| t.as_str())
                .collect()
        }
    };
    let columns: [AgentColumn; 3] = [
        (
            "brokerwatch_topic_bytes_in_per_second",
            "Bytes written to the topic per second, summed over its brokers (the busiest topics).",
            |t| t.bytes_in_per_second,
        ),
        (
            "brokerwatch_topic_bytes_out_per_second",
            "Bytes read from the topic per second by consumers, summed over its brokers (the busiest topics).",
            |t| t.bytes_out_per_second,
        ),
        (
            "brokerwatch_topic_size_bytes",
            "Bytes the topic's partitions hold, every replica counted (the busiest topics).",
            |t| t.size_bytes.map(|b| b as f64),
        ),
    ];
    for (name, help, value) in columns {
        let mut family = f.gauge(name, help);
        for topic in &names {
            if let Some(v) = on_brokers.get(*topic).and_then(value) {
                family.add(&[("topic", topic)], v);
            }
        }
    }
    let mut fastest: BTreeMap<&str, f64> = BTreeMap::new();
    for p in large {
        if let Some(w) = p.size.written_bytes_per_day {
            let most = fastest.entry(p.size.topic.as_str()).or_default();
            *most = most.max(w);
        }
    }
    let mut family = f.gauge(
        "brokerwatch_topic_partition_written_bytes_per_day_max",
        "Bytes a day written to the topic's fastest-written partition (of those the agents name; the busiest topics).",
    );
    for topic in &names {
        if let Some(w) = fastest.get(topic) {
            family.add(&[("topic", topic)], *w);
        }
    }
}
