//! Topics at scale: 1,000,000 partitions (20,000 topics of 50) over 1,000
//! brokers, replication 3, every partition written to.
//! - one round of end offsets: the traffic model's update and the topics'
//!   facts (rates, skew, spread, leader changes), as the poller runs it
//!   every fetch_interval, and the ListOffsets requests it takes;
//! - one evaluation with those facts and 5,000 topics' traffic histories of
//!   an hour each: the topic rules (no traffic, skew, replication factor,
//!   concentration, flapping, anomalies) and the topic series.
//!
//! Prints best and median times and the memory the topics add over the
//! snapshot (which the replication analysis holds anyway).
//! Targets: under 1 s and 1 GiB added.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use brokerwatch_collector::config::{from_toml_text, Flags};
use brokerwatch_collector::daemon::Evaluator;
use brokerwatch_collector::kafka::checks::{ClusterState, Metadata, Topics};
use brokerwatch_collector::model::anomaly::Series;
use brokerwatch_collector::model::replication::{analyze, PartitionMeta, Snapshot, TopicMeta};
use brokerwatch_collector::model::topics::{LeaderChanges, Traffic};
use brokerwatch_collector::persist::TrafficHistory;
use brokerwatch_collector::store::Store;

mod common;
use common::{peak_rss_mib, rss_mib, time};

const BROKERS: i32 = 1000;
const TOPICS: usize = 20_000;
const PARTITIONS: i32 = 50;
const FETCH_SECONDS: f64 = 30.0;

fn snapshot(moved: bool) -> Snapshot {
    let topics = (0..TOPICS)
        .map(|t| TopicMeta {
            name: format!("topic-{t:05}"),
            partitions: (0..PARTITIONS)
                .map(|p| {
                    let first = (t as i32 * 7 + p) % BROKERS;
                    let replicas = vec![first, (first + 1) % BROKERS, (first + 2) % BROKERS];
                    // 1 % of leaders moved to their second replica.
                    let leader = if moved && (t as i32 + p) % 100 == 0 {
                        replicas[1]
                    } else {
                        first
                    };
                    PartitionMeta {
                        id: p,
                        leader,
                        isr: replicas.clone(),
                        replicas,
                    }
                })
                .collect(),
            min_insync_replicas: Some(2),
        })
        .collect();
    Snapshot {
        brokers: (0..BROKERS).collect(),
        topics,
    }
}

/// End offsets at `round`: partition 0 of every tenth topic takes ten
/// times its siblings' records (a keyed producer).
fn ends(snapshot: &Snapshot, round: i64) -> Vec<(String, i32, i64)> {
    let mut ends = Vec::with_capacity(snapshot.topics.len() * PARTITIONS as usize);
    for (t, topic) in snapshot.topics.iter().enumerate() {
        for p in &topic.partitions {
            let per_round = if t % 10 == 0 && p.id == 0 { 3000 } else { 300 };
            ends.push((topic.name.clone(), p.id, per_round * round));
        }
    }
    ends
}

fn main() {
    let before = snapshot(false);
    let after = snapshot(true);
    let rounds = [ends(&before, 1), ends(&before, 2)];
    let baseline = rss_mib();
    println!(
        "snapshots and two rounds of end offsets for 1,000,000 partitions over 1,000 brokers: RSS {baseline:.0} MiB"
    );
    let leaders: BTreeSet<i32> = after
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| p.leader))
        .collect();
    println!(
        "one fetch round: {} ListOffsets requests (librdkafka batches the partition list by leader: one per leader)",
        leaders.len()
    );

    let started = Instant::now();
    let mut traffic = Traffic::default();
    let mut changes = LeaderChanges::default();
    changes.observe(&before, 0.0);
    traffic.observe(
        &before,
        rounds[0].iter().map(|(t, p, e)| (t.as_str(), *p, *e)),
        0.0,
    );
    println!(
        "first round (every partition new): {:.2?}",
        started.elapsed()
    );
    let now = FETCH_SECONDS;
    let (best, median) = time(5, || {
        let mut traffic = traffic.clone();
        let mut changes = changes.clone();
        changes.observe(&after, now);
        traffic.observe(
            &after,
            rounds[1].iter().map(|(t, p, e)| (t.as_str(), *p, *e)),
            now,
        );
        traffic
            .facts(&after, &changes.summary(now), now)
            .topics
            .len()
    });
    changes.observe(&after, now);
    traffic.observe(
        &after,
        rounds[1].iter().map(|(t, p, e)| (t.as_str(), *p, *e)),
        now,
    );
    let facts = traffic.facts(&after, &changes.summary(now), now);
    println!(
        "a fetch round (rates, leader changes, each topic's facts): best {best:.2?}, median {median:.2?}; peak RSS {:.0} MiB",
        peak_rss_mib()
    );

    // 5,000 topics with an hour of history at one read every 30 s.
    let mut series = Series::default();
    for step in 0..120 {
        let at = now - 3600.0 + step as f64 * FETCH_SECONDS;
        series.record(
            at,
            facts.topics.iter().map(|t| (t.topic.clone(), 500.0)),
            5_000,
        );
    }
    let config = Arc::new(
        from_toml_text(
            "cluster = \"bench\"\n[ingest]\nallow_unauthenticated = true\n[kafka]\n[kafka.properties]\n\"bootstrap.servers\" = \"localhost:9092\"\n",
            "bench",
            &Flags::default(),
        )
        .expect("config"),
    );
    let memory = Arc::new(traffic.memory());
    let cluster = Arc::new(ClusterState {
        metadata: Some(Metadata {
            at: now,
            partitions: Arc::default(),
            facts: Arc::new(analyze(&after, &BTreeSet::new())),
            snapshot: Arc::new(after),
            leaders: Arc::new(changes.summary(now)),
        }),
        topics: Some(Topics {
            at: now,
            facts: Arc::new(facts),
            memory,
        }),
        ..ClusterState::default()
    });
    let history = TrafficHistory {
        topic_rates: series,
        ..TrafficHistory::default()
    };
    let store = Store::new(300.0);
    let (best, median) = time(5, || {
        let mut evaluator =
            Evaluator::new(config.clone(), Default::default(), history.clone(), 0.0);
        evaluator
            .evaluate(&store, &BTreeMap::new(), &cluster, now)
            .alerts
            .alerts
            .len()
    });
    let mut evaluator = Evaluator::new(config.clone(), Default::default(), history.clone(), 0.0);
    let evaluation = evaluator.evaluate(&store, &BTreeMap::new(), &cluster, now);
    let mut firing: BTreeMap<&str, usize> = BTreeMap::new();
    for alert in evaluation.alerts.alerts.values() {
        *firing
            .entry(alert.labels["alertname"].as_str())
            .or_default() += 1;
    }
    println!(
        "an evaluation (topic rules and series, 5,000 anomaly histories): best {best:.2?}, median {median:.2?}; alerts raised {firing:?}"
    );
    println!(
        "peak RSS {:.0} MiB: {:.0} MiB over the snapshots and offsets",
        peak_rss_mib(),
        peak_rss_mib() - baseline
    );
    let written = serde_json::to_vec(&evaluator.traffic_history(&cluster))
        .unwrap()
        .len();
    println!(
        "traffic.json for 20,000 topics and 5,000 histories: {:.1} MiB",
        written as f64 / 1_048_576.0
    );
}
