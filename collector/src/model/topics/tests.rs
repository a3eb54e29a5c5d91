use super::*;
use crate::model::replication::{PartitionMeta, TopicMeta};

fn partition(id: i32, leader: i32, replicas: &[i32]) -> PartitionMeta {
    PartitionMeta {
        id,
        leader,
        replicas: replicas.to_vec(),
        isr: replicas.to_vec(),
    }
}

fn topic(name: &str, partitions: Vec<PartitionMeta>) -> TopicMeta {
    TopicMeta {
        name: name.into(),
        partitions,
        min_insync_replicas: None,
    }
}

/// `orders` with 4 partitions over brokers 1..=4 (RF 2), `logs` with 2
/// partitions both on broker 1 (RF 1), and `__consumer_offsets`.
fn snapshot() -> Snapshot {
    Snapshot {
        brokers: vec![1, 2, 3, 4],
        topics: vec![
            topic(
                "orders",
                (0..4)
                    .map(|p| partition(p, p + 1, &[p + 1, (p + 1) % 4 + 1]))
                    .collect(),
            ),
            topic("logs", vec![partition(0, 1, &[1]), partition(1, 1, &[1])]),
            topic("__consumer_offsets", vec![partition(0, 2, &[2, 3, 4])]),
        ],
    }
}

fn ends(values: &[(&'static str, i32, i64)]) -> Vec<(&'static str, i32, i64)> {
    values.to_vec()
}

fn find<'a>(facts: &'a TopicsFacts, name: &str) -> &'a TopicFacts {
    facts.topics.iter().find(|t| t.topic == name).unwrap()
}

#[test]
fn rates_come_from_successive_end_offsets() {
    let snapshot = snapshot();
    let leaders = LeaderSummary::default();
    let mut traffic = Traffic::default();
    traffic.observe(
        &snapshot,
        ends(&[("orders", 0, 100), ("orders", 1, 0), ("logs", 0, 5)]),
        1000.0,
    );
    let first = traffic.facts(&snapshot, &leaders, 1000.0);
    assert_eq!(find(&first, "orders").records_per_second, None, "one read");
    assert_eq!(find(&first, "orders").last_message_at, None);
    traffic.observe(
        &snapshot,
        ends(&[("orders", 0, 400), ("orders", 1, 30), ("logs", 0, 5)]),
        1030.0,
    );
    let facts = traffic.facts(&snapshot, &leaders, 1030.0);
    let orders = find(&facts, "orders");
    assert_eq!(orders.records_per_second, Some(11.0), "(300 + 30) / 30 s");
    assert!(!orders.rates_complete, "partitions 2 and 3 were never read");
    assert!(!find(&facts, "logs").rates_complete, "logs/1 was not read");
    assert_eq!(orders.partitions[0].records_per_second, Some(10.0));
    assert_eq!(orders.partitions[0].end_offset, Some(400));
    assert_eq!(orders.partitions[2].records_per_second, None, "never read");
    assert_eq!(orders.last_message_at, Some(1030.0));
    assert_eq!(orders.produced_total, 330);
    assert_eq!(orders.first_seen_at, 1000.0);
    let logs = find(&facts, "logs");
    assert_eq!(logs.records_per_second, Some(0.0));
    assert_eq!(logs.last_message_at, None);
    assert_eq!(logs.quiet_since(), 1000.0);
    // Internal topics' traffic is not followed.
    assert_eq!(find(&facts, "__consumer_offsets").records_per_second, None);
    assert!(find(&facts, "__consumer_offsets").internal);
}

#[test]
fn smoothing_follows_a_change_over_minutes() {
    let snapshot = snapshot();
    let mut traffic = Traffic::default();
    let mut end = 0;
    let mut at = 0.0;
    let mut smoothed = Vec::new();
    for round in 0..40 {
        let rate = if round < 20 { 10 } else { 40 };
        end += rate * 30;
        at += 30.0;
        traffic.observe(&snapshot, [("orders", 0, end)], at);
        let facts = traffic.facts(&snapshot, &LeaderSummary::default(), at);
        smoothed.push(find(&facts, "orders").partitions[0].records_per_second);
    }
    assert_eq!(smoothed[0], None);
    assert_eq!(smoothed[1], Some(10.0), "the first rate as it is");
    let after = |rounds: usize| smoothed[19 + rounds].unwrap();
    // e^(-30/300) per round: 1 - 0.905 of the step after one round, 63 % after ten.
    assert!((after(1) - (10.0 + 30.0 * (1.0 - (-0.1f64).exp()))).abs() < 1e-9);
    assert!((after(10) - (10.0 + 30.0 * (1.0 - (-1.0f64).exp()))).abs() < 1e-6);
}

#[test]
fn an_end_offset_going_back_starts_the_partition_over_and_deleted_topics_are_forgotten() {
    let mut snapshot = snapshot();
    let mut traffic = Traffic::default();
    traffic.observe(&snapshot, [("orders", 0, 500)], 0.0);
    traffic.observe(&snapshot, [("orders", 0, 800)], 30.0);
    // Recreated: its offsets start at 0 again.
    traffic.observe(&snapshot, [("orders", 0, 20)], 60.0);
    let facts = traffic.facts(&snapshot, &LeaderSummary::default(), 60.0);
    assert_eq!(
        find(&facts, "orders").partitions[0].records_per_second,
        None
    );
    assert_eq!(find(&facts, "orders").partitions[0].end_offset, Some(20));
    traffic.observe(&snapshot, [("orders", 0, 80)], 90.0);
    let facts = traffic.facts(&snapshot, &LeaderSummary::default(), 90.0);
    assert_eq!(
        find(&facts, "orders").partitions[0].records_per_second,
        Some(2.0)
    );
    // A read at the same instant (or earlier) changes nothing.
    traffic.observe(&snapshot, [("orders", 0, 999)], 90.0);
    let again = traffic.facts(&snapshot, &LeaderSummary::default(), 90.0);
    assert_eq!(again, facts);
    // Deleted: gone from the memory.
    snapshot.topics.retain(|t| t.name != "orders");
    traffic.observe(&snapshot, [("orders", 0, 100)], 120.0);
    assert!(!traffic.memory().contains_key("orders"));
    assert!(traffic.memory().contains_key("logs"));
    // Partitions out of range are ignored, not a panic.
    traffic.observe(
        &snapshot,
        [("logs", 7, 1), ("logs", -1, 1), ("nope", 0, 1)],
        150.0,
    );
}

#[test]
fn the_memory_survives_a_restart() {
    let snapshot = snapshot();
    let mut traffic = Traffic::default();
    traffic.observe(&snapshot, [("orders", 0, 1)], 10.0);
    traffic.observe(&snapshot, [("orders", 0, 2)], 20.0);
    let memory = traffic.memory();
    assert_eq!(
        memory["orders"],
        TopicMemory {
            first_seen_at: 10.0,
            last_message_at: Some(20.0)
        }
    );
    let mut restored = Traffic::restore(memory.clone());
    restored.observe(&snapshot, [("orders", 0, 2)], 5000.0);
    let facts = restored.facts(&snapshot, &LeaderSummary::default(), 5000.0);
    assert_eq!(find(&facts, "orders").first_seen_at, 10.0);
    assert_eq!(find(&facts, "orders").quiet_since(), 20.0);
    assert_eq!(restored.memory(), memory);
}

#[test]
fn shape_replication_factor_and_spread() {
    let snapshot = snapshot();
    let facts = Traffic::default().facts(&snapshot, &LeaderSummary::default(), 0.0);
    assert_eq!(facts.brokers, 4);
    let orders = find(&facts, "orders");
    assert_eq!(
        (
            orders.replication_factor,
            orders.replica_brokers,
            orders.leader_brokers
        ),
        (2, 4, 4)
    );
    assert_eq!(orders.replica_brokers_possible(4), 4);
    assert_eq!(orders.leader_brokers_possible(4), 4);
    let logs = find(&facts, "logs");
    assert_eq!(
        (
            logs.replication_factor,
            logs.replica_brokers,
            logs.leader_brokers
        ),
        (1, 1, 1)
    );
    assert_eq!(logs.replica_brokers_possible(4), 2);
    assert_eq!(logs.replica_brokers_possible(1), 1);
    assert_eq!(logs.leader_brokers_possible(4), 2);
    assert_eq!(logs.leader_brokers_possible(1), 1);
    let offsets = find(&facts, "__consumer_offsets");
    assert_eq!(offsets.replication_factor, 3);
    assert_eq!(offsets.replica_brokers_possible(4), 3);
    // Topics in name order.
    let names: Vec<&str> = facts.topics.iter().map(|t| t.topic.as_str()).collect();
    assert_eq!(names, ["__consumer_offsets", "logs", "orders"]);
}

#[test]
fn hot_partitions_are_those_at_the_factor_times_the_mean() {
    let snapshot = snapshot();
    let mut traffic = Traffic::default();
    let rates = [70, 10, 10, 10];
    for round in 0..2 {
        let at = round as f64 * 10.0;
        let ends: Vec<(&str, i32, i64)> = rates
            .iter()
            .enumerate()
            .map(|(p, r)| ("orders", p as i32, r * 10 * round))
            .collect();
        traffic.observe(&snapshot, ends, at);
    }
    let facts = traffic.facts(&snapshot, &LeaderSummary::default(), 10.0);
    let orders = find(&facts, "orders");
    let (hot, mean) = orders.hot_partitions(2.0).unwrap();
    assert_eq!(mean, 25.0);
    assert_eq!(hot.len(), 1);
    assert_eq!((hot[0].partition, hot[0].leader), (0, 1));
    assert_eq!(
        orders.hot_partitions(2.8).unwrap().0.len(),
        1,
        "70 = 2.8 × 25"
    );
    assert_eq!(orders.hot_partitions(2.81).unwrap().0.len(), 0);
    assert_eq!(orders.skew_ratio(), Some(2.8));
    // Hottest first.
    let (hot, _) = orders.hot_partitions(0.1).unwrap();
    assert_eq!(hot.iter().map(|p| p.partition).collect::<Vec<_>>()[0], 0);
    assert_eq!(hot.len(), 4);
    // Not judged while a partition has no rate, nor for one partition.
    assert_eq!(find(&facts, "logs").hot_partitions(2.0), None);
    assert_eq!(find(&facts, "logs").skew_ratio(), None);
    assert_eq!(find(&facts, "__consumer_offsets").hot_partitions(2.0), None);
}

fn with_leaders(leaders: &[i32]) -> Snapshot {
    Snapshot {
        brokers: vec![1, 2, 3],
        topics: vec![topic(
            "orders",
            leaders
                .iter()
                .enumerate()
                .map(|(p, l)| partition(p as i32, *l, &[1, 2, 3]))
                .collect(),
        )],
    }
}

#[test]
fn leader_changes_are_counted_between_snapshots() {
    let mut changes = LeaderChanges::default();
    changes.observe(&with_leaders(&[1, 2]), 0.0);
    assert_eq!(
        changes.total("orders"),
        0,
        "the first snapshot is no change"
    );
    changes.observe(&with_leaders(&[2, 2]), 10.0);
    changes.observe(&with_leaders(&[2, 2]), 20.0);
    assert_eq!(changes.total("orders"), 1);
    // Lost (no leader), then won back by the same broker: one election.
    changes.observe(&with_leaders(&[-1, 2]), 30.0);
    assert_eq!(changes.total("orders"), 1);
    changes.observe(&with_leaders(&[2, 2]), 40.0);
    assert_eq!(changes.total("orders"), 2);
    // Lost, then taken by another broker: one change, not two.
    changes.observe(&with_leaders(&[-1, 2]), 50.0);
    changes.observe(&with_leaders(&[3, 2]), 60.0);
    assert_eq!(changes.total("orders"), 3);
    assert_eq!(changes.recent("orders", 60.0), [(0, 3)]);
    let summary = changes.summary(60.0);
    assert_eq!(summary.recent["orders"], [(0, 3)]);
    assert_eq!(summary.totals["orders"], 3);
    let facts = Traffic::default().facts(&with_leaders(&[3, 2]), &summary, 60.0);
    assert_eq!(facts.topics[0].leader_changes_total, 3);
    assert_eq!(facts.topics[0].flapping, [(0, 3)]);
    assert_eq!(changes.totals().get("orders"), Some(&3));
    // A partition added later starts without a change.
    changes.observe(&with_leaders(&[3, 2, 1]), 70.0);
    assert_eq!(changes.total("orders"), 3);
    // An hour later the changes are no longer recent; the total stays.
    changes.observe(&with_leaders(&[3, 2, 1]), 3610.0);
    assert_eq!(
        changes.recent("orders", 3610.0),
        [(0, 2)],
        "changes at 40 and 60 s"
    );
    changes.observe(&with_leaders(&[3, 2, 1]), 3660.0);
    assert_eq!(changes.recent("orders", 3660.0), []);
    assert!(changes.summary(3660.0).recent.is_empty());
    assert_eq!(changes.total("orders"), 3);
    assert_eq!(changes.total("nope"), 0);
}
