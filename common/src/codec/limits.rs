//! What a report may hold: every figure in its range (a ratio in 0..1, a
//! rate from 0 to [`MAX_RATE`]), at most [`MAX_ITEMS`] of a kind, names of
//! at most [`MAX_NAME`] bytes. A report beyond is refused with the field it
//! breaks, so that one bad agent (or one holding a token and ill will)
//! cannot skew every broker's share or make the collector keep without end.

use super::Rejection;
use crate::{BrokerMetricsReport, HostReport, Report};

/// The most items of one kind a report may hold (disks, interfaces, log
/// dirs, the disks under one, quota users): what a broker host has, with
/// room; a report beyond is refused, not kept.
pub const MAX_ITEMS: usize = 256;
/// The most topics a report may list (per log dir, and in the broker's
/// metrics): far more than any broker holds, and still bounded.
pub const MAX_TOPICS: usize = 100_000;
/// The longest name in a report (a device, an interface, a log dir, a user).
pub const MAX_NAME: usize = 255;
/// The largest rate a report may give, per second (bytes, packets, requests).
pub const MAX_RATE: f64 = 1e15;

/// A number as an operator reads it: `-0.5`, `1e308`.
fn shown(value: f64) -> String {
    if value != 0.0 && !(1e-4..1e15).contains(&value.abs()) {
        format!("{value:e}")
    } else {
        format!("{value}")
    }
}

fn range(path: &str, value: f64, low: f64, high: f64) -> Result<(), Rejection> {
    if (low..=high).contains(&value) {
        Ok(())
    } else {
        Err(Rejection::new(
            422,
            "out_of_range",
            format!(
                "{path}: {} is out of range ({} to {})",
                shown(value),
                shown(low),
                shown(high)
            ),
        ))
    }
}

fn ratio(path: &str, value: f64) -> Result<(), Rejection> {
    range(path, value, 0.0, 1.0)
}

fn rate(path: &str, value: f64) -> Result<(), Rejection> {
    range(path, value, 0.0, MAX_RATE)
}

fn items(path: &str, count: usize) -> Result<(), Rejection> {
    at_most(path, count, MAX_ITEMS)
}

fn at_most(path: &str, count: usize, most: usize) -> Result<(), Rejection> {
    if count <= most {
        Ok(())
    } else {
        Err(Rejection::new(
            422,
            "too_many_items",
            format!("{path}: {count} items, at most {most}"),
        ))
    }
}

/// A message or a path: longer than a name, still bounded.
fn long_text(path: &str, text: &str) -> Result<(), Rejection> {
    if text.len() <= 4 * 1024 {
        Ok(())
    } else {
        Err(Rejection::new(
            422,
            "too_many_items",
            format!("{path}: {} bytes, at most 4096", text.len()),
        ))
    }
}

fn name(path: &str, text: &str) -> Result<(), Rejection> {
    if text.len() <= MAX_NAME {
        Ok(())
    } else {
        Err(Rejection::new(
            422,
            "too_many_items",
            format!("{path}: {} bytes, at most {MAX_NAME}", text.len()),
        ))
    }
}

/// Every figure, count and name of `report` within bounds, or the first that is not.
pub fn check(report: &Report) -> Result<(), Rejection> {
    name("agent_version", &report.agent_version)?;
    range("interval_seconds", report.interval_seconds, 1e-3, 86_400.0)?;
    host(&report.host)
}

fn host(h: &HostReport) -> Result<(), Rejection> {
    if let Some(cpu) = &h.cpu {
        range("host.cpu.cpus", f64::from(cpu.cpus), 1.0, 65_536.0)?;
        ratio("host.cpu.utilization_ratio", cpu.utilization_ratio)?;
        ratio("host.cpu.iowait_ratio", cpu.iowait_ratio)?;
    }
    items("host.disks", h.disks.len())?;
    for (i, d) in h.disks.iter().enumerate() {
        let at = |field: &str| format!("host.disks[{i}].{field}");
        name(&at("device"), &d.device)?;
        ratio(&at("utilization_ratio"), d.utilization_ratio)?;
        for (field, value) in [
            ("reads_per_second", d.reads_per_second),
            ("writes_per_second", d.writes_per_second),
            ("read_bytes_per_second", d.read_bytes_per_second),
            ("written_bytes_per_second", d.written_bytes_per_second),
            ("queue_length", d.queue_length),
        ] {
            rate(&at(field), value)?;
        }
        range(&at("read_await_seconds"), d.read_await_seconds, 0.0, 3600.0)?;
        range(
            &at("write_await_seconds"),
            d.write_await_seconds,
            0.0,
            3600.0,
        )?;
    }
    items("host.interfaces", h.interfaces.len())?;
    for (i, n) in h.interfaces.iter().enumerate() {
        let at = |field: &str| format!("host.interfaces[{i}].{field}");
        name(&at("interface"), &n.interface)?;
        for (field, value) in [
            ("receive_bytes_per_second", Some(n.receive_bytes_per_second)),
            (
                "transmit_bytes_per_second",
                Some(n.transmit_bytes_per_second),
            ),
            ("receive_drops_per_second", Some(n.receive_drops_per_second)),
            (
                "transmit_drops_per_second",
                Some(n.transmit_drops_per_second),
            ),
            (
                "receive_errors_per_second",
                Some(n.receive_errors_per_second),
            ),
            (
                "transmit_errors_per_second",
                Some(n.transmit_errors_per_second),
            ),
            ("speed_bytes_per_second", n.speed_bytes_per_second),
        ] {
            if let Some(value) = value {
                rate(&at(field), value)?;
            }
        }
        for (field, value) in [
            ("receive_utilization_ratio", n.receive_utilization_ratio),
            ("transmit_utilization_ratio", n.transmit_utilization_ratio),
        ] {
            if let Some(value) = value {
                ratio(&at(field), value)?;
            }
        }
    }
    if let Some(tcp) = &h.tcp {
        rate(
            "host.tcp.segments_sent_per_second",
            tcp.segments_sent_per_second,
        )?;
        rate(
            "host.tcp.retransmitted_segments_per_second",
            tcp.retransmitted_segments_per_second,
        )?;
        ratio("host.tcp.retransmit_ratio", tcp.retransmit_ratio)?;
    }
    items("host.log_dirs", h.log_dirs.len())?;
    for (i, d) in h.log_dirs.iter().enumerate() {
        let at = |field: &str| format!("host.log_dirs[{i}].{field}");
        name(&at("log_dir"), &d.log_dir)?;
        name(&at("mount_point"), &d.mount_point)?;
        if let Some(device) = &d.device {
            name(&at("device"), device)?;
        }
        items(&at("disks"), d.disks.len())?;
        for (j, disk) in d.disks.iter().enumerate() {
            name(&at(&format!("disks[{j}]")), disk)?;
        }
        at_most(&at("topics"), d.topics.len(), MAX_TOPICS)?;
        for (j, t) in d.topics.iter().enumerate() {
            name(&at(&format!("topics[{j}].topic")), &t.topic)?;
        }
        items(&at("largest_partitions"), d.largest_partitions.len())?;
        for (j, p) in d.largest_partitions.iter().enumerate() {
            name(&at(&format!("largest_partitions[{j}].topic")), &p.topic)?;
            if let Some(written) = p.written_bytes_per_day {
                range(
                    &at(&format!("largest_partitions[{j}].written_bytes_per_day")),
                    written,
                    0.0,
                    MAX_RATE * 86_400.0,
                )?;
            }
        }
    }
    if let Some(p) = &h.broker_process {
        range("host.broker_process.cpu_seconds", p.cpu_seconds, 0.0, 1e12)?;
    }
    if let Some(m) = &h.broker_metrics {
        broker_metrics(m)?;
    }
    if let Some(error) = &h.broker_metrics_error {
        long_text("host.broker_metrics_error", error)?;
    }
    items("host.kernel_events", h.kernel_events.len())?;
    for (i, e) in h.kernel_events.iter().enumerate() {
        name(&format!("host.kernel_events[{i}].kind"), &e.kind)?;
        if let Some(device) = &e.device {
            name(&format!("host.kernel_events[{i}].device"), device)?;
        }
    }
    if let Some(log) = &h.broker_log {
        long_text("host.broker_log.file", &log.file)?;
        items("host.broker_log.errors", log.errors.len())?;
        for (i, e) in log.errors.iter().enumerate() {
            name(&format!("host.broker_log.errors[{i}].logger"), &e.logger)?;
        }
    }
    for (field, value) in [
        (
            "host.page_cache_hit_ratio_estimate",
            h.page_cache_hit_ratio_estimate,
        ),
        (
            "host.page_cache_hit_ratio_ebpf",
            h.page_cache_hit_ratio_ebpf,
        ),
    ] {
        if let Some(value) = value {
            ratio(field, value)?;
        }
    }
    Ok(())
}

fn broker_metrics(m: &BrokerMetricsReport) -> Result<(), Rejection> {
    for (field, value) in [
        ("request_handler_idle_ratio", m.request_handler_idle_ratio),
        (
            "network_processor_idle_ratio",
            m.network_processor_idle_ratio,
        ),
    ] {
        if let Some(value) = value {
            ratio(&format!("host.broker_metrics.{field}"), value)?;
        }
    }
    // Counters and gauges: never negative, never past what a broker counts.
    for (field, value) in [
        ("bytes_in_total", m.bytes_in_total),
        ("bytes_out_total", m.bytes_out_total),
        ("messages_in_total", m.messages_in_total),
        ("replication_bytes_in_total", m.replication_bytes_in_total),
        ("replication_bytes_out_total", m.replication_bytes_out_total),
        ("under_replicated_partitions", m.under_replicated_partitions),
        ("under_min_isr_partitions", m.under_min_isr_partitions),
        ("offline_partitions", m.offline_partitions),
        ("active_controller", m.active_controller),
        ("leader_count", m.leader_count),
        ("partition_count", m.partition_count),
        ("request_queue_size", m.request_queue_size),
        ("produce_total_time_p99_ms", m.produce_total_time_p99_ms),
        (
            "fetch_consumer_total_time_p99_ms",
            m.fetch_consumer_total_time_p99_ms,
        ),
        ("isr_shrinks_total", m.isr_shrinks_total),
        ("isr_expands_total", m.isr_expands_total),
        ("offline_log_dirs", m.offline_log_dirs),
        ("gc_young_seconds_total", m.gc_young_seconds_total),
        ("gc_young_collections_total", m.gc_young_collections_total),
        ("gc_old_seconds_total", m.gc_old_seconds_total),
        ("gc_old_collections_total", m.gc_old_collections_total),
    ] {
        if let Some(value) = value {
            range(&format!("host.broker_metrics.{field}"), value, 0.0, 1e20)?;
        }
    }
    items(
        "host.broker_metrics.offline_log_dir_names",
        m.offline_log_dir_names.len(),
    )?;
    for (i, dir) in m.offline_log_dir_names.iter().enumerate() {
        name(
            &format!("host.broker_metrics.offline_log_dir_names[{i}]"),
            dir,
        )?;
    }
    at_most("host.broker_metrics.topics", m.topics.len(), MAX_TOPICS)?;
    for (i, t) in m.topics.iter().enumerate() {
        let at = |field: &str| format!("host.broker_metrics.topics[{i}].{field}");
        name(&at("topic"), &t.topic)?;
        for (field, value) in [
            ("bytes_in_total", t.bytes_in_total),
            ("bytes_out_total", t.bytes_out_total),
            ("messages_in_total", t.messages_in_total),
        ] {
            if let Some(value) = value {
                range(&at(field), value, 0.0, 1e20)?;
            }
        }
    }
    items("host.broker_metrics.quotas", m.quotas.len())?;
    for (i, q) in m.quotas.iter().enumerate() {
        let at = |field: &str| format!("host.broker_metrics.quotas[{i}].{field}");
        name(&at("user"), &q.user)?;
        for (field, value) in [
            ("produce_bytes_per_second", q.produce_bytes_per_second),
            ("fetch_bytes_per_second", q.fetch_bytes_per_second),
            ("produce_throttle_ms", q.produce_throttle_ms),
            ("fetch_throttle_ms", q.fetch_throttle_ms),
        ] {
            if let Some(value) = value {
                rate(&at(field), value)?;
            }
        }
    }
    Ok(())
}
