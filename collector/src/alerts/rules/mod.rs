//! The alert rules: each turns what the collector knows at one evaluation
//! into verdicts, one per subject it can judge now. A subject it cannot
//! judge (a broker with no fresh report, for the host rules; the cluster's
//! state while its metadata is stale) gets no verdict, so its alert keeps
//! its state rather than resolving for lack of data. One file per area:
//! the load, the hosts, the brokers' health, the cluster's replication,
//! consumer lag, topics, the end-to-end probe and the controllers.

mod broker;
mod cluster;
mod host;
mod lag;
mod load;
mod probe;
mod topics;

use std::collections::{BTreeMap, BTreeSet};

use super::judge::Judge;
use super::state::Verdict;
use crate::config::Config;
use crate::kafka::checks::ClusterState;
use crate::model::cluster::ClusterLoad;
use crate::model::lag::GroupLag;
use crate::model::replication::ReplicationFacts;
use crate::model::topics::TopicsFacts;
use crate::store::{LargePartition, Store, TopicOnBrokers};

pub use cluster::KafkaHealth;
pub use topics::Rates;

/// What the rules judge at one evaluation.
pub struct Inputs<'a> {
    pub now: f64,
    pub store: &'a Store,
    pub load: &'a ClusterLoad,
    /// When each broker's agent last reported.
    pub last_seen: &'a BTreeMap<i32, f64>,
    /// Brokers known from before a restart that have not reported since,
    /// and are not yet past `broker_missing_after`: their groups wait.
    pub awaited: &'a BTreeSet<i32>,
    /// What the Kafka checks found, fresh or not (see `kafka` and the fields below).
    pub cluster: &'a ClusterState,
    /// Whether the cluster can be read (`None` without `[kafka]`).
    pub kafka: Option<&'a KafkaHealth>,
    /// The replication analysis, while the metadata is fresh.
    pub replication: Option<&'a ReplicationFacts>,
    /// The groups' lag, while their offsets are fresh.
    pub groups: &'a [GroupLag],
    /// Groups the cluster stopped reporting lately (fresh offsets only).
    pub gone_groups: &'a [String],
    /// Every topic, while the end offsets are fresh.
    pub topics: Option<&'a TopicsFacts>,
    /// Records per second per topic, while the end offsets are fresh.
    pub topic_rates: Option<Rates<'a>>,
    /// Bytes per second per quota user, while agents report.
    pub user_rates: Option<Rates<'a>>,
    /// Each topic as the agents with a fresh report see it.
    pub topics_on_brokers: &'a BTreeMap<String, TopicOnBrokers>,
    /// The largest and fastest-written partitions the agents gave.
    pub large_partitions: &'a [LargePartition],
}

/// Every rule's verdicts at one evaluation.
pub fn verdicts(config: &Config, inputs: &Inputs) -> Vec<Verdict> {
    let mut j = Judge::new(&config.rules, &config.cluster);
    load::judge(&mut j, config, inputs);
    host::judge(&mut j, config, inputs);
    broker::judge(&mut j, config, inputs);
    cluster::judge(&mut j, inputs);
    lag::judge(&mut j, config, inputs);
    topics::judge(&mut j, config, inputs);
    probe::judge(&mut j, config, inputs);
    j.verdicts
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    static NO_TIMES: BTreeMap<i32, f64> = BTreeMap::new();
    static NO_BROKERS: BTreeSet<i32> = BTreeSet::new();
    static NO_TOPICS: BTreeMap<String, TopicOnBrokers> = BTreeMap::new();
    static NO_CLUSTER: std::sync::LazyLock<ClusterState> =
        std::sync::LazyLock::new(ClusterState::default);

    impl<'a> Inputs<'a> {
        /// What the rules judge when nothing else is known: the store and
        /// the load given, at `now`, and nothing from the cluster.
        pub(crate) fn quiet(store: &'a Store, load: &'a ClusterLoad, now: f64) -> Self {
            Inputs {
                now,
                store,
                load,
                last_seen: &NO_TIMES,
                awaited: &NO_BROKERS,
                cluster: &NO_CLUSTER,
                kafka: None,
                replication: None,
                groups: &[],
                gone_groups: &[],
                topics: None,
                topic_rates: None,
                user_rates: None,
                topics_on_brokers: &NO_TOPICS,
                large_partitions: &[],
            }
        }
    }
    use crate::config::{from_toml_text, Flags};

    pub(crate) fn config(text: &str) -> Config {
        from_toml_text(text, "test", &Flags::default()).unwrap()
    }

    /// The default config, with KafkaHostIowaitHigh off.
    pub(crate) fn default_config() -> Config {
        config("cluster = \"prod\"\n[ingest]\nallow_unauthenticated = true\n[rules.KafkaHostIowaitHigh]\nenabled = false\n")
    }

    pub(crate) fn find<'a>(
        verdicts: &'a [Verdict],
        alertname: &str,
        subject: &[(&str, &str)],
    ) -> &'a Verdict {
        verdicts
            .iter()
            .find(|v| {
                v.labels["alertname"] == alertname
                    && subject
                        .iter()
                        .all(|(k, val)| v.labels.get(*k).map(String::as_str) == Some(*val))
            })
            .unwrap_or_else(|| panic!("no {alertname} {subject:?} verdict"))
    }

    /// The verdicts on the agents' reports in `store`.
    pub(crate) fn host_verdicts(
        config: &Config,
        store: &Store,
        last_seen: &BTreeMap<i32, f64>,
        now: f64,
    ) -> Vec<Verdict> {
        let (rows, disks) = store.load_rows(
            &config.groups,
            &BTreeSet::new(),
            config.broker_missing_after.as_secs_f64(),
            now,
            None,
        );
        let load = crate::model::cluster::cluster_load(&config.load_params(), rows, disks);
        verdicts(
            config,
            &Inputs {
                last_seen,
                ..Inputs::quiet(store, &load, now)
            },
        )
    }

    /// The verdicts on the cluster's own state.
    pub(crate) fn cluster_verdicts(
        config: &Config,
        kafka: Option<&KafkaHealth>,
        replication: Option<&ReplicationFacts>,
        groups: &[GroupLag],
    ) -> Vec<Verdict> {
        let load = crate::model::cluster::cluster_load(
            &config.load_params(),
            BTreeMap::new(),
            BTreeMap::new(),
        );
        let store = Store::new(300.0);
        verdicts(
            config,
            &Inputs {
                kafka,
                replication,
                groups,
                ..Inputs::quiet(&store, &load, 0.0)
            },
        )
    }
}
