//! Consumer-group offsets every `fetch_interval`: the end offsets of every
//! partition in one batched request, each watched group's committed offsets
//! in one request each, recorded into the lag windows and judged.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use brokerwatch_common::exposition::Families;

use super::{Check, ClusterState, Groups, Kafka};
use crate::config::GroupsConfig;
use crate::kafka::PartitionKey;
use crate::model::lag::{evaluate_groups, GroupLag, Histories, Sample, Status};

pub struct OffsetsCheck {
    config: GroupsConfig,
    /// The lag window of every watched (group, topic, partition).
    histories: Histories,
}

impl OffsetsCheck {
    pub fn new(config: GroupsConfig) -> Self {
        OffsetsCheck {
            config,
            histories: Histories::new(),
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
        let mut groups: BTreeSet<String> = self.config.groups.iter().cloned().collect();
        match kafka.list_groups() {
            Ok(listed) => groups.extend(listed.into_iter().filter(|g| self.config.watches(g))),
            // Some clusters and proxies do not answer ListGroups: the configured groups still count.
            Err(e) => tracing::debug!("{e}"),
        }
        if groups.is_empty() || partitions.is_empty() {
            return Ok(());
        }
        let ends: HashMap<PartitionKey, i64> = kafka.end_offsets(partitions)?.into_iter().collect();
        for group in &groups {
            let committed = kafka.committed(group, partitions)?;
            for (key, offset) in committed {
                if let Some(&end) = ends.get(&key) {
                    let sample = Sample {
                        at: now,
                        committed: offset,
                        end,
                    };
                    self.histories
                        .entry((group.clone(), key.0, key.1))
                        .or_default()
                        .record(sample, &self.config.rules);
                }
            }
        }
        state.groups = Some(Groups {
            at: now,
            lag: Arc::new(evaluate_groups(&self.histories, &self.config.rules)),
        });
        Ok(())
    }
}

/// The lag series.
pub(super) fn expose(groups: &[GroupLag], f: &mut Families) {
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
