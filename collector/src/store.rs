//! What the collector knows of each broker: the latest report, when it came,
//! and a rolling window of samples per series with a robust (median) value,
//! so that one spike, a sudden drop or a zero sample does not move the load.
//! Times are Unix seconds on the collector's clock (an agent's clock may be off).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use brokerwatch_common::Report;
use statrs::statistics::{Data, Median};

use crate::model::cluster::{GroupRows, LoadRows, ResourceGroups};
use crate::model::load::{Metric, Row};
use crate::model::replication::ReplicationFacts;

/// A series the store keeps per broker.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Series {
    /// A load metric the report gives (not partitions or leaders: those come
    /// from the cluster's metadata).
    Load(Metric),
    /// The page-cache hit ratio: the ebpf method where the agent runs it,
    /// else the estimate.
    PageCacheHit,
    /// One disk's figure (io_bytes, io_util).
    Disk(String, Metric),
    /// One link's busier direction, as a share of its speed.
    LinkUtilization(String),
}

/// The series a report feeds: the broker's load metrics, and per disk and
/// per interface the figures the host rules and the disk model use.
pub fn series(report: &Report) -> Vec<(Series, f64)> {
    let host = &report.host;
    let mut out = Vec::new();
    if let Some(cpu) = &host.cpu {
        out.push((
            Series::Load(Metric::CpuUsed),
            cpu.utilization_ratio * f64::from(cpu.cpus),
        ));
        out.push((Series::Load(Metric::Iowait), cpu.iowait_ratio));
    }
    if let Some(ratio) = host
        .page_cache_hit_ratio_ebpf
        .or(host.page_cache_hit_ratio_estimate)
    {
        out.push((Series::PageCacheHit, ratio));
    }
    if !host.disks.is_empty() {
        out.push((
            Series::Load(Metric::IoRead),
            host.disks.iter().map(|d| d.read_bytes_per_second).sum(),
        ));
        out.push((
            Series::Load(Metric::IoWrite),
            host.disks.iter().map(|d| d.written_bytes_per_second).sum(),
        ));
        let util: f64 = host.disks.iter().map(|d| d.utilization_ratio).sum();
        out.push((Series::Load(Metric::IoUtil), util / host.disks.len() as f64));
        for d in &host.disks {
            let disk = |metric| Series::Disk(d.device.clone(), metric);
            out.push((
                disk(Metric::IoBytes),
                d.read_bytes_per_second + d.written_bytes_per_second,
            ));
            out.push((disk(Metric::IoUtil), d.utilization_ratio));
        }
    }
    // Loopback is the host talking to itself, not load the broker serves.
    let links: Vec<_> = host
        .interfaces
        .iter()
        .filter(|i| i.interface != "lo")
        .collect();
    if !links.is_empty() {
        out.push((
            Series::Load(Metric::NwBytesIn),
            links.iter().map(|i| i.receive_bytes_per_second).sum(),
        ));
        out.push((
            Series::Load(Metric::NwBytesOut),
            links.iter().map(|i| i.transmit_bytes_per_second).sum(),
        ));
        for i in links {
            let saturation = i
                .receive_utilization_ratio
                .into_iter()
                .chain(i.transmit_utilization_ratio)
                .reduce(f64::max);
            if let Some(saturation) = saturation {
                out.push((Series::LinkUtilization(i.interface.clone()), saturation));
            }
        }
    }
    if let Some(memory) = &host.memory {
        out.push((
            Series::Load(Metric::MemUsed),
            memory.total_bytes.saturating_sub(memory.available_bytes) as f64,
        ));
    }
    if let Some(fd) = &host.file_descriptors {
        out.push((Series::Load(Metric::Fd), fd.allocated as f64));
    }
    out
}

#[derive(Debug, Clone, Default)]
struct Window(VecDeque<(f64, f64)>);

impl Window {
    fn push(&mut self, at: f64, value: f64, window_seconds: f64) {
        self.0.push_back((at, value));
        while self
            .0
            .front()
            .is_some_and(|(t, _)| *t < at - window_seconds)
        {
            self.0.pop_front();
        }
    }

    /// The median of the samples within the window ending at `now`.
    fn robust(&self, now: f64, window_seconds: f64) -> Option<f64> {
        let values: Vec<f64> = self
            .0
            .iter()
            .filter(|(t, v)| *t >= now - window_seconds && v.is_finite())
            .map(|(_, v)| *v)
            .collect();
        (!values.is_empty()).then(|| Data::new(values).median())
    }
}

#[derive(Debug, Clone)]
pub struct BrokerEntry {
    pub latest: Report,
    pub received_at: f64,
    series: BTreeMap<Series, Window>,
}

#[derive(Debug, Clone)]
pub struct Store {
    window_seconds: f64,
    brokers: BTreeMap<i32, BrokerEntry>,
}

impl Store {
    pub fn new(window_seconds: f64) -> Self {
        Store {
            window_seconds,
            brokers: BTreeMap::new(),
        }
    }

    pub fn insert(&mut self, report: Report, now: f64) {
        let window = self.window_seconds;
        let entry = self
            .brokers
            .entry(report.broker_id)
            .or_insert_with(|| BrokerEntry {
                latest: report.clone(),
                received_at: now,
                series: BTreeMap::new(),
            });
        for (name, value) in series(&report) {
            entry
                .series
                .entry(name)
                .or_default()
                .push(now, value, window);
        }
        // A series the report no longer has (a disk removed) ages out of its window.
        entry
            .series
            .retain(|_, w| w.0.back().is_some_and(|(t, _)| *t >= now - window));
        entry.latest = report;
        entry.received_at = now;
    }

    pub fn brokers(&self) -> impl Iterator<Item = (&i32, &BrokerEntry)> {
        self.brokers.iter()
    }

    pub fn get(&self, broker: i32) -> Option<&BrokerEntry> {
        self.brokers.get(&broker)
    }

    /// Whether the broker reported within `missing_after` seconds of `now`.
    pub fn is_fresh(&self, broker: i32, now: f64, missing_after: f64) -> bool {
        self.brokers
            .get(&broker)
            .is_some_and(|e| now - e.received_at <= missing_after)
    }

    /// The median of a series over the window.
    pub fn robust(&self, broker: i32, series: &Series, now: f64) -> Option<f64> {
        self.brokers
            .get(&broker)?
            .series
            .get(series)?
            .robust(now, self.window_seconds)
    }

    /// The series a broker has, e.g. to find its disks.
    pub fn series_of(&self, broker: i32) -> impl Iterator<Item = &Series> {
        self.brokers
            .get(&broker)
            .into_iter()
            .flat_map(|e| e.series.keys())
    }

    /// The model's input: each resource group's brokers, those with a fresh
    /// report (within `missing_after` seconds) with their metrics' robust
    /// values, the others as missing (never as zero); and the disks of each
    /// fresh broker. `known` are the brokers seen before (or configured);
    /// partitions and leaders come from `metadata` when it is fresh.
    pub fn load_rows(
        &self,
        groups: &ResourceGroups,
        known: &BTreeSet<i32>,
        missing_after: f64,
        now: f64,
        metadata: Option<&ReplicationFacts>,
    ) -> LoadRows {
        let everyone: BTreeSet<i32> = known
            .iter()
            .copied()
            .chain(groups.brokers())
            .chain(self.brokers.keys().copied())
            .collect();
        let mut rows: BTreeMap<String, GroupRows> = BTreeMap::new();
        let mut disks = BTreeMap::new();
        for broker in everyone {
            let group = rows.entry(groups.group_of(broker).to_owned()).or_default();
            if !self.is_fresh(broker, now, missing_after) {
                group.missing.push(broker);
                continue;
            }
            let from_metadata = metadata.and_then(|m| m.brokers.get(&broker));
            let values = Metric::ALL
                .iter()
                .filter_map(|&metric| {
                    let value = match (metric, from_metadata) {
                        (Metric::Partitions, Some(b)) => b.partitions as f64,
                        (Metric::Leaders, Some(b)) => b.leaders as f64,
                        _ => self.robust(broker, &Series::Load(metric), now)?,
                    };
                    Some((metric, value))
                })
                .collect();
            group.fresh.push(Row {
                member: broker,
                values,
            });
            disks.insert(broker, self.disk_rows(broker, now));
        }
        (rows, disks)
    }

    /// One row per disk under the broker's log dirs (as its latest report
    /// maps them: partitions, LVM and md members resolved), by device. A
    /// broker whose report names no log dir has none: the OS disk and the
    /// disks Kafka does not use are never compared.
    fn disk_rows(&self, broker: i32, now: f64) -> Vec<Row<String>> {
        let Some(entry) = self.brokers.get(&broker) else {
            return Vec::new();
        };
        let devices: BTreeSet<&str> = entry
            .latest
            .host
            .log_dirs
            .iter()
            .flat_map(|d| d.disks.iter().map(String::as_str))
            .collect();
        devices
            .into_iter()
            .filter_map(|device| {
                let values = Metric::DISK
                    .iter()
                    .filter_map(|&m| {
                        let series = Series::Disk(device.to_owned(), m);
                        Some((m, self.robust(broker, &series, now)?))
                    })
                    .collect::<BTreeMap<_, _>>();
                (!values.is_empty()).then(|| Row {
                    member: device.to_owned(),
                    values,
                })
            })
            .collect()
    }
}

#[cfg(test)]
pub(crate) mod tests {
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
}
