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

use brokerwatch_common::{BrokerMetricsReport, DiskReport, LogDirReport};

use super::clamp_ratio;

/// The `ebpf` method's counters, pages since the program was attached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PageCounts {
    /// Pages that reads asked for (each read counted once).
    pub requested: u64,
    /// Pages added to the page cache (a folio counts its pages).
    pub added: u64,
    /// Pages dirtied by writes.
    pub dirtied: u64,
    /// Buffers dirtied (kprobe method only, as cachestat counts them): the
    /// accesses they cause are not reads, so they come off `requested`.
    pub buffers_dirtied: u64,
}

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
