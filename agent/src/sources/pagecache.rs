//! The page-cache hit rate from either method's readings.
//!
//! `ebpf`: from the pages counted in the kernel (see `pagecache_ebpf`),
//! misses = max(0, added - dirtied) and ratio = 1 - misses / requested.
//! Pages added because a write dirtied them are not misses.
//!
//! `estimate`: 1 - (bytes read from the
//! log-dir disks) / (bytes the broker served to consumers and followers) over
//! the interval. It needs nothing but diskstats and the broker's bytes-out
//! metrics, and it misleads when something else reads those disks (a
//! backup, a log shipper, the OS), when the broker reads for itself (log
//! compaction, segment recovery, tiered storage uploads), or when reads
//! come from readahead of earlier intervals.

use std::time::Instant;

use brokerwatch_common::exposition::Families;
use brokerwatch_common::{BrokerMetricsReport, DiskReport, LogDirReport};
use brokerwatch_common::{BrokerProcessReport, HostReport};

use super::pagecache_ebpf::PageCacheProbe;
pub use super::pagecache_ebpf::PageCounts;
use super::{clamp_ratio, elapsed, Source, SourceError};

/// The `ebpf` hit ratio over an interval; `None` when no read asked for a
/// page, or when the counters went back (the program was re-attached).
pub fn ebpf_hit_ratio(previous: PageCounts, current: PageCounts) -> Option<f64> {
    let requested = current.requested.checked_sub(previous.requested)?;
    let added = current.added.checked_sub(previous.added)?;
    let dirtied = current.dirtied.checked_sub(previous.dirtied)?;
    let buffers_dirtied = current
        .buffers_dirtied
        .checked_sub(previous.buffers_dirtied)?;
    let requested = requested.saturating_sub(buffers_dirtied);
    if requested == 0 {
        return None;
    }
    let misses = added.saturating_sub(dirtied);
    Some(clamp_ratio(1.0 - misses as f64 / requested as f64))
}

/// Bytes the broker served (to consumers and followers), from its counters.
fn served(metrics: &BrokerMetricsReport) -> Option<f64> {
    Some(metrics.bytes_out_total? + metrics.replication_bytes_out_total.unwrap_or(0.0))
}

/// The estimate over an interval of `elapsed_seconds`; `None` when it cannot
/// be told: no broker metrics, no log dirs mapped to disks, or nothing served.
pub fn estimate_hit_ratio(
    previous: Option<&BrokerMetricsReport>,
    current: Option<&BrokerMetricsReport>,
    log_dirs: &[LogDirReport],
    disks: &[DiskReport],
    elapsed_seconds: f64,
) -> Option<f64> {
    let served = served(current?)? - served(previous?)?;
    if served <= 0.0 {
        return None; // nothing served, or a restart reset the counters
    }
    let log_disks: Vec<&str> = log_dirs
        .iter()
        .flat_map(|d| d.disks.iter().map(String::as_str))
        .collect();
    if log_disks.is_empty() {
        return None;
    }
    let read: f64 = disks
        .iter()
        .filter(|d| log_disks.contains(&d.device.as_str()))
        .map(|d| d.read_bytes_per_second * elapsed_seconds)
        .sum();
    Some(clamp_ratio(1.0 - read / served))
}

/// Whose reads the `ebpf` page-cache method counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageCacheScope {
    /// The broker process only (nothing while it is not found).
    Broker,
    /// Every process on the host.
    Host,
}

/// The `ebpf` page-cache method: not asked for, refused at start, or running.
#[derive(Debug, Default)]
pub enum EbpfMethod {
    #[default]
    Off,
    Unavailable,
    Running(Box<PageCacheProbe>, PageCacheScope),
}

/// The `ebpf` counters and whose pages they count (`None`: every process).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageCacheReading {
    pub process: Option<u32>,
    pub pages: PageCounts,
}

/// The page-cache source: both methods' ratios over the interval. It comes
/// after the disks, the log dirs, the broker process and the broker's
/// metrics, whose parts of the report it reads.
pub struct PageCacheSource {
    method: EbpfMethod,
    counted: Option<PageCacheReading>,
    /// The broker's counters at the previous cycle, for the estimate.
    previous_metrics: Option<(Instant, BrokerMetricsReport)>,
    estimate: Option<f64>,
    ebpf_ratio: Option<f64>,
}

impl PageCacheSource {
    pub fn new(method: EbpfMethod) -> Self {
        PageCacheSource {
            method,
            counted: None,
            previous_metrics: None,
            estimate: None,
            ebpf_ratio: None,
        }
    }

    /// Whether the `ebpf` method runs (`None`: not asked for).
    fn ebpf_active(&self) -> Option<bool> {
        match self.method {
            EbpfMethod::Off => None,
            EbpfMethod::Unavailable => Some(false),
            EbpfMethod::Running(..) => Some(true),
        }
    }

    /// The `ebpf` counters, for the broker's pid or for every process.
    fn read_ebpf(
        &mut self,
        broker: Option<&BrokerProcessReport>,
    ) -> Result<Option<PageCacheReading>, SourceError> {
        let EbpfMethod::Running(probe, scope) = &mut self.method else {
            return Ok(None);
        };
        let process = match scope {
            PageCacheScope::Host => None,
            PageCacheScope::Broker => match broker.and_then(|b| u32::try_from(b.pid).ok()) {
                Some(pid) => Some(pid),
                None => return Ok(None),
            },
        };
        probe.count_only(process)?;
        Ok(Some(PageCacheReading {
            process,
            pages: probe.read()?,
        }))
    }
}

impl Source for PageCacheSource {
    fn name(&self) -> &'static str {
        "page_cache_ebpf"
    }

    fn collect(&mut self, at: Instant, report: &mut HostReport) -> Result<(), SourceError> {
        let previous_metrics = self.previous_metrics.take();
        self.estimate = previous_metrics.as_ref().and_then(|(before_at, before)| {
            estimate_hit_ratio(
                Some(before),
                report.broker_metrics.as_ref(),
                &report.log_dirs,
                &report.disks,
                elapsed(*before_at, at),
            )
        });
        self.previous_metrics = report.broker_metrics.clone().map(|m| (at, m));
        report.page_cache_hit_ratio_estimate = self.estimate;
        let previous = self.counted.take();
        self.ebpf_ratio = None;
        let current = self.read_ebpf(report.broker_process.as_ref())?;
        self.ebpf_ratio = previous
            .zip(current)
            .filter(|(before, now)| before.process == now.process)
            .and_then(|(before, now)| ebpf_hit_ratio(before.pages, now.pages));
        report.page_cache_hit_ratio_ebpf = self.ebpf_ratio;
        self.counted = current;
        Ok(())
    }

    /// The page-cache hit ratio by each method that could tell it this
    /// interval, and the `ebpf` method's counters and state.
    fn expose(&self, f: &mut Families) {
        let methods = [("estimate", self.estimate), ("ebpf", self.ebpf_ratio)];
        if methods.iter().any(|(_, ratio)| ratio.is_some()) {
            let mut family = f.gauge(
            "brokerwatch_page_cache_hit_ratio",
            "Page-cache hit ratio over the last interval. estimate: share of what the broker served that did not come from its log disks; ebpf: 1 - max(0, pages added - pages dirtied) / pages requested by reads, counted in the kernel.",
        );
            for (method, ratio) in methods {
                if let Some(ratio) = ratio {
                    family.add(&[("method", method)], ratio);
                }
            }
        }
        if let Some(active) = self.ebpf_active() {
            f.gauge(
            "brokerwatch_page_cache_ebpf_active",
            "1 when the ebpf page-cache method runs, 0 when it was asked for but refused (see the agent's log).",
        )
        .value(f64::from(u8::from(active)));
        }
        if let Some(counted) = &self.counted {
            let pages = counted.pages;
            for (name, help, value) in [
                (
                    "brokerwatch_page_cache_requested_pages_total",
                    "Pages that reads asked for, counted by the ebpf method.",
                    pages.requested,
                ),
                (
                    "brokerwatch_page_cache_added_pages_total",
                    "Pages added to the page cache, counted by the ebpf method.",
                    pages.added,
                ),
                (
                    "brokerwatch_page_cache_dirtied_pages_total",
                    "Pages dirtied by writes, counted by the ebpf method.",
                    pages.dirtied,
                ),
            ] {
                f.counter(name, help).value(value as f64);
            }
            // Counted by the kprobe method only (cachestat's mark_buffer_dirty).
            if pages.buffers_dirtied > 0 {
                f.counter(
                "brokerwatch_page_cache_buffers_dirtied_total",
                "Buffers dirtied, counted by the ebpf method on kernels without the filemap tracepoints (kprobes); they come off the requested pages.",
            )
            .value(pages.buffers_dirtied as f64);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(bytes_out: f64, replication_out: f64) -> BrokerMetricsReport {
        BrokerMetricsReport {
            bytes_out_total: Some(bytes_out),
            replication_bytes_out_total: Some(replication_out),
            ..BrokerMetricsReport::default()
        }
    }

    fn disk(device: &str, read_bytes_per_second: f64) -> DiskReport {
        DiskReport {
            device: device.into(),
            utilization_ratio: 0.0,
            reads_per_second: 0.0,
            writes_per_second: 0.0,
            read_bytes_per_second,
            written_bytes_per_second: 0.0,
            read_await_seconds: 0.0,
            write_await_seconds: 0.0,
            queue_length: 0.0,
        }
    }

    fn log_dir(disks: &[&str]) -> LogDirReport {
        LogDirReport {
            log_dir: "/data/kafka".into(),
            mount_point: "/data".into(),
            device: Some("dm-0".into()),
            disks: disks.iter().map(|d| (*d).to_owned()).collect(),
            used_bytes: 0,
            free_bytes: 0,
            partitions: 0,
            size_bytes: 0,
            topics: Vec::new(),
            largest_partitions: Vec::new(),
        }
    }

    fn pages(requested: u64, added: u64, dirtied: u64) -> PageCounts {
        PageCounts {
            requested,
            added,
            dirtied,
            buffers_dirtied: 0,
        }
    }

    #[test]
    fn ebpf_misses_are_pages_added_but_not_dirtied() {
        let start = pages(1_000, 500, 100);
        // A cold read of 4096 pages: all added, none dirtied.
        assert_eq!(ebpf_hit_ratio(start, pages(5_096, 4_596, 100)), Some(0.0));
        // The same read again: nothing added.
        assert_eq!(ebpf_hit_ratio(start, pages(5_096, 500, 100)), Some(1.0));
        // 4096 pages read, 1024 of them missed, while a writer added and
        // dirtied 8192 pages of its own: the writes are not misses.
        assert_eq!(
            ebpf_hit_ratio(start, pages(5_096, 500 + 1_024 + 8_192, 100 + 8_192)),
            Some(0.75)
        );
        // Dirtied more than added (re-dirtied cached pages): no negative misses.
        assert_eq!(ebpf_hit_ratio(start, pages(2_000, 600, 900)), Some(1.0));
        // Added more than requested (readahead beyond the read): 0, not negative.
        assert_eq!(ebpf_hit_ratio(start, pages(1_010, 900, 100)), Some(0.0));
    }

    #[test]
    fn kprobe_counts_follow_cachestats_formula() {
        // cachestat: total = accessed - buffers dirtied, misses = added -
        // dirtied, hits = total - misses, ratio = hits / total.
        let start = PageCounts::default();
        let now = PageCounts {
            requested: 10_500,
            added: 2_300,
            dirtied: 300,
            buffers_dirtied: 500,
        };
        // total 10000, misses 2000: 80 %.
        assert_eq!(ebpf_hit_ratio(start, now), Some(0.8));
        // Only buffer dirtyings: no reads.
        let only_buffers = PageCounts {
            requested: 500,
            buffers_dirtied: 500,
            ..PageCounts::default()
        };
        assert_eq!(ebpf_hit_ratio(start, only_buffers), None);
    }

    #[test]
    fn ebpf_ratio_is_unknown_without_reads_or_after_a_reset() {
        let start = pages(1_000, 500, 100);
        assert_eq!(
            ebpf_hit_ratio(start, pages(1_000, 900, 500)),
            None,
            "no reads"
        );
        assert_eq!(ebpf_hit_ratio(start, pages(10, 5, 1)), None, "re-attached");
    }

    #[test]
    fn the_share_of_served_bytes_not_read_from_the_log_disks() {
        // 1 GB served to consumers and 0.5 GB to followers over 10 s;
        // 15 MB/s read from the log disks (sdb, sdc), 100 MB/s from the OS disk.
        let ratio = estimate_hit_ratio(
            Some(&metrics(1e9, 1e9)),
            Some(&metrics(2e9, 1.5e9)),
            &[log_dir(&["sdb", "sdc"])],
            &[disk("sdb", 10e6), disk("sdc", 5e6), disk("sda", 100e6)],
            10.0,
        );
        assert!((ratio.unwrap() - 0.9).abs() < 1e-12, "{ratio:?}");
    }

    #[test]
    fn unknowable_cases_are_none_and_the_ratio_stays_in_range() {
        let dirs = [log_dir(&["sdb"])];
        let disks = [disk("sdb", 1e9)];
        assert_eq!(
            estimate_hit_ratio(None, Some(&metrics(2e9, 0.0)), &dirs, &disks, 10.0),
            None
        );
        assert_eq!(
            estimate_hit_ratio(
                Some(&metrics(2e9, 0.0)),
                Some(&metrics(2e9, 0.0)),
                &dirs,
                &disks,
                10.0
            ),
            None,
            "nothing served"
        );
        assert_eq!(
            estimate_hit_ratio(
                Some(&metrics(2e9, 0.0)),
                Some(&metrics(1e3, 0.0)),
                &dirs,
                &disks,
                10.0
            ),
            None,
            "a restart"
        );
        assert_eq!(
            estimate_hit_ratio(
                Some(&metrics(0.0, 0.0)),
                Some(&metrics(1e9, 0.0)),
                &[],
                &disks,
                10.0
            ),
            None,
            "no log dirs mapped"
        );
        // Reading more than it served (compaction, another reader): 0, not negative.
        assert_eq!(
            estimate_hit_ratio(
                Some(&metrics(0.0, 0.0)),
                Some(&metrics(1e9, 0.0)),
                &dirs,
                &disks,
                10.0
            ),
            Some(0.0)
        );
    }
}
