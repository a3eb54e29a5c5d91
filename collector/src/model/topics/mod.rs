//! Topics and partitions as the cluster itself shows them: records per
//! second per partition and topic from successive end offsets, when each
//! topic last took a record, leader changes between metadata snapshots, and
//! each topic's shape (partitions, replication factor, the brokers its
//! replicas and leaders sit on). Facts only: the rules judge them.
//!
//! Kept compactly: one small record per partition (a million partitions are
//! tens of MB), indexed by topic, then by partition id.

mod leaders;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use super::replication::{is_internal, Snapshot};

pub use leaders::{LeaderChanges, LeaderSummary, FLAP_WINDOW_SECONDS};

/// Partitions' rates are smoothed over about this long (an exponential
/// mean), so that skew is judged on minutes of traffic, not one round.
const SMOOTHING_SECONDS: f64 = 300.0;

#[derive(Debug, Clone, Copy, PartialEq)]
struct PartitionTraffic {
    /// The end offset at the last round, and when it was read.
    end: i64,
    at: f64,
    /// Records per second over the last round, once there were two.
    rate: Option<f64>,
    /// ... smoothed over [`SMOOTHING_SECONDS`].
    smoothed: Option<f64>,
}

/// What is remembered of a topic across restarts: when it was first seen and
/// when it last took a record (the no-traffic judgement spans a day).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct TopicMemory {
    pub first_seen_at: f64,
    pub last_message_at: Option<f64>,
}

#[derive(Debug, Clone, Default)]
struct TopicTraffic {
    partitions: Vec<Option<PartitionTraffic>>,
    memory: TopicMemory,
    /// Records written since the collector started following it.
    produced: u64,
}

/// The end offsets' history, per topic.
#[derive(Debug, Clone, Default)]
pub struct Traffic {
    topics: HashMap<String, TopicTraffic>,
}

impl Traffic {
    /// Starts from what an earlier run remembered.
    pub fn restore(memory: BTreeMap<String, TopicMemory>) -> Self {
        Traffic {
            topics: memory
                .into_iter()
                .map(|(topic, memory)| {
                    (
                        topic,
                        TopicTraffic {
                            partitions: Vec::new(),
                            memory,
                            produced: 0,
                        },
                    )
                })
                .collect(),
        }
    }

    /// What to remember across a restart.
    pub fn memory(&self) -> BTreeMap<String, TopicMemory> {
        self.topics
            .iter()
            .map(|(topic, t)| (topic.clone(), t.memory))
            .collect()
    }

    /// One round of end offsets read at `now`. Topics the metadata no longer
    /// lists (deleted) are forgotten; an end offset that went back (the
    /// topic deleted and created again) starts that partition over.
    pub fn observe<'a>(
        &mut self,
        snapshot: &Snapshot,
        ends: impl IntoIterator<Item = (&'a str, i32, i64)>,
        now: f64,
    ) {
        let listed: BTreeSet<&str> = snapshot.topics.iter().map(|t| t.name.as_str()).collect();
        self.topics
            .retain(|topic, _| listed.contains(topic.as_str()));
        for topic in &snapshot.topics {
            if is_internal(&topic.name) {
                continue;
            }
            let entry = self
                .topics
                .entry(topic.name.clone())
                .or_insert_with(|| TopicTraffic {
                    partitions: Vec::new(),
                    memory: TopicMemory {
                        first_seen_at: now,
                        last_message_at: None,
                    },
                    produced: 0,
                });
            let count = topic.partitions.iter().map(|p| p.id + 1).max().unwrap_or(0);
            entry.partitions.resize(count.max(0) as usize, None);
        }
        let alpha_for = |elapsed: f64| 1.0 - (-elapsed / SMOOTHING_SECONDS).exp();
        for (topic, partition, end) in ends {
            let Some(entry) = self.topics.get_mut(topic) else {
                continue;
            };
            let Some(slot) = usize::try_from(partition)
                .ok()
                .and_then(|p| entry.partitions.get_mut(p))
            else {
                continue;
            };
            *slot = Some(match *slot {
                Some(last) if end >= last.end && now > last.at => {
                    let elapsed = now - last.at;
                    let rate = (end - last.end) as f64 / elapsed;
                    if end > last.end {
                        entry.memory.last_message_at = Some(now);
                        entry.produced += (end - last.end) as u64;
                    }
                    let smoothed = match last.smoothed {
                        Some(s) => s + alpha_for(elapsed) * (rate - s),
                        None => rate,
                    };
                    PartitionTraffic {
                        end,
                        at: now,
                        rate: Some(rate),
                        smoothed: Some(smoothed),
                    }
                }
                Some(last) if now <= last.at => last,
                _ => PartitionTraffic {
                    end,
                    at: now,
                    rate: None,
                    smoothed: None,
                },
            });
        }
    }

    /// Each topic's facts as of the last round, with its shape from `snapshot`.
    pub fn facts(&self, snapshot: &Snapshot, leaders: &LeaderSummary, now: f64) -> TopicsFacts {
        let brokers = snapshot.brokers.len();
        let mut topics: Vec<TopicFacts> = snapshot
            .topics
            .iter()
            .map(|meta| {
                let traffic = self.topics.get(&meta.name);
                let mut replica_brokers = BTreeSet::new();
                let mut leader_brokers = BTreeSet::new();
                let mut replication_factor = usize::MAX;
                let mut partitions = Vec::with_capacity(meta.partitions.len());
                let mut rate_sum = 0.0;
                let mut rates_known = 0;
                let mut rates_complete = !meta.partitions.is_empty();
                for p in &meta.partitions {
                    replica_brokers.extend(p.replicas.iter().copied());
                    if p.leader >= 0 {
                        leader_brokers.insert(p.leader);
                    }
                    replication_factor = replication_factor.min(p.replicas.len());
                    let state = traffic
                        .and_then(|t| t.partitions.get(usize::try_from(p.id).ok()?))
                        .copied()
                        .flatten();
                    // Read this round: a partition the round missed (no
                    // leader, say) keeps its last figures, but its topic's
                    // rate is not complete.
                    match state.filter(|s| s.at >= now).and_then(|s| s.rate) {
                        Some(rate) => {
                            rate_sum += rate;
                            rates_known += 1;
                        }
                        None => rates_complete = false,
                    }
                    partitions.push(PartitionFacts {
                        partition: p.id,
                        leader: p.leader,
                        end_offset: state.map(|s| s.end),
                        records_per_second: state.and_then(|s| s.smoothed),
                    });
                }
                let memory = traffic.map(|t| t.memory);
                TopicFacts {
                    topic: meta.name.clone(),
                    internal: is_internal(&meta.name),
                    replication_factor: if replication_factor == usize::MAX {
                        0
                    } else {
                        replication_factor
                    },
                    min_insync_replicas: meta.min_insync_replicas,
                    replica_brokers: replica_brokers.len(),
                    leader_brokers: leader_brokers.len(),
                    records_per_second: (rates_known > 0).then_some(rate_sum),
                    rates_complete,
                    produced_total: traffic.map_or(0, |t| t.produced),
                    first_seen_at: memory.map_or(now, |m| m.first_seen_at),
                    last_message_at: memory.and_then(|m| m.last_message_at),
                    leader_changes_total: leaders.totals.get(&meta.name).copied().unwrap_or(0),
                    flapping: leaders.recent.get(&meta.name).cloned().unwrap_or_default(),
                    partitions,
                }
            })
            .collect();
        topics.sort_by(|a, b| a.topic.cmp(&b.topic));
        TopicsFacts { brokers, topics }
    }
}

/// One partition as of the last round.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PartitionFacts {
    pub partition: i32,
    /// -1 without a leader.
    pub leader: i32,
    pub end_offset: Option<i64>,
    /// Smoothed over about five minutes.
    pub records_per_second: Option<f64>,
}

/// One topic as of the last round.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicFacts {
    pub topic: String,
    /// One of Kafka's own (`__consumer_offsets`...): its traffic is not judged.
    pub internal: bool,
    /// The fewest replicas any of its partitions has.
    pub replication_factor: usize,
    pub min_insync_replicas: Option<u32>,
    /// Brokers holding a replica of it, and leading a partition of it.
    pub replica_brokers: usize,
    pub leader_brokers: usize,
    /// Records per second over the last round (partitions with two reads).
    pub records_per_second: Option<f64>,
    /// Whether every partition was read in the last round (and the one
    /// before): only then is the rate the topic's whole traffic.
    pub rates_complete: bool,
    /// Records written since the collector started following it.
    pub produced_total: u64,
    pub first_seen_at: f64,
    pub last_message_at: Option<f64>,
    pub leader_changes_total: u64,
    /// Partitions whose leader changed in the last [`FLAP_WINDOW_SECONDS`],
    /// with how many times, most first.
    pub flapping: Vec<(i32, usize)>,
    pub partitions: Vec<PartitionFacts>,
}

impl TopicFacts {
    /// Since when it has taken no record: the last record seen, else since
    /// it was first seen.
    pub fn quiet_since(&self) -> f64 {
        self.last_message_at.unwrap_or(self.first_seen_at)
    }

    /// The brokers its replicas span when laid out as Kafka lays them out
    /// (the partitions' leaders on consecutive brokers, each follower on the
    /// next ones): one per partition plus RF − 1, at most every broker. Not
    /// one per replica: Kafka's own assignment never does that, and a rule
    /// that fired on every topic Kafka created would be noise.
    pub fn replica_brokers_possible(&self, brokers: usize) -> usize {
        if self.partitions.is_empty() || self.replication_factor == 0 {
            return 0;
        }
        (self.partitions.len() + self.replication_factor - 1).min(brokers)
    }

    /// The brokers its leaders could span: one per partition, at most every broker.
    pub fn leader_brokers_possible(&self, brokers: usize) -> usize {
        self.partitions.len().min(brokers)
    }

    /// The hottest partition's smoothed rate over the mean of the topic's
    /// partitions; `None` until every partition has a rate, for a single
    /// partition, or without traffic.
    pub fn skew_ratio(&self) -> Option<f64> {
        let (hot, mean) = self.hot_partitions(1.0)?;
        let hottest = hot.first()?.records_per_second?;
        (mean > 0.0).then(|| hottest / mean)
    }

    /// The partitions taking at least `factor` times the mean of the
    /// topic's smoothed rates, hottest first, and that mean; `None` until
    /// every partition has a rate, or for a single partition.
    pub fn hot_partitions(&self, factor: f64) -> Option<(Vec<PartitionFacts>, f64)> {
        if self.partitions.len() < 2 {
            return None;
        }
        let rates: Option<Vec<f64>> = self
            .partitions
            .iter()
            .map(|p| p.records_per_second)
            .collect();
        let total: f64 = rates?.iter().sum();
        let mean = total / self.partitions.len() as f64;
        let mut hot: Vec<PartitionFacts> = self
            .partitions
            .iter()
            .filter(|p| p.records_per_second.is_some_and(|r| r >= factor * mean))
            .copied()
            .collect();
        hot.sort_by(|a, b| {
            b.records_per_second
                .unwrap_or(0.0)
                .total_cmp(&a.records_per_second.unwrap_or(0.0))
        });
        Some((hot, mean))
    }
}

/// Every topic as of one round of end offsets.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TopicsFacts {
    /// Brokers in the metadata.
    pub brokers: usize,
    /// In name order.
    pub topics: Vec<TopicFacts>,
}

#[cfg(test)]
mod tests;
