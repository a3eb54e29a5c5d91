//! One collection cycle over the host sources: read every kernel file once,
//! keep the previous reading, and turn the pair into the interval report.
//! A source that fails leaves its part empty and the others carry on.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use brokerwatch_common::{
    BrokerMetricsReport, BrokerProcessReport, FileDescriptorReport, HostReport, LogDirReport,
    MemoryReport,
};

use crate::config::PageCacheScope;
use crate::sources::logdirs::LogDirSource;
use crate::sources::pagecache::PageCounts;
use crate::sources::pagecache_ebpf::{PageCacheProbe, ProbeError};
use crate::sources::process::{self, BrokerFinder};
use crate::sources::{
    cpu, disk, filefd, logdirs, memory, netdev, pagecache, tcp, HostPaths, KernelFile, NameFilter,
    SourceError,
};

/// The host sources, as the `source` label of the agent's own metrics names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    Cpu,
    Disk,
    Network,
    Tcp,
    Memory,
    FileFd,
    LogDirs,
    Broker,
    BrokerMetrics,
    PageCache,
}

impl Source {
    pub const ALL: [Source; 10] = [
        Source::Cpu,
        Source::Disk,
        Source::Network,
        Source::Tcp,
        Source::Memory,
        Source::FileFd,
        Source::LogDirs,
        Source::Broker,
        Source::BrokerMetrics,
        Source::PageCache,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Source::Cpu => "cpu",
            Source::Disk => "disk",
            Source::Network => "network",
            Source::Tcp => "tcp",
            Source::Memory => "memory",
            Source::FileFd => "filefd",
            Source::LogDirs => "logdirs",
            Source::Broker => "broker",
            Source::BrokerMetrics => "broker_metrics",
            Source::PageCache => "page_cache_ebpf",
        }
    }
}

/// Raw counters and levels read at one instant. `None` (or an empty list)
/// where the source failed.
#[derive(Debug, Clone)]
pub struct HostReading {
    pub at: Instant,
    pub cpu: Option<cpu::CpuSeconds>,
    pub disks: Vec<disk::DiskStat>,
    pub interfaces: Vec<netdev::Interface>,
    pub tcp: Option<(tcp::SnmpTcp, tcp::Sockstat)>,
    pub memory: Option<MemoryReport>,
    pub file_descriptors: Option<FileDescriptorReport>,
    /// As of the last refresh (every [`LOG_DIR_REFRESH`]).
    pub log_dirs: Vec<LogDirReport>,
    /// The broker process, where it runs; `broker_up` says whether it does.
    pub broker_up: Option<bool>,
    pub broker_process: Option<BrokerProcessReport>,
    /// The broker's own metrics, fetched by the daemon for this cycle.
    pub broker_metrics: Option<BrokerMetricsReport>,
    /// The `ebpf` page-cache counters, when the probe runs.
    pub page_cache: Option<PageCacheReading>,
    /// Whether the `ebpf` page-cache method runs (`None`: not asked for).
    pub page_cache_ebpf_active: Option<bool>,
}

/// The `ebpf` page-cache counters and whose pages they count (`None`: every process).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageCacheReading {
    pub process: Option<u32>,
    pub pages: PageCounts,
}

/// What one cycle produced: the reading, the interval report against the
/// previous reading, and the sources that failed (with why).
#[derive(Debug)]
pub struct Cycle<'a> {
    pub reading: &'a HostReading,
    pub report: HostReport,
    pub errors: Vec<(Source, SourceError)>,
}

/// The kernel files a cycle reads, kept open between cycles.
struct Files {
    stat: KernelFile,
    diskstats: KernelFile,
    net_dev: KernelFile,
    snmp: KernelFile,
    sockstat: KernelFile,
    meminfo: KernelFile,
    file_nr: KernelFile,
}

/// Log dirs are walked this often, not every cycle: a broker holds thousands
/// of partition directories, and their sizes move slowly.
pub const LOG_DIR_REFRESH: Duration = Duration::from_secs(60);

/// Link speeds change only on renegotiation, and reading one can make the
/// NIC driver query its firmware, so they are re-read this often (and when
/// an interface appears), not every cycle.
const SPEED_REFRESH: Duration = Duration::from_secs(30);

#[derive(Default)]
struct LinkSpeeds {
    read_at: Option<Instant>,
    bytes_per_second: HashMap<String, Option<f64>>,
}

pub struct HostSources {
    paths: HostPaths,
    disk_filter: NameFilter,
    network_filter: NameFilter,
    assumed_link_speed: Option<f64>,
    ticks_per_second: u64,
    page_size: u64,
    previous: Option<HostReading>,
    files: Files,
    speeds: LinkSpeeds,
    log_dir_source: LogDirSource,
    log_dirs: Option<(Instant, Vec<LogDirReport>)>,
    broker: Option<BrokerFinder>,
    /// What the daemon fetched from the broker's metrics endpoint for the next cycle.
    broker_metrics: Option<Result<BrokerMetricsReport, SourceError>>,
    page_cache: PageCacheMethod,
    buffer: Vec<u8>,
}

/// The `ebpf` page-cache method: not asked for, refused at start, or running.
#[derive(Debug, Default)]
enum PageCacheMethod {
    #[default]
    Off,
    Unavailable,
    Running(Box<PageCacheProbe>, PageCacheScope),
}

impl HostSources {
    pub fn new(paths: HostPaths, disk_filter: NameFilter, network_filter: NameFilter) -> Self {
        let proc = |relative: &str| KernelFile::new(paths.proc_file(relative));
        let files = Files {
            stat: proc("stat"),
            diskstats: proc("diskstats"),
            net_dev: proc("net/dev"),
            snmp: proc("net/snmp"),
            sockstat: proc("net/sockstat"),
            meminfo: proc("meminfo"),
            file_nr: proc("sys/fs/file-nr"),
        };
        HostSources {
            paths,
            disk_filter,
            network_filter,
            assumed_link_speed: None,
            ticks_per_second: procfs::ticks_per_second(),
            page_size: procfs::page_size(),
            previous: None,
            files,
            speeds: LinkSpeeds::default(),
            log_dir_source: LogDirSource::default(),
            log_dirs: None,
            broker: None,
            broker_metrics: None,
            page_cache: PageCacheMethod::Off,
            buffer: Vec::new(),
        }
    }

    /// Sets the link speed (bytes per second) assumed for interfaces whose
    /// kernel reports none, loopback aside: cloud and virtual NICs have a
    /// bandwidth cap the kernel does not know.
    pub fn with_assumed_link_speed(mut self, bytes_per_second: Option<f64>) -> Self {
        self.assumed_link_speed = bytes_per_second;
        self
    }

    /// Reads the broker's log dirs too (from its server.properties or a list).
    pub fn with_log_dirs(mut self, source: LogDirSource) -> Self {
        self.log_dir_source = source;
        self
    }

    /// Hands in the broker's metrics (or why they could not be had) for the
    /// next cycle: the daemon fetches them over HTTP, with a timeout.
    pub fn set_broker_metrics(&mut self, fetched: Result<BrokerMetricsReport, SourceError>) {
        self.broker_metrics = Some(fetched);
    }

    /// Looks for the broker process (and reports it down while it is not there).
    pub fn with_broker(mut self, finder: BrokerFinder) -> Self {
        self.broker = Some(finder);
        self
    }

    /// Counts page-cache hits with the `ebpf` method: `probe` is the attached
    /// program, or why it could not be (then the method is reported inactive).
    pub fn with_page_cache_probe(
        mut self,
        probe: Result<PageCacheProbe, ProbeError>,
        scope: PageCacheScope,
    ) -> Self {
        self.page_cache = match probe {
            Ok(probe) => PageCacheMethod::Running(Box::new(probe), scope),
            Err(_) => PageCacheMethod::Unavailable,
        };
        self
    }

    /// The `ebpf` counters, for the broker's pid or for every process.
    fn read_page_cache(
        &mut self,
        broker: Option<&BrokerProcessReport>,
        errors: &mut Vec<(Source, SourceError)>,
    ) -> Option<PageCacheReading> {
        let PageCacheMethod::Running(probe, scope) = &mut self.page_cache else {
            return None;
        };
        let process = match scope {
            PageCacheScope::Host => None,
            PageCacheScope::Broker => Some(u32::try_from(broker?.pid).ok()?),
        };
        let read = probe
            .count_only(process)
            .and_then(|()| probe.read())
            .map(|pages| PageCacheReading { process, pages })
            .map_err(SourceError::from);
        keep(errors, Source::PageCache, read)
    }

    fn read_broker(
        &mut self,
        errors: &mut Vec<(Source, SourceError)>,
    ) -> (Option<bool>, Option<BrokerProcessReport>) {
        let Some(finder) = self.broker.as_mut() else {
            return (None, None);
        };
        let Some(pid) = finder.find(&self.paths.proc) else {
            return (Some(false), None);
        };
        match process::read_process(&self.paths.proc, pid, self.ticks_per_second, self.page_size) {
            Ok(report) => (Some(true), Some(report)),
            Err(e) => {
                errors.push((Source::Broker, e));
                (Some(true), None)
            }
        }
    }

    /// The log dirs, re-read every [`LOG_DIR_REFRESH`]; a failed read keeps
    /// the last good one (and is counted) rather than reporting nothing.
    fn read_log_dirs(&mut self, errors: &mut Vec<(Source, SourceError)>) -> Vec<LogDirReport> {
        if !self.log_dir_source.is_configured() {
            return Vec::new();
        }
        let fresh = self
            .log_dirs
            .as_ref()
            .is_some_and(|(at, _)| at.elapsed() < LOG_DIR_REFRESH);
        if !fresh {
            match logdirs::read_log_dirs(&self.log_dir_source, &self.paths.proc, &self.paths.sys) {
                Ok(reports) => self.log_dirs = Some((Instant::now(), reports)),
                Err(e) => errors.push((Source::LogDirs, e)),
            }
        }
        self.log_dirs
            .as_ref()
            .map(|(_, reports)| reports.clone())
            .unwrap_or_default()
    }

    /// Reads every source once and reports the interval since the last call.
    pub fn collect(&mut self) -> Cycle<'_> {
        let mut errors = Vec::new();
        let (files, buffer) = (&mut self.files, &mut self.buffer);
        let ticks_per_second = self.ticks_per_second;
        let cpu = keep(
            &mut errors,
            Source::Cpu,
            read_parsed(&mut files.stat, buffer, |text| {
                cpu::parse_stat(text, ticks_per_second)
            }),
        );
        let disks = keep(
            &mut errors,
            Source::Disk,
            files
                .diskstats
                .read(buffer)
                .map(|text| disk::parse_diskstats(text, &self.disk_filter)),
        );
        let interfaces = keep(&mut errors, Source::Network, self.read_interfaces());
        let log_dirs = self.read_log_dirs(&mut errors);
        let (broker_up, broker_process) = self.read_broker(&mut errors);
        let page_cache = self.read_page_cache(broker_process.as_ref(), &mut errors);
        let page_cache_ebpf_active = match self.page_cache {
            PageCacheMethod::Off => None,
            PageCacheMethod::Unavailable => Some(false),
            PageCacheMethod::Running(..) => Some(true),
        };
        let broker_metrics = self
            .broker_metrics
            .take()
            .and_then(|fetched| keep(&mut errors, Source::BrokerMetrics, fetched));
        let (files, buffer) = (&mut self.files, &mut self.buffer);
        let tcp = keep(
            &mut errors,
            Source::Tcp,
            read_parsed(&mut files.snmp, buffer, tcp::parse_snmp).and_then(|snmp| {
                Ok((
                    snmp,
                    read_parsed(&mut files.sockstat, buffer, tcp::parse_sockstat)?,
                ))
            }),
        );
        let memory = keep(
            &mut errors,
            Source::Memory,
            read_parsed(&mut files.meminfo, buffer, memory::parse_meminfo),
        );
        let file_descriptors = keep(
            &mut errors,
            Source::FileFd,
            read_parsed(&mut files.file_nr, buffer, filefd::parse_file_nr),
        );
        let disks = disks.unwrap_or_default();
        if !disks.garbled.is_empty() {
            let reason = format!("skipped {}", disks.garbled.join("; "));
            errors.push((
                Source::Disk,
                SourceError::parse(files.diskstats.path(), reason),
            ));
        }
        let reading = HostReading {
            at: Instant::now(),
            cpu,
            disks: disks.disks,
            interfaces: interfaces.unwrap_or_default(),
            tcp,
            memory,
            file_descriptors,
            log_dirs,
            broker_up,
            broker_process,
            broker_metrics,
            page_cache,
            page_cache_ebpf_active,
        };
        let report = match &self.previous {
            Some(previous) => interval(previous, &reading),
            None => HostReport {
                memory: reading.memory.clone(),
                file_descriptors: reading.file_descriptors.clone(),
                log_dirs: reading.log_dirs.clone(),
                broker_up: reading.broker_up,
                broker_process: reading.broker_process.clone(),
                broker_metrics: reading.broker_metrics.clone(),
                ..HostReport::default()
            },
        };
        Cycle {
            reading: self.previous.insert(reading),
            report,
            errors,
        }
    }

    fn read_interfaces(&mut self) -> Result<Vec<netdev::Interface>, SourceError> {
        let filter = &self.network_filter;
        let counters = read_parsed(&mut self.files.net_dev, &mut self.buffer, |text| {
            netdev::parse_net_dev(text, filter)
        })?;
        let speeds = &mut self.speeds;
        let stale = speeds
            .read_at
            .is_none_or(|at| at.elapsed() >= SPEED_REFRESH)
            || counters
                .iter()
                .any(|c| !speeds.bytes_per_second.contains_key(&c.name));
        if stale {
            speeds.read_at = Some(Instant::now());
            speeds.bytes_per_second = counters
                .iter()
                .map(|c| {
                    let path = self.paths.sys_file(&format!("class/net/{}/speed", c.name));
                    // No speed file (or -1, or EINVAL) is normal for virtual links: not an error.
                    let speed = KernelFile::new(path)
                        .read(&mut self.buffer)
                        .ok()
                        .and_then(netdev::parse_speed);
                    (c.name.clone(), speed)
                })
                .collect();
        }
        Ok(counters
            .into_iter()
            .map(|counters| netdev::Interface {
                speed_bytes_per_second: speeds
                    .bytes_per_second
                    .get(&counters.name)
                    .copied()
                    .flatten()
                    .or(self.assumed_link_speed.filter(|_| counters.name != "lo")),
                counters,
            })
            .collect())
    }
}

/// Reads a kernel file and parses it with `parse`, naming the file on failure.
fn read_parsed<T>(
    file: &mut KernelFile,
    buffer: &mut Vec<u8>,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Result<T, SourceError> {
    let text = file.read(buffer)?;
    parse(text).map_err(|e| SourceError::parse(file.path(), e))
}

/// The value of a source that read well; a failed one is noted in `errors`.
fn keep<T>(
    errors: &mut Vec<(Source, SourceError)>,
    source: Source,
    result: Result<T, SourceError>,
) -> Option<T> {
    result.map_err(|e| errors.push((source, e))).ok()
}

/// The interval report between two readings: rates need both, levels only the latest.
pub fn interval(previous: &HostReading, current: &HostReading) -> HostReport {
    let elapsed = current.at.duration_since(previous.at).as_secs_f64();
    let disks = disk::interval(&previous.disks, &current.disks, elapsed);
    HostReport {
        cpu: previous
            .cpu
            .as_ref()
            .zip(current.cpu.as_ref())
            .and_then(|(before, now)| cpu::interval(before, now)),
        page_cache_hit_ratio_estimate: pagecache::estimate_hit_ratio(
            previous.broker_metrics.as_ref(),
            current.broker_metrics.as_ref(),
            &current.log_dirs,
            &disks,
            elapsed,
        ),
        page_cache_hit_ratio_ebpf: previous
            .page_cache
            .zip(current.page_cache)
            .filter(|(before, now)| before.process == now.process)
            .and_then(|(before, now)| pagecache::ebpf_hit_ratio(before.pages, now.pages)),
        disks,
        interfaces: netdev::interval(&previous.interfaces, &current.interfaces, elapsed),
        tcp: previous
            .tcp
            .as_ref()
            .zip(current.tcp.as_ref())
            .map(|((before, _), (now, sockets))| tcp::interval(before, now, sockets, elapsed)),
        memory: current.memory.clone(),
        file_descriptors: current.file_descriptors.clone(),
        log_dirs: current.log_dirs.clone(),
        broker_up: current.broker_up,
        broker_process: current.broker_process.clone(),
        broker_metrics: current.broker_metrics.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// The fixture broker host under `dir`, read with the default filters
    /// (less `lo`).
    fn sources(dir: &Path) -> HostSources {
        let (proc, sys) = crate::fixture_host::broker_host(dir);
        HostSources::new(
            HostPaths { proc, sys },
            NameFilter::new(None, Some(disk::DEFAULT_EXCLUDE), "disk").unwrap(),
            NameFilter::new(None, Some("^lo$"), "network").unwrap(),
        )
    }

    #[test]
    fn reads_every_source_from_a_fixture_host() {
        let dir = tempfile::tempdir().unwrap();
        let mut host = sources(dir.path());
        let first = host.collect();
        assert!(first.errors.is_empty(), "{:?}", first.errors);
        assert_eq!(first.reading.cpu.as_ref().unwrap().cpus, 16);
        assert_eq!(first.reading.disks.len(), 6);
        let names: Vec<&str> = first
            .reading
            .interfaces
            .iter()
            .map(|i| i.counters.name.as_str())
            .collect();
        assert_eq!(names, ["bond0", "docker0", "ens1f0", "ens1f1"]);
        let ens1f0 = &first.reading.interfaces[2];
        assert_eq!(ens1f0.speed_bytes_per_second, Some(3_125_000_000.0));
        assert_eq!(first.reading.interfaces[0].speed_bytes_per_second, None);
        // The first cycle has levels but no rates yet.
        assert!(first.report.cpu.is_none() && first.report.disks.is_empty());
        assert_eq!(
            first.report.file_descriptors.as_ref().unwrap().allocated,
            310
        );

        let second = host.collect();
        assert_eq!(second.report.disks.len(), 6);
        assert_eq!(second.report.interfaces.len(), 4);
        assert!(second.report.tcp.is_some());
        // Unchanged files: nothing moved, so no CPU interval and zero rates.
        assert!(second.report.cpu.is_none());
        assert_eq!(second.report.disks[0].utilization_ratio, 0.0);
    }

    #[test]
    fn an_assumed_speed_fills_in_where_the_kernel_reports_none() {
        let dir = tempfile::tempdir().unwrap();
        let mut host = sources(dir.path()).with_assumed_link_speed(Some(1.25e9));
        let cycle = host.collect();
        let speed = |name: &str| {
            cycle
                .reading
                .interfaces
                .iter()
                .find(|i| i.counters.name == name)
                .unwrap()
                .speed_bytes_per_second
        };
        assert_eq!(
            speed("ens1f0"),
            Some(3_125_000_000.0),
            "the kernel's own figure wins"
        );
        assert_eq!(speed("bond0"), Some(1.25e9));
    }

    #[test]
    fn a_missing_or_garbled_file_fails_only_its_own_source() {
        let dir = tempfile::tempdir().unwrap();
        let mut host = sources(dir.path());
        std::fs::remove_file(dir.path().join("proc/net/snmp")).unwrap();
        std::fs::write(dir.path().join("proc/meminfo"), "MemTotal: x kB\n").unwrap();
        let mut diskstats = std::fs::read_to_string(dir.path().join("proc/diskstats")).unwrap();
        diskstats.push_str("   8 48 sdd 12 garbled\n");
        std::fs::write(dir.path().join("proc/diskstats"), diskstats).unwrap();

        let cycle = host.collect();
        let failed: Vec<&str> = cycle.errors.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(failed, ["tcp", "memory", "disk"]);
        assert!(cycle.reading.tcp.is_none() && cycle.reading.memory.is_none());
        assert_eq!(cycle.reading.disks.len(), 6, "the good disk lines are kept");
        assert!(cycle.reading.cpu.is_some() && cycle.reading.file_descriptors.is_some());
        let disk_error = cycle.errors[2].1.to_string();
        assert!(
            disk_error.contains("diskstats") && disk_error.contains("line 13"),
            "{disk_error}"
        );
        let tcp_error = cycle.errors[0].1.to_string();
        assert!(
            tcp_error.starts_with("cannot read ") && tcp_error.contains("net/snmp"),
            "{tcp_error}"
        );
    }
}
