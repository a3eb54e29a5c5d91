//! The collector's Kafka path against librdkafka's mock cluster: what the
//! real client reads (metadata, committed and end offsets) goes through the
//! same analysis and lag evaluation the daemon uses.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use brokerwatch_collector::kafka::Kafka;
use brokerwatch_collector::model::lag::{
    evaluate_groups, GroupLag, Histories, LagRules, Sample, Status,
};
use brokerwatch_collector::model::replication::{analyze, Snapshot};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

fn kafka(mock: &MockCluster<'_, rdkafka::producer::DefaultProducerContext>) -> Kafka {
    let properties = BTreeMap::from([("bootstrap.servers".to_owned(), mock.bootstrap_servers())]);
    Kafka::new(properties, Duration::from_secs(5)).expect("client")
}

/// Takes snapshots until `ready` holds (the mock applies changes at once,
/// but a metadata answer may come from a connection made before them).
fn snapshot_when(kafka: &Kafka, ready: impl Fn(&Snapshot) -> bool) -> Snapshot {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let snapshot = kafka.snapshot().expect("metadata");
        if ready(&snapshot) || Instant::now() > deadline {
            return snapshot;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn partitions_leaders_an_offline_partition_and_a_broker_down() {
    let mock = MockCluster::new(4).expect("mock cluster");
    // Replication 4 on 4 brokers: every broker hosts every partition.
    mock.create_topic("orders", 8, 4).expect("topic");
    mock.create_topic("clicks", 4, 4).expect("topic");
    // Leaders: orders/p on broker p % 4 + 1 except p 6 on broker 1; clicks all on broker 2.
    for p in 0..8 {
        mock.partition_leader("orders", p, Some(if p == 6 { 1 } else { p % 4 + 1 }))
            .expect("leader");
    }
    for p in 0..4 {
        mock.partition_leader("clicks", p, Some(2)).expect("leader");
    }
    let kafka = kafka(&mock);
    let snapshot = snapshot_when(&kafka, |s| s.topics.len() == 2);
    let expected: BTreeSet<i32> = [1, 2, 3, 4].into();
    let facts = analyze(&snapshot, &expected);
    assert_eq!(facts.partitions, 12);
    for broker in 1..=4 {
        assert_eq!(
            facts.brokers[&broker].partitions, 12,
            "broker {broker} hosts every partition"
        );
    }
    let leaders: Vec<u64> = (1..=4).map(|b| facts.brokers[&b].leaders).collect();
    assert_eq!(leaders, [3, 6, 1, 2]);
    assert_eq!((facts.offline, facts.under_replicated), (0, 0));
    assert!(facts.brokers_down.is_empty());

    // A partition with no leader is offline.
    mock.partition_leader("orders", 5, None).expect("no leader");
    let snapshot = snapshot_when(&kafka, |s| {
        s.topics
            .iter()
            .flat_map(|t| &t.partitions)
            .any(|p| p.leader == -1)
    });
    let facts = analyze(&snapshot, &expected);
    assert_eq!(facts.offline, 1);
    assert_eq!(
        facts.brokers[&2].leaders, 5,
        "orders/5 no longer counts for broker 2"
    );

    // Broker 4 goes down: it leaves the broker list; what it led is offline,
    // every partition lacks it, and the diagnosis names it.
    mock.broker_down(4).expect("broker down");
    let snapshot = snapshot_when(&kafka, |s| !s.brokers.contains(&4));
    assert_eq!(snapshot.brokers, [1, 2, 3]);
    let facts = analyze(&snapshot, &expected);
    assert_eq!(facts.brokers_down, [4]);
    assert_eq!(
        facts.offline,
        1 + 2,
        "orders/5 and the two partitions broker 4 led"
    );
    assert_eq!(facts.under_replicated, 12);
    assert_eq!(facts.diagnosis.suspects, [(4, 12)]);
}

#[test]
fn internal_topics_are_in_the_snapshot_and_their_offline_partitions_count() {
    let mock = MockCluster::new(3).expect("mock cluster");
    mock.create_topic("orders", 3, 3).expect("topic");
    mock.create_topic("__consumer_offsets", 4, 3)
        .expect("internal topic");
    mock.partition_leader("__consumer_offsets", 2, None)
        .expect("no leader");
    let kafka = kafka(&mock);
    let snapshot = snapshot_when(&kafka, |s| {
        s.topics.iter().any(|t| t.name == "__consumer_offsets")
    });
    let internal = snapshot
        .topics
        .iter()
        .find(|t| t.name == "__consumer_offsets")
        .expect("__consumer_offsets is in the snapshot");
    assert_eq!(internal.partitions.len(), 4);
    let facts = analyze(&snapshot, &BTreeSet::from([1, 2, 3]));
    assert_eq!(facts.partitions, 7);
    assert_eq!(facts.offline, 1);
    assert_eq!(facts.offline_topics["__consumer_offsets"], 1);
    let hosted: u64 = facts.brokers.values().map(|b| b.partitions).sum();
    assert_eq!(hosted, 7 * 3, "internal replicas count per broker too");
}

/// A group's consumer that commits offsets for itself (no subscription).
fn committer(bootstrap: &str, group: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer")
}

fn commit(consumer: &BaseConsumer, topic: &str, offsets: &[i64]) {
    let mut list = TopicPartitionList::new();
    for (partition, offset) in offsets.iter().enumerate() {
        list.add_partition_offset(topic, partition as i32, Offset::Offset(*offset))
            .expect("offset");
    }
    consumer.commit(&list, CommitMode::Sync).expect("commit");
}

#[test]
fn lag_of_a_group_that_keeps_up_one_that_falls_behind_and_one_that_stops() {
    let mock = MockCluster::new(3).expect("mock cluster");
    mock.create_topic("events", 2, 1).expect("topic");
    let bootstrap = mock.bootstrap_servers();
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()
        .expect("producer");
    let groups = ["keeps-up", "falls-behind", "stopped"];
    let committers: Vec<BaseConsumer> = groups.iter().map(|g| committer(&bootstrap, g)).collect();
    let mut kafka = kafka(&mock);
    let partitions = vec![("events".to_owned(), 0), ("events".to_owned(), 1)];
    let rules = LagRules {
        window_seconds: 600.0,
        stop_after_seconds: 60.0,
        commit_intervals_to_stop: 3.0,
        err_lag_seconds: 120.0,
    };
    let mut histories = Histories::new();
    let mut behind = 0i64;

    // Each round is 10 s of the cluster's life: 100 messages per partition,
    // then each group commits, then the collector samples.
    // The daemon's own grouping, in the order of `groups`.
    let evaluate = |histories: &Histories| -> Vec<GroupLag> {
        let evaluated = evaluate_groups(histories, &rules);
        groups
            .iter()
            .map(|g| {
                evaluated
                    .iter()
                    .find(|v| v.group == *g)
                    .cloned()
                    .expect("every group evaluated")
            })
            .collect()
    };
    let mut verdicts_at_40 = Vec::new();
    for round in 1..=70i64 {
        for partition in 0..2 {
            for _ in 0..100 {
                producer
                    .send(
                        BaseRecord::to("events")
                            .partition(partition)
                            .payload("e")
                            .key("k"),
                    )
                    .expect("send");
            }
        }
        producer.flush(Duration::from_secs(10)).expect("flush");
        let end = 100 * round;
        behind += 80;
        commit(&committers[0], "events", &[end, end]);
        commit(&committers[1], "events", &[behind, behind]);
        if round <= 10 {
            commit(&committers[2], "events", &[end, end]);
        }

        let ends: BTreeMap<_, _> = kafka
            .end_offsets(&partitions)
            .expect("end offsets")
            .into_iter()
            .collect();
        assert_eq!(
            ends[&("events".to_owned(), 0)],
            end,
            "the end offset the cluster reports"
        );
        for group in groups {
            let committed = kafka
                .committed(group, &partitions)
                .expect("committed offsets");
            assert_eq!(committed.len(), 2, "{group} committed both partitions");
            for ((topic, partition), offset) in committed {
                let sample = Sample {
                    at: 10.0 * round as f64,
                    committed: offset,
                    end: ends[&(topic.clone(), partition)],
                };
                histories
                    .entry((group.to_owned(), topic, partition))
                    .or_default()
                    .record(sample, &rules);
            }
        }
        if round == 40 {
            verdicts_at_40 = evaluate(&histories);
        }
    }
    let (ok, warn, stop) = (&verdicts_at_40[0], &verdicts_at_40[1], &verdicts_at_40[2]);
    assert_eq!(ok.status, Status::Ok);
    assert_eq!(ok.lag_messages, 0);
    assert_eq!(warn.status, Status::Warn);
    assert_eq!(warn.lag_messages, 2 * (4000 - 3200));
    assert!(
        (warn.lag_seconds.unwrap() - 80.0).abs() < 1e-9,
        "{:?}",
        warn.lag_seconds
    );
    assert_eq!(stop.status, Status::Stop);
    assert_eq!(stop.lag_messages, 2 * (4000 - 1000));
    assert!((stop.lag_seconds.unwrap() - 300.0).abs() < 1e-9);

    // Thirty rounds on, the one falling behind is 140 s behind: ERR.
    let late = evaluate(&histories);
    assert_eq!(late[0].status, Status::Ok);
    assert_eq!(late[1].status, Status::Err);
    assert!((late[1].lag_seconds.unwrap() - 140.0).abs() < 1e-9);
    assert_eq!(late[2].status, Status::Stop);
}
