//! `[consumer_groups]`: which groups are watched, how their lag is judged,
//! and when it alerts.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::Deserialize;

use super::Keys;
use crate::model::lag::{LagRules, Status};

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
    /// The end-to-end probe's own group: watched only when named in `groups`.
    pub probe_group: Option<String>,
}

impl GroupsConfig {
    /// Whether a group the cluster lists is watched.
    pub fn watches(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
            || (self.probe_group.as_deref() != Some(group)
                && self.include.as_ref().is_none_or(|r| r.is_match(group))
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
pub(super) struct GroupsSection {
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

impl GroupsSection {
    pub fn check(self, keys: &Keys) -> Result<GroupsConfig, String> {
        let key = |k: &str| format!("consumer_groups.{k}");
        let pattern =
            |k: &str, text: Option<String>| -> Result<Option<regex_lite::Regex>, String> {
                match text.filter(|t| !t.is_empty()) {
                    None => Ok(None),
                    Some(text) => regex_lite::Regex::new(&text).map(Some).map_err(|e| {
                        keys.fail(
                            &key(k),
                            format!(
                                "invalid regular expression {text:?}: {}",
                                brokerwatch_common::one_line(&e.to_string())
                            ),
                        )
                    }),
                }
            };
        let seconds = |k: &str, text: Option<String>, default: f64| -> Result<f64, String> {
            Ok(keys
                .duration(&key(k), text, Duration::from_secs_f64(default))?
                .as_secs_f64())
        };
        let defaults = LagRules::default();
        let alert_statuses = match self.alert_statuses {
            None => [Status::Err, Status::Stop, Status::Stall, Status::Rewind].into(),
            Some(names) => names
                .iter()
                .map(|n| {
                    Status::ALL
                        .into_iter()
                        .find(|s| s.as_str().eq_ignore_ascii_case(n))
                        .ok_or_else(|| {
                            keys.fail(
                                &key("alert_statuses"),
                                format!("{n:?} is not one of OK, WARN, ERR, STOP, STALL, REWIND"),
                            )
                        })
                })
                .collect::<Result<BTreeSet<_>, _>>()?,
        };
        let mut max_lag_messages = BTreeMap::new();
        let mut max_lag_seconds = BTreeMap::new();
        for (group, limits) in self.limits {
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
            groups: self.groups,
            include: pattern("include", self.include)?,
            exclude: pattern("exclude", self.exclude)?,
            fetch_interval: keys.duration(
                &key("fetch_interval"),
                self.fetch_interval,
                Duration::from_secs(30),
            )?,
            rules: LagRules {
                window_seconds: seconds("window", self.window, defaults.window_seconds)?,
                stop_after_seconds: seconds(
                    "stop_after",
                    self.stop_after,
                    defaults.stop_after_seconds,
                )?,
                commit_intervals_to_stop: defaults.commit_intervals_to_stop,
                err_lag_seconds: seconds("err_lag", self.err_lag, defaults.err_lag_seconds)?,
            },
            alert_statuses,
            max_lag_messages,
            max_lag_seconds,
            default_max_lag_messages: self.max_lag_messages,
            default_max_lag_seconds: self
                .max_lag
                .map(|text| seconds("max_lag", Some(text), 0.0))
                .transpose()?,
            probe_group: None,
        })
    }
}
