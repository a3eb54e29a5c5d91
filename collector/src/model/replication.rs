//! Replication health from one metadata snapshot: partitions and leaders per
//! broker (which feed the load model), the preferred-leader imbalance as Kafka
//! defines it, under-replicated, offline and under-min-ISR partitions, brokers
//! that should be there and are not, and a diagnosis of the under-replication:
//! which broker (or few) is the common cause, or whether a reassignment is
//! running (and the under-replication is expected).

use std::collections::{BTreeMap, BTreeSet, HashMap};

/// What the cluster's metadata says, at one instant.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// The brokers in the metadata (alive, as far as the controller knows).
    pub brokers: Vec<i32>,
    pub topics: Vec<TopicMeta>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TopicMeta {
    pub name: String,
    pub partitions: Vec<PartitionMeta>,
    /// The topic's `min.insync.replicas`, where known.
    pub min_insync_replicas: Option<u32>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PartitionMeta {
    pub id: i32,
    /// -1 when the partition has no leader.
    pub leader: i32,
    /// In assignment order: the first is the preferred leader.
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BrokerReplication {
    /// Replicas hosted.
    pub partitions: u64,
    /// Partitions led.
    pub leaders: u64,
    /// Partitions whose preferred leader is this broker.
    pub preferred: u64,
    /// ... of which another broker (or none) leads.
    pub preferred_not_leading: u64,
    /// Under-replicated partitions this broker leads (Kafka's own
    /// UnderReplicatedPartitions metric counts this way).
    pub under_replicated_led: u64,
    /// Under-replicated partitions whose ISR lacks this broker.
    pub missing_from_isr: u64,
}

impl BrokerReplication {
    /// Kafka's leader imbalance ratio: preferred here but led elsewhere,
    /// over preferred here (0 when nothing prefers this broker).
    pub fn preferred_leader_imbalance_ratio(&self) -> f64 {
        if self.preferred == 0 {
            0.0
        } else {
            self.preferred_not_leading as f64 / self.preferred as f64
        }
    }
}

/// Why partitions are under-replicated, as far as the metadata tells.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Diagnosis {
    /// The broker(s) missing from the ISR of most under-replicated
    /// partitions (at most three), with how many each is missing from.
    pub suspects: Vec<(i32, u64)>,
    /// Share of the under-replicated partitions the suspects explain.
    pub explained_ratio: f64,
    /// Under-replicated partitions a reassignment is moving, missing only
    /// the replicas it adds (as the controller lists them; else those with
    /// more replicas than their topic's usual replication factor).
    pub reassigning: u64,
    /// Topics with such partitions, and how many.
    pub reassigning_topics: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReplicationFacts {
    pub partitions: u64,
    pub brokers: BTreeMap<i32, BrokerReplication>,
    pub under_replicated: u64,
    pub offline: u64,
    /// Partitions with fewer in-sync replicas than their topic's
    /// `min.insync.replicas`, over the topics whose minimum is known; `None`
    /// when no topic's is (the cluster did not say).
    pub under_min_isr: Option<u64>,
    /// Topics with under-replicated partitions, by count (for annotations).
    pub under_replicated_topics: BTreeMap<String, u64>,
    /// Topics with offline partitions, by count.
    pub offline_topics: BTreeMap<String, u64>,
    /// Expected brokers absent from the metadata.
    pub brokers_down: Vec<i32>,
    pub diagnosis: Diagnosis,
}

/// Kafka's internal topics, and what breaks when one of their partitions
/// is under-replicated or offline.
pub const INTERNAL_TOPICS: [(&str, &str); 3] = [
    (
        "__consumer_offsets",
        "every consumer group's commits and fetches of offsets",
    ),
    ("__transaction_state", "every transactional producer"),
    ("__cluster_metadata", "the KRaft controllers' metadata log"),
];

/// Whether a topic is one of Kafka's own (`__` names them).
pub fn is_internal(topic: &str) -> bool {
    topic.starts_with("__")
}

/// The share of under-replicated partitions a set of suspects must explain
/// to be named: "all or most".
const SUSPECTS_MUST_EXPLAIN: f64 = 0.8;
const MAX_SUSPECTS: usize = 3;

pub fn analyze(snapshot: &Snapshot, expected_brokers: &BTreeSet<i32>) -> ReplicationFacts {
    analyze_moving(snapshot, expected_brokers, None)
}

/// [`analyze`], with the partitions the controller lists as being
/// reassigned and the replicas each adds (`None`: not known, then a
/// partition with more replicas than its topic's usual count is taken for
/// one). An adding replica out of the ISR is the reassignment's catch-up;
/// any other replica missing from it is evidence against its broker.
pub fn analyze_moving(
    snapshot: &Snapshot,
    expected_brokers: &BTreeSet<i32>,
    moving: Option<&HashMap<(String, i32), Vec<i32>>>,
) -> ReplicationFacts {
    let alive: BTreeSet<i32> = snapshot.brokers.iter().copied().collect();
    let mut facts = ReplicationFacts {
        brokers: alive
            .iter()
            .map(|b| (*b, BrokerReplication::default()))
            .collect(),
        brokers_down: expected_brokers.difference(&alive).copied().collect(),
        ..ReplicationFacts::default()
    };
    // Under-replicated partitions, by the brokers missing from their ISR
    // (kept compactly: one small list per URP, a million partitions is fine).
    let mut missing_sets: Vec<Vec<i32>> = Vec::new();
    let mut missing_counts: HashMap<i32, u64> = HashMap::new();

    for topic in &snapshot.topics {
        let usual_rf = usual_replication_factor(&topic.partitions);
        for p in &topic.partitions {
            facts.partitions += 1;
            for replica in &p.replicas {
                facts.brokers.entry(*replica).or_default().partitions += 1;
            }
            let led = p.leader >= 0 && alive.contains(&p.leader);
            if led {
                facts.brokers.entry(p.leader).or_default().leaders += 1;
            } else {
                // No leader, or a leader the cluster no longer lists.
                facts.offline += 1;
                *facts.offline_topics.entry(topic.name.clone()).or_default() += 1;
            }
            if let Some(&preferred) = p.replicas.first() {
                let entry = facts.brokers.entry(preferred).or_default();
                entry.preferred += 1;
                if p.leader != preferred {
                    entry.preferred_not_leading += 1;
                }
            }
            // A replica on a broker the metadata no longer lists is not in
            // sync, whatever a stale ISR says.
            let in_sync = p.isr.iter().filter(|r| alive.contains(r)).count();
            if let Some(min) = topic.min_insync_replicas {
                let count = facts.under_min_isr.get_or_insert(0);
                if (in_sync as u32) < min {
                    *count += 1;
                }
            }
            if in_sync < p.replicas.len() {
                facts.under_replicated += 1;
                *facts
                    .under_replicated_topics
                    .entry(topic.name.clone())
                    .or_default() += 1;
                if led {
                    facts
                        .brokers
                        .entry(p.leader)
                        .or_default()
                        .under_replicated_led += 1;
                }
                let adding = moving.map(|m| m.get(&(topic.name.clone(), p.id)));
                let missing: Vec<i32> = p
                    .replicas
                    .iter()
                    .copied()
                    .filter(|r| !(p.isr.contains(r) && alive.contains(r)))
                    .collect();
                let catching_up = match adding {
                    Some(Some(adding)) => missing.iter().all(|r| adding.contains(r)),
                    Some(None) => false,
                    None => p.replicas.len() > usual_rf,
                };
                if catching_up {
                    facts.diagnosis.reassigning += 1;
                    *facts
                        .diagnosis
                        .reassigning_topics
                        .entry(topic.name.clone())
                        .or_default() += 1;
                    continue; // expected while the reassignment runs: not evidence against a broker
                }
                for broker in &missing {
                    *missing_counts.entry(*broker).or_default() += 1;
                    facts.brokers.entry(*broker).or_default().missing_from_isr += 1;
                }
                missing_sets.push(missing);
            }
        }
    }
    let (suspects, explained_ratio) = suspects(&missing_sets, &missing_counts);
    facts.diagnosis.suspects = suspects;
    facts.diagnosis.explained_ratio = explained_ratio;
    facts
}

/// The replication factor most of a topic's partitions have.
fn usual_replication_factor(partitions: &[PartitionMeta]) -> usize {
    let mut counts: BTreeMap<usize, usize> = BTreeMap::new();
    for p in partitions {
        *counts.entry(p.replicas.len()).or_default() += 1;
    }
    // Most common; on a tie the smaller (a reassignment adds replicas).
    counts
        .into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
        .map_or(0, |(rf, _)| rf)
}

/// Greedy: the broker missing from the most unexplained URPs, then the next,
/// up to three, until they explain most of them. None when no few brokers do
/// (the problem is spread out: network, the controller, load).
fn suspects(missing_sets: &[Vec<i32>], counts: &HashMap<i32, u64>) -> (Vec<(i32, u64)>, f64) {
    let total = missing_sets.len();
    if total == 0 {
        return (Vec::new(), 0.0);
    }
    let mut chosen: Vec<i32> = Vec::new();
    let mut explained = vec![false; total];
    let mut explained_count = 0;
    while chosen.len() < MAX_SUSPECTS
        && (explained_count as f64) < SUSPECTS_MUST_EXPLAIN * total as f64
    {
        let mut gain: HashMap<i32, usize> = HashMap::new();
        for (set, done) in missing_sets.iter().zip(&explained) {
            if !done {
                for broker in set {
                    *gain.entry(*broker).or_default() += 1;
                }
            }
        }
        let Some((&best, _)) = gain.iter().max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0))) else {
            break;
        };
        chosen.push(best);
        for (set, done) in missing_sets.iter().zip(explained.iter_mut()) {
            if !*done && set.contains(&best) {
                *done = true;
                explained_count += 1;
            }
        }
    }
    let ratio = explained_count as f64 / total as f64;
    if ratio < SUSPECTS_MUST_EXPLAIN {
        return (Vec::new(), ratio);
    }
    (
        chosen
            .into_iter()
            .map(|b| (b, counts.get(&b).copied().unwrap_or(0)))
            .collect(),
        ratio,
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn partition(id: i32, leader: i32, replicas: &[i32], isr: &[i32]) -> PartitionMeta {
        PartitionMeta {
            id,
            leader,
            replicas: replicas.to_vec(),
            isr: isr.to_vec(),
        }
    }

    fn topic(name: &str, min_isr: Option<u32>, partitions: Vec<PartitionMeta>) -> TopicMeta {
        TopicMeta {
            name: name.into(),
            partitions,
            min_insync_replicas: min_isr,
        }
    }

    #[test]
    fn counts_partitions_leaders_and_the_preferred_leader_imbalance() {
        let snapshot = Snapshot {
            brokers: vec![1, 2, 3],
            topics: vec![topic(
                "orders",
                Some(2),
                vec![
                    partition(0, 1, &[1, 2, 3], &[1, 2, 3]),
                    partition(1, 2, &[2, 3, 1], &[2, 3, 1]),
                    partition(2, 2, &[3, 1, 2], &[3, 1, 2]), // preferred 3, led by 2
                    partition(3, 1, &[1, 3, 2], &[1, 3, 2]),
                ],
            )],
        };
        let facts = analyze(&snapshot, &BTreeSet::new());
        assert_eq!(facts.partitions, 4);
        assert_eq!(facts.brokers[&1].partitions, 4);
        assert_eq!(facts.brokers[&1].leaders, 2);
        assert_eq!(facts.brokers[&2].leaders, 2);
        assert_eq!(facts.brokers[&3].leaders, 0);
        assert_eq!(facts.brokers[&3].preferred, 1);
        assert_eq!(facts.brokers[&3].preferred_leader_imbalance_ratio(), 1.0);
        assert_eq!(facts.brokers[&1].preferred_leader_imbalance_ratio(), 0.0);
        assert_eq!(
            (facts.under_replicated, facts.offline, facts.under_min_isr),
            (0, 0, Some(0))
        );
    }

    #[test]
    fn names_the_broker_missing_from_most_isrs() {
        let snapshot = Snapshot {
            brokers: vec![1, 2, 3, 4],
            topics: vec![
                topic(
                    "orders",
                    Some(2),
                    vec![
                        partition(0, 1, &[1, 2, 3], &[1, 2]),
                        partition(1, 2, &[2, 3, 4], &[2, 4]),
                        partition(2, 4, &[4, 3, 1], &[4, 1]),
                        partition(3, 1, &[1, 2, 4], &[1, 2, 4]),
                    ],
                ),
                topic(
                    "payments",
                    Some(3),
                    vec![
                        partition(0, 2, &[2, 3, 1], &[2, 1]),
                        partition(1, 1, &[1, 2, 4], &[1]),
                    ],
                ),
            ],
        };
        let facts = analyze(&snapshot, &BTreeSet::new());
        assert_eq!(facts.under_replicated, 5);
        assert_eq!(facts.under_replicated_topics["orders"], 3);
        assert_eq!(facts.under_min_isr, Some(2), "payments needs 3 in sync");
        assert_eq!(facts.brokers[&3].missing_from_isr, 4);
        assert_eq!(facts.brokers[&1].under_replicated_led, 2);
        // Broker 3 explains 4 of 5; with broker 2 (or 4) all 5.
        assert_eq!(facts.diagnosis.suspects[0], (3, 4));
        assert!((facts.diagnosis.explained_ratio - 0.8).abs() < 1e-12);
        assert_eq!(
            facts.diagnosis.suspects.len(),
            1,
            "broker 3 alone explains most"
        );
    }

    #[test]
    fn no_suspect_when_the_under_replication_is_spread_out() {
        let partitions = (0..10)
            .map(|i| {
                let replicas = [i, i + 10, i + 20];
                partition(i, i, &replicas, &replicas[..2])
            })
            .collect();
        let snapshot = Snapshot {
            brokers: (0..30).collect(),
            topics: vec![topic("spread", None, partitions)],
        };
        let facts = analyze(&snapshot, &BTreeSet::new());
        assert_eq!(facts.under_replicated, 10);
        assert!(facts.diagnosis.suspects.is_empty());
        assert!(
            (facts.diagnosis.explained_ratio - 0.3).abs() < 1e-12,
            "3 brokers explain 3 of 10"
        );
    }

    #[test]
    fn extra_replicas_mean_a_reassignment_not_a_fault() {
        let snapshot = Snapshot {
            brokers: vec![1, 2, 3, 4, 5],
            topics: vec![topic(
                "orders",
                None,
                vec![
                    partition(0, 1, &[1, 2, 3], &[1, 2, 3]),
                    partition(1, 2, &[2, 3, 4], &[2, 3, 4]),
                    // Moving from [3,4,1] to [5,4,1]: both sets listed, 5 catching up.
                    partition(2, 3, &[3, 4, 1, 5], &[3, 4, 1]),
                ],
            )],
        };
        let facts = analyze(&snapshot, &BTreeSet::new());
        assert_eq!(facts.under_replicated, 1);
        assert_eq!(facts.diagnosis.reassigning, 1);
        assert_eq!(facts.diagnosis.reassigning_topics["orders"], 1);
        assert!(
            facts.diagnosis.suspects.is_empty(),
            "catching up is not a fault"
        );
    }

    #[test]
    fn the_controllers_list_of_reassignments_decides_over_replica_counts() {
        let snapshot = Snapshot {
            brokers: vec![1, 2, 3, 4, 5],
            topics: vec![topic(
                "orders",
                None,
                vec![
                    // Listed, adding 5, which is catching up: expected.
                    partition(0, 3, &[3, 4, 1, 5], &[3, 4, 1]),
                    // Listed, adding 5, but 4 fell out too: a fault of 4's.
                    partition(1, 3, &[3, 4, 1, 5], &[3, 1]),
                    // Extra replicas but not listed: a fault of 2's.
                    partition(2, 1, &[1, 3, 4, 2], &[1, 3, 4]),
                    // RF 3 like the rest, listed (a swap of 1 for 5): catching up.
                    partition(3, 2, &[2, 5, 3], &[2, 3]),
                ],
            )],
        };
        let moving: HashMap<(String, i32), Vec<i32>> = [
            (("orders".to_owned(), 0), vec![5]),
            (("orders".to_owned(), 1), vec![5]),
            (("orders".to_owned(), 3), vec![5]),
        ]
        .into();
        let facts = analyze_moving(&snapshot, &BTreeSet::new(), Some(&moving));
        assert_eq!(facts.under_replicated, 4);
        assert_eq!(facts.diagnosis.reassigning, 2);
        assert_eq!(facts.brokers[&4].missing_from_isr, 1);
        assert_eq!(facts.brokers[&2].missing_from_isr, 1);
        assert_eq!(
            facts.brokers[&5].missing_from_isr, 1,
            "partition 1's adding replica"
        );
        // Without the list, the replica counts guess wrong: most of the
        // topic's partitions have 4, so none looks moved.
        let guessed = analyze(&snapshot, &BTreeSet::new());
        assert_eq!(guessed.diagnosis.reassigning, 0);
    }

    #[test]
    fn offline_partitions_and_brokers_that_left() {
        let snapshot = Snapshot {
            brokers: vec![1, 2],
            topics: vec![topic(
                "orders",
                None,
                vec![
                    partition(0, -1, &[3, 1], &[3]),
                    partition(1, 3, &[3, 2], &[3]), // leader 3 is not in the metadata any more
                    partition(2, 1, &[1, 2], &[1, 2]),
                ],
            )],
        };
        let facts = analyze(&snapshot, &BTreeSet::from([1, 2, 3]));
        assert_eq!(facts.offline, 2);
        assert_eq!(facts.brokers_down, [3]);
        assert_eq!(facts.brokers[&1].leaders, 1);
        // The ISRs still list broker 3, but it is gone: they are under-replicated, and it is the suspect.
        assert_eq!(facts.under_replicated, 2);
        assert_eq!(facts.diagnosis.suspects, [(3, 2)]);
    }

    #[test]
    fn under_min_isr_is_unknown_where_no_topic_tells_its_minimum() {
        // A cluster that answers DescribeConfigs with no entries (tansu does).
        let snapshot = Snapshot {
            brokers: vec![1, 2],
            topics: vec![topic("orders", None, vec![partition(0, 1, &[1, 2], &[1])])],
        };
        let facts = analyze(&snapshot, &BTreeSet::new());
        assert_eq!(facts.under_min_isr, None, "unknown is not 0");
        assert_eq!(facts.under_replicated, 1);
    }

    #[test]
    fn the_imbalance_ratio_is_the_share_of_preferred_partitions_led_elsewhere() {
        let snapshot = Snapshot {
            brokers: vec![1, 2, 3],
            topics: vec![topic(
                "orders",
                None,
                vec![
                    partition(0, 1, &[1, 2], &[1, 2]),
                    partition(1, 2, &[1, 2], &[1, 2]),
                    partition(2, 2, &[2, 1], &[2, 1]),
                ],
            )],
        };
        let facts = analyze(&snapshot, &BTreeSet::new());
        let one = facts.brokers[&1];
        assert_eq!((one.preferred, one.preferred_not_leading), (2, 1));
        assert_eq!(one.preferred_leader_imbalance_ratio(), 0.5);
        // A live broker with no replica is listed, with nothing.
        assert_eq!(facts.brokers[&3], BrokerReplication::default());
        assert_eq!(facts.brokers.len(), 3);
    }

    #[test]
    fn the_usual_replication_factor_is_the_most_common_one() {
        // Replication 3 for two partitions, 2 for one: the under-replicated
        // RF-3 partition is a fault (not a reassignment's extra replica),
        // and names broker 3.
        let snapshot = Snapshot {
            brokers: vec![1, 2, 3],
            topics: vec![topic(
                "orders",
                None,
                vec![
                    partition(0, 1, &[1, 2], &[1, 2]),
                    partition(1, 1, &[1, 2, 3], &[1, 2, 3]),
                    partition(2, 2, &[2, 1, 3], &[2, 1]),
                ],
            )],
        };
        let facts = analyze(&snapshot, &BTreeSet::new());
        assert_eq!(facts.diagnosis.reassigning, 0);
        assert_eq!(facts.diagnosis.suspects, [(3, 1)]);
        assert_eq!(usual_replication_factor(&snapshot.topics[0].partitions), 3);
        // On a tie, the smaller: a reassignment adds replicas.
        let tie = [
            partition(0, 1, &[1, 2], &[1, 2]),
            partition(1, 1, &[1, 2, 3], &[1, 2, 3]),
        ];
        assert_eq!(usual_replication_factor(&tie), 2);
    }
}
