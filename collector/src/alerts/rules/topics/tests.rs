use std::collections::BTreeMap;

use super::super::tests::{config, find};
use super::*;
use crate::alerts::rules::{verdicts, Inputs};
use crate::alerts::state::Verdict;
use crate::model::cluster::cluster_load;
use crate::model::topics::PartitionFacts;

const DAY: f64 = 86_400.0;
const NOW: f64 = 10.0 * DAY;

/// A topic of `rates.len()` partitions, partition p led by broker p + 1,
/// with its replicas on `replicas` brokers and its rates as given.
fn topic(name: &str, rates: &[f64], rf: usize, replicas: usize) -> TopicFacts {
    TopicFacts {
        topic: name.into(),
        internal: name.starts_with("__"),
        replication_factor: rf,
        min_insync_replicas: None,
        replica_brokers: replicas,
        leader_brokers: rates.len().min(replicas),
        records_per_second: Some(rates.iter().sum()),
        rates_complete: true,
        produced_total: 0,
        first_seen_at: 0.0,
        last_message_at: Some(NOW - 60.0),
        leader_changes_total: 0,
        flapping: Vec::new(),
        partitions: rates
            .iter()
            .enumerate()
            .map(|(p, r)| PartitionFacts {
                partition: p as i32,
                leader: p as i32 + 1,
                end_offset: Some(1000),
                records_per_second: Some(*r),
            })
            .collect(),
    }
}

fn judged(
    text: &str,
    topics: Vec<TopicFacts>,
    brokers: usize,
    rates: Option<Rates>,
) -> Vec<Verdict> {
    let facts = TopicsFacts { brokers, topics };
    judged_with(text, Some(&facts), rates, (&BTreeMap::new(), &[]))
}

/// The verdicts with the agents' view of topics too.
fn judged_with(
    text: &str,
    facts: Option<&TopicsFacts>,
    rates: Option<Rates>,
    (topics_on_brokers, large_partitions): (
        &BTreeMap<String, crate::store::TopicOnBrokers>,
        &[crate::store::LargePartition],
    ),
) -> Vec<Verdict> {
    let config = config(&format!(
        "cluster = \"prod\"\n[ingest]\nallow_unauthenticated = true\n{text}"
    ));
    let load = cluster_load(&config.load_params(), BTreeMap::new(), BTreeMap::new());
    let store = crate::store::Store::new(300.0);
    let verdicts = verdicts(
        &config,
        &Inputs {
            topics: facts,
            topic_rates: rates,
            topics_on_brokers,
            large_partitions,
            ..Inputs::quiet(&store, &load, NOW)
        },
    );
    for v in verdicts.iter().filter(|v| v.active) {
        for text in v.annotations.values() {
            assert!(!text.contains('{'), "a placeholder left: {text}");
        }
    }
    verdicts
}

fn active<'a>(verdicts: &'a [Verdict], alert: &str, topic: &str) -> Option<&'a Verdict> {
    let v = find(verdicts, alert, &[("topic", topic)]);
    v.active.then_some(v)
}

#[test]
fn a_topic_quiet_for_a_day_is_a_clean_up_candidate() {
    let mut quiet = topic("old-events", &[0.0, 0.0], 3, 4);
    quiet.last_message_at = Some(NOW - DAY - 3600.0);
    let mut never = topic("never-used", &[0.0], 3, 3);
    never.last_message_at = None;
    never.first_seen_at = NOW - 2.0 * DAY;
    let mut recent = topic("orders", &[5.0, 5.0], 3, 4);
    recent.last_message_at = Some(NOW - DAY + 60.0);
    let mut internal = topic("__consumer_offsets", &[0.0], 3, 3);
    internal.last_message_at = None;
    let verdicts = judged("", vec![quiet, never, recent, internal], 4, None);
    let v = active(&verdicts, "KafkaTopicNoTraffic", "old-events").unwrap();
    assert_eq!(v.labels["severity"], "info");
    assert_eq!(
        v.annotations["summary"],
        "Topic old-events has taken no record for 1day 1h"
    );
    assert!(
        v.annotations["description"].starts_with(
            "Its end offsets have not moved since 1970-01-09T23:00:00Z (2 partitions)."
        ),
        "{}",
        v.annotations["description"]
    );
    let v = active(&verdicts, "KafkaTopicNoTraffic", "never-used").unwrap();
    assert!(v.annotations["description"]
        .contains("(when brokerwatch first saw it; it took none since)"));
    assert!(active(&verdicts, "KafkaTopicNoTraffic", "orders").is_none());
    assert!(!verdicts
        .iter()
        .any(|v| v.labels["alertname"] == "KafkaTopicNoTraffic"
            && v.labels["topic"] == "__consumer_offsets"));
    // Configurable.
    let mut recent = topic("orders", &[5.0, 5.0], 3, 4);
    recent.last_message_at = Some(NOW - 7200.0);
    let verdicts = judged(
        "[topics]\nno_traffic_after = \"2h\"\n",
        vec![recent],
        4,
        None,
    );
    assert!(active(&verdicts, "KafkaTopicNoTraffic", "orders").is_some());
}

#[test]
fn skew_names_the_hot_partitions_and_their_leaders() {
    let verdicts = judged(
        "",
        vec![
            topic("orders", &[70.0, 10.0, 10.0, 10.0], 3, 4),
            topic("even", &[10.0, 10.0, 10.0, 10.0], 3, 4),
            topic("trickle", &[0.7, 0.1, 0.1, 0.0], 3, 4),
        ],
        4,
        None,
    );
    let v = active(&verdicts, "KafkaTopicPartitionSkew", "orders").unwrap();
    assert_eq!(
        v.annotations["summary"],
        "Topic orders: 1 of its 4 partitions take 70.0% of its records"
    );
    assert!(v.annotations["description"].starts_with("Hottest: partition 0 (led by broker 1) 70.0 records/s against a mean of 25.0 records/s per partition."), "{}", v.annotations["description"]);
    assert!(active(&verdicts, "KafkaTopicPartitionSkew", "even").is_none());
    assert!(
        active(&verdicts, "KafkaTopicPartitionSkew", "trickle").is_none(),
        "0.9 records/s: under the floor"
    );
    let verdicts = judged(
        "[rules.KafkaTopicPartitionSkew]\nthreshold = 3.0\n",
        vec![topic("orders", &[70.0, 10.0, 10.0, 10.0], 3, 4)],
        4,
        None,
    );
    assert!(
        active(&verdicts, "KafkaTopicPartitionSkew", "orders").is_none(),
        "70 < 3 × 25"
    );
}

#[test]
fn a_low_replication_factor_says_what_it_risks() {
    let mut at_min_isr = topic("payments", &[1.0], 2, 2);
    at_min_isr.min_insync_replicas = Some(2);
    let verdicts = judged(
        "",
        vec![
            topic("logs", &[1.0, 1.0], 1, 2),
            topic("orders", &[1.0], 3, 3),
            at_min_isr.clone(),
        ],
        4,
        None,
    );
    let v = active(&verdicts, "KafkaTopicReplicationFactorLow", "logs").unwrap();
    assert_eq!(
        v.annotations["summary"],
        "Topic logs has replication factor 1 (this cluster's topics should have 3)"
    );
    assert!(v.annotations["description"]
        .starts_with("One broker's loss makes its partitions unavailable"));
    assert!(v.annotations["description"].contains("listing 3 replicas per partition"));
    assert!(active(&verdicts, "KafkaTopicReplicationFactorLow", "orders").is_none());
    let v = active(&verdicts, "KafkaTopicReplicationFactorLow", "payments").unwrap();
    assert!(v.annotations["summary"].ends_with("(this cluster's topics should have 3)"));
    // With min_replication_factor 2, payments is low only for its min.insync.replicas.
    let verdicts = judged(
        "[topics]\nmin_replication_factor = 2\n",
        vec![at_min_isr.clone()],
        4,
        None,
    );
    let v = active(&verdicts, "KafkaTopicReplicationFactorLow", "payments").unwrap();
    assert_eq!(
        v.annotations["summary"],
        "Topic payments has replication factor 2, no more than its min.insync.replicas 2"
    );
    assert!(
        v.annotations["description"].starts_with("Producers with acks=all get NOT_ENOUGH_REPLICAS")
    );
    // One broker, or two: nothing better is possible.
    let verdicts = judged("", vec![topic("logs", &[1.0], 1, 1)], 1, None);
    assert!(active(&verdicts, "KafkaTopicReplicationFactorLow", "logs").is_none());
    let verdicts = judged("", vec![at_min_isr], 2, None);
    assert!(active(&verdicts, "KafkaTopicReplicationFactorLow", "payments").is_none());
}

#[test]
fn a_topic_on_fewer_brokers_than_it_could_use_is_concentrated() {
    // 4 partitions of RF 2 span 5 brokers as Kafka lays them out; on 3 (0.6 < 0.75).
    let verdicts = judged(
        "",
        vec![
            topic("orders", &[1.0; 4], 2, 3),
            topic("wide", &[1.0; 4], 2, 4),
            topic("single", &[1.0], 1, 1),
        ],
        6,
        None,
    );
    let v = active(&verdicts, "KafkaTopicConcentrated", "orders").unwrap();
    assert_eq!(
        v.annotations["summary"],
        "Topic orders sits on 3 of the 5 brokers its replicas could use"
    );
    assert!(v.annotations["description"].starts_with(
        "Its 4 partitions' replicas are on 3 brokers (of 5 they could use), their leaders on 3 (of 4)."
    ), "{}", v.annotations["description"]);
    assert!(active(&verdicts, "KafkaTopicConcentrated", "wide").is_none());
    assert!(
        active(&verdicts, "KafkaTopicConcentrated", "single").is_none(),
        "one broker is all it could use"
    );
    // Leaders piled on one broker, replicas spread.
    let mut leaders = topic("leaders", &[1.0; 4], 3, 6);
    leaders.leader_brokers = 2;
    let verdicts = judged("", vec![leaders], 6, None);
    let v = active(&verdicts, "KafkaTopicConcentrated", "leaders").unwrap();
    assert_eq!(
        v.annotations["summary"],
        "Topic leaders sits on 2 of the 4 brokers its leaders could use"
    );
}

#[test]
fn flapping_leaders_name_the_partitions() {
    let mut flapping = topic("orders", &[1.0; 3], 3, 3);
    flapping.flapping = vec![(2, 4), (0, 3), (1, 2)];
    let mut calm = topic("calm", &[1.0; 3], 3, 3);
    calm.flapping = vec![(0, 2)];
    let verdicts = judged("", vec![flapping, calm], 3, None);
    let v = active(&verdicts, "KafkaPartitionLeaderFlapping", "orders").unwrap();
    assert_eq!(
        v.annotations["summary"],
        "Topic orders: 2 partitions changed leader 3 times or more in the last hour"
    );
    assert!(
        v.annotations["description"].starts_with(
            "Partitions (changes): 2 (4), 0 (3). Leaders involved now: broker 1, broker 3."
        ),
        "{}",
        v.annotations["description"]
    );
    assert!(active(&verdicts, "KafkaPartitionLeaderFlapping", "calm").is_none());
}

#[test]
fn a_surge_fires_with_its_direction_and_figures() {
    let mut series = Series::default();
    let mut at = NOW - 3600.0;
    while at < NOW {
        series.record(
            at,
            [("orders".to_owned(), 100.0), ("calm".to_owned(), 50.0)],
            10,
        );
        at += 30.0;
    }
    for _ in 0..3 {
        series.record(
            at,
            [("orders".to_owned(), 250.0), ("calm".to_owned(), 50.0)],
            10,
        );
        at += 30.0;
    }
    let rates = Rates {
        series: &series,
        at: at - 30.0,
    };
    let verdicts = judged("", vec![], 3, Some(rates));
    let surge = find(
        &verdicts,
        "KafkaTopicTrafficAnomaly",
        &[("topic", "orders"), ("direction", "surge")],
    );
    assert!(surge.active);
    assert_eq!(
        surge.annotations["summary"],
        "Topic orders's traffic surged: 250 records/s against 100 usual"
    );
    assert!(surge.annotations["description"].starts_with("The last three reads' median is 2.50× of the last hour's median (less than a day of history"), "{}", surge.annotations["description"]);
    assert!(
        !find(
            &verdicts,
            "KafkaTopicTrafficAnomaly",
            &[("topic", "orders"), ("direction", "drop")]
        )
        .active
    );
    assert!(
        !find(
            &verdicts,
            "KafkaTopicTrafficAnomaly",
            &[("topic", "calm"), ("direction", "surge")]
        )
        .active
    );
}

#[test]
fn a_partition_written_too_fast_or_holding_too_much_is_named_with_its_broker() {
    use crate::store::{LargePartition, TopicOnBrokers};
    use brokerwatch_common::PartitionSize;
    let large = |topic: &str, partition, size_bytes, written: Option<f64>| LargePartition {
        broker: 2,
        log_dir: "/data/kafka-1".into(),
        size: PartitionSize {
            topic: topic.into(),
            partition,
            size_bytes,
            written_bytes_per_day: written,
        },
    };
    const GIB: f64 = 1_073_741_824.0;
    let partitions = [
        large("clicks", 7, 500 * (1 << 30), Some(150.0 * GIB)),
        large("clicks", 3, 10, Some(120.0 * GIB)),
        large("archive", 0, 3 << 40, Some(1.0 * GIB)),
        large("orders", 1, 1 << 30, Some(99.0 * GIB)),
    ];
    let seen: BTreeMap<String, TopicOnBrokers> = ["clicks", "archive", "orders", "gone"]
        .iter()
        .map(|t| (t.to_string(), TopicOnBrokers::default()))
        .collect();
    let judge = |text: &str| judged_with(text, None, None, (&seen, &partitions));
    let verdicts = judge("");
    let v = active(&verdicts, "KafkaPartitionTooLarge", "clicks").unwrap();
    assert_eq!(
        v.annotations["summary"],
        "Topic clicks: partition 7 is written 150.0 GiB a day"
    );
    assert!(v.annotations["description"].starts_with("On broker 2, /data/kafka-1: 150.0 GiB written a day (limit 100.0 GiB), 500.0 GiB held."), "{}", v.annotations["description"]);
    assert!(
        active(&verdicts, "KafkaPartitionTooLarge", "orders").is_none(),
        "99 GiB a day"
    );
    assert!(
        active(&verdicts, "KafkaPartitionTooLarge", "archive").is_none(),
        "no size limit by default"
    );
    assert!(!find(&verdicts, "KafkaPartitionTooLarge", &[("topic", "gone")]).active);
    let verdicts = judge("[topics]\nmax_partition_bytes = 1099511627776\n");
    let v = active(&verdicts, "KafkaPartitionTooLarge", "archive").unwrap();
    assert_eq!(
        v.annotations["summary"],
        "Topic archive: partition 0 holds 3.0 TiB"
    );
}
