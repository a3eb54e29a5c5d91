//! The one alert catalogue: every alert the collector raises, with its
//! subject labels, default `for`, severity and threshold, its wording (as
//! templates the rules fill in), and its twin in Prometheus. The config's
//! defaults, the example config's rule table, the README's table and
//! `rules/brokerwatch.alerts.yml` all come from here (tests keep each one
//! current), so an alert is added here and in the file of its condition.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// An alert of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Alert {
    KafkaBrokerLoadDeviation,
    KafkaClusterLoadImbalance,
    KafkaBrokerDiskImbalance,
    KafkaAgentDown,
    KafkaHostDiskSaturated,
    KafkaHostIowaitHigh,
    KafkaHostNetworkSaturated,
    KafkaPageCacheHitRatioLow,
    KafkaUnderReplicatedPartitions,
    KafkaOfflinePartitions,
    KafkaUnderMinIsrPartitions,
    KafkaPreferredLeaderImbalance,
    KafkaBrokerDown,
    KafkaConsumerGroupLag,
    KafkaClusterUnreachable,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// What an alert judges from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The agents' reports.
    Agents,
    /// The cluster itself, over the Kafka protocol.
    Cluster,
}

/// A rule's threshold: a ratio in (0, 1] with a default, configurable under
/// `[rules.NAME] threshold`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Threshold {
    pub default: f64,
    /// What the number is, for the example config.
    pub meaning: &'static str,
}

/// An alert's twin in `rules/brokerwatch.alerts.yml`. `{threshold}` in the
/// expression is the catalogue's default threshold (or r, for the load).
#[derive(Debug, Clone, Copy)]
pub struct Prometheus {
    /// A comment above the rule, where the expression needs one.
    pub comment: Option<&'static str>,
    pub expr: &'static str,
    pub summary: &'static str,
    pub description: &'static str,
}

#[derive(Debug, Clone, Copy)]
pub struct Spec {
    pub alert: Alert,
    pub name: &'static str,
    /// The labels that name what the alert is about, besides `cluster`.
    pub subject: &'static [&'static str],
    pub origin: Origin,
    /// Default `for`, in seconds.
    pub for_seconds: u64,
    pub severity: Severity,
    pub threshold: Option<Threshold>,
    /// When it fires, for the README's table.
    pub fires_when: &'static str,
    /// Annotation templates: `{name}` is a value the rule gives, a subject
    /// label, or `{cluster}`.
    pub summary: &'static str,
    pub description: &'static str,
    pub prometheus: Prometheus,
}

const MINUTE: u64 = 60;

/// The load deviation r of `[load] deviation`, as the Prometheus twins use it.
pub const DEFAULT_DEVIATION: f64 = 0.10;

pub const CATALOGUE: [Spec; 15] = [
    Spec {
        alert: Alert::KafkaBrokerLoadDeviation,
        name: "KafkaBrokerLoadDeviation",
        subject: &["group", "broker"],
        origin: Origin::Agents,
        for_seconds: 15 * MINUTE,
        severity: Severity::Warning,
        threshold: None,
        fires_when: "r_n > r (10 %): the overloaded side; below -r too with `[load] alert_underloaded`",
        summary: "Broker {broker} carries {share} of group {group}'s load, {deviation} against the mean share of {mean}",
        description: "Its deviation {deviation} is beyond ±{limit}. {side} shares: {leading}. {advice}",
        prometheus: Prometheus {
            comment: None,
            expr: "brokerwatch_broker_load_deviation_ratio > {threshold}",
            summary: "Broker {{ $labels.broker }} carries {{ $value | humanizePercentage }} more than the mean load share of group {{ $labels.group }}",
            description: "Look at the partitions and leaders on broker {{ $labels.broker }} (brokerwatch_broker_metric_share shows which metric): reassign partitions or run a preferred leader election.",
        },
    },
    Spec {
        alert: Alert::KafkaClusterLoadImbalance,
        name: "KafkaClusterLoadImbalance",
        subject: &["group"],
        origin: Origin::Agents,
        for_seconds: 15 * MINUTE,
        severity: Severity::Warning,
        threshold: None,
        fires_when: "σ > r / N",
        summary: "Group {group}'s load is uneven: standard deviation {stddev} against a limit of {limit}",
        description: "{brokers} brokers, limit r/N with r = {r}. Most loaded: broker {most} with {most_share} ({most_deviation}); least loaded: broker {least} with {least_share} ({least_deviation}). Move load from {from} to {to}: rebalance the group's partitions (kafka-reassign-partitions or Cruise Control).",
        prometheus: Prometheus {
            comment: None,
            expr: "brokerwatch_cluster_load_stddev > on (cluster, group) brokerwatch_cluster_load_stddev_limit",
            summary: "Group {{ $labels.group }}'s load is uneven: standard deviation {{ $value | printf \"%.4f\" }} over its limit",
            description: "Rebalance the group's partitions (kafka-reassign-partitions or Cruise Control); brokerwatch_broker_load_share shows who carries what.",
        },
    },
    Spec {
        alert: Alert::KafkaBrokerDiskImbalance,
        name: "KafkaBrokerDiskImbalance",
        subject: &["broker", "device"],
        origin: Origin::Agents,
        for_seconds: 30 * MINUTE,
        severity: Severity::Warning,
        threshold: None,
        fires_when: "a log disk's share of the broker's log-disk bytes > r (10 %) above the mean",
        summary: "Disk {device} of broker {broker} carries {share} of the bytes read and written on its {disks} log disks",
        description: "{deviation} against the mean share of {mean} (limit ±{limit}); {figures}. Move partitions from its log dirs ({dirs}) to those on {least}, which carries {least_share} (kafka-reassign-partitions with log_dirs).",
        prometheus: Prometheus {
            comment: Some("Only the disks under the broker's log dirs are compared."),
            expr: "brokerwatch_disk_load_deviation_ratio > {threshold}",
            summary: "Disk {{ $labels.device }} of broker {{ $labels.broker }} carries {{ $value | humanizePercentage }} more than the mean share of its log disks' bytes",
            description: "brokerwatch_disk_load_share shows which disk carries what. Move partitions between broker {{ $labels.broker }}'s log dirs (kafka-reassign-partitions with log_dirs).",
        },
    },
    Spec {
        alert: Alert::KafkaAgentDown,
        name: "KafkaAgentDown",
        subject: &["broker"],
        origin: Origin::Agents,
        for_seconds: 2 * MINUTE,
        severity: Severity::Critical,
        threshold: None,
        fires_when: "no report for `broker_missing_after`",
        summary: "No report from the agent of broker {broker} for {silent}",
        description: "Its last report came at {last}. Broker {broker} is left out of the load until it reports. Check brokerwatch-agent on the host (systemctl status brokerwatch-agent) and its route to the collector.",
        prometheus: Prometheus {
            comment: Some("Silent for longer than the collector's broker_missing_after."),
            expr: "time() - brokerwatch_agent_last_report_timestamp_seconds > on (cluster) group_left brokerwatch_collector_broker_missing_after_seconds",
            summary: "No report from the agent of broker {{ $labels.broker }} for {{ $value | humanizeDuration }}",
            description: "Check brokerwatch-agent on the host (systemctl status brokerwatch-agent) and its route to the collector.",
        },
    },
    Spec {
        alert: Alert::KafkaHostDiskSaturated,
        name: "KafkaHostDiskSaturated",
        subject: &["broker", "device"],
        origin: Origin::Agents,
        for_seconds: 10 * MINUTE,
        severity: Severity::Warning,
        threshold: Some(Threshold {
            default: 0.90,
            meaning: "Median %util over the window, 0..1.",
        }),
        fires_when: "median %util > 0.9",
        summary: "Disk {device} of broker {broker} is busy {value} of the time",
        description: "Median %util over the window is {value} (limit {limit}){figures}. Requests queue behind it: produce and fetch latency on broker {broker} will rise. Check which log dirs sit on {device} and move partitions off it.",
        prometheus: Prometheus {
            comment: None,
            expr: "device:brokerwatch_disk_utilization:ratio_rate5m > {threshold}",
            summary: "Disk {{ $labels.device }} of broker {{ $labels.broker_id }} is busy {{ $value | humanizePercentage }} of the time",
            description: "Requests queue behind it: produce and fetch latency on broker {{ $labels.broker_id }} will rise. Check which log dirs sit on {{ $labels.device }} and move partitions off it.",
        },
    },
    Spec {
        alert: Alert::KafkaHostIowaitHigh,
        name: "KafkaHostIowaitHigh",
        subject: &["broker"],
        origin: Origin::Agents,
        for_seconds: 10 * MINUTE,
        severity: Severity::Warning,
        threshold: Some(Threshold {
            default: 0.25,
            meaning: "Median share of CPU time waiting on I/O over the window, 0..1.",
        }),
        fires_when: "median iowait > 0.25",
        summary: "Broker {broker}'s CPUs wait on I/O {value} of the time",
        description: "Median iowait over the window is {value} (limit {limit}): reads are missing the page cache or the disks are saturated. Look at the disk %util and the page-cache hit rate of broker {broker}.",
        prometheus: Prometheus {
            comment: None,
            expr: "broker_id:brokerwatch_cpu_iowait:ratio_rate5m > {threshold}",
            summary: "Broker {{ $labels.broker_id }}'s CPUs wait on I/O {{ $value | humanizePercentage }} of the time",
            description: "Reads are missing the page cache or the disks are saturated: look at disk %util and the page-cache hit rate of broker {{ $labels.broker_id }}.",
        },
    },
    Spec {
        alert: Alert::KafkaHostNetworkSaturated,
        name: "KafkaHostNetworkSaturated",
        subject: &["broker", "device"],
        origin: Origin::Agents,
        for_seconds: 5 * MINUTE,
        severity: Severity::Warning,
        threshold: Some(Threshold {
            default: 0.80,
            meaning: "Median share of the link speed, either direction, 0..1.",
        }),
        fires_when: "median link utilization > 0.8",
        summary: "Link {device} of broker {broker} runs at {value} of its speed",
        description: "Median utilization of the busier direction over the window is {value} (limit {limit}). Consumers and followers of broker {broker} will lag; move leaders off it or add bandwidth.",
        prometheus: Prometheus {
            comment: None,
            expr: "interface:brokerwatch_network_utilization:ratio_rate5m > {threshold}",
            summary: "Link {{ $labels.interface }} of broker {{ $labels.broker_id }} runs at {{ $value | humanizePercentage }} of its speed",
            description: "Consumers and followers of broker {{ $labels.broker_id }} will lag; move leaders off it or add bandwidth.",
        },
    },
    Spec {
        alert: Alert::KafkaPageCacheHitRatioLow,
        name: "KafkaPageCacheHitRatioLow",
        subject: &["broker"],
        origin: Origin::Agents,
        for_seconds: 10 * MINUTE,
        severity: Severity::Warning,
        threshold: Some(Threshold {
            default: 0.80,
            meaning: "Median page-cache hit ratio (the ebpf method where it runs, else the estimate), 0..1: fires below it.",
        }),
        fires_when: "median page-cache hit ratio (ebpf, else estimate) < 0.8",
        summary: "Broker {broker} serves only {value} of its reads from the page cache",
        description: "Median page-cache hit ratio over the window is {value} (limit {limit}): consumers or followers of broker {broker} are reading from disk. Look for lagging consumers reading old data, and at the memory left for the page cache and the disk %util of broker {broker}.",
        prometheus: Prometheus {
            comment: None,
            expr: "broker_id:brokerwatch_page_cache_hit:ratio_rate5m < {threshold}",
            summary: "Broker {{ $labels.broker_id }} serves only {{ $value | humanizePercentage }} of its reads from the page cache",
            description: "Consumers or followers of broker {{ $labels.broker_id }} are reading from disk: look for lagging consumers reading old data, and at the memory left for the page cache and the disk %util of broker {{ $labels.broker_id }}.",
        },
    },
    Spec {
        alert: Alert::KafkaUnderReplicatedPartitions,
        name: "KafkaUnderReplicatedPartitions",
        subject: &[],
        origin: Origin::Cluster,
        for_seconds: MINUTE,
        severity: Severity::Critical,
        threshold: None,
        fires_when: "under-replicated partitions other than a reassignment's; the description names the suspect broker",
        summary: "{faults} under-replicated partitions in cluster {cluster}{internal}",
        description: "{cause}{moving} Topics: {topics}.",
        prometheus: Prometheus {
            comment: Some("A reassignment's catch-up (extra replicas) is expected, not paged."),
            expr: "brokerwatch_cluster_under_replicated_partitions - brokerwatch_reassigning_partitions > 0",
            summary: "{{ $value }} under-replicated partitions in cluster {{ $labels.cluster }}",
            description: "brokerwatch_broker_missing_from_isr_partitions shows which broker is missing from the ISRs; the collector's own alert names the suspect.",
        },
    },
    Spec {
        alert: Alert::KafkaOfflinePartitions,
        name: "KafkaOfflinePartitions",
        subject: &[],
        origin: Origin::Cluster,
        for_seconds: MINUTE,
        severity: Severity::Critical,
        threshold: None,
        fires_when: "partitions without a leader",
        summary: "{offline} partitions of cluster {cluster} have no leader{internal}",
        description: "Producers and consumers of those partitions are failing now. Topics: {topics}. Brokers down: {down}. Bring their replicas back, or (losing data) allow an unclean leader election.",
        prometheus: Prometheus {
            comment: None,
            expr: "brokerwatch_offline_partitions > 0",
            summary: "{{ $value }} partitions of cluster {{ $labels.cluster }} have no leader",
            description: "Producers and consumers of those partitions are failing now. Bring their replicas back, or (losing data) allow an unclean leader election.",
        },
    },
    Spec {
        alert: Alert::KafkaUnderMinIsrPartitions,
        name: "KafkaUnderMinIsrPartitions",
        subject: &[],
        origin: Origin::Cluster,
        for_seconds: MINUTE,
        severity: Severity::Critical,
        threshold: None,
        fires_when: "in-sync replicas below `min.insync.replicas`",
        summary: "{count} partitions of cluster {cluster} have fewer in-sync replicas than min.insync.replicas",
        description: "Producers with acks=all get NOT_ENOUGH_REPLICAS on them. {cause}",
        prometheus: Prometheus {
            comment: None,
            expr: "brokerwatch_under_min_isr_partitions > 0",
            summary: "{{ $value }} partitions of cluster {{ $labels.cluster }} have fewer in-sync replicas than min.insync.replicas",
            description: "Producers with acks=all get NOT_ENOUGH_REPLICAS on them.",
        },
    },
    Spec {
        alert: Alert::KafkaPreferredLeaderImbalance,
        name: "KafkaPreferredLeaderImbalance",
        subject: &["broker"],
        origin: Origin::Cluster,
        for_seconds: 10 * MINUTE,
        severity: Severity::Warning,
        threshold: Some(Threshold {
            default: 0.10,
            meaning: "Kafka's leader.imbalance.per.broker.percentage, as a ratio 0..1.",
        }),
        fires_when: "imbalance ratio > 0.10 (Kafka's `leader.imbalance.per.broker.percentage`)",
        summary: "Broker {broker} leads {leading} of the {preferred} partitions it is the preferred leader of",
        description: "Leader imbalance {ratio} (limit {limit}): its leadership sits on other brokers. Run a preferred leader election (kafka-leader-election --election-type PREFERRED) or check auto.leader.rebalance.enable.",
        prometheus: Prometheus {
            comment: None,
            expr: "brokerwatch_preferred_leader_imbalance_ratio > {threshold}",
            summary: "Broker {{ $labels.broker }} does not lead {{ $value | humanizePercentage }} of the partitions it prefers",
            description: "Run a preferred leader election (kafka-leader-election --election-type PREFERRED) or check auto.leader.rebalance.enable.",
        },
    },
    Spec {
        alert: Alert::KafkaBrokerDown,
        name: "KafkaBrokerDown",
        subject: &["broker"],
        origin: Origin::Cluster,
        for_seconds: MINUTE,
        severity: Severity::Critical,
        threshold: None,
        fires_when: "expected but not in the metadata",
        summary: "Broker {broker} is not in cluster {cluster}'s metadata",
        description: "It was expected (configured or seen before). Its partitions lose a replica, and those it led move or go offline: check the broker process and host (KafkaAgentDown tells whether the host still reports).",
        prometheus: Prometheus {
            comment: None,
            expr: "brokerwatch_broker_in_metadata == 0",
            summary: "Broker {{ $labels.broker }} is not in cluster {{ $labels.cluster }}'s metadata",
            description: "Its partitions lose a replica and those it led move or go offline: check the broker process and host.",
        },
    },
    Spec {
        alert: Alert::KafkaConsumerGroupLag,
        name: "KafkaConsumerGroupLag",
        subject: &["consumergroup"],
        origin: Origin::Cluster,
        for_seconds: 5 * MINUTE,
        severity: Severity::Warning,
        threshold: None,
        fires_when: "status or limits as above",
        summary: "Consumer group {consumergroup} is {status}: {messages} messages, {behind} behind",
        description: "{advice} Topics: {topics}.",
        prometheus: Prometheus {
            comment: Some("A status of the default alert_statuses, or over the group's limits (exported where set)."),
            expr: "max by (cluster, consumergroup) (brokerwatch_consumergroup_status{status=~\"ERR|STOP|STALL|REWIND\"}) == 1\nor\nsum by (cluster, consumergroup) (brokerwatch_consumergroup_lag_messages) > on (cluster, consumergroup) brokerwatch_consumergroup_max_lag_messages\nor\nmax by (cluster, consumergroup) (brokerwatch_consumergroup_lag_seconds) > on (cluster, consumergroup) brokerwatch_consumergroup_max_lag_seconds",
            summary: "Consumer group {{ $labels.consumergroup }} is lagging",
            description: "brokerwatch_consumergroup_status shows its status, brokerwatch_consumergroup_lag_messages and _lag_seconds how far behind per topic, against the group's limits (brokerwatch_consumergroup_max_lag_messages, _max_lag_seconds).",
        },
    },
    Spec {
        alert: Alert::KafkaClusterUnreachable,
        name: "KafkaClusterUnreachable",
        subject: &[],
        origin: Origin::Cluster,
        for_seconds: MINUTE,
        severity: Severity::Critical,
        threshold: None,
        fires_when: "the metadata is older than three `metadata_interval` (or never came); the description has the last error. Meanwhile the replication and lag alerts keep their state and their series are withheld, so nothing stale passes for fresh",
        summary: "The collector cannot read cluster {cluster}'s metadata (stale for {stale})",
        description: "Replication and consumer-lag alerts of {cluster} are on hold and their series withheld until the cluster answers again; last error: {error}. Check the collector's [kafka.properties] (bootstrap.servers, SASL/SSL) and that the brokers are reachable from the collector's host.",
        prometheus: Prometheus {
            comment: Some("Older than three metadata_interval, as the collector judges it."),
            expr: "brokerwatch_kafka_metadata_age_seconds > on (cluster) brokerwatch_kafka_metadata_stale_after_seconds",
            summary: "The collector cannot read cluster {{ $labels.cluster }}'s metadata (stale for {{ $value | humanizeDuration }})",
            description: "Replication and consumer-lag alerts of {{ $labels.cluster }} are on hold and their series withheld until the cluster answers again. Check the collector's [kafka.properties] and that the brokers are reachable from the collector's host.",
        },
    },
];

impl Alert {
    pub fn spec(self) -> &'static Spec {
        CATALOGUE
            .iter()
            .find(|s| s.alert == self)
            .expect("every alert has a spec (checked by a test)")
    }

    pub fn name(self) -> &'static str {
        self.spec().name
    }

    pub fn from_name(name: &str) -> Option<Alert> {
        CATALOGUE.iter().find(|s| s.name == name).map(|s| s.alert)
    }
}

/// Every alert name, for error messages.
pub fn names() -> String {
    CATALOGUE.map(|s| s.name).join(", ")
}

/// Fills `{name}` placeholders from `values`; an unknown one stays as it is
/// (a test renders every alert to see that none is left).
pub fn render(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let name_end = after
            .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
            .unwrap_or(after.len());
        let value = (after[name_end..].starts_with('}'))
            .then(|| values.iter().find(|(k, _)| *k == &after[..name_end]))
            .flatten();
        match value {
            Some((_, value)) => {
                out.push_str(value);
                rest = &after[name_end + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// `10m`, `2m`, `30s`, `1h`: how Prometheus and the configs write a `for`.
pub fn format_for(seconds: u64) -> String {
    match seconds {
        0 => "0s".into(),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

fn yaml_quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// `rules/brokerwatch.alerts.yml`, as `brokerwatch-collector rules` prints it.
pub fn prometheus_rules() -> String {
    let mut out = String::from(
        "# Alerting rules for the same conditions as the collector's catalogue, for\n\
         # teams that evaluate in Prometheus. Host alerts work from the agents' series\n\
         # (with the recording rules in brokerwatch.rules.yml); load, replication and\n\
         # lag alerts from the collector's series.\n\
         # Generated from collector/src/catalogue.rs: brokerwatch-collector rules\n\
         groups:\n  - name: brokerwatch-alerts\n    rules:\n",
    );
    for spec in &CATALOGUE {
        let p = &spec.prometheus;
        let threshold = spec.threshold.map_or(DEFAULT_DEVIATION, |t| t.default);
        let expr = p.expr.replace("{threshold}", &threshold.to_string());
        let _ = writeln!(out, "      - alert: {}", spec.name);
        if let Some(comment) = p.comment {
            let _ = writeln!(out, "        # {comment}");
        }
        if expr.contains('\n') {
            let _ = writeln!(out, "        expr: |");
            for line in expr.lines() {
                let _ = writeln!(out, "          {line}");
            }
        } else {
            let _ = writeln!(out, "        expr: {expr}");
        }
        let _ = writeln!(out, "        for: {}", format_for(spec.for_seconds));
        let _ = writeln!(
            out,
            "        labels:\n          severity: {}",
            spec.severity.as_str()
        );
        let _ = writeln!(
            out,
            "        annotations:\n          summary: {}\n          description: {}",
            yaml_quoted(p.summary),
            yaml_quoted(p.description)
        );
    }
    out
}

/// The README's table of one origin's alerts: subject, when, `for`.
pub fn readme_table(origin: Origin) -> String {
    let mut out =
        String::from("| alert | subject | fires when (default) | for |\n|---|---|---|---|\n");
    for spec in CATALOGUE.iter().filter(|s| s.origin == origin) {
        let subject = if spec.subject.is_empty() {
            "cluster".to_owned()
        } else {
            spec.subject.join(", ")
        };
        let severity = match spec.severity {
            Severity::Critical => ", critical",
            Severity::Warning => "",
        };
        let _ = writeln!(
            out,
            "| {} | {subject} | {} | {}{severity} |",
            spec.name,
            spec.fires_when,
            format_for(spec.for_seconds)
        );
    }
    out
}

/// The example config's comment listing every rule with its defaults.
pub fn example_rules_comment() -> String {
    let mut out = String::from(
        "# Per rule: enabled, for (how long the condition holds before firing),\n\
         # severity (warning or critical), and threshold where the rule has one.\n\
         # Defaults:\n",
    );
    for spec in &CATALOGUE {
        let threshold = spec
            .threshold
            .map(|t| format!(", threshold {} ({})", t.default, t.meaning))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "#   {}: for {}, {}{threshold}",
            spec.name,
            format_for(spec.for_seconds),
            spec.severity.as_str()
        );
    }
    out
}

#[cfg(test)]
mod tests;
