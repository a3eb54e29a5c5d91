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
    KafkaBrokerProcessDown,
    KafkaBrokerUnresponsive,
    KafkaSlowBroker,
    KafkaActiveControllerCount,
    KafkaOfflineLogDirs,
    KafkaRequestHandlerIdleLow,
    KafkaNetworkProcessorIdleLow,
    KafkaIsrChurn,
    KafkaUserThrottled,
    KafkaBrokerGcPressure,
    KafkaLogDirFillingUp,
    KafkaFileDescriptorsExhausting,
    KafkaHostKernelErrors,
    KafkaBrokerLogErrors,
    KafkaTopicNoTraffic,
    KafkaTopicTrafficAnomaly,
    KafkaUserTrafficAnomaly,
    KafkaTopicPartitionSkew,
    KafkaTopicReplicationFactorLow,
    KafkaTopicConcentrated,
    KafkaPartitionLeaderFlapping,
    KafkaPartitionTooLarge,
    KafkaProbeProduceFailing,
    KafkaProbeEndToEndLatencyHigh,
    KafkaProbeMessagesLost,
    KafkaControllerQuorumLagging,
    KafkaReassignmentStuck,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth a look in working hours (a topic nobody writes to): routed
    /// to a ticket or a channel, never a page.
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
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

/// A rule's threshold, with a default, configurable under
/// `[rules.NAME] threshold`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Threshold {
    pub default: f64,
    /// What the number is, for the example config.
    pub meaning: &'static str,
    /// A ratio in (0, 1], or any positive number (a count, hours, a factor).
    pub is_ratio: bool,
}

const fn ratio(default: f64, meaning: &'static str) -> Option<Threshold> {
    Some(Threshold {
        default,
        meaning,
        is_ratio: true,
    })
}

const fn positive(default: f64, meaning: &'static str) -> Option<Threshold> {
    Some(Threshold {
        default,
        meaning,
        is_ratio: false,
    })
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

pub const CATALOGUE: [Spec; 42] = [
    hosts::KAFKA_BROKER_LOAD_DEVIATION,
    hosts::KAFKA_CLUSTER_LOAD_IMBALANCE,
    hosts::KAFKA_BROKER_DISK_IMBALANCE,
    hosts::KAFKA_AGENT_DOWN,
    hosts::KAFKA_HOST_DISK_SATURATED,
    hosts::KAFKA_HOST_IOWAIT_HIGH,
    hosts::KAFKA_HOST_NETWORK_SATURATED,
    hosts::KAFKA_PAGE_CACHE_HIT_RATIO_LOW,
    cluster::KAFKA_UNDER_REPLICATED_PARTITIONS,
    cluster::KAFKA_OFFLINE_PARTITIONS,
    cluster::KAFKA_UNDER_MIN_ISR_PARTITIONS,
    cluster::KAFKA_PREFERRED_LEADER_IMBALANCE,
    cluster::KAFKA_BROKER_DOWN,
    cluster::KAFKA_CONSUMER_GROUP_LAG,
    cluster::KAFKA_CLUSTER_UNREACHABLE,
    broker::KAFKA_BROKER_PROCESS_DOWN,
    broker::KAFKA_BROKER_UNRESPONSIVE,
    broker::KAFKA_SLOW_BROKER,
    broker::KAFKA_ACTIVE_CONTROLLER_COUNT,
    broker::KAFKA_OFFLINE_LOG_DIRS,
    broker::KAFKA_REQUEST_HANDLER_IDLE_LOW,
    broker::KAFKA_NETWORK_PROCESSOR_IDLE_LOW,
    broker::KAFKA_ISR_CHURN,
    broker::KAFKA_USER_THROTTLED,
    broker::KAFKA_BROKER_GC_PRESSURE,
    broker::KAFKA_LOG_DIR_FILLING_UP,
    broker::KAFKA_FILE_DESCRIPTORS_EXHAUSTING,
    broker::KAFKA_HOST_KERNEL_ERRORS,
    broker::KAFKA_BROKER_LOG_ERRORS,
    topics::KAFKA_TOPIC_NO_TRAFFIC,
    topics::KAFKA_TOPIC_TRAFFIC_ANOMALY,
    topics::KAFKA_USER_TRAFFIC_ANOMALY,
    topics::KAFKA_TOPIC_PARTITION_SKEW,
    topics::KAFKA_TOPIC_REPLICATION_FACTOR_LOW,
    topics::KAFKA_TOPIC_CONCENTRATED,
    topics::KAFKA_PARTITION_LEADER_FLAPPING,
    topics::KAFKA_PARTITION_TOO_LARGE,
    probe::KAFKA_PROBE_PRODUCE_FAILING,
    probe::KAFKA_PROBE_END_TO_END_LATENCY_HIGH,
    probe::KAFKA_PROBE_MESSAGES_LOST,
    probe::KAFKA_CONTROLLER_QUORUM_LAGGING,
    probe::KAFKA_REASSIGNMENT_STUCK,
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
            Severity::Info => ", info",
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
         # severity (info, warning or critical), and threshold where the rule has one.\n\
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

mod broker;
mod cluster;
mod hosts;
mod probe;
mod topics;

#[cfg(test)]
mod tests;
