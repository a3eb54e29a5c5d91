//! One evaluation: the load picture, the rules, and the alert book. A pure
//! function of what it is given (the store, the cluster's state, the time)
//! and of the book it owns: no clock, no lock, no file, no network here.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use brokerwatch_common::exposition::Families;
use prometheus::proto::MetricFamily;

use crate::alerts::rules::{self, Inputs, KafkaHealth, Rates};
use crate::alerts::state::{AlertBook, Retention, Transition};
use crate::config::Config;
use crate::kafka::checks::ClusterState;
use crate::metrics::evaluation_families;
use crate::model::anomaly::Series;
use crate::model::cluster::{cluster_load, ClusterLoad};
use crate::model::lag::GroupLag;
use crate::model::replication::ReplicationFacts;
use crate::persist::{Persisted, TrafficHistory};
use crate::store::Store;

/// What one evaluation found, as the API, the notifiers and `/metrics` read it.
#[derive(Debug, Clone)]
pub struct Evaluation {
    pub at: f64,
    pub load: ClusterLoad,
    pub alerts: AlertBook,
    pub cluster: Arc<ClusterState>,
    /// The groups' verdicts, while their offsets are fresh.
    pub groups: Arc<Vec<GroupLag>>,
    /// Each topic as the agents with a fresh report see it (bytes in and
    /// out, size), and the largest and fastest-written partitions they gave.
    pub topics_on_brokers: Arc<BTreeMap<String, crate::store::TopicOnBrokers>>,
    pub large_partitions: Arc<Vec<crate::store::LargePartition>>,
    /// What changed, with the summary it changed with.
    pub transitions: Vec<(Transition, String)>,
    /// This evaluation's series.
    pub families: Vec<MetricFamily>,
}

impl Evaluation {
    /// The replication analysis, while the metadata is fresh.
    pub fn fresh_replication(&self, config: &Config) -> Option<&ReplicationFacts> {
        fresh_metadata(config, &self.cluster, self.at)
    }
}

/// The metadata's analysis unless it is older than three refreshes.
fn fresh_metadata<'a>(
    config: &Config,
    cluster: &'a ClusterState,
    now: f64,
) -> Option<&'a ReplicationFacts> {
    let kafka = config.kafka.as_ref()?;
    let metadata = cluster.metadata.as_ref()?;
    (now - metadata.at <= kafka.metadata_stale_after()).then_some(&*metadata.facts)
}

pub struct Evaluator {
    config: Arc<Config>,
    book: AlertBook,
    /// When this run started, for a cluster that never answered.
    started_at: f64,
    /// Records per second per topic, and when the last round was recorded.
    topic_rates: Series,
    topics_at: f64,
    /// Bytes per second per quota user, and when they were last recorded.
    user_rates: Series,
    users_at: Option<f64>,
    /// What an earlier run remembered of each topic, until the cluster's
    /// first round of end offsets takes it over.
    restored_topics: Arc<BTreeMap<String, crate::model::topics::TopicMemory>>,
}

impl Evaluator {
    pub fn new(
        config: Arc<Config>,
        book: AlertBook,
        traffic: TrafficHistory,
        started_at: f64,
    ) -> Self {
        Evaluator {
            config,
            book,
            started_at,
            topic_rates: traffic.topic_rates,
            topics_at: 0.0,
            user_rates: traffic.user_rates,
            users_at: None,
            restored_topics: Arc::new(traffic.topics),
        }
    }

    /// What `traffic.json` keeps: each topic's memory as the cluster's
    /// checks last gave it, and the traffic histories.
    pub fn traffic_history(&self, cluster: &ClusterState) -> TrafficHistory {
        TrafficHistory {
            topics: cluster
                .topics
                .as_ref()
                .map_or_else(|| self.restored_topics.clone(), |t| t.memory.clone())
                .as_ref()
                .clone(),
            topic_rates: self.topic_rates.clone(),
            user_rates: self.user_rates.clone(),
        }
    }

    /// Records the traffic that is new since the last evaluation: a fresh
    /// round of topics, and the users' rates from the agents that report them.
    fn record_traffic(
        &mut self,
        store: &Store,
        fresh_topics: Option<&crate::kafka::checks::Topics>,
        now: f64,
    ) {
        let settings = &self.config.topics;
        if let Some(topics) = fresh_topics.filter(|t| t.at > self.topics_at) {
            self.topic_rates.record(
                topics.at,
                topics
                    .facts
                    .topics
                    .iter()
                    .filter(|t| !t.internal && t.rates_complete)
                    .filter_map(|t| Some((t.topic.clone(), t.records_per_second?))),
                settings.max_histories,
            );
            self.topics_at = topics.at;
        }
        let missing_after = self.config.broker_missing_after.as_secs_f64();
        // Users' sums only from rounds where no broker's metrics failed: a
        // broker missing from the sum would read as a drop of its users.
        let fresh: Vec<_> = store
            .brokers()
            .filter(|(b, _)| store.is_fresh(**b, now, missing_after))
            .map(|(_, e)| &e.latest.host)
            .collect();
        let reporting = fresh.iter().any(|h| h.broker_metrics.is_some())
            && fresh.iter().all(|h| h.broker_metrics_error.is_none());
        if reporting {
            self.user_rates.record(
                now,
                store.user_bytes_per_second(now, missing_after),
                settings.max_histories,
            );
            self.users_at = Some(now);
        }
    }

    pub fn book(&self) -> &AlertBook {
        &self.book
    }

    /// Evaluates at `now`: `last_report` says when each agent last reported.
    pub fn evaluate(
        &mut self,
        store: &Store,
        last_report: &BTreeMap<i32, f64>,
        cluster: &Arc<ClusterState>,
        now: f64,
    ) -> Evaluation {
        let config = &*self.config;
        let known: BTreeSet<i32> = last_report.keys().copied().collect();
        // Metadata older than three refreshes, and offsets older than three
        // fetches, are not reported as fresh: their alerts wait and their
        // series are withheld, and KafkaClusterUnreachable says why.
        let kafka_health = config.kafka.as_ref().map(|kafka| {
            let age = cluster
                .metadata
                .as_ref()
                .map_or(now - self.started_at, |m| now - m.at);
            KafkaHealth {
                stale_for_seconds: (age > kafka.metadata_stale_after()).then_some(age),
                error: cluster.error.clone(),
            }
        });
        let replication = fresh_metadata(config, cluster, now);
        let fresh_groups = cluster
            .groups
            .as_ref()
            .filter(|g| now - g.at <= config.consumer_groups.offsets_stale_after());
        let groups = fresh_groups.map(|g| g.lag.clone()).unwrap_or_default();
        let fresh_topics = cluster
            .topics
            .as_ref()
            .filter(|t| now - t.at <= config.consumer_groups.offsets_stale_after());
        self.record_traffic(store, fresh_topics, now);
        let config = &*self.config;
        let gone_groups = fresh_groups.map_or(&[][..], |g| g.gone.as_slice());
        let agents_missing_after = config.broker_missing_after.as_secs_f64();
        let topics_on_brokers = Arc::new(store.topics_on_brokers(now, agents_missing_after));
        let large_partitions = Arc::new(store.large_partitions(now, agents_missing_after));
        let (rows, disks) = store.load_rows(
            &config.groups,
            &known,
            config.broker_missing_after.as_secs_f64(),
            now,
            replication,
        );
        let load = cluster_load(&config.load_params(), rows, disks);
        let missing_after = config.broker_missing_after.as_secs_f64();
        let awaited: BTreeSet<i32> = if now - self.started_at <= missing_after {
            known
                .iter()
                .copied()
                .filter(|b| store.get(*b).is_none())
                .collect()
        } else {
            BTreeSet::new()
        };
        let verdicts = rules::verdicts(
            config,
            &Inputs {
                now,
                store,
                load: &load,
                last_seen: last_report,
                awaited: &awaited,
                cluster,
                kafka: kafka_health.as_ref(),
                replication,
                groups: &groups,
                gone_groups,
                topics: fresh_topics.map(|t| &*t.facts),
                topic_rates: fresh_topics.map(|t| Rates {
                    series: &self.topic_rates,
                    at: t.at,
                }),
                topics_on_brokers: &topics_on_brokers,
                large_partitions: &large_partitions,
                user_rates: self
                    .users_at
                    .filter(|at| now - at <= config.broker_missing_after.as_secs_f64())
                    .map(|at| Rates {
                        series: &self.user_rates,
                        at,
                    }),
            },
        );
        let retention = Retention {
            unjudged_seconds: (config.window + config.broker_missing_after).as_secs_f64(),
            resolved_seconds: config.resolved_retention.as_secs_f64(),
            for_tolerance_seconds: config.evaluation_interval.as_secs_f64() / 2.0,
        };
        let transitions = self
            .book
            .apply(verdicts, now, retention)
            .into_iter()
            .map(|transition| {
                let summary = self
                    .book
                    .alerts
                    .get(transition.id())
                    .and_then(|a| a.annotations.get("summary"))
                    .cloned()
                    .unwrap_or_default();
                (transition, summary)
            })
            .collect();
        let mut families = Families::new(&[("cluster", &config.cluster)]);
        evaluation_families(
            &mut families,
            config,
            &load,
            last_report,
            &self.book,
            &groups,
        );
        let mut restarts = families.counter(
            "brokerwatch_broker_restarts_total",
            "Broker process restarts the agents' reports showed (its start time changed) since the collector started.",
        );
        for (broker, entry) in store.brokers() {
            restarts.add(&[("broker", &broker.to_string())], entry.restarts as f64);
        }
        cluster.expose(
            &mut families,
            now,
            replication.is_some(),
            fresh_groups.is_some(),
            fresh_topics.map(|_| &config.topics),
        );
        crate::kafka::checks::topics::expose_agents(
            &mut families,
            fresh_topics.map(|t| &*t.facts),
            &topics_on_brokers,
            &large_partitions,
            config.topics.top_n,
        );
        Evaluation {
            at: now,
            load,
            alerts: self.book.clone(),
            cluster: cluster.clone(),
            groups,
            topics_on_brokers,
            large_partitions,
            transitions,
            families: families.into_vec(),
        }
    }

    /// What the state file keeps of this evaluation.
    pub fn persisted(&self, last_report: &BTreeMap<i32, f64>, cluster: &ClusterState) -> Persisted {
        Persisted {
            alerts: self.book.clone(),
            last_report: last_report.clone(),
            kafka_brokers_seen: cluster.brokers_seen.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::state::Phase;
    use crate::config::{from_toml_text, Flags};
    use crate::store::tests::report;

    fn config() -> Arc<Config> {
        Arc::new(
            from_toml_text(
                "cluster = \"c\"\n[ingest]\nallow_unauthenticated = true\n[rules.KafkaClusterLoadImbalance]\nfor = \"0s\"\n[rules.KafkaBrokerLoadDeviation]\nfor = \"0s\"\n",
                "test",
                &Flags::default(),
            )
            .unwrap(),
        )
    }

    fn imbalance(evaluation: &Evaluation) -> Option<Phase> {
        evaluation
            .alerts
            .alerts
            .values()
            .find(|a| a.labels["alertname"] == "KafkaClusterLoadImbalance")
            .map(|a| a.phase)
    }

    #[test]
    fn after_a_restart_a_group_waits_for_its_brokers_before_it_is_judged_again() {
        let cluster = Arc::new(ClusterState::default());
        // Before the restart: broker 4 carries 4 times the others' load.
        let mut store = Store::new(300.0);
        let mut evaluator = Evaluator::new(
            config(),
            AlertBook::default(),
            TrafficHistory::default(),
            0.0,
        );
        let mut last_report = BTreeMap::new();
        for broker in 1..=4 {
            store.insert(report(broker, if broker == 4 { 4.0 } else { 1.0 }), 100.0);
            last_report.insert(broker, 100.0);
        }
        let before = evaluator.evaluate(&store, &last_report, &cluster, 100.0);
        assert_eq!(imbalance(&before), Some(Phase::Firing));
        let starts_at = before.alerts.firing().next().unwrap().starts_at;

        // Restarted at 200 with the book and the last reports from the state
        // file; brokers 1 and 2 report first, evenly.
        let mut evaluator = Evaluator::new(
            config(),
            before.alerts.clone(),
            TrafficHistory::default(),
            200.0,
        );
        let mut store = Store::new(300.0);
        for broker in [1, 2] {
            store.insert(report(broker, 1.0), 205.0);
            last_report.insert(broker, 205.0);
        }
        let early = evaluator.evaluate(&store, &last_report, &cluster, 210.0);
        assert_eq!(
            imbalance(&early),
            Some(Phase::Firing),
            "judged on half the group, it would resolve and fire again with a new startsAt"
        );
        // Brokers 3 and 4 report: the group is whole and still uneven.
        for broker in [3, 4] {
            store.insert(report(broker, if broker == 4 { 4.0 } else { 1.0 }), 215.0);
            last_report.insert(broker, 215.0);
        }
        let whole = evaluator.evaluate(&store, &last_report, &cluster, 220.0);
        assert_eq!(imbalance(&whole), Some(Phase::Firing));
        assert_eq!(whole.alerts.firing().next().unwrap().starts_at, starts_at);
        // A broker that never comes back is missing once broker_missing_after
        // (60 s) has passed since the restart, and the rest is judged.
        let mut store = Store::new(300.0);
        let mut evaluator = Evaluator::new(
            config(),
            before.alerts.clone(),
            TrafficHistory::default(),
            200.0,
        );
        for broker in [1, 2, 3] {
            store.insert(report(broker, 1.0), 265.0);
            last_report.insert(broker, 265.0);
        }
        last_report.insert(4, 100.0);
        let later = evaluator.evaluate(&store, &last_report, &cluster, 265.0);
        assert_eq!(imbalance(&later), Some(Phase::Resolved));
    }

    #[test]
    fn broker_restarts_are_counted_from_the_reports() {
        let mut store = Store::new(300.0);
        let started = |ticks: u64| {
            let mut r = report(1, 1.0);
            r.host.broker_process = Some(brokerwatch_common::BrokerProcessReport {
                pid: 7,
                cpu_seconds: 1.0,
                resident_memory_bytes: 1,
                threads: 1,
                open_fds: 1,
                max_fds: None,
                read_bytes: None,
                written_bytes: None,
                start_time_ticks: ticks,
            });
            r
        };
        for (at, ticks) in [
            (10.0, 100),
            (20.0, 100),
            (30.0, 900),
            (40.0, 900),
            (50.0, 1700),
        ] {
            store.insert(started(ticks), at);
        }
        let mut evaluator = Evaluator::new(
            config(),
            AlertBook::default(),
            TrafficHistory::default(),
            0.0,
        );
        let evaluation = evaluator.evaluate(
            &store,
            &BTreeMap::from([(1, 50.0)]),
            &Arc::new(ClusterState::default()),
            50.0,
        );
        let mut text = String::new();
        prometheus::TextEncoder::new()
            .encode_utf8(&evaluation.families, &mut text)
            .unwrap();
        assert!(
            text.contains("brokerwatch_broker_restarts_total{broker=\"1\",cluster=\"c\"} 2"),
            "{text}"
        );
    }

    #[test]
    fn users_and_topics_traffic_is_recorded_each_evaluation_and_a_surge_fires() {
        use crate::kafka::checks::Topics;
        use crate::model::topics::{TopicFacts, TopicsFacts};
        use brokerwatch_common::{BrokerMetricsReport, UserQuota};
        let config = Arc::new(
            from_toml_text(
                "cluster = \"c\"\n[ingest]\nallow_unauthenticated = true\n[rules.KafkaUserTrafficAnomaly]\nfor = \"0s\"\n[rules.KafkaTopicTrafficAnomaly]\nfor = \"0s\"\n",
                "test",
                &Flags::default(),
            )
            .unwrap(),
        );
        let mut evaluator =
            Evaluator::new(config, AlertBook::default(), TrafficHistory::default(), 0.0);
        let mut store = Store::new(300.0);
        let cluster_at = |at: f64, rate: f64| {
            Arc::new(ClusterState {
                topics: Some(Topics {
                    at,
                    facts: Arc::new(TopicsFacts {
                        brokers: 1,
                        topics: vec![TopicFacts {
                            topic: "orders".into(),
                            internal: false,
                            replication_factor: 1,
                            min_insync_replicas: None,
                            replica_brokers: 1,
                            leader_brokers: 1,
                            records_per_second: Some(rate),
                            rates_complete: true,
                            produced_total: 0,
                            first_seen_at: 0.0,
                            last_message_at: Some(at),
                            leader_changes_total: 0,
                            flapping: Vec::new(),
                            partitions: Vec::new(),
                        }],
                    }),
                    memory: Arc::default(),
                }),
                ..ClusterState::default()
            })
        };
        let mut last = None;
        let mut at = 1_000_000.0;
        for step in 0..130 {
            let (bytes, records) = if step < 127 {
                (1000.0, 50.0)
            } else {
                (5000.0, 200.0)
            };
            let mut r = report(1, 1.0);
            r.host.broker_metrics = Some(BrokerMetricsReport {
                quotas: vec![UserQuota {
                    user: "ingest".into(),
                    produce_bytes_per_second: Some(bytes),
                    ..UserQuota::default()
                }],
                ..BrokerMetricsReport::default()
            });
            store.insert(r, at);
            last = Some(evaluator.evaluate(
                &store,
                &BTreeMap::from([(1, at)]),
                &cluster_at(at, records),
                at,
            ));
            if step == 126 {
                assert_eq!(last.as_ref().unwrap().alerts.firing().count(), 0);
            }
            at += 30.0;
        }
        let firing: Vec<String> = last
            .unwrap()
            .alerts
            .firing()
            .map(|a| format!("{} {}", a.labels["alertname"], a.labels["direction"]))
            .collect();
        assert_eq!(
            firing,
            [
                "KafkaTopicTrafficAnomaly surge",
                "KafkaUserTrafficAnomaly surge"
            ]
        );
        // Both histories are what traffic.json keeps.
        let kept = evaluator.traffic_history(&ClusterState::default());
        assert!(kept.topic_rates.histories().contains_key("orders"));
        assert!(kept.user_rates.histories().contains_key("ingest"));
    }
}
