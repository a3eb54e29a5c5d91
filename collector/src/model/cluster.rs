//! The load picture of the whole cluster at one instant: each resource group
//! over its brokers with fresh reports, and the disks inside each broker.

use std::collections::{BTreeMap, BTreeSet};

use super::load::{compute, default_weights, GroupLoad, Row, DISK_METRICS, METRICS};
use super::replication::ReplicationFacts;
use super::GroupView;
use crate::config::Config;
use crate::store::{disk_series, Store};

#[derive(Debug, Clone)]
pub struct ClusterLoad {
    /// Per group: its load over the brokers with fresh reports, and the
    /// brokers it should have but that are missing.
    pub groups: Vec<(GroupLoad<i32>, Vec<i32>)>,
    /// Per broker with two disks or more: the model across its disks.
    pub disks: BTreeMap<i32, GroupLoad<String>>,
}

impl ClusterLoad {
    pub fn views(&self) -> Vec<GroupView> {
        self.groups
            .iter()
            .map(|(load, missing)| GroupView::new(load, missing.clone()))
            .collect()
    }
}

/// `known` are the brokers ever seen (or configured): a known broker without
/// a fresh report is missing from its group, not counted as zero. The
/// partitions and leaders of each broker come from fresh cluster metadata.
pub fn cluster_load(
    config: &Config,
    store: &Store,
    known: &BTreeSet<i32>,
    now: f64,
    replication: Option<&ReplicationFacts>,
) -> ClusterLoad {
    let missing_after = config.broker_missing_after.as_secs_f64();
    let mut members: BTreeMap<&str, (Vec<i32>, Vec<i32>)> = BTreeMap::new();
    let configured = config.groups.values().flatten();
    let everyone: BTreeSet<i32> = known
        .iter()
        .copied()
        .chain(configured.copied())
        .chain(store.brokers().map(|(b, _)| *b))
        .collect();
    for broker in everyone {
        let (fresh, missing) = members.entry(config.group_of(broker)).or_default();
        if store.is_fresh(broker, now, missing_after) {
            fresh.push(broker);
        } else {
            missing.push(broker);
        }
    }
    let groups = members
        .into_iter()
        .map(|(group, (fresh, missing))| {
            let rows: Vec<Row<i32>> = fresh
                .iter()
                .map(|&broker| Row {
                    member: broker,
                    values: METRICS
                        .iter()
                        .filter_map(|m| {
                            let value = match (*m, replication.and_then(|r| r.brokers.get(&broker)))
                            {
                                ("partitions", Some(b)) => b.partitions as f64,
                                ("leaders", Some(b)) => b.leaders as f64,
                                _ => store.robust(broker, m, now)?,
                            };
                            Some(((*m).to_owned(), value))
                        })
                        .collect(),
                })
                .collect();
            (
                compute(group, &rows, &config.weights, config.deviation),
                missing,
            )
        })
        .collect::<Vec<_>>();

    let disk_weights = default_weights(&DISK_METRICS);
    let disks = groups
        .iter()
        .flat_map(|(load, _)| load.members.iter().map(|m| m.member))
        .filter_map(|broker| {
            let devices: BTreeSet<&str> = store
                .series_names(broker)
                .filter_map(|s| s.strip_prefix("disk:")?.split_once(':').map(|(d, _)| d))
                .collect();
            let rows: Vec<Row<String>> = devices
                .iter()
                .map(|device| Row {
                    member: (*device).to_owned(),
                    values: DISK_METRICS
                        .iter()
                        .filter_map(|m| {
                            Some((
                                (*m).to_owned(),
                                store.robust(broker, &disk_series(device, m), now)?,
                            ))
                        })
                        .collect(),
                })
                .collect();
            (rows.len() >= 2).then(|| {
                (
                    broker,
                    compute(
                        &format!("broker {broker}"),
                        &rows,
                        &disk_weights,
                        config.disk_deviation,
                    ),
                )
            })
        })
        .collect();
    ClusterLoad { groups, disks }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{from_toml_text, Flags};
    use crate::store::tests::{disk, report};

    fn config(extra: &str) -> Config {
        let text = format!("cluster = \"test\"\n[ingest]\nallow_unauthenticated = true\n{extra}");
        from_toml_text(&text, "test", &Flags::default()).unwrap()
    }

    #[test]
    fn one_heavy_broker_stands_out_and_a_silent_one_is_missing_not_zero() {
        let config = config("");
        let mut store = Store::new(300.0);
        for broker in 1..=4 {
            store.insert(report(broker, if broker == 3 { 4.0 } else { 1.0 }), 1000.0);
        }
        store.insert(report(5, 1.0), 800.0); // last heard 200 s ago
        let known = BTreeSet::from([6]); // seen before, no report since the restart
        let load = cluster_load(&config, &store, &known, 1000.0, None);
        assert_eq!(load.groups.len(), 1);
        let (group, missing) = &load.groups[0];
        assert_eq!(group.group, "default");
        assert_eq!(missing, &[5, 6]);
        assert_eq!(group.members.len(), 4);
        // Every metric is 4x on broker 3: share 4/7.
        let heavy = &group.members[2];
        assert_eq!(heavy.member, 3);
        assert!((heavy.share - 4.0 / 7.0).abs() < 1e-12);
        assert!((heavy.deviation - (4.0 * 4.0 / 7.0 - 1.0)).abs() < 1e-12);
        assert!(!group.balanced);
        assert_eq!(
            group.deviating(0.10).map(|m| m.member).collect::<Vec<_>>(),
            [1, 2, 3, 4]
        );
    }

    #[test]
    fn resource_groups_are_computed_apart() {
        let config = config("[[groups]]\nname = \"payments\"\nbrokers = [1, 2]\n");
        let mut store = Store::new(300.0);
        store.insert(report(1, 1.0), 10.0);
        store.insert(report(2, 1.0), 10.0);
        store.insert(report(3, 9.0), 10.0);
        store.insert(report(4, 1.0), 10.0);
        let load = cluster_load(&config, &store, &BTreeSet::new(), 10.0, None);
        let names: Vec<&str> = load.groups.iter().map(|(g, _)| g.group.as_str()).collect();
        assert_eq!(names, ["default", "payments"]);
        assert!(
            load.groups[1].0.balanced,
            "payments is even whatever broker 3 does"
        );
        assert!(!load.groups[0].0.balanced);
        assert!((load.groups[0].0.members[0].share - 0.9).abs() < 1e-12);
    }

    #[test]
    fn partitions_and_leaders_come_from_the_metadata() {
        use crate::model::replication::{analyze, tests::partition, Snapshot, TopicMeta};
        let config = config("[load.weights]\ncpu_used = 0\nnw_bytes_in = 0\nnw_bytes_out = 0\nio_read = 0\nio_write = 0\niowait = 0\nio_util = 0\n");
        let mut store = Store::new(300.0);
        store.insert(report(1, 1.0), 10.0);
        store.insert(report(2, 1.0), 10.0);
        let snapshot = Snapshot {
            brokers: vec![1, 2],
            topics: vec![TopicMeta {
                name: "t".into(),
                min_insync_replicas: None,
                partitions: vec![
                    partition(0, 1, &[1, 2], &[1, 2]),
                    partition(1, 1, &[1], &[1]),
                    partition(2, 2, &[1], &[1]),
                ],
            }],
        };
        let facts = analyze(&snapshot, &BTreeSet::new());
        let load = cluster_load(&config, &store, &BTreeSet::new(), 10.0, Some(&facts));
        let group = &load.groups[0].0;
        // The reports carry no memory or fd source, so only the two metadata metrics count.
        assert_eq!(group.metrics, ["leaders", "partitions"]);
        // partitions 3 and 1, leaders 2 and 1: B = 3/4 + 2/3 and 1/4 + 1/3, over 2.
        assert!((group.members[0].share - (0.75 + 2.0 / 3.0) / 2.0).abs() < 1e-12);
        assert!((group.members[1].metric_shares["leaders"] - 1.0 / 3.0).abs() < 1e-12);
        let without = cluster_load(&config, &store, &BTreeSet::new(), 10.0, None);
        assert!(
            without.groups[0].0.metrics.is_empty(),
            "no metadata: partitions and leaders are unknown, not zero"
        );
    }

    #[test]
    fn the_disks_inside_a_broker_are_compared() {
        let config = config("");
        let mut store = Store::new(300.0);
        let mut r = report(1, 1.0);
        r.host.disks = vec![
            disk("sdb", 1e6, 1e6, 0.2),
            disk("sdc", 1e6, 1e6, 0.2),
            disk("sdd", 4e6, 4e6, 0.8),
        ];
        store.insert(r, 10.0);
        store.insert(report(2, 1.0), 10.0); // one disk: no disk model
        let load = cluster_load(&config, &store, &BTreeSet::new(), 10.0, None);
        assert_eq!(load.disks.keys().copied().collect::<Vec<_>>(), [1]);
        let disks = &load.disks[&1];
        assert_eq!(disks.members[2].member, "sdd");
        assert!((disks.members[2].share - 4.0 / 6.0).abs() < 1e-12);
        assert!(!disks.balanced);
    }
}
