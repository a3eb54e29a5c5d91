//! The collector's configuration: a TOML file (every key is documented in
//! `brokerwatch-collector.example.toml`) with `--listen` on top. Every bad
//! value is one line naming the key and what to write instead.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use brokerwatch_common::web::WebConfig;
use brokerwatch_common::{from_toml, parse_duration, Secret};
use serde::Deserialize;

use crate::model::lag::{LagRules, Status};
use crate::model::load::{default_weights, Weights, METRICS};

/// The collector's alerts, each configurable under `[rules.NAME]`.
pub const RULES: [&str; 15] = [
    "KafkaBrokerLoadDeviation",
    "KafkaClusterLoadImbalance",
    "KafkaBrokerDiskImbalance",
    "KafkaAgentDown",
    "KafkaHostDiskSaturated",
    "KafkaHostIowaitHigh",
    "KafkaHostNetworkSaturated",
    "KafkaPageCacheHitRatioLow",
    "KafkaUnderReplicatedPartitions",
    "KafkaOfflinePartitions",
    "KafkaUnderMinIsrPartitions",
    "KafkaPreferredLeaderImbalance",
    "KafkaBrokerDown",
    "KafkaConsumerGroupLag",
    "KafkaClusterUnreachable",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, PartialOrd, Ord)]
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

#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub enabled: bool,
    /// How long the condition must hold before the alert fires.
    pub for_duration: Duration,
    pub severity: Severity,
    /// The rule's threshold, where it has one (a ratio 0..1).
    pub threshold: Option<f64>,
}

/// Defaults: (for, severity, threshold).
fn rule_defaults(name: &str) -> (Duration, Severity, Option<f64>) {
    let minutes = |m: u64| Duration::from_secs(60 * m);
    match name {
        "KafkaBrokerLoadDeviation" => (minutes(15), Severity::Warning, None),
        "KafkaClusterLoadImbalance" => (minutes(15), Severity::Warning, None),
        "KafkaBrokerDiskImbalance" => (minutes(30), Severity::Warning, None),
        "KafkaAgentDown" => (minutes(2), Severity::Critical, None),
        "KafkaHostDiskSaturated" => (minutes(10), Severity::Warning, Some(0.90)),
        "KafkaHostIowaitHigh" => (minutes(10), Severity::Warning, Some(0.25)),
        "KafkaHostNetworkSaturated" => (minutes(5), Severity::Warning, Some(0.80)),
        "KafkaPageCacheHitRatioLow" => (minutes(10), Severity::Warning, Some(0.80)),
        "KafkaUnderReplicatedPartitions" => (minutes(1), Severity::Critical, None),
        "KafkaOfflinePartitions" => (minutes(1), Severity::Critical, None),
        "KafkaUnderMinIsrPartitions" => (minutes(1), Severity::Critical, None),
        // Kafka's own leader.imbalance.per.broker.percentage default.
        "KafkaPreferredLeaderImbalance" => (minutes(10), Severity::Warning, Some(0.10)),
        "KafkaBrokerDown" => (minutes(1), Severity::Critical, None),
        "KafkaConsumerGroupLag" => (minutes(5), Severity::Warning, None),
        "KafkaClusterUnreachable" => (minutes(1), Severity::Critical, None),
        _ => unreachable!("only names from RULES"),
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub cluster: String,
    pub listen: SocketAddr,
    pub state_dir: PathBuf,
    pub evaluation_interval: Duration,
    /// Accepted bearer tokens (this cluster's agents'); empty only when
    /// `allow_unauthenticated`.
    pub tokens: Vec<Secret>,
    /// TLS (optionally mTLS) and basic auth on the listener.
    pub web: WebConfig,
    pub allow_unauthenticated: bool,
    pub max_body_bytes: usize,
    pub max_decoded_bytes: usize,
    pub window: Duration,
    pub broker_missing_after: Duration,
    pub deviation: f64,
    pub disk_deviation: f64,
    pub weights: Weights,
    /// Resource groups by name; brokers in none of them form `default`.
    pub groups: BTreeMap<String, BTreeSet<i32>>,
    pub rules: BTreeMap<&'static str, Rule>,
    pub alertmanagers: Vec<String>,
    pub resend_interval: Duration,
    pub alertmanager_timeout: Duration,
    pub resolved_retention: Duration,
    /// The cluster itself, when `[kafka]` is configured.
    pub kafka: Option<KafkaConfig>,
    pub consumer_groups: GroupsConfig,
}

#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// librdkafka properties, passed through as they are.
    pub properties: BTreeMap<String, String>,
    pub metadata_interval: Duration,
    pub topic_config_interval: Duration,
    pub timeout: Duration,
    /// Brokers that should be in the metadata (besides those seen before).
    pub expected_brokers: BTreeSet<i32>,
}

/// Data older than this many refreshes is stale: not reported as fresh.
const STALE_AFTER_REFRESHES: f64 = 3.0;

impl KafkaConfig {
    /// Seconds after which the cluster's metadata is stale.
    pub fn metadata_stale_after(&self) -> f64 {
        STALE_AFTER_REFRESHES * self.metadata_interval.as_secs_f64()
    }
}

impl GroupsConfig {
    /// Seconds after which the groups' offsets are stale.
    pub fn offsets_stale_after(&self) -> f64 {
        STALE_AFTER_REFRESHES * self.fetch_interval.as_secs_f64()
    }
}

#[derive(Debug, Clone)]
pub struct GroupsConfig {
    /// Always watched, whether or not the cluster lists them.
    pub groups: Vec<String>,
    pub include: Option<regex_lite::Regex>,
    pub exclude: Option<regex_lite::Regex>,
    pub fetch_interval: Duration,
    pub rules: LagRules,
    /// Statuses that make KafkaConsumerGroupLag fire.
    pub alert_statuses: BTreeSet<Status>,
    /// Lag limits, per group where set, else the defaults (`None`: no limit).
    pub max_lag_messages: BTreeMap<String, i64>,
    pub max_lag_seconds: BTreeMap<String, f64>,
    pub default_max_lag_messages: Option<i64>,
    pub default_max_lag_seconds: Option<f64>,
}

impl GroupsConfig {
    /// Whether a group the cluster lists is watched.
    pub fn watches(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
            || (self.include.as_ref().is_none_or(|r| r.is_match(group))
                && !self.exclude.as_ref().is_some_and(|r| r.is_match(group)))
    }

    pub fn max_lag_messages(&self, group: &str) -> Option<i64> {
        self.max_lag_messages
            .get(group)
            .copied()
            .or(self.default_max_lag_messages)
    }

    pub fn max_lag_seconds(&self, group: &str) -> Option<f64> {
        self.max_lag_seconds
            .get(group)
            .copied()
            .or(self.default_max_lag_seconds)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct KafkaSection {
    #[serde(default)]
    properties: BTreeMap<String, String>,
    metadata_interval: Option<String>,
    topic_config_interval: Option<String>,
    timeout: Option<String>,
    #[serde(default)]
    expected_brokers: Vec<i32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupsSection {
    #[serde(default)]
    groups: Vec<String>,
    include: Option<String>,
    exclude: Option<String>,
    fetch_interval: Option<String>,
    window: Option<String>,
    stop_after: Option<String>,
    err_lag: Option<String>,
    alert_statuses: Option<Vec<String>>,
    max_lag_messages: Option<i64>,
    max_lag: Option<String>,
    #[serde(default)]
    limits: BTreeMap<String, GroupLimits>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupLimits {
    max_lag_messages: Option<i64>,
    max_lag: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    cluster: Option<String>,
    listen: Option<String>,
    state_dir: Option<PathBuf>,
    evaluation_interval: Option<String>,
    web_config_file: Option<PathBuf>,
    #[serde(default)]
    ingest: IngestSection,
    #[serde(default)]
    store: StoreSection,
    #[serde(default)]
    load: LoadSection,
    #[serde(default)]
    groups: Vec<GroupSection>,
    #[serde(default)]
    rules: BTreeMap<String, RuleSection>,
    #[serde(default)]
    alertmanager: AlertmanagerSection,
    kafka: Option<KafkaSection>,
    #[serde(default)]
    consumer_groups: GroupsSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct IngestSection {
    #[serde(default)]
    tokens: Vec<String>,
    token_file: Option<PathBuf>,
    token_env: Option<String>,
    #[serde(default)]
    allow_unauthenticated: bool,
    max_body_bytes: Option<usize>,
    max_decoded_bytes: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreSection {
    window: Option<String>,
    broker_missing_after: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LoadSection {
    deviation: Option<f64>,
    disk_deviation: Option<f64>,
    #[serde(default)]
    weights: BTreeMap<String, f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupSection {
    name: String,
    brokers: Vec<i32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSection {
    enabled: Option<bool>,
    #[serde(rename = "for")]
    for_duration: Option<String>,
    severity: Option<Severity>,
    threshold: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertmanagerSection {
    #[serde(default)]
    urls: Vec<String>,
    resend_interval: Option<String>,
    timeout: Option<String>,
    resolved_retention: Option<String>,
}

/// Values given on the command line; each wins over the file's.
#[derive(Debug, Default, Clone)]
pub struct Flags {
    pub listen: Option<String>,
}

pub fn load(path: &Path, flags: &Flags) -> Result<Config, String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "config {}: cannot read it ({e}); check the --config path",
            path.display()
        )
    })?;
    from_toml_text(&text, &format!("config {}", path.display()), flags)
}

fn duration(
    origin: &str,
    key: &str,
    text: Option<String>,
    default: Duration,
) -> Result<Duration, String> {
    match text {
        None => Ok(default),
        Some(text) => {
            let value = parse_duration(&text).map_err(|e| format!("{origin}: {key}: {e}"))?;
            if value.is_zero() && key != "for" && !key.ends_with(".for") {
                return Err(format!("{origin}: {key}: must be more than 0"));
            }
            Ok(value)
        }
    }
}

fn ratio(origin: &str, key: &str, value: Option<f64>, default: f64) -> Result<f64, String> {
    let value = value.unwrap_or(default);
    if value > 0.0 && value <= 1.0 {
        Ok(value)
    } else {
        Err(format!(
            "{origin}: {key}: {value} is not a ratio in (0, 1]; e.g. 0.1 for 10 %"
        ))
    }
}

fn url(origin: &str, key: &str, url: &str) -> Result<String, String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    match rest {
        Some(host) if !host.is_empty() && !host.starts_with('/') => {
            Ok(url.trim_end_matches('/').to_owned())
        }
        _ => Err(format!(
            "{origin}: {key}: {url:?} is not a URL; write it like http://alertmanager:9093"
        )),
    }
}

pub fn from_toml_text(text: &str, origin: &str, flags: &Flags) -> Result<Config, String> {
    let file: FileConfig = from_toml(text, origin)?;
    let fail = |key: &str, problem: String| format!("{origin}: {key}: {problem}");

    let cluster = file
        .cluster
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| {
            fail(
                "cluster",
                "not set; name the Kafka cluster, it labels every alert".into(),
            )
        })?;
    let listen_text = flags
        .listen
        .clone()
        .or(file.listen)
        .unwrap_or_else(|| "0.0.0.0:9798".into());
    let listen: SocketAddr = listen_text.parse().map_err(|_| {
        fail(
            "listen",
            format!("{listen_text:?} is not an address; write it like 0.0.0.0:9798"),
        )
    })?;
    let web = WebConfig::load_configured(file.web_config_file.as_deref(), origin)?;
    let state_dir = file
        .state_dir
        .unwrap_or_else(|| PathBuf::from("/var/lib/brokerwatch-collector"));

    let mut tokens: Vec<String> = file
        .ingest
        .tokens
        .into_iter()
        .filter(|t| !t.is_empty())
        .collect();
    if let Some(path) = &file.ingest.token_file {
        let text = std::fs::read_to_string(path).map_err(|e| {
            fail(
                "ingest.token_file",
                format!("cannot read {} ({e})", path.display()),
            )
        })?;
        tokens.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(String::from),
        );
    }
    if let Some(name) = &file.ingest.token_env {
        let value = std::env::var(name).map_err(|_| {
            fail(
                "ingest.token_env",
                format!("the environment variable {name} is not set"),
            )
        })?;
        tokens.extend(
            value
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(String::from),
        );
    }
    if tokens.is_empty() && !file.ingest.allow_unauthenticated {
        return Err(fail(
            "ingest.tokens",
            "no token: set tokens or token_file, or allow_unauthenticated = true to accept anyone"
                .into(),
        ));
    }

    let mut weights = default_weights(&METRICS);
    for (metric, weight) in file.load.weights {
        if !METRICS.contains(&metric.as_str()) {
            return Err(fail(
                "load.weights",
                format!(
                    "{metric:?} is not a load metric; use any of {}",
                    METRICS.join(", ")
                ),
            ));
        }
        if !(weight.is_finite() && weight >= 0.0) {
            return Err(fail(
                &format!("load.weights.{metric}"),
                format!("{weight} is not a weight of 0 or more"),
            ));
        }
        weights.insert(metric, weight);
    }

    let mut groups: BTreeMap<String, BTreeSet<i32>> = BTreeMap::new();
    let mut owner: BTreeMap<i32, String> = BTreeMap::new();
    for group in file.groups {
        if group.name.trim().is_empty() || groups.contains_key(&group.name) {
            return Err(fail(
                "groups",
                format!("group name {:?} is empty or used twice", group.name),
            ));
        }
        for broker in &group.brokers {
            if let Some(other) = owner.insert(*broker, group.name.clone()) {
                return Err(fail(
                    "groups",
                    format!("broker {broker} is in both {other:?} and {:?}; resource groups never share brokers", group.name),
                ));
            }
        }
        groups.insert(group.name, group.brokers.into_iter().collect());
    }

    let mut rules = BTreeMap::new();
    let mut sections = file.rules;
    for name in RULES {
        let section = sections.remove(name).unwrap_or_default();
        let (for_default, severity_default, threshold_default) = rule_defaults(name);
        let key = |k: &str| format!("rules.{name}.{k}");
        let threshold = match threshold_default {
            None if section.threshold.is_some() => {
                return Err(fail(
                    &key("threshold"),
                    "this rule has no threshold (it uses load.deviation)".into(),
                ))
            }
            None => None,
            Some(default) => Some(ratio(
                origin,
                &key("threshold"),
                section.threshold,
                default,
            )?),
        };
        rules.insert(
            name,
            Rule {
                enabled: section.enabled.unwrap_or(true),
                for_duration: duration(origin, &key("for"), section.for_duration, for_default)?,
                severity: section.severity.unwrap_or(severity_default),
                threshold,
            },
        );
    }
    if let Some(unknown) = sections.keys().next() {
        return Err(fail(
            "rules",
            format!("{unknown:?} is not a rule; use any of {}", RULES.join(", ")),
        ));
    }

    let kafka = match file.kafka {
        None => None,
        Some(section) => {
            if !section.properties.contains_key("bootstrap.servers") {
                return Err(fail("kafka.properties", "bootstrap.servers is not set; list the cluster's brokers, e.g. \"kafka-1:9092,kafka-2:9092\"".into()));
            }
            Some(KafkaConfig {
                properties: section.properties,
                metadata_interval: duration(
                    origin,
                    "kafka.metadata_interval",
                    section.metadata_interval,
                    Duration::from_secs(30),
                )?,
                topic_config_interval: duration(
                    origin,
                    "kafka.topic_config_interval",
                    section.topic_config_interval,
                    Duration::from_secs(600),
                )?,
                timeout: duration(
                    origin,
                    "kafka.timeout",
                    section.timeout,
                    Duration::from_secs(10),
                )?,
                expected_brokers: section.expected_brokers.into_iter().collect(),
            })
        }
    };
    let consumer_groups = groups_config(origin, file.consumer_groups)?;

    let alertmanagers = file
        .alertmanager
        .urls
        .iter()
        .map(|u| url(origin, "alertmanager.urls", u))
        .collect::<Result<Vec<_>, _>>()?;

    Ok(Config {
        cluster,
        listen,
        state_dir,
        evaluation_interval: duration(
            origin,
            "evaluation_interval",
            file.evaluation_interval,
            Duration::from_secs(10),
        )?,
        tokens: tokens.into_iter().map(Secret::new).collect(),
        web,
        allow_unauthenticated: file.ingest.allow_unauthenticated,
        max_body_bytes: file.ingest.max_body_bytes.unwrap_or(1 << 20),
        max_decoded_bytes: file.ingest.max_decoded_bytes.unwrap_or(16 << 20),
        window: duration(
            origin,
            "store.window",
            file.store.window,
            Duration::from_secs(300),
        )?,
        broker_missing_after: duration(
            origin,
            "store.broker_missing_after",
            file.store.broker_missing_after,
            Duration::from_secs(60),
        )?,
        deviation: ratio(origin, "load.deviation", file.load.deviation, 0.10)?,
        disk_deviation: ratio(
            origin,
            "load.disk_deviation",
            file.load.disk_deviation,
            0.10,
        )?,
        weights,
        groups,
        rules,
        alertmanagers,
        resend_interval: duration(
            origin,
            "alertmanager.resend_interval",
            file.alertmanager.resend_interval,
            Duration::from_secs(60),
        )?,
        alertmanager_timeout: duration(
            origin,
            "alertmanager.timeout",
            file.alertmanager.timeout,
            Duration::from_secs(10),
        )?,
        resolved_retention: duration(
            origin,
            "alertmanager.resolved_retention",
            file.alertmanager.resolved_retention,
            Duration::from_secs(900),
        )?,
        kafka,
        consumer_groups,
    })
}

fn groups_config(origin: &str, section: GroupsSection) -> Result<GroupsConfig, String> {
    let fail = |key: &str, problem: String| format!("{origin}: consumer_groups.{key}: {problem}");
    let pattern = |key: &str, text: Option<String>| -> Result<Option<regex_lite::Regex>, String> {
        match text.filter(|t| !t.is_empty()) {
            None => Ok(None),
            Some(text) => regex_lite::Regex::new(&text).map(Some).map_err(|e| {
                fail(
                    key,
                    format!(
                        "invalid regular expression {text:?}: {}",
                        brokerwatch_common::one_line(&e.to_string())
                    ),
                )
            }),
        }
    };
    let seconds = |key: &str, text: Option<String>, default: f64| -> Result<f64, String> {
        Ok(duration(
            origin,
            &format!("consumer_groups.{key}"),
            text,
            Duration::from_secs_f64(default),
        )?
        .as_secs_f64())
    };
    let defaults = LagRules::default();
    let alert_statuses = match section.alert_statuses {
        None => [Status::Err, Status::Stop, Status::Stall, Status::Rewind].into(),
        Some(names) => names
            .iter()
            .map(|n| {
                Status::ALL
                    .into_iter()
                    .find(|s| s.as_str().eq_ignore_ascii_case(n))
                    .ok_or_else(|| {
                        fail(
                            "alert_statuses",
                            format!("{n:?} is not one of OK, WARN, ERR, STOP, STALL, REWIND"),
                        )
                    })
            })
            .collect::<Result<BTreeSet<_>, _>>()?,
    };
    let mut max_lag_messages = BTreeMap::new();
    let mut max_lag_seconds = BTreeMap::new();
    for (group, limits) in section.limits {
        if let Some(messages) = limits.max_lag_messages {
            max_lag_messages.insert(group.clone(), messages);
        }
        if limits.max_lag.is_some() {
            max_lag_seconds.insert(
                group.clone(),
                seconds(&format!("limits.{group}.max_lag"), limits.max_lag, 0.0)?,
            );
        }
    }
    Ok(GroupsConfig {
        groups: section.groups,
        include: pattern("include", section.include)?,
        exclude: pattern("exclude", section.exclude)?,
        fetch_interval: duration(
            origin,
            "consumer_groups.fetch_interval",
            section.fetch_interval,
            Duration::from_secs(30),
        )?,
        rules: LagRules {
            window_seconds: seconds("window", section.window, defaults.window_seconds)?,
            stop_after_seconds: seconds(
                "stop_after",
                section.stop_after,
                defaults.stop_after_seconds,
            )?,
            commit_intervals_to_stop: defaults.commit_intervals_to_stop,
            err_lag_seconds: seconds("err_lag", section.err_lag, defaults.err_lag_seconds)?,
        },
        alert_statuses,
        max_lag_messages,
        max_lag_seconds,
        default_max_lag_messages: section.max_lag_messages,
        default_max_lag_seconds: match section.max_lag {
            None => None,
            Some(text) => Some(seconds("max_lag", Some(text), 0.0)?),
        },
    })
}

impl Config {
    /// The resource group of a broker: its configured group, or `default`.
    pub fn group_of(&self, broker: i32) -> &str {
        self.groups
            .iter()
            .find(|(_, brokers)| brokers.contains(&broker))
            .map_or("default", |(name, _)| name)
    }

    pub fn rule(&self, name: &str) -> &Rule {
        &self.rules[name]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "cluster = \"prod\"\n[ingest]\ntokens = [\"s3cret\"]\n";

    fn error(text: &str) -> String {
        from_toml_text(text, "config c.toml", &Flags::default()).unwrap_err()
    }

    #[test]
    fn minimal_config_gets_the_documented_defaults() {
        let config = from_toml_text(MINIMAL, "c", &Flags::default()).unwrap();
        assert_eq!(config.cluster, "prod");
        assert_eq!(config.listen.to_string(), "0.0.0.0:9798");
        assert_eq!(config.window, Duration::from_secs(300));
        assert_eq!(config.deviation, 0.10);
        assert_eq!(config.weights.len(), 11);
        assert_eq!(config.rules.len(), 15);
        assert!(config.kafka.is_none());
        assert_eq!(
            config.rule("KafkaPreferredLeaderImbalance").threshold,
            Some(0.10)
        );
        assert!(config.consumer_groups.watches("anything"));
        assert!(config
            .consumer_groups
            .alert_statuses
            .contains(&Status::Stop));
        assert!(!config
            .consumer_groups
            .alert_statuses
            .contains(&Status::Warn));
        let saturated = config.rule("KafkaHostDiskSaturated");
        assert_eq!(saturated.threshold, Some(0.9));
        assert_eq!(saturated.for_duration, Duration::from_secs(600));
        assert_eq!(config.rule("KafkaAgentDown").severity, Severity::Critical);
        assert_eq!(config.group_of(4), "default");
    }

    #[test]
    fn the_example_file_is_valid_and_documents_every_section() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("brokerwatch-collector.example.toml");
        let text = std::fs::read_to_string(path).unwrap();
        let config = from_toml_text(&text, "example", &Flags::default()).unwrap();
        assert_eq!(config.groups["payments"], [1, 2, 3].into());
        assert_eq!(config.group_of(2), "payments");
        let kafka = config.kafka.as_ref().unwrap();
        assert_eq!(
            kafka.properties["bootstrap.servers"],
            "kafka-1:9092,kafka-2:9092"
        );
        assert_eq!(kafka.expected_brokers.len(), 4);
        let groups = &config.consumer_groups;
        assert!(
            groups.watches("billing")
                && groups.watches("orders-app")
                && !groups.watches("console-consumer-42")
        );
        assert_eq!(groups.max_lag_messages("billing"), Some(10_000));
        assert_eq!(groups.max_lag_seconds("billing"), Some(60.0));
        assert_eq!(groups.max_lag_seconds("other"), Some(900.0));
        assert_eq!(groups.rules.stop_after_seconds, 120.0);
        for key in [
            "cluster",
            "listen",
            "state_dir",
            "evaluation_interval",
            "[ingest]",
            "tokens",
            "token_file",
            "allow_unauthenticated",
            "max_body_bytes",
            "max_decoded_bytes",
            "[store]",
            "window",
            "broker_missing_after",
            "[load]",
            "deviation",
            "disk_deviation",
            "[load.weights]",
            "[[groups]]",
            "[rules.",
            "for",
            "severity",
            "threshold",
            "enabled",
            "[alertmanager]",
            "urls",
            "resend_interval",
            "timeout",
            "resolved_retention",
            "[kafka]",
            "metadata_interval",
            "topic_config_interval",
            "expected_brokers",
            "[kafka.properties]",
            "[consumer_groups]",
            "groups",
            "include",
            "exclude",
            "fetch_interval",
            "stop_after",
            "err_lag",
            "alert_statuses",
            "max_lag_messages",
            "max_lag",
            "[consumer_groups.limits.",
        ] {
            assert!(
                text.contains(&format!("\n{key}")) || text.contains(&format!("\n# {key}")),
                "{key} undocumented"
            );
        }
        for rule in RULES {
            assert!(text.contains(rule), "{rule} undocumented");
        }
    }

    #[test]
    fn every_bad_value_gets_one_line_naming_the_key() {
        let cases = [
            ("[ingest]\ntokens = [\"t\"]", "config c.toml: cluster: not set"),
            ("cluster = \"p\"", "config c.toml: ingest.tokens: no token"),
            ("cluster = \"p\"\nlisten = \"nine\"\n[ingest]\ntokens = [\"t\"]", "config c.toml: listen: \"nine\" is not an address"),
            (&format!("{MINIMAL}[store]\nwindow = \"0s\""), "config c.toml: store.window: must be more than 0"),
            (&format!("{MINIMAL}[load]\ndeviation = 2.0"), "config c.toml: load.deviation: 2 is not a ratio"),
            (&format!("{MINIMAL}[load.weights]\ndisk = 1.0"), "config c.toml: load.weights: \"disk\" is not a load metric"),
            (&format!("{MINIMAL}[[groups]]\nname = \"a\"\nbrokers = [1]\n[[groups]]\nname = \"b\"\nbrokers = [1]"), "config c.toml: groups: broker 1 is in both \"a\" and \"b\""),
            (&format!("{MINIMAL}[rules.KafkaHostDiskSaturated]\nthreshold = 90"), "config c.toml: rules.KafkaHostDiskSaturated.threshold: 90 is not a ratio"),
            (&format!("{MINIMAL}[rules.KafkaBrokerLoadDeviation]\nthreshold = 0.2"), "config c.toml: rules.KafkaBrokerLoadDeviation.threshold: this rule has no threshold"),
            (&format!("{MINIMAL}[rules.KafkaDiskFull]\nfor = \"1m\""), "config c.toml: rules: \"KafkaDiskFull\" is not a rule"),
            (&format!("{MINIMAL}[rules.KafkaAgentDown]\nseverity = \"page\""), "config c.toml line 5: unknown variant `page`"),
            (&format!("{MINIMAL}[alertmanager]\nurls = [\"am:9093\"]"), "config c.toml: alertmanager.urls: \"am:9093\" is not a URL"),
            (&format!("{MINIMAL}[ingest]\ntoken_file = \"/nonexistent\""), "config c.toml line 4: "),
        ];
        for (text, expected) in cases {
            let err = error(text);
            assert!(
                err.starts_with(expected),
                "for {text:?}:\n got {err:?}\nwant {expected:?}..."
            );
            assert!(!err.contains('\n'));
        }
    }

    #[test]
    fn tokens_come_from_the_file_too() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        std::fs::write(&path, "# agents of rack 1\nabc\n\n  def  \n").unwrap();
        let text = format!(
            "cluster = \"p\"\n[ingest]\ntoken_file = {:?}\n",
            path.display().to_string()
        );
        let config = from_toml_text(&text, "c", &Flags::default()).unwrap();
        let exposed: Vec<&str> = config.tokens.iter().map(Secret::expose).collect();
        assert_eq!(exposed, ["abc", "def"]);
        assert!(
            !format!("{config:?}").contains("abc"),
            "a token shows in the config's Debug"
        );
        let text = "cluster = \"p\"\n[ingest]\ntoken_file = \"/nonexistent/tokens\"\n";
        assert!(error(text)
            .starts_with("config c.toml: ingest.token_file: cannot read /nonexistent/tokens ("));
    }

    #[test]
    fn tokens_from_the_environment_variable_the_config_names() {
        std::env::set_var("BROKERWATCH_TEST_TOKENS_A", " ghi, jkl ,");
        let text = "cluster = \"p\"\n[ingest]\ntokens = [\"abc\"]\ntoken_env = \"BROKERWATCH_TEST_TOKENS_A\"\n";
        let config = from_toml_text(text, "c", &Flags::default()).unwrap();
        let exposed: Vec<&str> = config.tokens.iter().map(Secret::expose).collect();
        assert_eq!(exposed, ["abc", "ghi", "jkl"]);
        let text = "cluster = \"p\"\n[ingest]\ntoken_env = \"BROKERWATCH_TEST_TOKENS_UNSET\"\n";
        assert_eq!(
            error(text),
            "config c.toml: ingest.token_env: the environment variable BROKERWATCH_TEST_TOKENS_UNSET is not set"
        );
    }
}
