//! The collector's own `/metrics`: its counters (intake, delivery, the
//! state file) in a registry, and each evaluation's series (the load
//! picture, agents' freshness, firing alerts, the cluster's state), built
//! whole by the evaluator and handed over in one piece, so that a scrape
//! never sees half an evaluation. Every series has `cluster`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use brokerwatch_common::exposition::{Column, Families};
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder};

use crate::alerts::state::AlertBook;
use crate::config::Config;
use crate::model::cluster::ClusterLoad;
use crate::model::lag::GroupLag;
use crate::model::load::{GroupLoad, MemberLoad};

/// The latest evaluation's series, handed to the registry on each scrape.
#[derive(Clone, Default)]
struct LatestEvaluation(Arc<Mutex<Vec<MetricFamily>>>);

impl Collector for LatestEvaluation {
    fn desc(&self) -> Vec<&Desc> {
        // They vary with the brokers, disks and groups present, so they are
        // not declared up front (as with node_exporter's unchecked collectors).
        Vec::new()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

#[derive(Clone)]
pub struct CollectorMetrics {
    registry: Registry,
    evaluation: LatestEvaluation,
    pub reports_received: IntCounter,
    pub reports_rejected: IntCounterVec,
    pub alertmanager_posts: IntCounterVec,
    pub alertmanager_dropped: IntCounterVec,
    pub state_write_errors: IntCounter,
    pub state_writable: IntGauge,
    pub evaluation_duration: prometheus::Gauge,
}

fn registered<T: Collector + Clone + 'static>(
    registry: &Registry,
    metric: prometheus::Result<T>,
) -> T {
    let metric = metric.expect("valid metric");
    registry
        .register(Box::new(metric.clone()))
        .expect("unique metric");
    metric
}

impl CollectorMetrics {
    pub fn new(cluster: &str) -> Self {
        let r = Registry::new();
        let opts = |name: &str, help: &str| Opts::new(name, help).const_label("cluster", cluster);
        let counter = |name: &str, help: &str, labels: &[&str]| {
            registered(&r, IntCounterVec::new(opts(name, help), labels))
        };
        let single =
            |name: &str, help: &str| registered(&r, IntCounter::with_opts(opts(name, help)));
        let evaluation = LatestEvaluation::default();
        r.register(Box::new(evaluation.clone()))
            .expect("unique metric");
        let metrics = CollectorMetrics {
            reports_received: single(
                "brokerwatch_collector_reports_received_total",
                "Agent reports accepted.",
            ),
            reports_rejected: counter(
                "brokerwatch_collector_reports_rejected_total",
                "Agent reports refused, by reason.",
                &["reason"],
            ),
            alertmanager_posts: counter(
                "brokerwatch_collector_alertmanager_posts_total",
                "Posts to Alertmanager, by result.",
                &["alertmanager", "result"],
            ),
            alertmanager_dropped: counter(
                "brokerwatch_collector_alertmanager_dropped_alerts_total",
                "Alerts an Alertmanager saw firing that left the alert book before their resolution reached it (it resolves them at their endsAt).",
                &["alertmanager"],
            ),
            state_write_errors: single(
                "brokerwatch_collector_state_write_errors_total",
                "Failed writes of the alert state file.",
            ),
            state_writable: registered(
                &r,
                IntGauge::with_opts(opts(
                    "brokerwatch_collector_state_writable",
                    "1 when the last write of the state file succeeded.",
                )),
            ),
            evaluation_duration: registered(
                &r,
                prometheus::Gauge::with_opts(opts(
                    "brokerwatch_collector_evaluation_duration_seconds",
                    "Wall time of the last evaluation.",
                )),
            ),
            evaluation,
            registry: r,
        };
        for reason in brokerwatch_common::codec::REASONS {
            metrics.reports_rejected.with_label_values(&[reason]);
        }
        metrics.state_writable.set(1);
        metrics
    }

    /// Replaces the evaluation's series with these.
    pub fn publish(&self, families: Vec<MetricFamily>) {
        *self
            .evaluation
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = families;
    }

    pub fn encode(&self) -> String {
        let mut text = String::new();
        TextEncoder::new()
            .encode_utf8(&self.registry.gather(), &mut text)
            .expect("text encoding into memory");
        text
    }
}

/// The load picture, agents' freshness, firing alerts, the groups' limits
/// and the settings the Prometheus twins of the alerts compare against.
pub fn evaluation_families(
    f: &mut Families,
    config: &Config,
    load: &ClusterLoad,
    last_report: &BTreeMap<i32, f64>,
    book: &AlertBook,
    groups: &[GroupLag],
) {
    load_families(f, load);
    let mut last = f.gauge(
        "brokerwatch_agent_last_report_timestamp_seconds",
        "When the broker's agent last reported (Unix time).",
    );
    for (broker, at) in last_report {
        last.add(&[("broker", &broker.to_string())], *at);
    }
    let mut firing: BTreeMap<(&str, &str), f64> = BTreeMap::new();
    for alert in book.firing() {
        let label = |k: &str| alert.labels.get(k).map_or("", String::as_str);
        *firing
            .entry((label("alertname"), label("severity")))
            .or_default() += 1.0;
    }
    let mut alerts = f.gauge("brokerwatch_alerts_firing", "Alerts firing now.");
    for ((alertname, severity), count) in firing {
        alerts.add(&[("alertname", alertname), ("severity", severity)], count);
    }
    f.gauge(
        "brokerwatch_collector_broker_missing_after_seconds",
        "How long an agent may be silent before its broker is missing (store.broker_missing_after).",
    )
    .value(config.broker_missing_after.as_secs_f64());
    if let Some(kafka) = &config.kafka {
        f.gauge(
            "brokerwatch_kafka_metadata_stale_after_seconds",
            "Metadata older than this is stale (three kafka.metadata_interval).",
        )
        .value(kafka.metadata_stale_after());
    }
    let limits = &config.consumer_groups;
    let mut messages = f.gauge(
        "brokerwatch_consumergroup_max_lag_messages",
        "The group's lag limit in messages, where one is set.",
    );
    for group in groups {
        if let Some(max) = limits.max_lag_messages(&group.group) {
            messages.add(&[("consumergroup", &group.group)], max as f64);
        }
    }
    let mut seconds = f.gauge(
        "brokerwatch_consumergroup_max_lag_seconds",
        "The group's lag limit in seconds, where one is set.",
    );
    for group in groups {
        if let Some(max) = limits.max_lag_seconds(&group.group) {
            seconds.add(&[("consumergroup", &group.group)], max);
        }
    }
}

fn load_families(f: &mut Families, load: &ClusterLoad) {
    let mut share = f.gauge(
        "brokerwatch_broker_load_share",
        "D_b(n): the broker's share of its group's load.",
    );
    for (group, _) in &load.groups {
        for m in &group.members {
            share.add(
                &[("group", &group.group), ("broker", &m.member.to_string())],
                m.share,
            );
        }
    }
    let mut deviation = f.gauge(
        "brokerwatch_broker_load_deviation_ratio",
        "r_n: the broker's deviation from the mean share, signed (0.1 = 10 % above).",
    );
    for (group, _) in &load.groups {
        for m in &group.members {
            deviation.add(
                &[("group", &group.group), ("broker", &m.member.to_string())],
                m.deviation,
            );
        }
    }
    let mut metric_share = f.gauge(
        "brokerwatch_broker_metric_share",
        "D_x(n): the broker's share of one load metric in its group.",
    );
    for (group, _) in &load.groups {
        for m in &group.members {
            let broker = m.member.to_string();
            for (metric, value) in &m.metric_shares {
                metric_share.add(
                    &[
                        ("group", &group.group),
                        ("broker", &broker),
                        ("metric", metric.name()),
                    ],
                    *value,
                );
            }
        }
    }
    let per_group: [Column<(GroupLoad<i32>, Vec<i32>)>; 3] = [
        (
            "brokerwatch_cluster_load_stddev",
            "σ: the standard deviation of the brokers' load shares in the group.",
            |(g, _)| g.stddev,
        ),
        (
            "brokerwatch_cluster_load_stddev_limit",
            "σ_max = r / N: the group is imbalanced above it.",
            |(g, _)| g.stddev_limit,
        ),
        (
            "brokerwatch_group_missing_brokers",
            "Brokers of the group without a fresh report, left out of its load.",
            |(_, missing)| missing.len() as f64,
        ),
    ];
    for (name, help, value) in per_group {
        let mut family = f.gauge(name, help);
        for group in &load.groups {
            family.add(&[("group", &group.0.group)], value(group));
        }
    }
    let per_disk: [Column<MemberLoad<String>>; 2] = [
        (
            "brokerwatch_disk_load_share",
            "A disk's share of its broker's disk load.",
            |d| d.share,
        ),
        (
            "brokerwatch_disk_load_deviation_ratio",
            "A disk's deviation from the mean share of its broker's disks.",
            |d| d.deviation,
        ),
    ];
    for (name, help, value) in per_disk {
        let mut family = f.gauge(name, help);
        for (broker, disks) in &load.disks {
            for d in &disks.members {
                family.add(
                    &[("broker", &broker.to_string()), ("device", &d.member)],
                    value(d),
                );
            }
        }
    }
    let per_broker_disks: [Column<GroupLoad<String>>; 2] = [
        (
            "brokerwatch_disk_load_stddev",
            "σ of the shares of one broker's disks.",
            |g| g.stddev,
        ),
        (
            "brokerwatch_disk_load_stddev_limit",
            "r / disks: the broker's disks are imbalanced above it.",
            |g| g.stddev_limit,
        ),
    ];
    for (name, help, value) in per_broker_disks {
        let mut family = f.gauge(name, help);
        for (broker, disks) in load.disks.iter().filter(|(_, d)| d.can_alert()) {
            family.add(&[("broker", &broker.to_string())], value(disks));
        }
    }
}
