//! The collector's configuration: a TOML file (every key is documented in
//! `brokerwatch-collector.example.toml`) with `--listen` on top. The file is
//! read with serde into one struct per section, each section checked by its
//! own function; every bad value is one line naming the key and what to
//! write instead.

mod groups;
mod probe;
mod sections;
mod topics;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use brokerwatch_common::web::WebConfig;
use brokerwatch_common::Secret;

use crate::catalogue::{self, Alert, Severity};
use crate::model::cluster::{LoadParams, ResourceGroups};
use crate::model::load::Weights;

pub use groups::GroupsConfig;
pub use probe::ProbeConfig;
use sections::FileConfig;
pub use topics::TopicsConfig;

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
    /// The most brokers the collector keeps reports of: a report of one
    /// more is refused (counted), so a token holder cannot make it keep without end.
    pub max_brokers: usize,
    pub window: Duration,
    pub broker_missing_after: Duration,
    pub deviation: f64,
    pub disk_deviation: f64,
    /// Whether a broker (or disk) below its share alerts too; by default
    /// only the overloaded side does, naming the others as where to move load.
    pub alert_underloaded: bool,
    pub weights: Weights,
    pub groups: ResourceGroups,
    pub rules: Rules,
    pub alertmanagers: Vec<String>,
    pub resend_interval: Duration,
    pub alertmanager_timeout: Duration,
    pub resolved_retention: Duration,
    /// The cluster itself, when `[kafka]` is configured.
    pub kafka: Option<KafkaConfig>,
    pub consumer_groups: GroupsConfig,
    pub topics: TopicsConfig,
    /// The end-to-end probe (only where `[kafka]` is configured).
    pub probe: ProbeConfig,
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

/// The longest duration a config may give.
const MAX_DURATION: Duration = Duration::from_secs(30 * 86_400);

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

impl Config {
    /// The resource group of a broker: its configured group, or `default`.
    pub fn group_of(&self, broker: i32) -> &str {
        self.groups.group_of(broker)
    }

    pub fn rule(&self, alert: Alert) -> &Rule {
        &self.rules[&alert]
    }

    /// The load model's settings.
    pub fn load_params(&self) -> LoadParams {
        LoadParams {
            weights: self.weights.clone(),
            deviation: self.deviation,
            disk_deviation: self.disk_deviation,
        }
    }
}

/// The operator's settings of one rule (`[rules.NAME]`), defaults from the catalogue.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub enabled: bool,
    /// How long the condition must hold before the alert fires.
    pub for_duration: Duration,
    pub severity: Severity,
    /// The rule's threshold, where it has one (a ratio 0..1).
    pub threshold: Option<f64>,
}

impl Rule {
    /// The catalogue's defaults for `alert`.
    pub fn default_for(alert: Alert) -> Rule {
        let spec = alert.spec();
        Rule {
            enabled: true,
            for_duration: Duration::from_secs(spec.for_seconds),
            severity: spec.severity,
            threshold: spec.threshold.map(|t| t.default),
        }
    }
}

/// Every rule's settings.
pub type Rules = BTreeMap<Alert, Rule>;

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

/// Names the config and the key in every error.
pub(crate) struct Keys<'a> {
    origin: &'a str,
}

impl Keys<'_> {
    pub(crate) fn fail(&self, key: &str, problem: impl std::fmt::Display) -> String {
        format!("{}: {key}: {problem}", self.origin)
    }

    /// A duration, `default` when unset; 0 only for a `for`.
    pub(crate) fn duration(
        &self,
        key: &str,
        text: Option<String>,
        default: Duration,
    ) -> Result<Duration, String> {
        let Some(text) = text else {
            return Ok(default);
        };
        let value = brokerwatch_common::parse_duration(&text).map_err(|e| self.fail(key, e))?;
        if value.is_zero() && !key.ends_with(".for") {
            return Err(self.fail(key, "must be more than 0"));
        }
        // Nothing the collector waits for takes a month: such a value is a slip.
        if value > MAX_DURATION {
            return Err(self.fail(key, format!("{text} is out of range; use at most 30d")));
        }
        Ok(value)
    }

    /// A duration within `min..=max`, `default` when unset.
    pub(crate) fn bounded(
        &self,
        key: &str,
        text: Option<String>,
        default: Duration,
        (min, max): (Duration, Duration),
    ) -> Result<Duration, String> {
        match text {
            None => Ok(default),
            Some(text) => brokerwatch_common::config::bounded_duration(&text, min, max)
                .map_err(|e| self.fail(key, e)),
        }
    }

    /// A size in bytes within `min..=max`, `default` when unset.
    pub(crate) fn bytes(
        &self,
        key: &str,
        value: Option<usize>,
        default: usize,
        (min, max): (usize, usize),
    ) -> Result<usize, String> {
        let value = value.unwrap_or(default);
        if (min..=max).contains(&value) {
            Ok(value)
        } else {
            Err(self.fail(key, format!("{value} is out of range; use {min} to {max}")))
        }
    }

    /// A ratio in (0, 1], `default` when unset.
    pub(crate) fn positive(
        &self,
        key: &str,
        value: Option<f64>,
        default: f64,
    ) -> Result<f64, String> {
        let value = value.unwrap_or(default);
        if value > 0.0 && value.is_finite() && value <= 1e9 {
            Ok(value)
        } else {
            Err(self.fail(key, format!("{value} is not a positive number")))
        }
    }

    pub(crate) fn ratio(&self, key: &str, value: Option<f64>, default: f64) -> Result<f64, String> {
        let value = value.unwrap_or(default);
        if value > 0.0 && value <= 1.0 {
            Ok(value)
        } else {
            Err(self.fail(
                key,
                format!("{value} is not a ratio in (0, 1]; e.g. 0.1 for 10 %"),
            ))
        }
    }
}

pub fn from_toml_text(text: &str, origin: &str, flags: &Flags) -> Result<Config, String> {
    let file: FileConfig = brokerwatch_common::from_toml(text, origin)?;
    let keys = Keys { origin };
    let cluster = file
        .cluster
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| {
            keys.fail(
                "cluster",
                "not set; name the Kafka cluster, it labels every alert",
            )
        })?;
    let listen_text = flags
        .listen
        .clone()
        .or(file.listen)
        .unwrap_or_else(|| "0.0.0.0:9798".into());
    let listen = brokerwatch_common::config::listen_address(&listen_text, "0.0.0.0:9798")
        .map_err(|e| keys.fail("listen", e))?;
    let ingest = file.ingest.check(&keys)?;
    let alertmanager = file.alertmanager.check(&keys)?;
    let probe = file.probe.check(&keys)?;
    let mut consumer_groups = file.consumer_groups.check(&keys)?;
    consumer_groups.probe_group = Some(probe.group.clone()).filter(|_| probe.enabled);
    Ok(Config {
        cluster,
        listen,
        state_dir: file
            .state_dir
            .unwrap_or_else(|| PathBuf::from("/var/lib/brokerwatch-collector")),
        evaluation_interval: keys.bounded(
            "evaluation_interval",
            file.evaluation_interval,
            Duration::from_secs(10),
            (Duration::from_millis(100), Duration::from_secs(3600)),
        )?,
        tokens: ingest.tokens,
        web: WebConfig::load_configured(file.web_config_file.as_deref(), origin)?,
        allow_unauthenticated: ingest.allow_unauthenticated,
        max_body_bytes: ingest.max_body_bytes,
        max_decoded_bytes: ingest.max_decoded_bytes,
        max_brokers: ingest.max_brokers,
        window: keys.duration("store.window", file.store.window, Duration::from_secs(300))?,
        broker_missing_after: keys.duration(
            "store.broker_missing_after",
            file.store.broker_missing_after,
            Duration::from_secs(60),
        )?,
        deviation: keys.ratio("load.deviation", file.load.deviation, 0.10)?,
        disk_deviation: keys.ratio("load.disk_deviation", file.load.disk_deviation, 0.10)?,
        alert_underloaded: file.load.alert_underloaded,
        weights: file.load.weights(&keys)?,
        groups: sections::resource_groups(&keys, file.groups)?,
        rules: sections::rules(&keys, file.rules)?,
        alertmanagers: alertmanager.urls,
        resend_interval: alertmanager.resend_interval,
        alertmanager_timeout: alertmanager.timeout,
        resolved_retention: alertmanager.resolved_retention,
        kafka: file.kafka.map(|k| k.check(&keys)).transpose()?,
        consumer_groups,
        topics: file.topics.check(&keys)?,
        probe,
    })
}

/// Every rule name, for the config's error messages.
fn rule_names() -> String {
    catalogue::names()
}

#[cfg(test)]
mod tests;
