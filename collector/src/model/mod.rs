//! Pure computation: the load model and its JSON form, replication health
//! from metadata, and consumer lag from offsets. Nothing here reads a clock,
//! a file or the network.

pub mod anomaly;
pub mod cluster;
pub mod controllers;
pub mod lag;
pub mod load;
pub mod probe;
pub mod replication;
pub mod topics;

/// `(topic, partition)`.
pub type PartitionKey = (String, i32);

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use load::GroupLoad;

/// `GET /api/v1/load` and `load-report --format json` (DESIGN.md section 5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadView {
    pub groups: Vec<GroupView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupView {
    pub group: String,
    pub brokers: Vec<BrokerView>,
    pub stddev: f64,
    pub stddev_limit: f64,
    pub balanced: bool,
    /// The metrics that entered the load.
    pub metrics: Vec<String>,
    /// Metrics left out, and why.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub skipped_metrics: BTreeMap<String, String>,
    /// Brokers of the group without a fresh report: left out, not counted as zero.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<i32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BrokerView {
    pub broker: i32,
    pub share: f64,
    pub deviation: f64,
    pub metric_shares: BTreeMap<String, f64>,
}

impl GroupView {
    pub fn new(load: &GroupLoad<i32>, missing: Vec<i32>) -> Self {
        GroupView {
            group: load.group.clone(),
            brokers: load
                .members
                .iter()
                .map(|m| BrokerView {
                    broker: m.member,
                    share: m.share,
                    deviation: m.deviation,
                    metric_shares: m
                        .metric_shares
                        .iter()
                        .map(|(metric, share)| (metric.name().to_owned(), *share))
                        .collect(),
                })
                .collect(),
            stddev: load.stddev,
            stddev_limit: load.stddev_limit,
            balanced: load.balanced,
            metrics: load.metrics.iter().map(|m| m.name().to_owned()).collect(),
            skipped_metrics: load
                .skipped_metrics
                .iter()
                .map(|(metric, why)| (metric.name().to_owned(), why.clone()))
                .collect(),
            missing,
        }
    }

    /// A group can only be out of balance with two members or more and
    /// something to compare them on.
    pub fn can_alert(&self) -> bool {
        self.brokers.len() >= 2 && !self.metrics.is_empty()
    }
}

/// The operator's verdict on one member's deviation against ±r.
pub fn verdict(deviation: f64, deviation_limit: f64, can_alert: bool) -> &'static str {
    if !can_alert || deviation.abs() <= deviation_limit {
        "ok"
    } else if deviation > 0.0 {
        "overloaded"
    } else {
        "underloaded"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::load::{compute, default_weights, tests::worked_example, Metric};

    #[test]
    fn the_json_has_the_design_shape() {
        let load = compute(
            "default",
            &worked_example(),
            &default_weights(&Metric::ALL),
            0.10,
        );
        let view = LoadView {
            groups: vec![GroupView::new(&load, vec![])],
        };
        let json = serde_json::to_value(&view).unwrap();
        let group = &json["groups"][0];
        assert_eq!(group["group"], "default");
        assert_eq!(group["brokers"][0]["broker"], 1);
        assert!((group["brokers"][0]["share"].as_f64().unwrap() - 0.248780).abs() < 1e-6);
        assert!((group["brokers"][0]["deviation"].as_f64().unwrap() + 0.004878).abs() < 1e-6);
        assert_eq!(group["brokers"][0]["metric_shares"]["partitions"], 0.25);
        assert!((group["stddev"].as_f64().unwrap() - 0.006232).abs() < 1e-6);
        assert_eq!(group["stddev_limit"], 0.025);
        assert_eq!(group["balanced"], true);
        assert!(group.get("missing").is_none(), "empty lists are left out");
    }

    #[test]
    fn a_group_alerts_only_with_two_members_and_a_metric() {
        let load = compute(
            "default",
            &worked_example(),
            &default_weights(&Metric::ALL),
            0.10,
        );
        let full = GroupView::new(&load, vec![]);
        assert!(full.can_alert());
        let alone = GroupView {
            brokers: full.brokers[..1].to_vec(),
            ..full.clone()
        };
        assert!(!alone.can_alert(), "a group of one");
        let blind = GroupView {
            metrics: Vec::new(),
            ..full.clone()
        };
        assert!(!blind.can_alert(), "nothing to compare on");
    }

    #[test]
    fn verdicts() {
        assert_eq!(verdict(0.05, 0.10, true), "ok");
        assert_eq!(verdict(0.15, 0.10, true), "overloaded");
        assert_eq!(verdict(-0.15, 0.10, true), "underloaded");
        assert_eq!(verdict(0.9, 0.10, false), "ok");
    }
}
