//! What the collector knows of each broker: the latest report, when it came,
//! and a rolling window of samples per series with a robust (median) value,
//! so that one spike, a sudden drop or a zero sample does not move the load.
//! Times are Unix seconds on the collector's clock (an agent's clock may be off).

use std::collections::{BTreeMap, VecDeque};

use brokerwatch_common::Report;
use statrs::statistics::{Data, Median};

/// The series of the page-cache hit ratio.
pub const PAGE_CACHE_HIT: &str = "page_cache_hit";

/// The series a report feeds: the broker's load metrics, and per disk and
/// per interface the figures the host rules and the disk model use.
pub fn series(report: &Report) -> Vec<(String, f64)> {
    let host = &report.host;
    let mut out = Vec::new();
    if let Some(cpu) = &host.cpu {
        out.push((
            "cpu_used".to_owned(),
            cpu.utilization_ratio * f64::from(cpu.cpus),
        ));
        out.push(("iowait".to_owned(), cpu.iowait_ratio));
    }
    // The exact method where the agent runs it, else the estimate.
    if let Some(ratio) = host
        .page_cache_hit_ratio_ebpf
        .or(host.page_cache_hit_ratio_estimate)
    {
        out.push((PAGE_CACHE_HIT.to_owned(), ratio));
    }
    if !host.disks.is_empty() {
        out.push((
            "io_read".to_owned(),
            host.disks.iter().map(|d| d.read_bytes_per_second).sum(),
        ));
        out.push((
            "io_write".to_owned(),
            host.disks.iter().map(|d| d.written_bytes_per_second).sum(),
        ));
        let util: f64 = host.disks.iter().map(|d| d.utilization_ratio).sum();
        out.push(("io_util".to_owned(), util / host.disks.len() as f64));
        for d in &host.disks {
            out.push((disk_series(&d.device, "io_read"), d.read_bytes_per_second));
            out.push((
                disk_series(&d.device, "io_write"),
                d.written_bytes_per_second,
            ));
            out.push((disk_series(&d.device, "io_util"), d.utilization_ratio));
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
            "nw_bytes_in".to_owned(),
            links.iter().map(|i| i.receive_bytes_per_second).sum(),
        ));
        out.push((
            "nw_bytes_out".to_owned(),
            links.iter().map(|i| i.transmit_bytes_per_second).sum(),
        ));
        for i in links {
            let saturation = i
                .receive_utilization_ratio
                .into_iter()
                .chain(i.transmit_utilization_ratio)
                .reduce(f64::max);
            if let Some(saturation) = saturation {
                out.push((interface_series(&i.interface), saturation));
            }
        }
    }
    if let Some(memory) = &host.memory {
        out.push((
            "mem_used".to_owned(),
            memory.total_bytes.saturating_sub(memory.available_bytes) as f64,
        ));
    }
    if let Some(fd) = &host.file_descriptors {
        out.push(("fd".to_owned(), fd.allocated as f64));
    }
    out
}

pub fn disk_series(device: &str, metric: &str) -> String {
    format!("disk:{device}:{metric}")
}

/// The busier direction's share of the link speed.
pub fn interface_series(interface: &str) -> String {
    format!("link:{interface}:utilization")
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
    series: BTreeMap<String, Window>,
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
    pub fn robust(&self, broker: i32, series: &str, now: f64) -> Option<f64> {
        self.brokers
            .get(&broker)?
            .series
            .get(series)?
            .robust(now, self.window_seconds)
    }

    /// The series names a broker has, e.g. to find its disks.
    pub fn series_names(&self, broker: i32) -> impl Iterator<Item = &str> {
        self.brokers
            .get(&broker)
            .into_iter()
            .flat_map(|e| e.series.keys().map(String::as_str))
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

    #[test]
    fn a_report_feeds_the_load_metrics_and_per_device_series() {
        let mut r = report(1, 2.0);
        r.host.disks.push(disk("sdc", 3e6, 0.0, 0.5));
        let series: BTreeMap<String, f64> = series(&r).into_iter().collect();
        assert!((series["cpu_used"] - 0.8).abs() < 1e-12, "8 CPUs at 10 %");
        assert_eq!(series["io_read"], 2e6 + 3e6);
        assert_eq!(series["io_util"], (0.2 + 0.5) / 2.0);
        assert_eq!(series["nw_bytes_in"], 2e7, "loopback is left out");
        assert_eq!(series["disk:sdc:io_read"], 3e6);
        assert_eq!(series["link:eth0:utilization"], 4e7 / 1.25e9);
        assert!(
            !series.contains_key("mem_used"),
            "no memory source, no value"
        );
        assert!(!series.contains_key("link:lo:utilization"));
    }

    #[test]
    fn the_median_ignores_one_spike_one_drop_and_one_zero() {
        let mut store = Store::new(300.0);
        for (i, weight) in [1.0, 1.0, 50.0, 1.0, 0.0, 1.0, 1.0].into_iter().enumerate() {
            store.insert(report(1, weight), 100.0 + 10.0 * i as f64);
        }
        let now = 160.0;
        assert_eq!(store.robust(1, "io_read", now), Some(1e6));
        assert_eq!(store.robust(1, "nw_bytes_in", now), Some(1e7));
    }

    #[test]
    fn samples_age_out_of_the_window_and_a_silent_broker_is_not_fresh() {
        let mut store = Store::new(30.0);
        store.insert(report(1, 1.0), 0.0);
        store.insert(report(1, 3.0), 20.0);
        assert_eq!(
            store.robust(1, "io_read", 20.0),
            Some(2e6),
            "median of two is their mean"
        );
        assert_eq!(
            store.robust(1, "io_read", 45.0),
            Some(3e6),
            "the first sample left the window"
        );
        assert_eq!(
            store.robust(1, "io_read", 60.0),
            None,
            "no sample within the window: unknown, not zero"
        );
        assert!(store.is_fresh(1, 50.0, 60.0));
        assert!(!store.is_fresh(1, 90.0, 60.0));
        assert!(!store.is_fresh(2, 0.0, 60.0));
    }
}
