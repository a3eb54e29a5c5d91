//! The API's views of a fixed 20-minute input (agents' reports, one cluster
//! snapshot, consumer-group offsets; `golden/input.rs`) are byte-for-byte the
//! golden files, which were written by the collector before its daemon was
//! split into tasks: `/api/v1/load`, `/api/v1/alerts` and
//! `/api/v1/replication` as the HTTP handlers serialise them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use brokerwatch_collector::config::{from_toml_text, Flags};
use brokerwatch_collector::daemon::views::{alert_views, replication_view};
use brokerwatch_collector::daemon::Evaluator;
use brokerwatch_collector::kafka::checks::{ClusterState, Groups, Metadata};
use brokerwatch_collector::model::lag::{evaluate_groups, Histories, Sample};
use brokerwatch_collector::model::replication::{analyze, PartitionMeta, Snapshot, TopicMeta};
use brokerwatch_collector::model::LoadView;
use brokerwatch_collector::store::Store;

#[path = "golden/input.rs"]
mod input;

fn snapshot() -> Snapshot {
    let (brokers, topics) = input::snapshot();
    Snapshot {
        brokers,
        topics: topics
            .into_iter()
            .map(|(name, min_insync_replicas, partitions)| TopicMeta {
                name,
                min_insync_replicas,
                partitions: partitions
                    .into_iter()
                    .map(|(id, leader, replicas, isr)| PartitionMeta {
                        id,
                        leader,
                        replicas,
                        isr,
                    })
                    .collect(),
            })
            .collect(),
    }
}

#[test]
fn views_match_the_golden_files() {
    let dir = tempfile::tempdir().unwrap();
    let config =
        Arc::new(from_toml_text(&input::config(dir.path()), "golden", &Flags::default()).unwrap());
    let mut evaluator = Evaluator::new(
        config.clone(),
        Default::default(),
        Default::default(),
        input::START,
    );
    let mut store = Store::new(config.window.as_secs_f64());
    let mut last_report = BTreeMap::new();
    let mut cluster = ClusterState::default();
    let offsets = input::offsets();
    let mut step = 0;
    let mut now = input::START;
    let mut evaluation = None;
    while now <= input::END {
        for broker in input::reporting(step) {
            last_report.insert(broker, now - 1.0);
            store.insert(input::report(broker, step), now - 1.0);
        }
        let expected: BTreeSet<i32> = config
            .kafka
            .as_ref()
            .unwrap()
            .expected_brokers
            .union(&cluster.brokers_seen)
            .copied()
            .collect();
        let snapshot = snapshot();
        let facts = analyze(&snapshot, &expected);
        cluster
            .brokers_seen
            .extend(snapshot.brokers.iter().copied());
        cluster.metadata = Some(Metadata {
            at: now - input::METADATA_AGE,
            partitions: Arc::default(),
            facts: Arc::new(facts),
            snapshot: Arc::new(snapshot),
            leaders: Arc::default(),
        });
        let mut histories = Histories::new();
        for ((group, topic, partition), samples) in &offsets {
            let history = histories
                .entry((group.clone(), topic.clone(), *partition))
                .or_default();
            for (at, committed, end) in samples.iter().filter(|s| s.0 <= now) {
                history.record(
                    Sample {
                        at: *at,
                        committed: *committed,
                        end: *end,
                    },
                    &config.consumer_groups.rules,
                );
            }
        }
        cluster.groups = Some(Groups {
            at: now - 1.0,
            lag: Arc::new(evaluate_groups(&histories, &config.consumer_groups.rules)),
            gone: Vec::new(),
            history: Arc::default(),
            described: Arc::default(),
        });
        evaluation =
            Some(evaluator.evaluate(&store, &last_report, &Arc::new(cluster.clone()), now));
        step += 1;
        now += 60.0;
    }
    let evaluation = evaluation.unwrap();
    let load = serde_json::to_string(&LoadView {
        groups: evaluation.load.views(),
    })
    .unwrap();
    let alerts = serde_json::to_string(&alert_views(&evaluation.alerts)).unwrap();
    let replication =
        serde_json::to_string(&replication_view(&config, &evaluation.cluster, input::END)).unwrap();
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    for (name, actual) in [
        ("load.json", load),
        ("alerts.json", alerts),
        ("replication.json", replication),
    ] {
        let path = golden.join(name);
        if std::env::var_os("BLESS").is_some() {
            std::fs::write(&path, &actual).unwrap();
        }
        let expected = std::fs::read_to_string(&path).unwrap();
        assert_eq!(actual, expected, "{name} differs from the golden file");
    }
}
