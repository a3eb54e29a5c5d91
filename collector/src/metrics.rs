//! The collector's own `/metrics`: the load picture, agents' freshness,
//! firing alerts, and the collector's health. Every series has `cluster`.

use std::collections::BTreeMap;

use prometheus::{
    Encoder, GaugeVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

use crate::alerts::state::AlertBook;
use crate::model::cluster::ClusterLoad;

#[derive(Clone)]
pub struct CollectorMetrics {
    registry: Registry,
    load_share: GaugeVec,
    load_deviation: GaugeVec,
    metric_share: GaugeVec,
    stddev: GaugeVec,
    stddev_limit: GaugeVec,
    missing: GaugeVec,
    disk_share: GaugeVec,
    disk_deviation: GaugeVec,
    last_report: GaugeVec,
    alerts_firing: GaugeVec,
    pub reports_received: IntCounter,
    pub reports_rejected: IntCounterVec,
    pub alertmanager_posts: IntCounterVec,
    pub state_write_errors: IntCounter,
    pub state_writable: IntGauge,
    pub evaluation_duration: prometheus::Gauge,
}

/// Registers a metric built from `Opts` with the `cluster` label.
fn registered<T: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    metric: prometheus::Result<T>,
) -> T {
    let metric = metric.expect("valid metric");
    registry
        .register(Box::new(metric.clone()))
        .expect("unique metric");
    metric
}

fn gauge(registry: &Registry, cluster: &str, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
    registered(
        registry,
        GaugeVec::new(
            Opts::new(name, help).const_label("cluster", cluster),
            labels,
        ),
    )
}

fn counter(
    registry: &Registry,
    cluster: &str,
    name: &str,
    help: &str,
    labels: &[&str],
) -> IntCounterVec {
    registered(
        registry,
        IntCounterVec::new(
            Opts::new(name, help).const_label("cluster", cluster),
            labels,
        ),
    )
}

impl CollectorMetrics {
    pub fn new(cluster: &str) -> Self {
        let r = Registry::new();
        let c = cluster;
        let single = |name: &str, help: &str| {
            counter(&r, c, name, help, &[]).with_label_values(&[] as &[&str])
        };
        let metrics = CollectorMetrics {
            load_share: gauge(
                &r,
                c,
                "brokerwatch_broker_load_share",
                "D_b(n): the broker's share of its group's load.",
                &["group", "broker"],
            ),
            load_deviation: gauge(
                &r,
                c,
                "brokerwatch_broker_load_deviation_ratio",
                "r_n: the broker's deviation from the mean share, signed (0.1 = 10 % above).",
                &["group", "broker"],
            ),
            metric_share: gauge(
                &r,
                c,
                "brokerwatch_broker_metric_share",
                "D_x(n): the broker's share of one load metric in its group.",
                &["group", "broker", "metric"],
            ),
            stddev: gauge(
                &r,
                c,
                "brokerwatch_cluster_load_stddev",
                "σ: the standard deviation of the brokers' load shares in the group.",
                &["group"],
            ),
            stddev_limit: gauge(
                &r,
                c,
                "brokerwatch_cluster_load_stddev_limit",
                "σ_max = r / N: the group is imbalanced above it.",
                &["group"],
            ),
            missing: gauge(
                &r,
                c,
                "brokerwatch_group_missing_brokers",
                "Brokers of the group without a fresh report, left out of its load.",
                &["group"],
            ),
            disk_share: gauge(
                &r,
                c,
                "brokerwatch_disk_load_share",
                "A disk's share of its broker's disk load.",
                &["broker", "device"],
            ),
            disk_deviation: gauge(
                &r,
                c,
                "brokerwatch_disk_load_deviation_ratio",
                "A disk's deviation from the mean share of its broker's disks.",
                &["broker", "device"],
            ),
            last_report: gauge(
                &r,
                c,
                "brokerwatch_agent_last_report_timestamp_seconds",
                "When the broker's agent last reported (Unix time).",
                &["broker"],
            ),
            alerts_firing: gauge(
                &r,
                c,
                "brokerwatch_alerts_firing",
                "Alerts firing now.",
                &["alertname", "severity"],
            ),
            reports_received: single(
                "brokerwatch_collector_reports_received_total",
                "Agent reports accepted.",
            ),
            reports_rejected: counter(
                &r,
                c,
                "brokerwatch_collector_reports_rejected_total",
                "Agent reports refused, by reason.",
                &["reason"],
            ),
            alertmanager_posts: counter(
                &r,
                c,
                "brokerwatch_collector_alertmanager_posts_total",
                "Posts to Alertmanager, by result.",
                &["alertmanager", "result"],
            ),
            state_write_errors: single(
                "brokerwatch_collector_state_write_errors_total",
                "Failed writes of the alert state file.",
            ),
            state_writable: registered(
                &r,
                IntGauge::with_opts(
                    Opts::new(
                        "brokerwatch_collector_state_writable",
                        "1 when the last write of the state file succeeded.",
                    )
                    .const_label("cluster", c),
                ),
            ),
            evaluation_duration: registered(
                &r,
                prometheus::Gauge::with_opts(
                    Opts::new(
                        "brokerwatch_collector_evaluation_duration_seconds",
                        "Wall time of the last evaluation.",
                    )
                    .const_label("cluster", c),
                ),
            ),
            registry: r,
        };
        for reason in crate::ingest::REASONS {
            metrics.reports_rejected.with_label_values(&[reason]);
        }
        metrics.state_writable.set(1);
        metrics
    }

    /// Replaces the load, freshness and alert series with this evaluation's.
    pub fn record(&self, load: &ClusterLoad, last_report: &BTreeMap<i32, f64>, book: &AlertBook) {
        for vec in [
            &self.load_share,
            &self.load_deviation,
            &self.metric_share,
            &self.stddev,
            &self.stddev_limit,
            &self.missing,
            &self.disk_share,
            &self.disk_deviation,
            &self.last_report,
            &self.alerts_firing,
        ] {
            vec.reset();
        }
        for (group, missing) in &load.groups {
            let g = group.group.as_str();
            for m in &group.members {
                let broker = m.member.to_string();
                self.load_share
                    .with_label_values(&[g, &broker])
                    .set(m.share);
                self.load_deviation
                    .with_label_values(&[g, &broker])
                    .set(m.deviation);
                for (metric, share) in &m.metric_shares {
                    self.metric_share
                        .with_label_values(&[g, &broker, metric])
                        .set(*share);
                }
            }
            self.stddev.with_label_values(&[g]).set(group.stddev);
            self.stddev_limit
                .with_label_values(&[g])
                .set(group.stddev_limit);
            self.missing
                .with_label_values(&[g])
                .set(missing.len() as f64);
        }
        for (broker, disks) in &load.disks {
            let broker = broker.to_string();
            for d in &disks.members {
                self.disk_share
                    .with_label_values(&[&broker, &d.member])
                    .set(d.share);
                self.disk_deviation
                    .with_label_values(&[&broker, &d.member])
                    .set(d.deviation);
            }
        }
        for (broker, at) in last_report {
            self.last_report
                .with_label_values(&[&broker.to_string()])
                .set(*at);
        }
        for alert in book.firing() {
            let label = |k: &str| alert.labels.get(k).map_or("", String::as_str);
            self.alerts_firing
                .with_label_values(&[label("alertname"), label("severity")])
                .inc();
        }
    }

    pub fn encode(&self) -> String {
        let mut buffer = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buffer)
            .expect("text encoding into memory");
        String::from_utf8(buffer).expect("the text format is UTF-8")
    }
}
