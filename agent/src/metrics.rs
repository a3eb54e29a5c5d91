//! The agent's `/metrics`: kernel counters exported as counters with the
//! kernel's own values (so `rate()` works and resets are the kernel's), the
//! interval figures as gauges, and the agent's own health.
//!
//! Host series are rebuilt from each cycle's reading, the way node_exporter's
//! const metrics are: a disk or interface that disappears stops being exported.

use std::sync::{Arc, Mutex, PoisonError};

use brokerwatch_common::HostReport;
use prometheus::core::{Collector, Desc};
use prometheus::proto::{self, MetricFamily, MetricType};
use prometheus::{
    Gauge, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::host::{HostReading, Source};
use crate::push::PushCounters;
use crate::sources::disk::SECTOR_BYTES;

/// Builds metric families for one exposition, with `common` labels (the
/// agent's `broker_id`) on every series.
pub struct Families {
    families: Vec<MetricFamily>,
    common: Vec<proto::LabelPair>,
}

pub struct Family<'a> {
    family: &'a mut MetricFamily,
    common: &'a [proto::LabelPair],
}

fn label_pair(name: &str, value: &str) -> proto::LabelPair {
    let mut pair = proto::LabelPair::default();
    pair.set_name(name.to_owned());
    pair.set_value(value.to_owned());
    pair
}

impl Families {
    pub fn new(common: &[(&str, &str)]) -> Self {
        Families {
            families: Vec::with_capacity(64),
            common: common
                .iter()
                .map(|(name, value)| label_pair(name, value))
                .collect(),
        }
    }

    pub fn counter(&mut self, name: &str, help: &str) -> Family<'_> {
        self.family(name, help, MetricType::COUNTER)
    }

    pub fn gauge(&mut self, name: &str, help: &str) -> Family<'_> {
        self.family(name, help, MetricType::GAUGE)
    }

    fn family(&mut self, name: &str, help: &str, kind: MetricType) -> Family<'_> {
        let mut family = MetricFamily::default();
        family.set_name(name.to_owned());
        family.set_help(help.to_owned());
        family.set_field_type(kind);
        self.families.push(family);
        Family {
            family: self.families.last_mut().expect("just pushed"),
            common: &self.common,
        }
    }

    pub fn into_vec(self) -> Vec<MetricFamily> {
        self.families
    }
}

impl Family<'_> {
    pub fn add(&mut self, labels: &[(&str, &str)], value: f64) -> &mut Self {
        let mut metric = proto::Metric::default();
        let mut pairs = Vec::with_capacity(labels.len() + self.common.len());
        pairs.extend(labels.iter().map(|(name, value)| label_pair(name, value)));
        pairs.extend_from_slice(self.common);
        metric.set_label(pairs);
        if self.family.get_field_type() == MetricType::COUNTER {
            let mut counter = proto::Counter::default();
            counter.set_value(value);
            metric.set_counter(counter);
        } else {
            let mut gauge = proto::Gauge::default();
            gauge.set_value(value);
            metric.set_gauge(gauge);
        }
        self.family.mut_metric().push(metric);
        self
    }

    pub fn value(&mut self, value: f64) -> &mut Self {
        self.add(&[], value)
    }
}

/// The host series for one cycle: counters from the reading, interval
/// figures from the report.
pub fn host_families(
    reading: &HostReading,
    report: &HostReport,
    common: &[(&str, &str)],
) -> Vec<MetricFamily> {
    let mut f = Families::new(common);
    if let Some(cpu) = &reading.cpu {
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
    if let Some(cpu) = &report.cpu {
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
    disk_families(&mut f, reading, report);
    network_families(&mut f, reading, report);
    if let Some((snmp, sockets)) = &reading.tcp {
        f.counter(
            "brokerwatch_tcp_segments_sent_total",
            "TCP segments sent (Tcp: OutSegs).",
        )
        .value(snmp.segments_sent as f64);
        f.counter(
            "brokerwatch_tcp_retransmitted_segments_total",
            "TCP segments retransmitted (Tcp: RetransSegs).",
        )
        .value(snmp.retransmitted_segments as f64);
        f.gauge(
            "brokerwatch_tcp_established_connections",
            "TCP connections in ESTABLISHED or CLOSE_WAIT.",
        )
        .value(snmp.established_connections as f64);
        f.gauge("brokerwatch_tcp_sockets_in_use", "TCP sockets in use.")
            .value(sockets.sockets_in_use as f64);
        f.gauge(
            "brokerwatch_tcp_time_wait_sockets",
            "TCP sockets in TIME_WAIT.",
        )
        .value(sockets.time_wait_sockets as f64);
        f.gauge(
            "brokerwatch_tcp_orphan_sockets",
            "TCP sockets no longer attached to a process.",
        )
        .value(sockets.orphan_sockets as f64);
    }
    if let Some(tcp) = &report.tcp {
        f.gauge(
            "brokerwatch_tcp_retransmit_ratio",
            "Retransmitted over sent TCP segments in the last interval.",
        )
        .value(tcp.retransmit_ratio);
    }
    if let Some(m) = &reading.memory {
        let levels = [
            (
                "brokerwatch_memory_total_bytes",
                "Usable RAM (MemTotal).",
                m.total_bytes,
            ),
            (
                "brokerwatch_memory_available_bytes",
                "Memory available for new work without swapping (MemAvailable).",
                m.available_bytes,
            ),
            (
                "brokerwatch_memory_page_cache_bytes",
                "Page cache (Cached): what serves Kafka consumers from memory.",
                m.page_cache_bytes,
            ),
            (
                "brokerwatch_memory_dirty_bytes",
                "Page cache waiting to be written to disk (Dirty).",
                m.dirty_bytes,
            ),
            (
                "brokerwatch_memory_writeback_bytes",
                "Page cache being written to disk now (Writeback).",
                m.writeback_bytes,
            ),
            (
                "brokerwatch_memory_swap_used_bytes",
                "Swap in use (SwapTotal - SwapFree).",
                m.swap_used_bytes,
            ),
        ];
        for (name, help, value) in levels {
            f.gauge(name, help).value(value as f64);
        }
    }
    if let Some(fd) = &reading.file_descriptors {
        f.gauge(
            "brokerwatch_filefd_allocated",
            "File handles allocated system-wide (/proc/sys/fs/file-nr).",
        )
        .value(fd.allocated as f64);
        f.gauge(
            "brokerwatch_filefd_maximum",
            "System-wide limit on file handles (fs.file-max).",
        )
        .value(fd.maximum as f64);
    }
    log_dir_families(&mut f, &reading.log_dirs);
    if let Some(m) = &reading.broker_metrics {
        broker_metric_families(&mut f, m);
    }
    page_cache_families(&mut f, reading, report);
    if let Some(up) = reading.broker_up {
        f.gauge("brokerwatch_broker_up", "1 when the broker process runs on this host, 0 when the host reports but the broker does not run.")
            .value(f64::from(u8::from(up)));
    }
    if let Some(p) = &reading.broker_process {
        f.counter(
            "brokerwatch_broker_process_cpu_seconds_total",
            "User and system CPU time of the broker process.",
        )
        .value(p.cpu_seconds);
        f.gauge(
            "brokerwatch_broker_process_resident_memory_bytes",
            "Resident memory of the broker process.",
        )
        .value(p.resident_memory_bytes as f64);
        f.gauge(
            "brokerwatch_broker_process_threads",
            "Threads of the broker process.",
        )
        .value(p.threads as f64);
        f.gauge(
            "brokerwatch_broker_process_open_fds",
            "File descriptors the broker process holds open.",
        )
        .value(p.open_fds as f64);
        if let Some(max) = p.max_fds {
            f.gauge(
                "brokerwatch_broker_process_max_fds",
                "The broker process's limit on open files.",
            )
            .value(max as f64);
        }
        if let Some(read) = p.read_bytes {
            f.counter(
                "brokerwatch_broker_process_read_bytes_total",
                "Bytes the broker process read from storage.",
            )
            .value(read as f64);
        }
        if let Some(written) = p.written_bytes {
            f.counter(
                "brokerwatch_broker_process_written_bytes_total",
                "Bytes the broker process wrote to storage.",
            )
            .value(written as f64);
        }
    }
    f.into_vec()
}

fn broker_metric_families(f: &mut Families, m: &brokerwatch_common::BrokerMetricsReport) {
    let ms = |v: Option<f64>| v.map(|ms| ms / 1000.0);
    let counters = [
        (
            "brokerwatch_kafka_bytes_in_total",
            "Bytes clients produced to the broker (BytesInPerSec count).",
            m.bytes_in_total,
        ),
        (
            "brokerwatch_kafka_bytes_out_total",
            "Bytes the broker served to consumers (BytesOutPerSec count).",
            m.bytes_out_total,
        ),
        (
            "brokerwatch_kafka_messages_in_total",
            "Messages produced to the broker.",
            m.messages_in_total,
        ),
        (
            "brokerwatch_kafka_replication_bytes_in_total",
            "Bytes fetched from leaders as a follower.",
            m.replication_bytes_in_total,
        ),
        (
            "brokerwatch_kafka_replication_bytes_out_total",
            "Bytes followers fetched from this broker.",
            m.replication_bytes_out_total,
        ),
        (
            "brokerwatch_kafka_isr_shrinks_total",
            "ISR shrinks on partitions this broker leads.",
            m.isr_shrinks_total,
        ),
        (
            "brokerwatch_kafka_isr_expands_total",
            "ISR expands on partitions this broker leads.",
            m.isr_expands_total,
        ),
    ];
    for (name, help, value) in counters {
        if let Some(value) = value {
            f.counter(name, help).value(value);
        }
    }
    let gauges = [
        (
            "brokerwatch_kafka_under_replicated_partitions",
            "Under-replicated partitions this broker leads, as the broker counts them.",
            m.under_replicated_partitions,
        ),
        (
            "brokerwatch_kafka_under_min_isr_partitions",
            "Partitions this broker leads with fewer in-sync replicas than min.insync.replicas.",
            m.under_min_isr_partitions,
        ),
        (
            "brokerwatch_kafka_offline_partitions",
            "Offline partitions (reported by the active controller).",
            m.offline_partitions,
        ),
        (
            "brokerwatch_kafka_active_controller",
            "1 on the active controller.",
            m.active_controller,
        ),
        (
            "brokerwatch_kafka_leader_count",
            "Partitions this broker leads.",
            m.leader_count,
        ),
        (
            "brokerwatch_kafka_partition_count",
            "Replicas this broker hosts.",
            m.partition_count,
        ),
        (
            "brokerwatch_kafka_request_handler_idle_ratio",
            "Share of time the request handler threads are idle.",
            m.request_handler_idle_ratio,
        ),
        (
            "brokerwatch_kafka_network_processor_idle_ratio",
            "Share of time the network processor threads are idle.",
            m.network_processor_idle_ratio,
        ),
        (
            "brokerwatch_kafka_request_queue_size",
            "Requests waiting in the request queue.",
            m.request_queue_size,
        ),
        (
            "brokerwatch_kafka_produce_total_time_p99_seconds",
            "99th percentile of a produce request's total time.",
            ms(m.produce_total_time_p99_ms),
        ),
        (
            "brokerwatch_kafka_fetch_consumer_total_time_p99_seconds",
            "99th percentile of a consumer fetch's total time.",
            ms(m.fetch_consumer_total_time_p99_ms),
        ),
        (
            "brokerwatch_kafka_offline_log_dirs",
            "Log dirs the broker has taken offline.",
            m.offline_log_dirs,
        ),
    ];
    for (name, help, value) in gauges {
        if let Some(value) = value {
            f.gauge(name, help).value(value);
        }
    }
    type Quota = fn(&brokerwatch_common::UserQuota) -> Option<f64>;
    let quotas: [(&str, &str, Quota); 4] = [
        (
            "brokerwatch_kafka_user_produce_bytes_per_second",
            "Produce byte rate of a quota user.",
            |q| q.produce_bytes_per_second,
        ),
        (
            "brokerwatch_kafka_user_fetch_bytes_per_second",
            "Fetch byte rate of a quota user.",
            |q| q.fetch_bytes_per_second,
        ),
        (
            "brokerwatch_kafka_user_produce_throttle_seconds",
            "Produce throttle time of a quota user.",
            |q| q.produce_throttle_ms.map(|ms| ms / 1000.0),
        ),
        (
            "brokerwatch_kafka_user_fetch_throttle_seconds",
            "Fetch throttle time of a quota user.",
            |q| q.fetch_throttle_ms.map(|ms| ms / 1000.0),
        ),
    ];
    for (name, help, field) in quotas {
        let mut family = f.gauge(name, help);
        for quota in &m.quotas {
            if let Some(value) = field(quota) {
                family.add(&[("user", &quota.user)], value);
            }
        }
    }
}

/// The page-cache hit ratio by each method that could tell it this
/// interval, and the `ebpf` method's counters and state.
fn page_cache_families(f: &mut Families, reading: &HostReading, report: &HostReport) {
    let methods = [
        ("estimate", report.page_cache_hit_ratio_estimate),
        ("ebpf", report.page_cache_hit_ratio_ebpf),
    ];
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
    if let Some(active) = reading.page_cache_ebpf_active {
        f.gauge(
            "brokerwatch_page_cache_ebpf_active",
            "1 when the ebpf page-cache method runs, 0 when it was asked for but refused (see the agent's log).",
        )
        .value(f64::from(u8::from(active)));
    }
    if let Some(counted) = &reading.page_cache {
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

fn log_dir_families(f: &mut Families, log_dirs: &[brokerwatch_common::LogDirReport]) {
    type Level = fn(&brokerwatch_common::LogDirReport) -> u64;
    let levels: [(&str, &str, Level); 4] = [
        (
            "brokerwatch_logdir_used_bytes",
            "Bytes used on the log dir's filesystem.",
            |d| d.used_bytes,
        ),
        (
            "brokerwatch_logdir_free_bytes",
            "Bytes free on the log dir's filesystem.",
            |d| d.free_bytes,
        ),
        (
            "brokerwatch_logdir_partitions",
            "Partition directories in the log dir.",
            |d| d.partitions,
        ),
        (
            "brokerwatch_logdir_size_bytes",
            "Bytes the log dir's partitions hold.",
            |d| d.size_bytes,
        ),
    ];
    for (name, help, level) in levels {
        let mut family = f.gauge(name, help);
        for d in log_dirs {
            family.add(
                &[
                    ("log_dir", &d.log_dir),
                    ("device", d.device.as_deref().unwrap_or("none")),
                ],
                level(d) as f64,
            );
        }
    }
    let mut disks = f.gauge(
        "brokerwatch_logdir_disk_info",
        "1 for each disk under a log dir (partitions, LVM and md resolved).",
    );
    for d in log_dirs {
        for disk in &d.disks {
            disks.add(&[("log_dir", &d.log_dir), ("disk", disk)], 1.0);
        }
    }
}

fn disk_families(f: &mut Families, reading: &HostReading, report: &HostReport) {
    let disks = &reading.disks;
    type Field = fn(&crate::sources::disk::DiskStat) -> Option<f64>;
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
        for d in &report.disks {
            family.add(&[("device", &d.device)], figure(d));
        }
    }
}

fn network_families(f: &mut Families, reading: &HostReading, report: &HostReport) {
    type Field = fn(&procfs::net::DeviceStatus) -> u64;
    let counters: [(&str, &str, Field); 8] = [
        (
            "brokerwatch_network_receive_bytes_total",
            "Bytes received.",
            |c| c.recv_bytes,
        ),
        (
            "brokerwatch_network_receive_packets_total",
            "Packets received.",
            |c| c.recv_packets,
        ),
        (
            "brokerwatch_network_receive_errors_total",
            "Bad packets received.",
            |c| c.recv_errs,
        ),
        (
            "brokerwatch_network_receive_drop_total",
            "Received packets dropped.",
            |c| c.recv_drop,
        ),
        (
            "brokerwatch_network_transmit_bytes_total",
            "Bytes transmitted.",
            |c| c.sent_bytes,
        ),
        (
            "brokerwatch_network_transmit_packets_total",
            "Packets transmitted.",
            |c| c.sent_packets,
        ),
        (
            "brokerwatch_network_transmit_errors_total",
            "Transmit errors.",
            |c| c.sent_errs,
        ),
        (
            "brokerwatch_network_transmit_drop_total",
            "Packets dropped on transmit.",
            |c| c.sent_drop,
        ),
    ];
    for (name, help, field) in counters {
        let mut family = f.counter(name, help);
        for i in &reading.interfaces {
            family.add(
                &[("interface", &i.counters.name)],
                field(&i.counters) as f64,
            );
        }
    }
    let mut speed = f.gauge(
        "brokerwatch_network_speed_bytes",
        "Link speed in bytes per second, where the kernel knows it.",
    );
    for i in &reading.interfaces {
        if let Some(bytes_per_second) = i.speed_bytes_per_second {
            speed.add(&[("interface", &i.counters.name)], bytes_per_second);
        }
    }
    type Share = fn(&brokerwatch_common::InterfaceReport) -> Option<f64>;
    let shares: [(&str, &str, Share); 2] = [
        (
            "brokerwatch_network_receive_utilization_ratio",
            "Receive throughput over link speed in the last interval.",
            |i| i.receive_utilization_ratio,
        ),
        (
            "brokerwatch_network_transmit_utilization_ratio",
            "Transmit throughput over link speed in the last interval.",
            |i| i.transmit_utilization_ratio,
        ),
    ];
    for (name, help, share) in shares {
        let mut family = f.gauge(name, help);
        for i in &report.interfaces {
            if let Some(value) = share(i) {
                family.add(&[("interface", &i.interface)], value);
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

/// Hands the latest cycle's host families to the registry on each scrape.
#[derive(Clone, Default)]
struct LatestHost(Arc<Mutex<Vec<MetricFamily>>>);

impl Collector for LatestHost {
    fn desc(&self) -> Vec<&Desc> {
        // The host series vary with the devices present, so they are not
        // declared up front (as with node_exporter's unchecked collectors).
        Vec::new()
    }

    /// Hands over the families rather than copying them: the registry is
    /// private to [`AgentMetrics`] and gathered once per cycle, by `render`.
    fn collect(&self) -> Vec<MetricFamily> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// Everything `/metrics` serves, with `broker_id` on every series. All of
/// it changes once per cycle, so it is rendered once per cycle and each
/// scrape gets the rendered text (shared, not copied).
#[derive(Clone)]
pub struct AgentMetrics {
    broker_id: String,
    rendered: Arc<Mutex<axum::body::Bytes>>,
    registry: Registry,
    host: LatestHost,
    collect_duration: Gauge,
    /// Each source's error counter and up gauge.
    per_source: Vec<(Source, IntCounter, IntGauge)>,
    push: PushCounters,
    report_backlog: IntGauge,
}

impl AgentMetrics {
    pub fn new(broker_id: i32) -> Self {
        // broker_id is put on each series where it is built rather than as
        // registry-wide labels, which the registry would re-allocate into
        // every series on every gather.
        let broker_id = broker_id.to_string();
        let opts =
            |name: &str, help: &str| Opts::new(name, help).const_label("broker_id", &broker_id);
        let registry = Registry::new();
        let collect_duration = Gauge::with_opts(opts(
            "brokerwatch_agent_collect_duration_seconds",
            "Wall time of the last collection cycle.",
        ))
        .expect("static metric options are valid");
        let source_errors = IntCounterVec::new(
            opts(
                "brokerwatch_agent_source_errors_total",
                "Collection cycles in which a source failed, whole or in part.",
            ),
            &["source"],
        )
        .expect("static metric options are valid");
        let source_up = IntGaugeVec::new(
            opts(
                "brokerwatch_agent_source_up",
                "1 when the source's last read succeeded in full, 0 otherwise.",
            ),
            &["source"],
        )
        .expect("static metric options are valid");
        let counter = |name: &str, help: &str| {
            IntCounter::with_opts(opts(name, help)).expect("static metric options are valid")
        };
        let push = PushCounters {
            sent: counter("brokerwatch_agent_reports_sent_total", "Reports the collector accepted."),
            failed: counter("brokerwatch_agent_report_send_errors_total", "Attempts to send a report that failed (collector unreachable or erroring); retried."),
            dropped_full: counter("brokerwatch_agent_reports_dropped_total", "Oldest reports dropped because the buffer was full while the collector was unreachable."),
            dropped_refused: counter("brokerwatch_agent_reports_refused_total", "Reports the collector refused (token, schema, size); not retried."),
        };
        let report_backlog = IntGauge::with_opts(opts(
            "brokerwatch_agent_report_backlog",
            "Reports buffered, not yet accepted by the collector.",
        ))
        .expect("static metric options are valid");
        let host = LatestHost::default();
        for collector in [
            Box::new(host.clone()) as Box<dyn Collector>,
            Box::new(collect_duration.clone()),
            Box::new(source_errors.clone()),
            Box::new(source_up.clone()),
            Box::new(push.sent.clone()),
            Box::new(push.failed.clone()),
            Box::new(push.dropped_full.clone()),
            Box::new(push.dropped_refused.clone()),
            Box::new(report_backlog.clone()),
        ] {
            registry
                .register(collector)
                .expect("metric names are unique");
        }
        // Resolved once (present from the start, so that a first failure is a
        // rate, not a new series), not looked up by label every cycle.
        let per_source = Source::ALL
            .map(|source| {
                (
                    source,
                    source_errors.with_label_values(&[source.as_str()]),
                    source_up.with_label_values(&[source.as_str()]),
                )
            })
            .to_vec();
        let metrics = AgentMetrics {
            broker_id,
            rendered: Arc::default(),
            registry,
            host,
            collect_duration,
            per_source,
            push,
            report_backlog,
        };
        metrics.render();
        metrics
    }

    /// The counters the push task moves.
    pub fn push_counters(&self) -> PushCounters {
        self.push.clone()
    }

    /// Reports waiting for the collector, shown from the next cycle on.
    pub fn set_report_backlog(&self, reports: usize) {
        self.report_backlog.set(reports as i64);
    }

    /// Records one cycle: its host series, its duration and which sources failed.
    pub fn record_cycle(
        &self,
        reading: &HostReading,
        report: &HostReport,
        duration_seconds: f64,
        failed: &[Source],
    ) {
        let host = host_families(reading, report, &[("broker_id", &self.broker_id)]);
        *self.host.0.lock().unwrap_or_else(PoisonError::into_inner) = host;
        self.collect_duration.set(duration_seconds);
        for (source, errors, up) in &self.per_source {
            let ok = !failed.contains(source);
            up.set(i64::from(ok));
            if !ok {
                errors.inc();
            }
        }
        self.render();
    }

    /// The Prometheus text exposition as of the last cycle.
    pub fn exposition(&self) -> axum::body::Bytes {
        self.rendered
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn render(&self) {
        let mut text = String::with_capacity(16 * 1024);
        // Encoding gathered families into a String cannot fail.
        TextEncoder::new()
            .encode_utf8(&self.registry.gather(), &mut text)
            .expect("text encoding into memory");
        *self.rendered.lock().unwrap_or_else(PoisonError::into_inner) = text.into();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::HostSources;
    use crate::sources::{disk, HostPaths, NameFilter};

    /// Two cycles over the fixture broker host: counters, and interval
    /// figures of zero (the files do not change between the cycles).
    fn fixture_reading() -> (HostReading, HostReport) {
        let dir = tempfile::tempdir().unwrap();
        let (proc, sys) = crate::fixture_host::broker_host(dir.path());
        let mut host = HostSources::new(
            HostPaths { proc, sys },
            NameFilter::new(None, Some(disk::DEFAULT_EXCLUDE), "disk").unwrap(),
            NameFilter::default(),
        );
        host.collect();
        let cycle = host.collect();
        (cycle.reading.clone(), cycle.report)
    }

    #[test]
    fn exposition_has_counters_gauges_and_broker_id() {
        let (reading, report) = fixture_reading();
        let metrics = AgentMetrics::new(7);
        metrics.record_cycle(&reading, &report, 0.0042, &[Source::Tcp]);
        let text = String::from_utf8(metrics.exposition().to_vec()).unwrap();
        for line in [
            "# TYPE brokerwatch_cpu_seconds_total counter",
            "brokerwatch_cpu_seconds_total{mode=\"iowait\",broker_id=\"7\"} 98311.45",
            "# TYPE brokerwatch_disk_read_bytes_total counter",
            "brokerwatch_disk_read_bytes_total{device=\"sdb\",broker_id=\"7\"} 15777332282368",
            "brokerwatch_disk_io_time_seconds_total{device=\"sdb\",broker_id=\"7\"} 398123.551",
            "brokerwatch_disk_flush_requests_total{device=\"sdb\",broker_id=\"7\"} 1812",
            "brokerwatch_disk_utilization_ratio{device=\"sdb\",broker_id=\"7\"} 0",
            "brokerwatch_network_receive_bytes_total{interface=\"lo\",broker_id=\"7\"} 81237612398",
            "brokerwatch_network_speed_bytes{interface=\"ens1f0\",broker_id=\"7\"} 3125000000",
            "brokerwatch_network_receive_utilization_ratio{interface=\"ens1f0\",broker_id=\"7\"} 0",
            "brokerwatch_tcp_retransmitted_segments_total{broker_id=\"7\"} 41238761",
            "brokerwatch_tcp_time_wait_sockets{broker_id=\"7\"} 18231",
            "brokerwatch_memory_page_cache_bytes{broker_id=\"7\"} 214142849024",
            "brokerwatch_filefd_maximum{broker_id=\"7\"} 2466170",
            "brokerwatch_agent_collect_duration_seconds{broker_id=\"7\"} 0.0042",
            "brokerwatch_agent_source_errors_total{broker_id=\"7\",source=\"tcp\"} 1",
            "brokerwatch_agent_source_errors_total{broker_id=\"7\",source=\"cpu\"} 0",
            "brokerwatch_agent_source_up{broker_id=\"7\",source=\"tcp\"} 0",
            "brokerwatch_agent_source_up{broker_id=\"7\",source=\"disk\"} 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        // Only ens1f0 has a speed file: no utilization is invented for the others.
        assert!(!text.contains("brokerwatch_network_receive_utilization_ratio{interface=\"bond0\""));
        // Filtered devices are not exported.
        assert!(!text.contains("device=\"sda1\"") && !text.contains("device=\"loop0\""));
    }

    #[test]
    fn a_device_that_disappears_stops_being_exported() {
        let (mut reading, report) = fixture_reading();
        let metrics = AgentMetrics::new(1);
        metrics.record_cycle(&reading, &report, 0.001, &[]);
        let has_sdc = |m: &AgentMetrics| {
            String::from_utf8(m.exposition().to_vec())
                .unwrap()
                .contains("device=\"sdc\"")
        };
        assert!(has_sdc(&metrics));
        reading.disks.retain(|d| d.name != "sdc");
        let report = HostReport {
            disks: report
                .disks
                .into_iter()
                .filter(|d| d.device != "sdc")
                .collect(),
            ..report
        };
        metrics.record_cycle(&reading, &report, 0.001, &[]);
        assert!(!has_sdc(&metrics));
    }
}
