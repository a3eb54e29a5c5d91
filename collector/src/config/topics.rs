//! `[topics]`: how topics', partitions' and users' traffic is followed and
//! judged (the thresholds of single-number rules are under `[rules.NAME]`).

use std::time::Duration;

use serde::Deserialize;

use super::Keys;
use crate::model::anomaly::AnomalySettings;

#[derive(Debug, Clone, PartialEq)]
pub struct TopicsConfig {
    /// Per-topic series for this many topics (the busiest); totals cover all.
    pub top_n: usize,
    /// A topic with no new record for this long is KafkaTopicNoTraffic.
    pub no_traffic_after: Duration,
    /// Topics below this many records per second are too quiet for skew
    /// and drops, and count as this much for surges.
    pub min_records_per_second: f64,
    /// Users below this many bytes per second, likewise.
    pub min_user_bytes_per_second: f64,
    pub surge_factor: f64,
    pub drop_ratio: f64,
    /// Replication factor below which KafkaTopicReplicationFactorLow fires
    /// (never above the brokers there are).
    pub min_replication_factor: usize,
    /// Traffic histories kept (topics and users each), the busiest first:
    /// bounds the memory and the file in the state dir.
    pub max_histories: usize,
    /// KafkaPartitionTooLarge for a partition holding more (off when `None`).
    pub max_partition_bytes: Option<u64>,
}

impl TopicsConfig {
    pub fn topic_anomalies(&self) -> AnomalySettings {
        AnomalySettings {
            surge_factor: self.surge_factor,
            drop_ratio: self.drop_ratio,
            floor: self.min_records_per_second,
        }
    }

    pub fn user_anomalies(&self) -> AnomalySettings {
        AnomalySettings {
            surge_factor: self.surge_factor,
            drop_ratio: self.drop_ratio,
            floor: self.min_user_bytes_per_second,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TopicsSection {
    top_n: Option<usize>,
    no_traffic_after: Option<String>,
    min_records_per_second: Option<f64>,
    min_user_bytes_per_second: Option<f64>,
    surge_factor: Option<f64>,
    drop_ratio: Option<f64>,
    min_replication_factor: Option<usize>,
    max_histories: Option<usize>,
    max_partition_bytes: Option<u64>,
}

impl TopicsSection {
    pub fn check(self, keys: &Keys) -> Result<TopicsConfig, String> {
        let key = |k: &str| format!("topics.{k}");
        let count = |k: &str, value: Option<usize>, default: usize, max: usize| {
            let value = value.unwrap_or(default);
            if (1..=max).contains(&value) {
                Ok(value)
            } else {
                Err(keys.fail(&key(k), format!("{value} is out of range; use 1 to {max}")))
            }
        };
        let surge_factor = keys.positive(&key("surge_factor"), self.surge_factor, 1.75)?;
        if surge_factor <= 1.0 {
            return Err(keys.fail(
                &key("surge_factor"),
                format!("{surge_factor} is not a rise; use more than 1, e.g. 2 for a doubling"),
            ));
        }
        let drop_ratio = keys.ratio(&key("drop_ratio"), self.drop_ratio, 0.4)?;
        if drop_ratio >= 1.0 {
            return Err(keys.fail(
                &key("drop_ratio"),
                "1 is not a fall; use less than 1, e.g. 0.33 for a fall to a third",
            ));
        }
        Ok(TopicsConfig {
            top_n: count("top_n", self.top_n, 100, 10_000)?,
            no_traffic_after: keys.duration(
                &key("no_traffic_after"),
                self.no_traffic_after,
                Duration::from_secs(86_400),
            )?,
            min_records_per_second: keys.positive(
                &key("min_records_per_second"),
                self.min_records_per_second,
                1.0,
            )?,
            min_user_bytes_per_second: keys.positive(
                &key("min_user_bytes_per_second"),
                self.min_user_bytes_per_second,
                1024.0,
            )?,
            surge_factor,
            drop_ratio,
            min_replication_factor: count(
                "min_replication_factor",
                self.min_replication_factor,
                3,
                100,
            )?,
            max_histories: count("max_histories", self.max_histories, 5_000, 1_000_000)?,
            max_partition_bytes: match self.max_partition_bytes {
                Some(0) => {
                    return Err(keys.fail(
                        &key("max_partition_bytes"),
                        "0 would flag every partition; leave it out to turn the size limit off",
                    ))
                }
                bytes => bytes,
            },
        })
    }
}
