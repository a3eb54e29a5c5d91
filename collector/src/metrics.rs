//! The collector's own `/metrics`: the load picture, agents' freshness,
//! firing alerts, and the collector's health. Every series has `cluster`.

use std::collections::BTreeMap;

use prometheus::{
    Encoder, GaugeVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

use crate::alerts::state::AlertBook;
use crate::model::cluster::ClusterLoad;
use crate::model::lag::{GroupLag, Status};
use crate::model::replication::ReplicationFacts;

/// The cluster's own state: replication and consumer groups.
#[derive(Clone)]
struct ClusterGauges {
    urp_led: GaugeVec,
    missing_from_isr: GaugeVec,
    urp_total: GaugeVec,
    offline: GaugeVec,
    under_min_isr: GaugeVec,
    leader_imbalance: GaugeVec,
    partitions: GaugeVec,
    leaders: GaugeVec,
    metadata_age: GaugeVec,
    in_metadata: GaugeVec,
    lag_messages: GaugeVec,
    lag_seconds: GaugeVec,
    group_status: GaugeVec,
}

impl ClusterGauges {
    fn new(r: &Registry, c: &str) -> Self {
        ClusterGauges {
            urp_led: gauge(r, c, "brokerwatch_under_replicated_partitions", "Under-replicated partitions the broker leads (as Kafka's own metric counts them).", &["broker"]),
            missing_from_isr: gauge(r, c, "brokerwatch_broker_missing_from_isr_partitions", "Under-replicated partitions whose ISR lacks the broker.", &["broker"]),
            urp_total: gauge(r, c, "brokerwatch_cluster_under_replicated_partitions", "Under-replicated partitions in the cluster.", &[]),
            offline: gauge(r, c, "brokerwatch_offline_partitions", "Partitions without a leader.", &[]),
            under_min_isr: gauge(r, c, "brokerwatch_under_min_isr_partitions", "Partitions with fewer in-sync replicas than min.insync.replicas.", &[]),
            leader_imbalance: gauge(r, c, "brokerwatch_preferred_leader_imbalance_ratio", "Partitions preferring the broker but led elsewhere, over those preferring it.", &["broker"]),
            partitions: gauge(r, c, "brokerwatch_broker_partitions", "Replicas the broker hosts.", &["broker"]),
            leaders: gauge(r, c, "brokerwatch_broker_leaders", "Partitions the broker leads.", &["broker"]),
                        metadata_age: gauge(r, c, "brokerwatch_kafka_metadata_age_seconds", "Age of the metadata the replication figures come from.", &[]),
            in_metadata: gauge(r, c, "brokerwatch_broker_in_metadata", "1 when an expected broker (configured or seen before) is in the cluster's metadata, 0 when it is not.", &["broker"]),
            lag_messages: gauge(r, c, "brokerwatch_consumergroup_lag_messages", "Messages the group is behind, summed over the topic's partitions.", &["consumergroup", "topic"]),
            lag_seconds: gauge(r, c, "brokerwatch_consumergroup_lag_seconds", "How long ago the topic's end offsets were where the group is (the worst partition).", &["consumergroup", "topic"]),
            group_status: gauge(r, c, "brokerwatch_consumergroup_status", "1 for the group's current status (OK, WARN, ERR, STOP, STALL, REWIND), 0 for the others.", &["consumergroup", "status"]),
        }
    }
}

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
    cluster: ClusterGauges,
    pub reports_received: IntCounter,
    pub reports_rejected: IntCounterVec,
    pub alertmanager_posts: IntCounterVec,
    pub alertmanager_dropped: IntCounterVec,
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
            alertmanager_dropped: counter(
                &r,
                c,
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
            cluster: ClusterGauges::new(&r, c),
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

    /// Replaces the replication and consumer-group series: `replication` is
    /// the latest analysis and its age in seconds.
    /// The cluster's series: the metadata's age whenever there is one, the
    /// replication and lag series only from fresh data.
    pub fn record_cluster(
        &self,
        metadata_age: Option<f64>,
        fresh_replication: Option<&ReplicationFacts>,
        groups: &[GroupLag],
    ) {
        let g = &self.cluster;
        for vec in [
            &g.urp_led,
            &g.missing_from_isr,
            &g.urp_total,
            &g.offline,
            &g.under_min_isr,
            &g.leader_imbalance,
            &g.partitions,
            &g.leaders,
            &g.metadata_age,
            &g.in_metadata,
            &g.lag_messages,
            &g.lag_seconds,
            &g.group_status,
        ] {
            vec.reset();
        }
        let none: [&str; 0] = [];
        if let Some(age) = metadata_age {
            g.metadata_age.with_label_values(&none).set(age);
        }
        if let Some(facts) = fresh_replication {
            g.urp_total
                .with_label_values(&none)
                .set(facts.under_replicated as f64);
            g.offline.with_label_values(&none).set(facts.offline as f64);
            g.under_min_isr
                .with_label_values(&none)
                .set(facts.under_min_isr as f64);
            for (broker, b) in &facts.brokers {
                let broker = [broker.to_string()];
                g.urp_led
                    .with_label_values(&broker)
                    .set(b.under_replicated_led as f64);
                g.missing_from_isr
                    .with_label_values(&broker)
                    .set(b.missing_from_isr as f64);
                g.leader_imbalance
                    .with_label_values(&broker)
                    .set(b.preferred_leader_imbalance_ratio());
                g.partitions
                    .with_label_values(&broker)
                    .set(b.partitions as f64);
                g.leaders.with_label_values(&broker).set(b.leaders as f64);
                g.in_metadata.with_label_values(&broker).set(1.0);
            }
            for broker in &facts.brokers_down {
                g.in_metadata
                    .with_label_values(&[broker.to_string()])
                    .set(0.0);
            }
        }
        for group in groups {
            for topic in &group.topics {
                let labels = [group.group.as_str(), topic.topic.as_str()];
                g.lag_messages
                    .with_label_values(&labels)
                    .set(topic.lag_messages as f64);
                if let Some(seconds) = topic.lag_seconds {
                    g.lag_seconds.with_label_values(&labels).set(seconds);
                }
            }
            for status in Status::ALL {
                let current = f64::from(u8::from(status == group.status));
                g.group_status
                    .with_label_values(&[group.group.as_str(), status.as_str()])
                    .set(current);
            }
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
