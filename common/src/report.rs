//! The report schema: what an agent tells the collector about one broker
//! host over one interval. It carries interval figures (rates and ratios
//! over the agent's last interval), not raw kernel counters: the collector's
//! load model works on per-interval values, and Prometheus gets the raw
//! counters from the agent's `/metrics` directly.

use serde::{Deserialize, Serialize};

/// Bumped on any change a collector of the previous version could misread.
pub const SCHEMA_VERSION: u32 = 1;

/// One agent report: one broker host over one interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema_version: u32,
    pub broker_id: i32,
    pub agent_version: String,
    /// End of the interval, milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// Length of the interval the rates and ratios cover.
    pub interval_seconds: f64,
    pub host: HostReport,
}

/// The host half of a report. A source that failed this interval is absent
/// (`None` or missing from the list), never reported as zero.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostReport {
    pub cpu: Option<CpuReport>,
    pub disks: Vec<DiskReport>,
    pub interfaces: Vec<InterfaceReport>,
    pub tcp: Option<TcpReport>,
    pub memory: Option<MemoryReport>,
    pub file_descriptors: Option<FileDescriptorReport>,
    /// The broker's log dirs and the disks under them (empty when not configured).
    #[serde(default)]
    pub log_dirs: Vec<LogDirReport>,
    /// Whether the broker process runs on this host (`None`: not looked for).
    #[serde(default)]
    pub broker_up: Option<bool>,
    /// The broker process, while it runs.
    #[serde(default)]
    pub broker_process: Option<BrokerProcessReport>,
    /// The broker's own metrics, when its JMX exporter answered this cycle.
    #[serde(default)]
    pub broker_metrics: Option<BrokerMetricsReport>,
    /// Page-cache hit ratio over the interval, estimated as 1 - (bytes read
    /// from the log-dir disks) / (bytes the broker served), 0..1.
    #[serde(default)]
    pub page_cache_hit_ratio_estimate: Option<f64>,
    /// Page-cache hit ratio, `ebpf` method: 1 - max(0, pages added -
    /// pages dirtied) / pages requested by reads, counted in the kernel for
    /// the broker process (or the whole host), 0..1.
    #[serde(default)]
    pub page_cache_hit_ratio_ebpf: Option<f64>,
    /// Why the broker's metrics endpoint gave nothing this cycle (it timed
    /// out, refused, or answered garbage); `None` when it answered or is not
    /// configured.
    #[serde(default)]
    pub broker_metrics_error: Option<String>,
    /// What the kernel log said went wrong since the agent started, counted
    /// by kind and device (empty without access to /dev/kmsg).
    #[serde(default)]
    pub kernel_events: Vec<KernelEvents>,
    /// ERROR and FATAL lines in the broker's own log since the agent started.
    #[serde(default)]
    pub broker_log: Option<BrokerLogReport>,
}

/// Kernel log lines of one kind about one device (if the lines name one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelEvents {
    /// `io_error`, `medium_error`, `filesystem_error`, `hung_task`,
    /// `soft_lockup`, `oom_kill`, `link_down`, `machine_check`.
    pub kind: String,
    pub device: Option<String>,
    pub total: u64,
}

/// The broker's log as the agent follows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BrokerLogReport {
    pub file: String,
    /// Per logger (the class in parentheses at the end of a line).
    pub errors: Vec<LoggerErrors>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoggerErrors {
    pub logger: String,
    pub errors_total: u64,
    pub fatals_total: u64,
}

/// The broker's own metrics (from its JMX exporter or Jolokia), mapped onto
/// one fixed set. `None` where the broker did not report a figure.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BrokerMetricsReport {
    pub bytes_in_total: Option<f64>,
    pub bytes_out_total: Option<f64>,
    pub messages_in_total: Option<f64>,
    pub replication_bytes_in_total: Option<f64>,
    pub replication_bytes_out_total: Option<f64>,
    pub under_replicated_partitions: Option<f64>,
    pub under_min_isr_partitions: Option<f64>,
    pub offline_partitions: Option<f64>,
    pub active_controller: Option<f64>,
    pub leader_count: Option<f64>,
    pub partition_count: Option<f64>,
    pub request_handler_idle_ratio: Option<f64>,
    pub network_processor_idle_ratio: Option<f64>,
    pub request_queue_size: Option<f64>,
    pub produce_total_time_p99_ms: Option<f64>,
    pub fetch_consumer_total_time_p99_ms: Option<f64>,
    pub isr_shrinks_total: Option<f64>,
    pub isr_expands_total: Option<f64>,
    pub offline_log_dirs: Option<f64>,
    /// The log dirs the broker has taken offline, where it names them.
    #[serde(default)]
    pub offline_log_dir_names: Vec<String>,
    /// Garbage collection since the JVM started: young (and concurrent
    /// collectors' pauses) and old (full) collections, time and count.
    pub gc_young_seconds_total: Option<f64>,
    pub gc_young_collections_total: Option<f64>,
    pub gc_old_seconds_total: Option<f64>,
    pub gc_old_collections_total: Option<f64>,
    /// Per client quota user: byte rates and throttle times.
    pub quotas: Vec<UserQuota>,
    /// Per topic: the broker's counters of the topic's traffic (the
    /// exporter's topic-labelled series; Jolokia's `topic=` MBeans).
    #[serde(default)]
    pub topics: Vec<TopicTraffic>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TopicTraffic {
    pub topic: String,
    pub bytes_in_total: Option<f64>,
    pub bytes_out_total: Option<f64>,
    pub messages_in_total: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UserQuota {
    pub user: String,
    pub produce_bytes_per_second: Option<f64>,
    pub fetch_bytes_per_second: Option<f64>,
    pub produce_throttle_ms: Option<f64>,
    pub fetch_throttle_ms: Option<f64>,
}

/// The broker's JVM as /proc sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BrokerProcessReport {
    pub pid: i32,
    /// User and system CPU seconds since it started.
    pub cpu_seconds: f64,
    pub resident_memory_bytes: u64,
    pub threads: u64,
    pub open_fds: u64,
    /// The soft limit on open files (`None`: unlimited).
    pub max_fds: Option<u64>,
    /// Bytes it read from and wrote to storage (`None` without the right to read /proc/PID/io).
    pub read_bytes: Option<u64>,
    pub written_bytes: Option<u64>,
    /// When it started, in clock ticks since boot: a change is a restart.
    pub start_time_ticks: u64,
}

/// One of the broker's log dirs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogDirReport {
    pub log_dir: String,
    pub mount_point: String,
    /// The mounted block device (`dm-0`, `md0`, `sdb1`), if any.
    pub device: Option<String>,
    /// The disks that hold its data (partitions, LVM and md resolved).
    pub disks: Vec<String>,
    pub used_bytes: u64,
    pub free_bytes: u64,
    /// Partition directories in it, and the bytes their files hold.
    pub partitions: u64,
    pub size_bytes: u64,
    /// Per topic: its partitions in this dir and their bytes.
    #[serde(default)]
    pub topics: Vec<TopicSize>,
    /// The largest partitions in this dir and those written to fastest.
    #[serde(default)]
    pub largest_partitions: Vec<PartitionSize>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopicSize {
    pub topic: String,
    pub partitions: u64,
    pub size_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartitionSize {
    pub topic: String,
    pub partition: i32,
    pub size_bytes: u64,
    /// Bytes written per day, from the growth of its files scan after scan
    /// (segment deletions left out); `None` until two scans.
    pub written_bytes_per_day: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CpuReport {
    pub cpus: u32,
    /// Share of CPU time not idle and not waiting for I/O, 0..1.
    pub utilization_ratio: f64,
    /// Share of CPU time idle with I/O outstanding, 0..1.
    pub iowait_ratio: f64,
}

/// One block device over the interval, as `iostat -x` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiskReport {
    pub device: String,
    /// Time the device had I/O in flight over elapsed time (`%util`), 0..1.
    pub utilization_ratio: f64,
    pub reads_per_second: f64,
    pub writes_per_second: f64,
    pub read_bytes_per_second: f64,
    pub written_bytes_per_second: f64,
    /// Mean time a read spent queued and serviced (`r_await`).
    pub read_await_seconds: f64,
    /// Mean time a write spent queued and serviced (`w_await`).
    pub write_await_seconds: f64,
    /// Mean number of requests in flight (`aqu-sz`).
    pub queue_length: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InterfaceReport {
    pub interface: String,
    pub receive_bytes_per_second: f64,
    pub transmit_bytes_per_second: f64,
    pub receive_drops_per_second: f64,
    pub transmit_drops_per_second: f64,
    pub receive_errors_per_second: f64,
    pub transmit_errors_per_second: f64,
    /// Link speed, where the kernel knows it (not for loopback or most virtual links).
    pub speed_bytes_per_second: Option<f64>,
    /// Receive throughput over link speed, 0..1, where the speed is known.
    pub receive_utilization_ratio: Option<f64>,
    /// Transmit throughput over link speed, 0..1, where the speed is known.
    pub transmit_utilization_ratio: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TcpReport {
    pub segments_sent_per_second: f64,
    pub retransmitted_segments_per_second: f64,
    /// Retransmitted over sent segments in the interval, 0..1.
    pub retransmit_ratio: f64,
    pub established_connections: u64,
    pub sockets_in_use: u64,
    pub time_wait_sockets: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryReport {
    pub total_bytes: u64,
    pub available_bytes: u64,
    pub page_cache_bytes: u64,
    pub dirty_bytes: u64,
    pub writeback_bytes: u64,
    pub swap_used_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileDescriptorReport {
    pub allocated: u64,
    pub maximum: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_round_trips_through_json() {
        let report = Report {
            schema_version: SCHEMA_VERSION,
            broker_id: 3,
            agent_version: "0.1.0".into(),
            timestamp_ms: 1_700_000_000_000,
            interval_seconds: 10.0,
            host: HostReport {
                cpu: Some(CpuReport {
                    cpus: 8,
                    utilization_ratio: 0.25,
                    iowait_ratio: 0.05,
                }),
                file_descriptors: Some(FileDescriptorReport {
                    allocated: 1200,
                    maximum: 100_000,
                }),
                ..HostReport::default()
            },
        };
        let json = serde_json::to_string(&report).unwrap();
        let back: Report = serde_json::from_str(&json).unwrap();
        assert_eq!(back, report);
        assert!(json.contains("\"iowait_ratio\":0.05"));
    }
}
