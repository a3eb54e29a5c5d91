//! The cluster-state analysis at scale, on synthetic snapshots:
//! - replication health of 1,000,000 partitions over 1,000 brokers
//!   (replication 3, 1 % under-replicated);
//! - lag evaluation of 100,000 consumer-group partitions, each with a full
//!   window of 60 samples.
//!
//! Prints the time per evaluation (best and median of the runs) and the
//! process's peak RSS (VmHWM) after each stage, the snapshot itself included.
//! Targets: under 1 s and 1 GiB for the first, under 100 ms for the second.

use std::collections::BTreeSet;
use std::time::Instant;

use brokerwatch_collector::model::lag::{
    evaluate_groups, Histories, LagRules, PartitionHistory, Sample,
};
use brokerwatch_collector::model::replication::{analyze, PartitionMeta, Snapshot, TopicMeta};

mod common;
use common::{peak_rss_mib, time};

fn million_partitions() -> Snapshot {
    const BROKERS: i32 = 1000;
    const TOPICS: i32 = 1000;
    const PARTITIONS_PER_TOPIC: i32 = 1000;
    let mut topics = Vec::with_capacity(TOPICS as usize);
    let mut n: i64 = 0;
    for t in 0..TOPICS {
        let mut partitions = Vec::with_capacity(PARTITIONS_PER_TOPIC as usize);
        for p in 0..PARTITIONS_PER_TOPIC {
            let first = (t * 7 + p) % BROKERS;
            let replicas = vec![first, (first + 1) % BROKERS, (first + 2) % BROKERS];
            // About 1 % under-replicated: broker 17 has fallen out of every
            // ISR it is in (3,000 partitions), and 1 in 143 others lack their
            // third replica for reasons of their own (about 7,000).
            let lacking: Vec<i32> = if replicas.contains(&17) {
                vec![17]
            } else if n % 143 == 0 {
                vec![replicas[2]]
            } else {
                Vec::new()
            };
            let isr = replicas
                .iter()
                .copied()
                .filter(|r| !lacking.contains(r))
                .collect();
            partitions.push(PartitionMeta {
                id: p,
                leader: first,
                replicas,
                isr,
            });
            n += 1;
        }
        topics.push(TopicMeta {
            name: format!("topic-{t:04}"),
            partitions,
            min_insync_replicas: Some(2),
        });
    }
    Snapshot {
        brokers: (0..BROKERS).collect(),
        topics,
    }
}

fn main() {
    let built = Instant::now();
    let snapshot = million_partitions();
    println!(
        "snapshot: 1,000,000 partitions over 1,000 brokers built in {:.2?}; peak RSS {:.0} MiB",
        built.elapsed(),
        peak_rss_mib()
    );
    let expected: BTreeSet<i32> = (0..1000).collect();
    let facts = analyze(&snapshot, &expected);
    let (best, median) = time(5, || analyze(&snapshot, &expected));
    println!(
        "replication analysis: best {best:.2?}, median {median:.2?} per evaluation; {} under-replicated, suspects {:?}; peak RSS {:.0} MiB",
        facts.under_replicated,
        facts.diagnosis.suspects,
        peak_rss_mib()
    );
    drop(snapshot);

    let rules = LagRules::default();
    // Keyed (group, topic, partition), as the collector keeps them.
    let mut histories = Histories::new();
    for i in 0..100_000u32 {
        let group = format!("group-{:03}", i / 200);
        let topic = format!("topic-{:03}", i % 200);
        let mut history = PartitionHistory::default();
        let speed = if i % 10 == 0 { 80 } else { 100 };
        for s in 0..60i64 {
            let at = s as f64 * 10.0;
            history.record(
                Sample {
                    at,
                    committed: speed * 10 * s,
                    end: 1000 * s + 500,
                },
                &rules,
            );
        }
        histories.insert((group, topic, i as i32), history);
    }
    let (best, median) = time(11, || evaluate_groups(&histories, &rules).len());
    println!(
        "lag evaluation of 100,000 partitions in 500 groups: best {best:.2?}, median {median:.2?} per evaluation; peak RSS {:.0} MiB",
        peak_rss_mib()
    );
}
