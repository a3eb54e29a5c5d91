use super::*;
use brokerwatch_common::{CpuReport, DiskReport, HostReport, InterfaceReport, SCHEMA_VERSION};

pub(crate) fn disk(device: &str, read: f64, write: f64, util: f64) -> DiskReport {
    DiskReport {
        device: device.to_owned(),
        utilization_ratio: util,
        reads_per_second: 0.0,
        writes_per_second: 0.0,
        read_bytes_per_second: read,
        written_bytes_per_second: write,
        read_await_seconds: 0.0,
        write_await_seconds: 0.0,
        queue_length: 0.0,
    }
}

/// A log dir on `disks`.
pub(crate) fn log_dir(path: &str, disks: &[&str]) -> brokerwatch_common::LogDirReport {
    brokerwatch_common::LogDirReport {
        log_dir: path.to_owned(),
        mount_point: path.to_owned(),
        device: disks.first().map(|d| (*d).to_owned()),
        disks: disks.iter().map(|d| (*d).to_owned()).collect(),
        used_bytes: 0,
        free_bytes: 0,
        partitions: 0,
        size_bytes: 0,
        topics: Vec::new(),
        largest_partitions: Vec::new(),
    }
}

pub(crate) fn link(name: &str, rx: f64, tx: f64, speed: Option<f64>) -> InterfaceReport {
    InterfaceReport {
        interface: name.to_owned(),
        receive_bytes_per_second: rx,
        transmit_bytes_per_second: tx,
        receive_drops_per_second: 0.0,
        transmit_drops_per_second: 0.0,
        receive_errors_per_second: 0.0,
        transmit_errors_per_second: 0.0,
        speed_bytes_per_second: speed,
        receive_utilization_ratio: speed.map(|s| rx / s),
        transmit_utilization_ratio: speed.map(|s| tx / s),
    }
}

/// A report whose load is `weight` times a unit load on every metric.
pub(crate) fn report(broker: i32, weight: f64) -> Report {
    Report {
        schema_version: SCHEMA_VERSION,
        broker_id: broker,
        agent_version: "test".into(),
        timestamp_ms: 0,
        interval_seconds: 10.0,
        host: HostReport {
            cpu: Some(CpuReport {
                cpus: 8,
                utilization_ratio: 0.05 * weight,
                iowait_ratio: 0.01 * weight,
            }),
            disks: vec![disk("sdb", 1e6 * weight, 2e6 * weight, 0.1 * weight)],
            interfaces: vec![
                link("eth0", 1e7 * weight, 2e7 * weight, Some(1.25e9)),
                link("lo", 5e9, 5e9, None),
            ],
            ..HostReport::default()
        },
    }
}

const IO_READ: Series = Series::Load(Metric::IoRead);

#[test]
fn a_report_feeds_the_load_metrics_and_per_device_series() {
    let mut r = report(1, 2.0);
    r.host.disks.push(disk("sdc", 3e6, 0.0, 0.5));
    let series: BTreeMap<Series, f64> = series(&r).into_iter().collect();
    let load = |metric| Series::Load(metric);
    assert!(
        (series[&load(Metric::CpuUsed)] - 0.8).abs() < 1e-12,
        "8 CPUs at 10 %"
    );
    assert_eq!(series[&load(Metric::IoRead)], 2e6 + 3e6);
    assert_eq!(series[&load(Metric::IoUtil)], (0.2 + 0.5) / 2.0);
    assert_eq!(
        series[&load(Metric::NwBytesIn)],
        2e7,
        "loopback is left out"
    );
    assert_eq!(series[&Series::Disk("sdc".into(), Metric::IoBytes)], 3e6);
    assert_eq!(
        series[&Series::LinkUtilization("eth0".into())],
        4e7 / 1.25e9
    );
    assert!(
        !series.contains_key(&load(Metric::MemUsed)),
        "no memory source, no value"
    );
    assert!(!series.contains_key(&Series::LinkUtilization("lo".into())));
}

#[test]
fn the_median_ignores_one_spike_one_drop_and_one_zero() {
    let mut store = Store::new(300.0);
    for (i, weight) in [1.0, 1.0, 50.0, 1.0, 0.0, 1.0, 1.0].into_iter().enumerate() {
        store.insert(report(1, weight), 100.0 + 10.0 * i as f64);
    }
    let now = 160.0;
    assert_eq!(store.robust(1, &IO_READ, now), Some(1e6));
    assert_eq!(
        store.robust(1, &Series::Load(Metric::NwBytesIn), now),
        Some(1e7)
    );
}

#[test]
fn samples_age_out_of_the_window_and_a_silent_broker_is_not_fresh() {
    let mut store = Store::new(30.0);
    store.insert(report(1, 1.0), 0.0);
    store.insert(report(1, 3.0), 20.0);
    assert_eq!(
        store.robust(1, &IO_READ, 20.0),
        Some(2e6),
        "median of two is their mean"
    );
    assert_eq!(
        store.robust(1, &IO_READ, 45.0),
        Some(3e6),
        "the first sample left the window"
    );
    assert_eq!(
        store.robust(1, &IO_READ, 60.0),
        None,
        "no sample within the window: unknown, not zero"
    );
    assert!(store.is_fresh(1, 50.0, 60.0));
    assert!(!store.is_fresh(1, 90.0, 60.0));
    assert!(!store.is_fresh(2, 0.0, 60.0));
}

use crate::model::cluster::{cluster_load, ClusterLoad, LoadParams};
use crate::model::load::default_weights;
use crate::model::replication::ReplicationFacts;

/// The default load settings and these resource groups.
fn params(groups: &[(&str, &[i32])]) -> (LoadParams, ResourceGroups) {
    (
        LoadParams {
            weights: default_weights(&Metric::ALL),
            deviation: 0.10,
            disk_deviation: 0.10,
        },
        ResourceGroups(
            groups
                .iter()
                .map(|(name, brokers)| ((*name).to_owned(), brokers.iter().copied().collect()))
                .collect(),
        ),
    )
}

/// The cluster's load as the evaluator computes it (missing after 60 s).
pub(crate) fn load_of(
    (params, groups): &(LoadParams, ResourceGroups),
    store: &Store,
    known: &BTreeSet<i32>,
    now: f64,
    metadata: Option<&ReplicationFacts>,
) -> ClusterLoad {
    let (rows, disks) = store.load_rows(groups, known, 60.0, now, metadata);
    cluster_load(params, rows, disks)
}

#[test]
fn one_heavy_broker_stands_out_and_a_silent_one_is_missing_not_zero() {
    let config = params(&[]);
    let mut store = Store::new(300.0);
    for broker in 1..=4 {
        store.insert(report(broker, if broker == 3 { 4.0 } else { 1.0 }), 1000.0);
    }
    store.insert(report(5, 1.0), 800.0); // last heard 200 s ago
    let known = BTreeSet::from([6]); // seen before, no report since the restart
    let load = load_of(&config, &store, &known, 1000.0, None);
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
    let config = params(&[("payments", &[1, 2])]);
    let mut store = Store::new(300.0);
    store.insert(report(1, 1.0), 10.0);
    store.insert(report(2, 1.0), 10.0);
    store.insert(report(3, 9.0), 10.0);
    store.insert(report(4, 1.0), 10.0);
    let load = load_of(&config, &store, &BTreeSet::new(), 10.0, None);
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
    let mut config = params(&[]);
    for metric in [
        Metric::CpuUsed,
        Metric::NwBytesIn,
        Metric::NwBytesOut,
        Metric::IoRead,
        Metric::IoWrite,
        Metric::Iowait,
        Metric::IoUtil,
    ] {
        config.0.weights.insert(metric, 0.0);
    }
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
    let load = load_of(&config, &store, &BTreeSet::new(), 10.0, Some(&facts));
    let group = &load.groups[0].0;
    // The reports carry no memory or fd source, so only the two metadata metrics count.
    assert_eq!(group.metrics, ["leaders", "partitions"]);
    // partitions 3 and 1, leaders 2 and 1: B = 3/4 + 2/3 and 1/4 + 1/3, over 2.
    assert!((group.members[0].share - (0.75 + 2.0 / 3.0) / 2.0).abs() < 1e-12);
    assert!((group.members[1].metric_shares["leaders"] - 1.0 / 3.0).abs() < 1e-12);
    let without = load_of(&config, &store, &BTreeSet::new(), 10.0, None);
    assert!(
        without.groups[0].0.metrics.is_empty(),
        "no metadata: partitions and leaders are unknown, not zero"
    );
}

#[test]
fn the_disks_inside_a_broker_are_compared_by_bytes() {
    let config = params(&[]);
    let mut store = Store::new(300.0);
    let mut r = report(1, 1.0);
    r.host.disks = vec![
        disk("sdb", 1e6, 1e6, 0.2),
        disk("sdc", 1e6, 1e6, 0.9),
        disk("sdd", 4e6, 4e6, 0.8),
    ];
    r.host.log_dirs = vec![
        log_dir("/data/1", &["sdb"]),
        log_dir("/data/2", &["sdc"]),
        log_dir("/data/3", &["sdd"]),
    ];
    store.insert(r, 10.0);
    store.insert(report(2, 1.0), 10.0); // no log dirs: no disk model
    let load = load_of(&config, &store, &BTreeSet::new(), 10.0, None);
    assert_eq!(load.disks.keys().copied().collect::<Vec<_>>(), [1]);
    let disks = &load.disks[&1];
    assert_eq!(disks.members[2].member, "sdd");
    assert!((disks.members[2].share - 8.0 / 12.0).abs() < 1e-12);
    // Shares of one measure, bytes: sdc's %util does not make it heavy.
    assert!((disks.members[1].share - 2.0 / 12.0).abs() < 1e-12);
    assert_eq!(disks.metrics, ["io_bytes"]);
    assert!(!disks.balanced);
}

#[test]
fn only_the_disks_under_the_log_dirs_are_compared() {
    let config = params(&[]);
    let mut store = Store::new(300.0);
    let mut r = report(1, 1.0);
    // sda holds the OS and is idle; the two log disks (one an LVM
    // volume over two disks) share the broker's I/O evenly.
    r.host.disks = vec![
        disk("sda", 0.0, 1e3, 0.01),
        disk("sdb", 2e6, 4e6, 0.3),
        disk("sdc", 1e6, 2e6, 0.2),
        disk("sdd", 1e6, 2e6, 0.2),
    ];
    r.host.log_dirs = vec![
        log_dir("/data/1", &["sdb"]),
        log_dir("/data/2", &["sdc", "sdd"]),
    ];
    store.insert(r, 10.0);
    let load = load_of(&config, &store, &BTreeSet::new(), 10.0, None);
    let members: Vec<&str> = load.disks[&1]
        .members
        .iter()
        .map(|m| m.member.as_str())
        .collect();
    assert_eq!(members, ["sdb", "sdc", "sdd"], "sda is the OS disk");
}

#[test]
fn topics_bytes_come_from_counters_between_reports_and_sizes_from_log_dirs() {
    use brokerwatch_common::{BrokerMetricsReport, TopicSize, TopicTraffic};
    let with = |broker: i32, at_ms: u64, bytes_in: f64| {
        let mut r = report(broker, 1.0);
        r.timestamp_ms = at_ms;
        r.host.broker_metrics = Some(BrokerMetricsReport {
            topics: vec![TopicTraffic {
                topic: "orders".into(),
                bytes_in_total: Some(bytes_in),
                bytes_out_total: Some(bytes_in * 2.0),
                messages_in_total: None,
            }],
            ..BrokerMetricsReport::default()
        });
        let mut dir = log_dir("/data/a", &["sdb"]);
        dir.topics = vec![TopicSize {
            topic: "orders".into(),
            partitions: 2,
            size_bytes: 1000 * broker as u64,
        }];
        r.host.log_dirs = vec![dir];
        r
    };
    let mut store = Store::new(300.0);
    store.insert(with(1, 10_000, 1000.0), 10.0);
    store.insert(with(2, 10_000, 0.0), 10.0);
    let first = store.topics_on_brokers(10.0, 60.0);
    assert_eq!(
        first["orders"].bytes_in_per_second, None,
        "one report: no rate"
    );
    assert_eq!(first["orders"].size_bytes, Some(3000));
    store.insert(with(1, 20_000, 6000.0), 20.0);
    store.insert(with(2, 20_000, 1000.0), 20.0);
    let orders = store.topics_on_brokers(20.0, 60.0)["orders"];
    assert_eq!(
        orders.bytes_in_per_second,
        Some(600.0),
        "500 + 100 per second"
    );
    assert_eq!(orders.bytes_out_per_second, Some(1200.0));
    // A counter that went back (a broker restart) gives no rate; stale brokers do not count.
    store.insert(with(1, 30_000, 10.0), 30.0);
    let orders = store.topics_on_brokers(85.0, 60.0)["orders"];
    assert_eq!(orders.bytes_in_per_second, None);
    assert_eq!(
        orders.size_bytes,
        Some(1000),
        "broker 2's report is 65 s old"
    );
}

#[test]
fn users_bytes_are_summed_over_fresh_brokers() {
    use brokerwatch_common::{BrokerMetricsReport, UserQuota};
    let with = |broker: i32, produce: Option<f64>, fetch: Option<f64>| {
        let mut r = report(broker, 1.0);
        r.host.broker_metrics = Some(BrokerMetricsReport {
            quotas: vec![
                UserQuota {
                    user: "ingest".into(),
                    produce_bytes_per_second: produce,
                    fetch_bytes_per_second: fetch,
                    ..UserQuota::default()
                },
                UserQuota {
                    user: "throttled-only".into(),
                    produce_throttle_ms: Some(5.0),
                    ..UserQuota::default()
                },
            ],
            ..BrokerMetricsReport::default()
        });
        r
    };
    let mut store = Store::new(300.0);
    store.insert(with(1, Some(100.0), Some(50.0)), 10.0);
    store.insert(with(2, Some(30.0), None), 10.0);
    store.insert(with(3, Some(1000.0), Some(1000.0)), -100.0);
    let users = store.user_bytes_per_second(20.0, 60.0);
    assert_eq!(
        users.get("ingest"),
        Some(&180.0),
        "broker 3's report is stale"
    );
    assert_eq!(
        users.get("throttled-only"),
        None,
        "no byte rate: no traffic figure"
    );
}
