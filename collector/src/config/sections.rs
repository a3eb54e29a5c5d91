//! The file's sections as serde reads them, and the check of each.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use brokerwatch_common::config::{http_url, token_lines};
use brokerwatch_common::Secret;
use serde::Deserialize;

use super::groups::GroupsSection;
use super::topics::TopicsSection;
use super::{rule_names, KafkaConfig, Keys};
use super::{Rule, Rules};
use crate::catalogue::{Alert, Severity, CATALOGUE};
use crate::model::cluster::ResourceGroups;
use crate::model::load::{load_weights, Metric, Weights};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileConfig {
    pub cluster: Option<String>,
    pub listen: Option<String>,
    pub state_dir: Option<PathBuf>,
    pub evaluation_interval: Option<String>,
    pub web_config_file: Option<PathBuf>,
    #[serde(default)]
    pub ingest: IngestSection,
    #[serde(default)]
    pub store: StoreSection,
    #[serde(default)]
    pub load: LoadSection,
    #[serde(default)]
    pub groups: Vec<GroupSection>,
    #[serde(default)]
    pub rules: BTreeMap<String, RuleSection>,
    #[serde(default)]
    pub alertmanager: AlertmanagerSection,
    pub kafka: Option<KafkaSection>,
    #[serde(default)]
    pub consumer_groups: GroupsSection,
    #[serde(default)]
    pub topics: TopicsSection,
    #[serde(default)]
    pub probe: super::probe::ProbeSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct IngestSection {
    #[serde(default)]
    tokens: Vec<String>,
    token_file: Option<PathBuf>,
    token_env: Option<String>,
    #[serde(default)]
    allow_unauthenticated: bool,
    max_body_bytes: Option<usize>,
    max_decoded_bytes: Option<usize>,
    max_brokers: Option<usize>,
}

pub(super) struct Ingest {
    pub max_brokers: usize,
    pub tokens: Vec<Secret>,
    pub allow_unauthenticated: bool,
    pub max_body_bytes: usize,
    pub max_decoded_bytes: usize,
}

impl IngestSection {
    pub fn check(self, keys: &Keys) -> Result<Ingest, String> {
        // A token is compared as sent, after `Bearer `: surrounding blanks
        // (easy to paste in) would make it one no agent can present.
        let mut tokens: Vec<String> = self
            .tokens
            .iter()
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .collect();
        if let Some(path) = &self.token_file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                keys.fail(
                    "ingest.token_file",
                    format!("cannot read {} ({e})", path.display()),
                )
            })?;
            tokens.extend(token_lines(&text));
        }
        if let Some(name) = &self.token_env {
            let value = std::env::var(name).map_err(|_| {
                keys.fail(
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
        if tokens.is_empty() && !self.allow_unauthenticated {
            return Err(keys.fail(
                "ingest.tokens",
                "no token: set tokens or token_file, or allow_unauthenticated = true to accept anyone",
            ));
        }
        let max_body_bytes = keys.bytes(
            "ingest.max_body_bytes",
            self.max_body_bytes,
            1 << 20,
            (1024, 1 << 30),
        )?;
        Ok(Ingest {
            max_brokers: keys.bytes(
                "ingest.max_brokers",
                self.max_brokers,
                10_000,
                (1, 1_000_000),
            )?,
            tokens: tokens.into_iter().map(Secret::new).collect(),
            allow_unauthenticated: self.allow_unauthenticated,
            max_body_bytes,
            max_decoded_bytes: keys.bytes(
                "ingest.max_decoded_bytes",
                self.max_decoded_bytes,
                16 << 20,
                (max_body_bytes, 1 << 30),
            )?,
        })
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StoreSection {
    pub window: Option<String>,
    pub broker_missing_after: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LoadSection {
    pub deviation: Option<f64>,
    pub disk_deviation: Option<f64>,
    #[serde(default)]
    pub alert_underloaded: bool,
    #[serde(default)]
    weights: BTreeMap<String, f64>,
}

impl LoadSection {
    /// The default weights but those given.
    pub fn weights(&self, keys: &Keys) -> Result<Weights, String> {
        let mut weights = load_weights();
        for (name, &weight) in &self.weights {
            let metric = Metric::from_name(name).ok_or_else(|| {
                keys.fail(
                    "load.weights",
                    format!(
                        "{name:?} is not a load metric; use any of {}",
                        Metric::names()
                    ),
                )
            })?;
            if !(weight.is_finite() && weight >= 0.0) {
                return Err(keys.fail(
                    &format!("load.weights.{name}"),
                    format!("{weight} is not a weight of 0 or more"),
                ));
            }
            weights.insert(metric, weight);
        }
        Ok(weights)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GroupSection {
    name: String,
    brokers: Vec<i32>,
}

/// Resource groups: named, disjoint sets of brokers.
pub(super) fn resource_groups(
    keys: &Keys,
    sections: Vec<GroupSection>,
) -> Result<ResourceGroups, String> {
    let mut groups: BTreeMap<String, BTreeSet<i32>> = BTreeMap::new();
    let mut owner: BTreeMap<i32, String> = BTreeMap::new();
    for group in sections {
        if group.name.trim().is_empty() || groups.contains_key(&group.name) {
            return Err(keys.fail(
                "groups",
                format!("group name {:?} is empty or used twice", group.name),
            ));
        }
        for broker in &group.brokers {
            if let Some(other) = owner.insert(*broker, group.name.clone()) {
                return Err(keys.fail(
                    "groups",
                    format!("broker {broker} is in both {other:?} and {:?}; resource groups never share brokers", group.name),
                ));
            }
        }
        groups.insert(group.name, group.brokers.into_iter().collect());
    }
    Ok(ResourceGroups(groups))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RuleSection {
    enabled: Option<bool>,
    #[serde(rename = "for")]
    for_duration: Option<String>,
    severity: Option<Severity>,
    threshold: Option<f64>,
}

/// Every rule of the catalogue, with the operator's settings over its defaults.
pub(super) fn rules(
    keys: &Keys,
    mut sections: BTreeMap<String, RuleSection>,
) -> Result<Rules, String> {
    let mut rules = Rules::new();
    for spec in &CATALOGUE {
        let section = sections.remove(spec.name).unwrap_or_default();
        let defaults = Rule::default_for(spec.alert);
        let key = |k: &str| format!("rules.{}.{k}", spec.name);
        let threshold = match (defaults.threshold, spec.threshold) {
            (None, _) | (_, None) if section.threshold.is_some() => {
                return Err(keys.fail(&key("threshold"), "this rule has no threshold"))
            }
            (Some(default), Some(t)) if t.is_ratio => {
                Some(keys.ratio(&key("threshold"), section.threshold, default)?)
            }
            (Some(default), Some(_)) => {
                Some(keys.positive(&key("threshold"), section.threshold, default)?)
            }
            _ => None,
        };
        rules.insert(
            spec.alert,
            Rule {
                enabled: section.enabled.unwrap_or(true),
                for_duration: keys.duration(
                    &key("for"),
                    section.for_duration,
                    defaults.for_duration,
                )?,
                severity: section.severity.unwrap_or(defaults.severity),
                threshold,
            },
        );
    }
    if let Some(unknown) = sections.keys().next() {
        return Err(keys.fail(
            "rules",
            format!("{unknown:?} is not a rule; use any of {}", rule_names()),
        ));
    }
    debug_assert!(rules.len() == CATALOGUE.len() && rules.contains_key(&Alert::KafkaAgentDown));
    Ok(rules)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AlertmanagerSection {
    #[serde(default)]
    urls: Vec<String>,
    resend_interval: Option<String>,
    timeout: Option<String>,
    resolved_retention: Option<String>,
}

pub(super) struct Alertmanager {
    pub urls: Vec<String>,
    pub resend_interval: Duration,
    pub timeout: Duration,
    pub resolved_retention: Duration,
}

impl AlertmanagerSection {
    pub fn check(self, keys: &Keys) -> Result<Alertmanager, String> {
        Ok(Alertmanager {
            urls: self
                .urls
                .iter()
                .map(|u| {
                    http_url(u, "URL", "http://alertmanager:9093")
                        .map_err(|e| keys.fail("alertmanager.urls", e))
                })
                .collect::<Result<_, _>>()?,
            resend_interval: keys.duration(
                "alertmanager.resend_interval",
                self.resend_interval,
                Duration::from_secs(60),
            )?,
            timeout: keys.duration(
                "alertmanager.timeout",
                self.timeout,
                Duration::from_secs(10),
            )?,
            resolved_retention: keys.duration(
                "alertmanager.resolved_retention",
                self.resolved_retention,
                Duration::from_secs(900),
            )?,
        })
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct KafkaSection {
    #[serde(default)]
    properties: BTreeMap<String, String>,
    metadata_interval: Option<String>,
    topic_config_interval: Option<String>,
    timeout: Option<String>,
    #[serde(default)]
    expected_brokers: Vec<i32>,
}

impl KafkaSection {
    pub fn check(self, keys: &Keys) -> Result<KafkaConfig, String> {
        if !self.properties.contains_key("bootstrap.servers") {
            return Err(keys.fail("kafka.properties", "bootstrap.servers is not set; list the cluster's brokers, e.g. \"kafka-1:9092,kafka-2:9092\""));
        }
        Ok(KafkaConfig {
            properties: self.properties,
            metadata_interval: keys.duration(
                "kafka.metadata_interval",
                self.metadata_interval,
                Duration::from_secs(30),
            )?,
            topic_config_interval: keys.duration(
                "kafka.topic_config_interval",
                self.topic_config_interval,
                Duration::from_secs(600),
            )?,
            timeout: keys.duration("kafka.timeout", self.timeout, Duration::from_secs(10))?,
            expected_brokers: self.expected_brokers.into_iter().collect(),
        })
    }
}
