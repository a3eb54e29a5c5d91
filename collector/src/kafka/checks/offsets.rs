//! Consumer-group offsets every `fetch_interval`: the end offsets of every
//! partition (as the topics check read them this round), each watched
//! group's committed offsets in one request each, recorded into the lag
//! windows and judged.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use brokerwatch_common::exposition::Families;
use tracing::info;

use super::{Check, ClusterState, GroupDescription, Groups, Kafka};
use crate::config::GroupsConfig;
use crate::kafka::PartitionKey;
use crate::model::lag::{
    evaluate_groups, record_round, GroupLag, Histories, Misses, Sample, Status, FORGET_AFTER_ROUNDS,
};

pub struct OffsetsCheck {
    config: GroupsConfig,
    /// The lag window of every watched (group, topic, partition).
    histories: Histories,
    /// Rounds in a row each partition went unreported.
    misses: Misses,
    /// Groups the cluster stopped reporting, and for how many more rounds
    /// the evaluator hears of it (to resolve their alerts).
    gone: BTreeMap<String, u32>,
    /// Each group's lag at its last [`HISTORY_ROUNDS`] rounds.
    history: BTreeMap<String, VecDeque<i64>>,
    /// The watched groups the cluster listed last, as it described them.
    listed: BTreeMap<String, GroupDescription>,
    /// When to ask ListGroups again after it failed, and the next wait.
    list_retry_at: Instant,
    list_backoff: Duration,
}

/// The longest wait between ListGroups requests that fail.
const LIST_GROUPS_BACKOFF_MAX: Duration = Duration::from_secs(300);

/// Rounds of lag kept per group for its sparkline.
const HISTORY_ROUNDS: usize = 60;

impl OffsetsCheck {
    pub fn new(config: GroupsConfig) -> Self {
        OffsetsCheck {
            list_backoff: config.fetch_interval,
            config,
            histories: Histories::new(),
            misses: Misses::new(),
            gone: BTreeMap::new(),
            history: BTreeMap::new(),
            listed: BTreeMap::new(),
            list_retry_at: Instant::now(),
        }
    }
}

impl Check for OffsetsCheck {
    fn every(&self) -> Duration {
        self.config.fetch_interval
    }

    fn run(&mut self, kafka: &mut Kafka, state: &mut ClusterState, now: f64) -> Result<(), String> {
        let partitions: &[PartitionKey] = state
            .metadata
            .as_ref()
            .map_or(&[], |m| m.partitions.as_slice());
        // The end offsets the topics check read this round, else read here.
        let fresh = state
            .ends
            .as_ref()
            .filter(|e| now - e.at < self.config.fetch_interval.as_secs_f64())
            .map(|e| e.offsets.clone());
        let ends = match fresh {
            Some(ends) => ends,
            None if partitions.is_empty() => Arc::default(),
            None => Arc::new(kafka.end_offsets(partitions)?),
        };
        // Only a round in which the cluster said which groups it has, with
        // fresh metadata, may forget what it no longer reports: an outage
        // forgets nothing.
        let answered = if Instant::now() < self.list_retry_at {
            false
        } else {
            match kafka.list_groups() {
                Ok(listed) => {
                    self.listed = listed
                        .into_iter()
                        .filter(|g| self.config.watches(&g.name))
                        .map(|g| {
                            (
                                g.name,
                                GroupDescription {
                                    state: g.state,
                                    members: g.members,
                                },
                            )
                        })
                        .collect();
                    self.list_backoff = self.config.fetch_interval;
                    state.error.is_none()
                }
                // Some clusters and proxies do not answer ListGroups (and
                // may take a whole timeout to say so): the configured groups
                // and those listed before still count, and while the rest of
                // the cluster answers it is asked again less and less often,
                // up to every five minutes (during an outage, every round).
                Err(e) => {
                    tracing::debug!("{e}");
                    if state.error.is_none() {
                        self.list_retry_at = Instant::now() + self.list_backoff;
                        self.list_backoff = (self.list_backoff * 2).min(LIST_GROUPS_BACKOFF_MAX);
                    }
                    false
                }
            }
        };
        let mut groups: BTreeSet<String> = self.config.groups.iter().cloned().collect();
        groups.extend(self.listed.keys().cloned());
        let described = self.listed.clone();
        // Nothing to ask is a round too: what the cluster no longer reports
        // (a broker that came back empty) is forgotten all the same.
        let mut fetched = Vec::new();
        if !groups.is_empty() && !ends.is_empty() {
            let ends: HashMap<&PartitionKey, i64> = ends.iter().map(|(k, e)| (k, *e)).collect();
            for group in &groups {
                for (key, offset) in kafka.committed(group, partitions)? {
                    if let Some(&end) = ends.get(&key) {
                        let sample = Sample {
                            at: now,
                            committed: offset,
                            end,
                        };
                        fetched.push(((group.clone(), key.0, key.1), sample));
                    }
                }
            }
        }
        self.gone.retain(|_, rounds| {
            *rounds -= 1;
            *rounds > 0
        });
        let rules = &self.config.rules;
        let forgotten = if answered {
            record_round(&mut self.histories, &mut self.misses, fetched, rules)
        } else {
            for (key, sample) in fetched {
                self.histories.entry(key).or_default().record(sample, rules);
            }
            Vec::new()
        };
        for group in forgotten {
            info!(consumergroup = %group, "consumer group {group} is gone: the cluster has reported none of its committed offsets for {FORGET_AFTER_ROUNDS} rounds; its lag is no longer judged and its alert resolves");
            self.gone.insert(group, FORGET_AFTER_ROUNDS);
        }
        let lag = evaluate_groups(&self.histories, &self.config.rules);
        for group in &lag {
            self.gone.remove(&group.group);
        }
        self.history
            .retain(|group, _| lag.iter().any(|g| &g.group == group));
        for group in &lag {
            let rounds = self.history.entry(group.group.clone()).or_default();
            rounds.push_back(group.lag_messages);
            if rounds.len() > HISTORY_ROUNDS {
                rounds.pop_front();
            }
        }
        state.groups = Some(Groups {
            at: now,
            lag: Arc::new(lag),
            gone: self.gone.keys().cloned().collect(),
            history: Arc::new(
                self.history
                    .iter()
                    .map(|(group, rounds)| (group.clone(), rounds.iter().copied().collect()))
                    .collect(),
            ),
            described: Arc::new(described),
        });
        Ok(())
    }
}

/// The lag series, and each described group's state and members.
pub(super) fn expose(found: &Groups, f: &mut Families) {
    let groups: &[GroupLag] = &found.lag;
    let mut members = f.gauge(
        "brokerwatch_consumergroup_members",
        "Members of the group (0: no consumer running), where the cluster describes it.",
    );
    for (group, d) in found.described.iter() {
        members.add(&[("consumergroup", group)], d.members as f64);
    }
    let mut state = f.gauge(
        "brokerwatch_consumergroup_state",
        "1 with the group's state (Stable, Empty, PreparingRebalance, CompletingRebalance, Dead), where the cluster describes it.",
    );
    for (group, d) in found.described.iter() {
        state.add(&[("consumergroup", group), ("state", &d.state)], 1.0);
    }
    let mut messages = f.gauge(
        "brokerwatch_consumergroup_lag_messages",
        "Messages the group is behind, summed over the topic's partitions.",
    );
    for group in groups {
        for topic in &group.topics {
            messages.add(
                &[("consumergroup", &group.group), ("topic", &topic.topic)],
                topic.lag_messages as f64,
            );
        }
    }
    let mut seconds = f.gauge(
        "brokerwatch_consumergroup_lag_seconds",
        "How long ago the topic's end offsets were where the group is (the worst partition).",
    );
    for group in groups {
        for topic in &group.topics {
            if let Some(lag) = topic.lag_seconds {
                seconds.add(
                    &[("consumergroup", &group.group), ("topic", &topic.topic)],
                    lag,
                );
            }
        }
    }
    let mut status = f.gauge(
        "brokerwatch_consumergroup_status",
        "1 for the group's current status (OK, WARN, ERR, STOP, STALL, REWIND), 0 for the others.",
    );
    for group in groups {
        for s in Status::ALL {
            status.add(
                &[("consumergroup", &group.group), ("status", s.as_str())],
                f64::from(u8::from(s == group.status)),
            );
        }
    }
}
