//! The agent's `/metrics`: each cycle's host series (built by the sources,
//! see `sources`), and the agent's own health: per source whether it is up
//! and how often it failed, the cycle's duration, and the push counters.

use std::sync::{Arc, Mutex, PoisonError};

use brokerwatch_common::exposition::Families;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{
    Gauge, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::host::Host;
use crate::push::PushCounters;

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
    per_source: Vec<(&'static str, IntCounter, IntGauge)>,
    push: PushVecs,
}

/// The push series, by collector.
#[derive(Clone)]
struct PushVecs {
    sent: IntCounterVec,
    failed: IntCounterVec,
    dropped_full: IntCounterVec,
    dropped_refused: IntCounterVec,
    backlog: IntGaugeVec,
}

impl AgentMetrics {
    /// The agent's metrics with `sources` (their names) counted from the start.
    pub fn new(broker_id: i32, sources: &[&'static str]) -> Self {
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
            IntCounterVec::new(opts(name, help), &["collector"])
                .expect("static metric options are valid")
        };
        let push = PushVecs {
            sent: counter("brokerwatch_agent_reports_sent_total", "Reports the collector accepted."),
            failed: counter("brokerwatch_agent_report_send_errors_total", "Attempts to send a report that failed (collector unreachable or erroring); retried."),
            dropped_full: counter("brokerwatch_agent_reports_dropped_total", "Oldest reports dropped because the buffer was full while the collector was unreachable."),
            dropped_refused: counter("brokerwatch_agent_reports_refused_total", "Reports the collector refused (token, schema, size); not retried."),
            backlog: IntGaugeVec::new(
                opts(
                    "brokerwatch_agent_report_backlog",
                    "Reports buffered, not yet accepted by the collector.",
                ),
                &["collector"],
            )
            .expect("static metric options are valid"),
        };
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
            Box::new(push.backlog.clone()),
        ] {
            registry
                .register(collector)
                .expect("metric names are unique");
        }
        // Resolved once (present from the start, so that a first failure is a
        // rate, not a new series), not looked up by label every cycle.
        let per_source = sources
            .iter()
            .map(|&source| {
                (
                    source,
                    source_errors.with_label_values(&[source]),
                    source_up.with_label_values(&[source]),
                )
            })
            .collect();
        let metrics = AgentMetrics {
            broker_id,
            rendered: Arc::default(),
            registry,
            host,
            collect_duration,
            per_source,
            push,
        };
        metrics.render();
        metrics
    }

    /// The series the push task to `collector` (a redacted URL) moves,
    /// present from the start.
    pub fn push_counters(&self, collector: &str) -> PushCounters {
        let labels = [collector];
        PushCounters {
            sent: self.push.sent.with_label_values(&labels),
            failed: self.push.failed.with_label_values(&labels),
            dropped_full: self.push.dropped_full.with_label_values(&labels),
            dropped_refused: self.push.dropped_refused.with_label_values(&labels),
            backlog: self.push.backlog.with_label_values(&labels),
        }
    }

    /// Records one cycle: the host's series, its duration and which sources failed.
    pub fn record_cycle(&self, host: &Host, duration_seconds: f64, failed: &[&str]) {
        let mut families = Families::new(&[("broker_id", &self.broker_id)]);
        host.expose(&mut families);
        *self.host.0.lock().unwrap_or_else(PoisonError::into_inner) = families.into_vec();
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
    use crate::host::tests::fixture_host;
    use std::time::Instant;

    #[test]
    fn exposition_has_counters_gauges_broker_id_and_each_sources_health() {
        let dir = tempfile::tempdir().unwrap();
        let mut host = fixture_host(dir.path(), "");
        host.collect(Instant::now());
        host.collect(Instant::now());
        let metrics = AgentMetrics::new(7, &host.names());
        metrics.record_cycle(&host, 0.0042, &["tcp"]);
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
        let dir = tempfile::tempdir().unwrap();
        let mut host = fixture_host(dir.path(), "");
        host.collect(Instant::now());
        let metrics = AgentMetrics::new(1, &host.names());
        metrics.record_cycle(&host, 0.001, &[]);
        let has_sdc = |m: &AgentMetrics| {
            String::from_utf8(m.exposition().to_vec())
                .unwrap()
                .contains("device=\"sdc\"")
        };
        assert!(has_sdc(&metrics));
        let path = dir.path().join("proc/diskstats");
        let without: Vec<String> = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .filter(|l| l.split_whitespace().nth(2) != Some("sdc"))
            .map(str::to_owned)
            .collect();
        std::fs::write(&path, without.join("\n") + "\n").unwrap();
        host.collect(Instant::now());
        metrics.record_cycle(&host, 0.001, &[]);
        assert!(!has_sdc(&metrics));
    }
}
