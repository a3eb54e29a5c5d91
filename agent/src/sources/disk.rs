//! Block devices from /proc/diskstats, read the way `iostat -x` reads them.
//!
//! The file has had three shapes: 14 columns before Linux 4.18, 18 with the
//! discard columns (4.18+), 20 with the flush columns (5.5+). All three parse;
//! the newer counters are simply absent on older kernels. A garbled line is
//! skipped and reported, and the other devices are kept.

use std::time::Instant;

use brokerwatch_common::exposition::Families;
use brokerwatch_common::DiskReport;
use brokerwatch_common::HostReport;

pub use procfs::DiskStat;

use super::{clamp_ratio, elapsed, rate, HostPaths, KernelFile, NameFilter, Source, SourceError};

/// /proc/diskstats counts in 512-byte sectors whatever the device's own
/// sector size (see Documentation/admin-guide/iostats.rst).
pub const SECTOR_BYTES: u64 = 512;

/// node_exporter's default, plus zram: partitions, loop, ram, zram and floppy
/// devices are skipped because they double-count or say nothing about Kafka's disks.
pub const DEFAULT_EXCLUDE: &str = r"^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p|mmcblk\d+p)\d+$";

#[derive(Debug, Default)]
pub struct Diskstats {
    pub disks: Vec<DiskStat>,
    /// One description per line that could not be parsed.
    pub garbled: Vec<String>,
}

/// Parses /proc/diskstats, keeping the devices `filter` accepts.
pub fn parse_diskstats(text: &str, filter: &NameFilter) -> Diskstats {
    let mut parsed = Diskstats::default();
    for (number, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        // Skip excluded devices (loop, ram, partitions) before parsing them.
        if line
            .split_whitespace()
            .nth(2)
            .is_some_and(|name| !filter.accepts(name))
        {
            continue;
        }
        match super::with_procfs(line, false, DiskStat::from_line) {
            Ok(disk) => parsed.disks.push(disk),
            Err(e) => parsed.garbled.push(format!(
                "line {}: {} ({:?})",
                number + 1,
                e,
                truncate(line, 80)
            )),
        }
    }
    parsed
}

fn truncate(line: &str, max: usize) -> &str {
    match line.char_indices().nth(max) {
        Some((end, _)) => &line[..end],
        None => line,
    }
}

fn ms_to_seconds(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

/// `iostat -x` figures per device between two readings `elapsed_seconds`
/// apart. A device present in only one reading is left out.
pub fn interval(
    previous: &[DiskStat],
    current: &[DiskStat],
    elapsed_seconds: f64,
) -> Vec<DiskReport> {
    if elapsed_seconds <= 0.0 {
        return Vec::new();
    }
    current
        .iter()
        .filter_map(|now| {
            let before = previous.iter().find(|d| d.name == now.name)?;
            let reads = now.reads.saturating_sub(before.reads);
            let writes = now.writes.saturating_sub(before.writes);
            let await_seconds = |time_ms: u64, before_ms: u64, ops: u64| {
                if ops == 0 {
                    0.0
                } else {
                    ms_to_seconds(time_ms.saturating_sub(before_ms)) / ops as f64
                }
            };
            Some(DiskReport {
                device: now.name.clone(),
                utilization_ratio: clamp_ratio(
                    ms_to_seconds(now.time_in_progress.saturating_sub(before.time_in_progress))
                        / elapsed_seconds,
                ),
                reads_per_second: rate(before.reads, now.reads, elapsed_seconds),
                writes_per_second: rate(before.writes, now.writes, elapsed_seconds),
                read_bytes_per_second: rate(before.sectors_read, now.sectors_read, elapsed_seconds)
                    * SECTOR_BYTES as f64,
                written_bytes_per_second: rate(
                    before.sectors_written,
                    now.sectors_written,
                    elapsed_seconds,
                ) * SECTOR_BYTES as f64,
                read_await_seconds: await_seconds(now.time_reading, before.time_reading, reads),
                write_await_seconds: await_seconds(now.time_writing, before.time_writing, writes),
                queue_length: ms_to_seconds(
                    now.weighted_time_in_progress
                        .saturating_sub(before.weighted_time_in_progress),
                ) / elapsed_seconds,
            })
        })
        .collect()
}

/// The disk source: /proc/diskstats every cycle. A garbled line fails the
/// source in part: the other disks are kept and reported.
pub struct DiskSource {
    diskstats: KernelFile,
    filter: NameFilter,
    buffer: Vec<u8>,
    last: Option<(Instant, Vec<DiskStat>)>,
    interval: Vec<DiskReport>,
}

impl DiskSource {
    pub fn new(paths: &HostPaths, filter: NameFilter) -> Self {
        DiskSource {
            diskstats: KernelFile::new(paths.proc_file("diskstats")),
            filter,
            buffer: Vec::new(),
            last: None,
            interval: Vec::new(),
        }
    }
}

impl Source for DiskSource {
    fn name(&self) -> &'static str {
        "disk"
    }

    fn collect(&mut self, at: Instant, report: &mut HostReport) -> Result<(), SourceError> {
        let previous = self.last.take();
        self.interval = Vec::new();
        let parsed = parse_diskstats(self.diskstats.read(&mut self.buffer)?, &self.filter);
        if let Some((before_at, before)) = &previous {
            self.interval = interval(before, &parsed.disks, elapsed(*before_at, at));
        }
        report.disks = self.interval.clone();
        self.last = Some((at, parsed.disks));
        if parsed.garbled.is_empty() {
            Ok(())
        } else {
            let reason = format!("skipped {}", parsed.garbled.join("; "));
            Err(SourceError::parse(self.diskstats.path(), reason))
        }
    }

    fn expose(&self, f: &mut Families) {
        let disks = self.last.as_ref().map_or(&[][..], |(_, d)| d.as_slice());
        type Field = fn(&DiskStat) -> Option<f64>;
        let counters: [(&str, &str, Field); 16] = [
        (
            "brokerwatch_disk_reads_completed_total",
            "Reads completed.",
            |d| Some(d.reads as f64),
        ),
        (
            "brokerwatch_disk_reads_merged_total",
            "Adjacent reads merged before completion.",
            |d| Some(d.merged as f64),
        ),
        ("brokerwatch_disk_read_bytes_total", "Bytes read.", |d| {
            Some(bytes(d.sectors_read))
        }),
        (
            "brokerwatch_disk_read_time_seconds_total",
            "Time spent on reads.",
            |d| Some(ms(d.time_reading)),
        ),
        (
            "brokerwatch_disk_writes_completed_total",
            "Writes completed.",
            |d| Some(d.writes as f64),
        ),
        (
            "brokerwatch_disk_writes_merged_total",
            "Adjacent writes merged before completion.",
            |d| Some(d.writes_merged as f64),
        ),
        (
            "brokerwatch_disk_written_bytes_total",
            "Bytes written.",
            |d| Some(bytes(d.sectors_written)),
        ),
        (
            "brokerwatch_disk_write_time_seconds_total",
            "Time spent on writes.",
            |d| Some(ms(d.time_writing)),
        ),
        (
            "brokerwatch_disk_io_time_seconds_total",
            "Time the device had I/O in flight (rate() of it is %util).",
            |d| Some(ms(d.time_in_progress)),
        ),
        (
            "brokerwatch_disk_io_time_weighted_seconds_total",
            "Time spent on I/O weighted by requests in flight (rate() of it is the queue length).",
            |d| Some(ms(d.weighted_time_in_progress)),
        ),
        (
            "brokerwatch_disk_discards_completed_total",
            "Discards completed (Linux 4.18+).",
            |d| d.discards.map(|v| v as f64),
        ),
        (
            "brokerwatch_disk_discards_merged_total",
            "Adjacent discards merged (Linux 4.18+).",
            |d| d.discards_merged.map(|v| v as f64),
        ),
        (
            "brokerwatch_disk_discarded_bytes_total",
            "Bytes discarded (Linux 4.18+).",
            |d| d.sectors_discarded.map(bytes),
        ),
        (
            "brokerwatch_disk_discard_time_seconds_total",
            "Time spent on discards (Linux 4.18+).",
            |d| d.time_discarding.map(ms),
        ),
        (
            "brokerwatch_disk_flush_requests_total",
            "Flush requests completed (Linux 5.5+).",
            |d| d.flushes.map(|v| v as f64),
        ),
        (
            "brokerwatch_disk_flush_requests_time_seconds_total",
            "Time spent on flushes (Linux 5.5+).",
            |d| d.time_flushing.map(ms),
        ),
    ];
        for (name, help, field) in counters {
            let mut family = f.counter(name, help);
            for d in disks {
                if let Some(value) = field(d) {
                    family.add(&[("device", &d.name)], value);
                }
            }
        }
        let mut in_flight = f.gauge("brokerwatch_disk_io_now", "Requests in flight now.");
        for d in disks {
            in_flight.add(&[("device", &d.name)], d.in_progress as f64);
        }
        type Figure = fn(&brokerwatch_common::DiskReport) -> f64;
        let gauges: [(&str, &str, Figure); 4] = [
            (
                "brokerwatch_disk_utilization_ratio",
                "Share of the last interval the device had I/O in flight (iostat %util).",
                |d| d.utilization_ratio,
            ),
            (
                "brokerwatch_disk_read_await_seconds",
                "Mean time per read over the last interval, queued and serviced (iostat r_await).",
                |d| d.read_await_seconds,
            ),
            (
                "brokerwatch_disk_write_await_seconds",
                "Mean time per write over the last interval, queued and serviced (iostat w_await).",
                |d| d.write_await_seconds,
            ),
            (
                "brokerwatch_disk_queue_length",
                "Mean requests in flight over the last interval (iostat aqu-sz).",
                |d| d.queue_length,
            ),
        ];
        for (name, help, figure) in gauges {
            let mut family = f.gauge(name, help);
            for d in &self.interval {
                family.add(&[("device", &d.device)], figure(d));
            }
        }
    }
}

fn ms(value: u64) -> f64 {
    value as f64 / 1000.0
}

fn bytes(sectors: u64) -> f64 {
    (sectors * SECTOR_BYTES) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::fixture;

    fn default_filter() -> NameFilter {
        NameFilter::new(None, Some(DEFAULT_EXCLUDE), "disk").unwrap()
    }

    fn find<'a>(parsed: &'a Diskstats, name: &str) -> &'a DiskStat {
        parsed
            .disks
            .iter()
            .find(|d| d.name == name)
            .unwrap_or_else(|| panic!("{name} not parsed"))
    }

    #[test]
    fn parses_the_5_5_layout_with_discard_and_flush_columns() {
        let parsed = parse_diskstats(&fixture("diskstats_5.5"), &default_filter());
        assert!(parsed.garbled.is_empty(), "{:?}", parsed.garbled);
        let names: Vec<&str> = parsed.disks.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["sda", "sdb", "sdc", "nvme0n1", "dm-0", "md0"]);
        // 8 16 sdb 48190123 1287 30815102114 91823412 381726511 8811234 61238771002 1729836101 3 398123551 1821734112 0 0 0 0 1812 3712
        let sdb = find(&parsed, "sdb");
        assert_eq!((sdb.major, sdb.minor), (8, 16));
        assert_eq!(sdb.reads, 48_190_123);
        assert_eq!(sdb.merged, 1_287);
        assert_eq!(sdb.sectors_read, 30_815_102_114);
        assert_eq!(sdb.time_reading, 91_823_412);
        assert_eq!(sdb.writes, 381_726_511);
        assert_eq!(sdb.writes_merged, 8_811_234);
        assert_eq!(sdb.sectors_written, 61_238_771_002);
        assert_eq!(sdb.time_writing, 1_729_836_101);
        assert_eq!(sdb.in_progress, 3);
        assert_eq!(sdb.time_in_progress, 398_123_551);
        assert_eq!(sdb.weighted_time_in_progress, 1_821_734_112);
        assert_eq!(sdb.discards, Some(0));
        assert_eq!(sdb.time_discarding, Some(0));
        assert_eq!(sdb.flushes, Some(1_812));
        assert_eq!(sdb.time_flushing, Some(3_712));
        let nvme = find(&parsed, "nvme0n1");
        assert_eq!(nvme.discards, Some(77_120));
        assert_eq!(nvme.sectors_discarded, Some(9_871_360_000));
    }

    #[test]
    fn parses_the_4_18_layout_with_discard_but_no_flush_columns() {
        let parsed = parse_diskstats(&fixture("diskstats_4.18"), &default_filter());
        assert!(parsed.garbled.is_empty(), "{:?}", parsed.garbled);
        assert_eq!(parsed.disks.len(), 3);
        // 8 0 sda 2158116 33413 148121914 1294540 12930201 10232421 1010410240 21829360 0 6349712 23151232 1022 0 2097152 312
        let sda = find(&parsed, "sda");
        assert_eq!(sda.reads, 2_158_116);
        assert_eq!(sda.sectors_written, 1_010_410_240);
        assert_eq!(sda.time_in_progress, 6_349_712);
        assert_eq!(sda.weighted_time_in_progress, 23_151_232);
        assert_eq!(sda.discards, Some(1_022));
        assert_eq!(sda.sectors_discarded, Some(2_097_152));
        assert_eq!(sda.time_discarding, Some(312));
        assert_eq!(sda.flushes, None);
        assert_eq!(sda.time_flushing, None);
    }

    #[test]
    fn parses_the_old_14_column_layout() {
        let parsed = parse_diskstats(&fixture("diskstats_old"), &default_filter());
        assert!(parsed.garbled.is_empty(), "{:?}", parsed.garbled);
        assert_eq!(parsed.disks.len(), 2);
        // 8 16 sdb 9712 211 2238120 40212 8812312 712312 912381232 81231221 0 3521231 81273112
        let sdb = find(&parsed, "sdb");
        assert_eq!(sdb.reads, 9_712);
        assert_eq!(sdb.sectors_read, 2_238_120);
        assert_eq!(sdb.writes, 8_812_312);
        assert_eq!(sdb.time_writing, 81_231_221);
        assert_eq!(sdb.in_progress, 0);
        assert_eq!(sdb.time_in_progress, 3_521_231);
        assert_eq!(sdb.weighted_time_in_progress, 81_273_112);
        assert_eq!(sdb.discards, None);
        assert_eq!(sdb.flushes, None);
    }

    #[test]
    fn garbled_lines_are_skipped_and_reported_and_the_rest_kept() {
        let parsed = parse_diskstats(&fixture("diskstats_garbled"), &default_filter());
        let names: Vec<&str> = parsed.disks.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["sda", "sdc"]);
        assert_eq!(find(&parsed, "sdc").reads, 1_203_331);
        assert_eq!(parsed.garbled.len(), 3, "{:?}", parsed.garbled);
        assert!(
            parsed.garbled[0].starts_with("line 2: "),
            "{}",
            parsed.garbled[0]
        );
        assert!(
            parsed.garbled[1].starts_with("line 3: "),
            "{}",
            parsed.garbled[1]
        );
        assert!(
            parsed.garbled[2].starts_with("line 5: "),
            "{}",
            parsed.garbled[2]
        );
    }

    #[test]
    fn default_filter_skips_partitions_loop_ram_and_zram() {
        let filter = default_filter();
        for skipped in [
            "sda1",
            "vda2",
            "nvme0n1p1",
            "loop0",
            "ram15",
            "zram0",
            "mmcblk0p1",
            "xvda1",
        ] {
            assert!(!filter.accepts(skipped), "{skipped} should be skipped");
        }
        for kept in ["sda", "vda", "nvme0n1", "dm-0", "md0", "xvdb", "mmcblk0"] {
            assert!(filter.accepts(kept), "{kept} should be kept");
        }
        let only_sd = NameFilter::new(Some("^sd"), Some(DEFAULT_EXCLUDE), "disk").unwrap();
        assert!(only_sd.accepts("sdb") && !only_sd.accepts("nvme0n1") && !only_sd.accepts("sdb1"));
    }

    fn disk(
        name: &str,
        reads: u64,
        read_ms: u64,
        writes: u64,
        write_ms: u64,
        io_ms: u64,
        weighted_ms: u64,
    ) -> DiskStat {
        let line = format!(
            "8 0 {name} {reads} 0 {} {read_ms} {writes} 0 {} {write_ms} 0 {io_ms} {weighted_ms}",
            reads * 8,
            writes * 16
        );
        DiskStat::from_line(&line).unwrap()
    }

    #[test]
    fn interval_computes_iostat_figures() {
        let before = [disk("sdb", 1000, 5000, 2000, 30000, 100_000, 400_000)];
        // Over 10 s: 500 reads taking 1000 ms, 1000 writes taking 8000 ms,
        // 7500 ms busy, 20000 ms of weighted time.
        let after = [disk("sdb", 1500, 6000, 3000, 38000, 107_500, 420_000)];
        let reports = interval(&before, &after, 10.0);
        assert_eq!(reports.len(), 1);
        let r = &reports[0];
        assert_eq!(r.device, "sdb");
        assert!((r.utilization_ratio - 0.75).abs() < 1e-12);
        assert!((r.reads_per_second - 50.0).abs() < 1e-12);
        assert!((r.writes_per_second - 100.0).abs() < 1e-12);
        assert!((r.read_bytes_per_second - 500.0 * 8.0 * 512.0 / 10.0).abs() < 1e-9);
        assert!((r.written_bytes_per_second - 1000.0 * 16.0 * 512.0 / 10.0).abs() < 1e-9);
        assert!((r.read_await_seconds - 0.002).abs() < 1e-12);
        assert!((r.write_await_seconds - 0.008).abs() < 1e-12);
        assert!((r.queue_length - 2.0).abs() < 1e-12);
    }

    #[test]
    fn interval_skips_new_devices_and_clamps_util() {
        let before = [disk("sdb", 0, 0, 0, 0, 0, 0)];
        let after = [
            disk("sdb", 10, 0, 0, 0, 10_100, 0),
            disk("sdc", 10, 0, 0, 0, 10, 0),
        ];
        let reports = interval(&before, &after, 10.0);
        assert_eq!(reports.len(), 1);
        assert_eq!(reports[0].utilization_ratio, 1.0);
        assert_eq!(reports[0].read_await_seconds, 0.0);
        assert!(interval(&before, &after, 0.0).is_empty());
    }
}
