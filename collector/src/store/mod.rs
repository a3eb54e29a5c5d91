//! What the collector knows of each broker: the latest report, when it came,
//! and a rolling window of samples per series with a robust (median) value,
//! so that one spike, a sudden drop or a zero sample does not move the load.
//! Times are Unix seconds on the collector's clock (an agent's clock may be off).

use std::collections::{BTreeMap, BTreeSet};

use brokerwatch_common::Report;

use crate::model::cluster::{GroupRows, LoadRows, ResourceGroups};
use crate::model::load::{Metric, Row};
use crate::model::replication::ReplicationFacts;

mod health;
mod window;

pub use health::{Counter, Figure};
use window::Window;

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
    /// One of the broker's own figures (a gauge: its median is judged).
    Broker(Figure),
    /// A quota user's throttle time, the larger of produce and fetch, ms.
    UserThrottleMs(String),
    /// A count since the agent or the broker started: its increase is judged.
    Counter(Counter),
    /// A log dir's used bytes, one sample a minute over six hours, for the
    /// time left until it is full.
    LogDirUsed(String),
    /// A broker figure's history over the last hour, one sample a minute.
    History(Figure),
}

impl Series {
    /// How long the series is kept: most for the window, the histories longer.
    fn retention_seconds(&self, window_seconds: f64) -> f64 {
        match self {
            Series::LogDirUsed(_) => window_seconds.max(6.0 * 3600.0),
            Series::History(_) => window_seconds + 3600.0,
            Series::Counter(Counter::LogLines) => window_seconds + 3600.0,
            _ => window_seconds,
        }
    }

    /// The least time between two samples kept.
    fn spacing_seconds(&self) -> f64 {
        match self {
            Series::LogDirUsed(_) | Series::History(_) | Series::Counter(Counter::LogLines) => 60.0,
            _ => 0.0,
        }
    }
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
    out.extend(health::series(report));
    out
}

#[derive(Debug, Clone)]
pub struct BrokerEntry {
    pub latest: Report,
    pub received_at: f64,
    series: BTreeMap<Series, Window>,
    /// Broker process restarts seen (its start time changed) since the
    /// collector started.
    pub restarts: u64,
    /// When its first report came (since the collector started).
    first_at: f64,
    /// Each topic's traffic on this broker over the last two reports.
    pub topic_rates: BTreeMap<String, TopicRates>,
}

/// A topic's traffic on one broker, per second, from its counters.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TopicRates {
    pub bytes_in_per_second: Option<f64>,
    pub bytes_out_per_second: Option<f64>,
    pub messages_in_per_second: Option<f64>,
}

/// A topic as the agents see it, summed over the brokers with a fresh report.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TopicOnBrokers {
    pub bytes_in_per_second: Option<f64>,
    pub bytes_out_per_second: Option<f64>,
    /// Bytes its partitions hold, every replica counted.
    pub size_bytes: Option<u64>,
}

/// One of the largest or fastest-written partitions an agent reported.
#[derive(Debug, Clone, PartialEq)]
pub struct LargePartition {
    pub broker: i32,
    pub log_dir: String,
    pub size: brokerwatch_common::PartitionSize,
}

/// Each topic's rates on a broker between two of its reports.
fn topic_rates(before: &Report, after: &Report) -> BTreeMap<String, TopicRates> {
    let (Some(old), Some(new)) = (&before.host.broker_metrics, &after.host.broker_metrics) else {
        return BTreeMap::new();
    };
    let elapsed = (after.timestamp_ms as f64 - before.timestamp_ms as f64) / 1000.0;
    if elapsed <= 0.0 {
        return BTreeMap::new();
    }
    let old: BTreeMap<&str, &brokerwatch_common::TopicTraffic> =
        old.topics.iter().map(|t| (t.topic.as_str(), t)).collect();
    let rate = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b >= a => Some((b - a) / elapsed),
        _ => None,
    };
    new.topics
        .iter()
        .filter_map(|t| {
            let o = old.get(t.topic.as_str())?;
            Some((
                t.topic.clone(),
                TopicRates {
                    bytes_in_per_second: rate(o.bytes_in_total, t.bytes_in_total),
                    bytes_out_per_second: rate(o.bytes_out_total, t.bytes_out_total),
                    messages_in_per_second: rate(o.messages_in_total, t.messages_in_total),
                },
            ))
        })
        .collect()
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
                restarts: 0,
                first_at: now,
                topic_rates: BTreeMap::new(),
            });
        let started = |r: &Report| r.host.broker_process.as_ref().map(|p| p.start_time_ticks);
        if let (Some(before), Some(now_started)) = (started(&entry.latest), started(&report)) {
            entry.restarts += u64::from(before != now_started);
        }
        for (name, value) in series(&report) {
            let (retention, spacing) = (name.retention_seconds(window), name.spacing_seconds());
            entry
                .series
                .entry(name)
                .or_default()
                .push(now, value, retention, spacing);
        }
        // A series the report no longer has (a disk removed) ages out.
        entry.series.retain(|name, w| {
            w.newest_at()
                .is_some_and(|t| t >= now - name.retention_seconds(window))
        });
        entry.topic_rates = topic_rates(&entry.latest, &report);
        entry.latest = report;
        entry.received_at = now;
    }

    /// Each topic as the agents with a fresh report see it: bytes in and out
    /// per second (its leaders' brokers count them) and bytes held (every
    /// replica), summed over brokers.
    pub fn topics_on_brokers(
        &self,
        now: f64,
        missing_after: f64,
    ) -> BTreeMap<String, TopicOnBrokers> {
        let mut topics: BTreeMap<String, TopicOnBrokers> = BTreeMap::new();
        let add = |sum: &mut Option<f64>, value: Option<f64>| {
            if let Some(value) = value {
                *sum = Some(sum.unwrap_or(0.0) + value);
            }
        };
        for (broker, entry) in &self.brokers {
            if !self.is_fresh(*broker, now, missing_after) {
                continue;
            }
            for (topic, rates) in &entry.topic_rates {
                let t = topics.entry(topic.clone()).or_default();
                add(&mut t.bytes_in_per_second, rates.bytes_in_per_second);
                add(&mut t.bytes_out_per_second, rates.bytes_out_per_second);
            }
            for dir in &entry.latest.host.log_dirs {
                for size in &dir.topics {
                    let t = topics.entry(size.topic.clone()).or_default();
                    t.size_bytes = Some(t.size_bytes.unwrap_or(0) + size.size_bytes);
                }
            }
        }
        topics
    }

    /// The largest and fastest-written partitions the agents with a fresh
    /// report gave, largest first.
    pub fn large_partitions(&self, now: f64, missing_after: f64) -> Vec<LargePartition> {
        let mut found: Vec<LargePartition> = self
            .brokers
            .iter()
            .filter(|(b, _)| self.is_fresh(**b, now, missing_after))
            .flat_map(|(broker, entry)| {
                entry.latest.host.log_dirs.iter().flat_map(move |dir| {
                    dir.largest_partitions
                        .iter()
                        .map(move |size| LargePartition {
                            broker: *broker,
                            log_dir: dir.log_dir.clone(),
                            size: size.clone(),
                        })
                })
            })
            .collect();
        found.sort_by_key(|p| std::cmp::Reverse(p.size.size_bytes));
        found
    }

    pub fn brokers(&self) -> impl Iterator<Item = (&i32, &BrokerEntry)> {
        self.brokers.iter()
    }

    pub fn get(&self, broker: i32) -> Option<&BrokerEntry> {
        self.brokers.get(&broker)
    }

    /// Whether the broker reported within `missing_after` seconds of `now`.
    /// Each quota user's produce and fetch bytes per second, summed over the
    /// brokers with a fresh report that give a figure for it.
    pub fn user_bytes_per_second(&self, now: f64, missing_after: f64) -> BTreeMap<String, f64> {
        let mut users: BTreeMap<String, f64> = BTreeMap::new();
        for (broker, entry) in &self.brokers {
            if !self.is_fresh(*broker, now, missing_after) {
                continue;
            }
            let Some(metrics) = &entry.latest.host.broker_metrics else {
                continue;
            };
            for quota in &metrics.quotas {
                let rates = [quota.produce_bytes_per_second, quota.fetch_bytes_per_second];
                if rates.iter().any(Option::is_some) {
                    *users.entry(quota.user.clone()).or_default() +=
                        rates.iter().flatten().sum::<f64>();
                }
            }
        }
        users
    }

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

    /// How much a counter series grew over the window (resets counted as
    /// starting from zero), and over how many seconds of samples.
    pub fn increase(&self, broker: i32, series: &Series, now: f64) -> Option<(f64, f64)> {
        self.increase_between(broker, series, now - self.window_seconds, now)
    }

    /// [`Store::increase`] from `from` to `to`. A count that first appeared
    /// after the broker's first report (the agent starts a kind of kernel
    /// event at its first one) grew from zero.
    pub fn increase_between(
        &self,
        broker: i32,
        series: &Series,
        from: f64,
        to: f64,
    ) -> Option<(f64, f64)> {
        let entry = self.brokers.get(&broker)?;
        let window = entry.series.get(series)?;
        let (grew, span) = window.increase_between(from, to)?;
        let born = window
            .first_ever()
            .filter(|(at, _)| *at > entry.first_at && (from..=to).contains(at))
            .map_or(0.0, |(_, value)| value);
        Some((grew + born, span))
    }

    /// The median of a series from `from` to `to` (the histories are
    /// longer than the window).
    pub fn median_between(&self, broker: i32, series: &Series, from: f64, to: f64) -> Option<f64> {
        self.brokers
            .get(&broker)?
            .series
            .get(series)?
            .median_between(from, to)
    }

    pub fn window_seconds(&self) -> f64 {
        self.window_seconds
    }

    /// A long series' growth per second over its retention, by least
    /// squares, when it spans at least `least_seconds`.
    pub fn slope(&self, broker: i32, series: &Series, least_seconds: f64) -> Option<f64> {
        self.brokers
            .get(&broker)?
            .series
            .get(series)?
            .slope(least_seconds)
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
pub(crate) mod tests;
