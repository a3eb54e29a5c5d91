//! CPU time from /proc/stat: seconds per mode summed over all CPUs, and over
//! an interval the utilization and the iowait ratio.

use std::time::Instant;

use brokerwatch_common::exposition::Families;
use brokerwatch_common::CpuReport;
use brokerwatch_common::HostReport;
use procfs::{ExplicitSystemInfo, FromReadSI, KernelStats};

use super::{clamp_ratio, HostPaths, KernelFile, Source, SourceError};

/// CPU seconds since boot, summed over all CPUs. Guest time is already
/// inside user and nice, so it is not a mode of its own here.
#[derive(Debug, Clone, PartialEq)]
pub struct CpuSeconds {
    pub cpus: u32,
    pub user: f64,
    pub nice: f64,
    pub system: f64,
    pub idle: f64,
    pub iowait: f64,
    pub irq: f64,
    pub softirq: f64,
    pub steal: f64,
}

impl CpuSeconds {
    /// The modes as `brokerwatch_cpu_seconds_total{mode}` labels them.
    pub fn by_mode(&self) -> [(&'static str, f64); 8] {
        [
            ("user", self.user),
            ("nice", self.nice),
            ("system", self.system),
            ("idle", self.idle),
            ("iowait", self.iowait),
            ("irq", self.irq),
            ("softirq", self.softirq),
            ("steal", self.steal),
        ]
    }

    fn total(&self) -> f64 {
        self.by_mode().iter().map(|(_, s)| s).sum()
    }
}

/// Parses /proc/stat. `ticks_per_second` is USER_HZ (100 on every Linux
/// build that matters, but read from the system rather than assumed).
pub fn parse_stat(text: &str, ticks_per_second: u64) -> Result<CpuSeconds, String> {
    let system = ExplicitSystemInfo {
        boot_time_secs: 0,
        ticks_per_second,
        page_size: 4096,
        is_little_endian: cfg!(target_endian = "little"),
    };
    let stats = super::with_procfs(text, true, |t| {
        KernelStats::from_read(t.as_bytes(), &system)
    })?;
    let t = &stats.total;
    let seconds = |ticks: u64| ticks as f64 / ticks_per_second as f64;
    Ok(CpuSeconds {
        cpus: stats.cpu_time.len() as u32,
        user: seconds(t.user),
        nice: seconds(t.nice),
        system: seconds(t.system),
        idle: seconds(t.idle),
        iowait: seconds(t.iowait.unwrap_or(0)),
        irq: seconds(t.irq.unwrap_or(0)),
        softirq: seconds(t.softirq.unwrap_or(0)),
        steal: seconds(t.steal.unwrap_or(0)),
    })
}

/// Utilization and iowait over the interval between two readings; `None`
/// when no CPU time passed between them (same reading twice).
pub fn interval(previous: &CpuSeconds, current: &CpuSeconds) -> Option<CpuReport> {
    let elapsed = current.total() - previous.total();
    if elapsed <= 0.0 {
        return None;
    }
    // iowait may go backwards on some kernels (see proc(5)); a negative
    // delta means "none", not a negative share.
    let iowait = (current.iowait - previous.iowait).max(0.0);
    let idle = (current.idle - previous.idle).max(0.0);
    Some(CpuReport {
        cpus: current.cpus,
        utilization_ratio: clamp_ratio(1.0 - (idle + iowait) / elapsed),
        iowait_ratio: clamp_ratio(iowait / elapsed),
    })
}

/// The CPU source: /proc/stat every cycle.
pub struct CpuSource {
    stat: KernelFile,
    ticks_per_second: u64,
    buffer: Vec<u8>,
    last: Option<CpuSeconds>,
    interval: Option<CpuReport>,
}

impl CpuSource {
    pub fn new(paths: &HostPaths) -> Self {
        CpuSource {
            stat: KernelFile::new(paths.proc_file("stat")),
            ticks_per_second: procfs::ticks_per_second(),
            buffer: Vec::new(),
            last: None,
            interval: None,
        }
    }
}

impl Source for CpuSource {
    fn name(&self) -> &'static str {
        "cpu"
    }

    fn collect(&mut self, _at: Instant, report: &mut HostReport) -> Result<(), SourceError> {
        let ticks = self.ticks_per_second;
        let current = self
            .stat
            .read_parsed(&mut self.buffer, |text| parse_stat(text, ticks));
        let previous = self.last.take();
        let current = current?;
        self.interval = previous
            .as_ref()
            .and_then(|before| interval(before, &current));
        report.cpu = self.interval.clone();
        self.last = Some(current);
        Ok(())
    }

    fn expose(&self, f: &mut Families) {
        if let Some(cpu) = &self.last {
            let mut seconds = f.counter(
                "brokerwatch_cpu_seconds_total",
                "CPU time spent in each mode, summed over all CPUs.",
            );
            for (mode, value) in cpu.by_mode() {
                seconds.add(&[("mode", mode)], value);
            }
            f.gauge("brokerwatch_cpu_count", "Number of CPUs in /proc/stat.")
                .value(cpu.cpus as f64);
        }
        if let Some(cpu) = &self.interval {
            f.gauge(
                "brokerwatch_cpu_utilization_ratio",
                "Share of CPU time neither idle nor in iowait over the last interval.",
            )
            .value(cpu.utilization_ratio);
            f.gauge(
                "brokerwatch_cpu_iowait_ratio",
                "Share of CPU time idle with I/O outstanding over the last interval.",
            )
            .value(cpu.iowait_ratio);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::fixture;

    #[test]
    fn parses_a_real_proc_stat_to_seconds_per_mode() {
        let cpu = parse_stat(&fixture("stat"), 100).unwrap();
        assert_eq!(cpu.cpus, 2);
        // cpu  1318 0 1239 40815 173 0 20 7 0 0
        assert_eq!(cpu.user, 13.18);
        assert_eq!(cpu.nice, 0.0);
        assert_eq!(cpu.system, 12.39);
        assert_eq!(cpu.idle, 408.15);
        assert_eq!(cpu.iowait, 1.73);
        assert_eq!(cpu.irq, 0.0);
        assert_eq!(cpu.softirq, 0.2);
        assert_eq!(cpu.steal, 0.07);
    }

    #[test]
    fn parses_a_broker_host_with_many_cpus() {
        let cpu = parse_stat(&fixture("stat_broker"), 100).unwrap();
        assert_eq!(cpu.cpus, 16);
        assert_eq!(cpu.user, 2_841_957.12);
        assert_eq!(cpu.iowait, 98_311.45);
        assert_eq!(cpu.steal, 0.0);
    }

    #[test]
    fn a_stat_without_the_total_line_is_an_error() {
        let err = parse_stat("cpu0 1 2 3 4\nctxt 1\nbtime 2\nprocesses 3\n", 100).unwrap_err();
        assert!(!err.is_empty());
        assert!(parse_stat("cpu  12 x 3\n", 100).is_err());
        assert!(parse_stat("", 100).is_err());
    }

    fn seconds(user: f64, system: f64, idle: f64, iowait: f64) -> CpuSeconds {
        CpuSeconds {
            cpus: 4,
            user,
            nice: 0.0,
            system,
            idle,
            iowait,
            irq: 0.0,
            softirq: 0.0,
            steal: 0.0,
        }
    }

    #[test]
    fn interval_gives_utilization_and_iowait_shares() {
        let before = seconds(100.0, 50.0, 1000.0, 10.0);
        // 40 s of CPU time: 10 user, 6 system, 16 idle, 8 iowait.
        let after = seconds(110.0, 56.0, 1016.0, 18.0);
        let report = interval(&before, &after).unwrap();
        assert_eq!(report.cpus, 4);
        assert!((report.utilization_ratio - 0.4).abs() < 1e-12);
        assert!((report.iowait_ratio - 0.2).abs() < 1e-12);
    }

    #[test]
    fn iowait_going_backwards_counts_as_none() {
        let before = seconds(100.0, 50.0, 1000.0, 10.0);
        let after = seconds(110.0, 50.0, 1010.0, 9.0);
        let report = interval(&before, &after).unwrap();
        assert_eq!(report.iowait_ratio, 0.0);
        assert!(interval(&after, &after).is_none());
    }
}
