//! One collection cycle: every source in turn reads, writes its part of
//! the interval report and keeps what its series need. A source that fails
//! leaves its part empty and the others carry on; the cycle says which failed.

use std::time::Instant;

use brokerwatch_common::exposition::Families;
use brokerwatch_common::HostReport;
use tracing::{info, warn};

use crate::config::Config;
use crate::sources::pagecache::{EbpfMethod, PageCacheSource};
use crate::sources::pagecache_ebpf::{PageCacheProbe, ProbeError};
use crate::sources::{
    broker_log, broker_metrics, cpu, disk, filefd, kmsg, logdirs, memory, netdev, process, tcp,
    Source, SourceError,
};

/// Every source of `config`, in the order a cycle runs them: the page cache
/// reads the parts of the disks, log dirs, broker process and broker
/// metrics; a source that is not configured does nothing. `ebpf` is the
/// page-cache probe, attached by the daemon.
pub fn registry(config: &Config, ebpf: EbpfMethod) -> Vec<Box<dyn Source>> {
    let paths = &config.paths;
    vec![
        Box::new(cpu::CpuSource::new(paths)),
        Box::new(disk::DiskSource::new(paths, config.disk_filter.clone())),
        Box::new(netdev::NetworkSource::new(
            paths,
            config.network_filter.clone(),
            config.assumed_link_speed_bytes,
        )),
        Box::new(logdirs::LogDirsSource::new(paths, config.log_dirs.clone())),
        Box::new(process::BrokerProcessSource::new(
            paths,
            config.broker.clone(),
        )),
        Box::new(broker_log::BrokerLogSource::new(
            config.broker_log.clone(),
            &paths.proc,
        )),
        Box::new(broker_metrics::BrokerMetricsSource::new(
            config.broker_metrics.clone(),
            config.broker_metrics_timeout,
        )),
        Box::new(PageCacheSource::new(ebpf)),
        Box::new(tcp::TcpSource::new(paths)),
        Box::new(memory::MemorySource::new(paths)),
        Box::new(filefd::FileFdSource::new(paths)),
        Box::new(kmsg::KernelLogSource::new(config.kernel_log.clone())),
    ]
}

/// The page-cache probe of `config`: attached by `attach` when asked for, or
/// why not (said once: the estimate method goes on without it).
pub fn page_cache_probe(
    config: &Config,
    attach: impl FnOnce() -> Result<PageCacheProbe, ProbeError>,
) -> EbpfMethod {
    let Some(scope) = config.page_cache_ebpf else {
        return EbpfMethod::Off;
    };
    let probe = attach();
    // Loading here parses the kernel's BTF (aya does, ~20 MiB, then frees
    // it): hand those pages back rather than keep them for the daemon's life.
    crate::release_free_memory();
    match probe {
        Ok(probe) => {
            info!(?scope, "page-cache hit ratio: ebpf method running");
            EbpfMethod::Running(Box::new(probe), scope)
        }
        Err(e) => {
            warn!("page-cache hit ratio: ebpf method off: {e}; the estimate method goes on (set [page_cache] ebpf = false to silence this)");
            EbpfMethod::Unavailable
        }
    }
}

/// What one cycle produced: the interval report, and the sources that
/// failed (with why).
#[derive(Debug)]
pub struct Cycle {
    pub report: HostReport,
    pub errors: Vec<(&'static str, SourceError)>,
}

/// The sources of this host, run as one cycle.
pub struct Host {
    sources: Vec<Box<dyn Source>>,
}

impl Host {
    pub fn new(sources: Vec<Box<dyn Source>>) -> Self {
        Host { sources }
    }

    /// Every source of `config`, the page-cache probe attached in this
    /// process if asked for.
    pub fn from_config(config: &Config) -> Self {
        Host::new(registry(
            config,
            page_cache_probe(config, PageCacheProbe::attach),
        ))
    }

    /// [`Host::from_config`] with the probe loaded by a short-lived helper
    /// process, so that the loader's peak memory is not the daemon's. Call
    /// it before any thread starts (see [`PageCacheProbe::attach_apart`]).
    pub fn from_config_apart(config: &Config) -> Self {
        Host::new(registry(
            config,
            page_cache_probe(config, PageCacheProbe::attach_apart),
        ))
    }

    /// The sources' names, as the `source` label gives them.
    pub fn names(&self) -> Vec<&'static str> {
        self.sources.iter().map(|s| s.name()).collect()
    }

    /// What the sources fetch over the network before a cycle.
    pub async fn fetch(&mut self) {
        for source in &mut self.sources {
            source.fetch().await;
        }
    }

    /// Reads every source once at `at` and reports the interval since the
    /// last call (the first call has levels, not rates).
    pub fn collect(&mut self, at: Instant) -> Cycle {
        let mut report = HostReport::default();
        let mut errors = Vec::new();
        for source in &mut self.sources {
            if let Err(e) = source.collect(at, &mut report) {
                errors.push((source.name(), e));
            }
        }
        Cycle { report, errors }
    }

    /// Every source's series as of the last cycle.
    pub fn expose(&self, families: &mut Families) {
        for source in &self.sources {
            source.expose(families);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::{from_toml, Flags};
    use std::path::Path;

    /// The fixture broker host under `dir` as a config's sources see it
    /// (without the broker side), with `extra` config lines.
    pub(crate) fn fixture_host(dir: &Path, extra: &str) -> Host {
        let (proc, sys) = crate::fixture_host::broker_host(dir);
        let text = format!(
            "broker_id = 7\nproc_path = {:?}\nsys_path = {:?}\n{extra}\n[broker]\nenabled = false\n[page_cache]\nebpf = false\n",
            proc.display().to_string(),
            sys.display().to_string()
        );
        Host::from_config(&from_toml(&text, "test", &Flags::default()).unwrap())
    }

    /// The host's series as text.
    pub(crate) fn exposition(host: &Host) -> String {
        let mut families = Families::new(&[]);
        host.expose(&mut families);
        let mut text = String::new();
        prometheus::TextEncoder::new()
            .encode_utf8(&families.into_vec(), &mut text)
            .unwrap();
        text
    }

    fn labels_of(text: &str, metric: &str, label: &str) -> Vec<String> {
        text.lines()
            .filter_map(|l| l.strip_prefix(&format!("{metric}{{{label}=\"")))
            .filter_map(|rest| rest.split('"').next().map(str::to_owned))
            .collect()
    }

    #[test]
    fn reads_every_source_from_a_fixture_host() {
        let dir = tempfile::tempdir().unwrap();
        let mut host = fixture_host(dir.path(), "[network]\nexclude = \"^lo$\"");
        let first = host.collect(Instant::now());
        assert!(first.errors.is_empty(), "{:?}", first.errors);
        let text = exposition(&host);
        assert!(text.contains("\nbrokerwatch_cpu_count 16\n"), "{text}");
        assert_eq!(
            labels_of(&text, "brokerwatch_disk_io_now", "device").len(),
            6
        );
        assert_eq!(
            labels_of(
                &text,
                "brokerwatch_network_receive_bytes_total",
                "interface"
            ),
            ["bond0", "docker0", "ens1f0", "ens1f1"]
        );
        assert!(text.contains("brokerwatch_network_speed_bytes{interface=\"ens1f0\"} 3125000000\n"));
        assert!(!text.contains("brokerwatch_network_speed_bytes{interface=\"bond0\""));
        // The first cycle has levels but no rates yet.
        assert!(first.report.cpu.is_none() && first.report.disks.is_empty());
        assert_eq!(
            first.report.file_descriptors.as_ref().unwrap().allocated,
            310
        );

        let second = host.collect(Instant::now());
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
        let mut host = fixture_host(dir.path(), "[network]\nassumed_speed_mbits = 10000");
        host.collect(Instant::now());
        let text = exposition(&host);
        assert!(
            text.contains("brokerwatch_network_speed_bytes{interface=\"ens1f0\"} 3125000000\n"),
            "the kernel's own figure wins"
        );
        assert!(text.contains("brokerwatch_network_speed_bytes{interface=\"bond0\"} 1250000000\n"));
        assert!(!text.contains("brokerwatch_network_speed_bytes{interface=\"lo\""));
    }

    #[test]
    fn a_missing_or_garbled_file_fails_only_its_own_source() {
        let dir = tempfile::tempdir().unwrap();
        let mut host = fixture_host(dir.path(), "");
        std::fs::remove_file(dir.path().join("proc/net/snmp")).unwrap();
        std::fs::write(dir.path().join("proc/meminfo"), "MemTotal: x kB\n").unwrap();
        let mut diskstats = std::fs::read_to_string(dir.path().join("proc/diskstats")).unwrap();
        diskstats.push_str("   8 48 sdd 12 garbled\n");
        std::fs::write(dir.path().join("proc/diskstats"), diskstats).unwrap();

        let cycle = host.collect(Instant::now());
        let mut failed: Vec<&str> = cycle.errors.iter().map(|(s, _)| *s).collect();
        failed.sort_unstable();
        assert_eq!(failed, ["disk", "memory", "tcp"]);
        assert!(cycle.report.tcp.is_none() && cycle.report.memory.is_none());
        let text = exposition(&host);
        assert_eq!(
            labels_of(&text, "brokerwatch_disk_io_now", "device").len(),
            6,
            "the good disk lines are kept"
        );
        assert!(text.contains("brokerwatch_cpu_count") && cycle.report.file_descriptors.is_some());
        let error = |source: &str| {
            cycle
                .errors
                .iter()
                .find(|(s, _)| *s == source)
                .unwrap()
                .1
                .to_string()
        };
        let disk_error = error("disk");
        assert!(
            disk_error.contains("diskstats") && disk_error.contains("line 13"),
            "{disk_error}"
        );
        let tcp_error = error("tcp");
        assert!(
            tcp_error.starts_with("cannot read ") && tcp_error.contains("net/snmp"),
            "{tcp_error}"
        );
    }
}
