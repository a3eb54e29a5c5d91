//! The series the broker-health rules judge, from a report: the broker's
//! own gauges (idle ratios, request latency), its counters (ISR changes, GC,
//! log lines, kernel events), quota throttling, and its log dirs' use.

use brokerwatch_common::Report;

use super::Series;

/// A gauge of the broker's own metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Figure {
    RequestHandlerIdle,
    NetworkProcessorIdle,
    ProduceP99Ms,
    FetchP99Ms,
}

/// A count since the agent or the broker started.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Counter {
    /// ISR shrinks and expands on the partitions the broker leads.
    IsrChanges,
    /// Seconds in GC pauses, young and old.
    GcPauseSeconds,
    /// Old-generation (full) collections.
    GcOldCollections,
    /// ERROR and FATAL lines in the broker's log.
    LogLines,
    /// Kernel log events of one kind about one device (`""`: none named).
    KernelEvents(String, String),
}

fn sum(values: [Option<f64>; 2]) -> Option<f64> {
    values.into_iter().flatten().reduce(|a, b| a + b)
}

pub(super) fn series(report: &Report) -> Vec<(Series, f64)> {
    let host = &report.host;
    let mut out = Vec::new();
    if let Some(m) = &host.broker_metrics {
        for (figure, value) in [
            (Figure::RequestHandlerIdle, m.request_handler_idle_ratio),
            (Figure::NetworkProcessorIdle, m.network_processor_idle_ratio),
            (Figure::ProduceP99Ms, m.produce_total_time_p99_ms),
            (Figure::FetchP99Ms, m.fetch_consumer_total_time_p99_ms),
        ] {
            if let Some(value) = value {
                out.push((Series::Broker(figure), value));
                if matches!(figure, Figure::ProduceP99Ms | Figure::FetchP99Ms) {
                    out.push((Series::History(figure), value));
                }
            }
        }
        for (counter, value) in [
            (
                Counter::IsrChanges,
                sum([m.isr_shrinks_total, m.isr_expands_total]),
            ),
            (
                Counter::GcPauseSeconds,
                sum([m.gc_young_seconds_total, m.gc_old_seconds_total]),
            ),
            (Counter::GcOldCollections, m.gc_old_collections_total),
        ] {
            if let Some(value) = value {
                out.push((Series::Counter(counter), value));
            }
        }
        for quota in &m.quotas {
            let most = [quota.produce_throttle_ms, quota.fetch_throttle_ms]
                .into_iter()
                .flatten()
                .reduce(f64::max);
            if let Some(most) = most {
                out.push((Series::UserThrottleMs(quota.user.clone()), most));
            }
        }
    }
    if let Some(log) = &host.broker_log {
        let lines = log
            .errors
            .iter()
            .map(|l| l.errors_total + l.fatals_total)
            .sum::<u64>();
        out.push((Series::Counter(Counter::LogLines), lines as f64));
    }
    for events in &host.kernel_events {
        let counter = Counter::KernelEvents(
            events.kind.clone(),
            events.device.clone().unwrap_or_default(),
        );
        out.push((Series::Counter(counter), events.total as f64));
    }
    for dir in &host.log_dirs {
        out.push((
            Series::LogDirUsed(dir.log_dir.clone()),
            dir.used_bytes as f64,
        ));
    }
    out
}
