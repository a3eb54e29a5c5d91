//! The probe topic's layout: one partition whose preferred leader is each
//! broker, replicas on the brokers after it; what to add when brokers join,
//! and which leaders to put back.

use std::collections::BTreeSet;

/// A probe partition as the metadata shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbePartition {
    pub id: i32,
    /// The replicas, the preferred leader first.
    pub replicas: Vec<i32>,
    /// -1 when it has none.
    pub leader: i32,
}

/// The replicas of a new partition led by `brokers[index]`: it, then the
/// brokers after it (in id order, wrapping), `replication_factor` in all
/// (fewer when there are fewer brokers).
pub fn replicas_for(brokers: &[i32], index: usize, replication_factor: usize) -> Vec<i32> {
    let count = replication_factor.min(brokers.len());
    (0..count)
        .map(|i| brokers[(index + i) % brokers.len()])
        .collect()
}

/// What to change in the probe topic.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LayoutChanges {
    /// Replicas of each partition to add, for brokers that lead none by preference.
    pub add: Vec<Vec<i32>>,
    /// Partitions whose preferred leader is alive but does not lead.
    pub elect: Vec<i32>,
}

pub fn changes(
    brokers: &BTreeSet<i32>,
    partitions: &[ProbePartition],
    replication_factor: usize,
) -> LayoutChanges {
    let sorted: Vec<i32> = brokers.iter().copied().collect();
    let preferred: BTreeSet<i32> = partitions
        .iter()
        .filter_map(|p| p.replicas.first().copied())
        .collect();
    let add = sorted
        .iter()
        .enumerate()
        .filter(|(_, b)| !preferred.contains(b))
        .map(|(i, _)| replicas_for(&sorted, i, replication_factor))
        .collect();
    let elect = partitions
        .iter()
        .filter(|p| {
            p.replicas
                .first()
                .is_some_and(|first| *first != p.leader && brokers.contains(first))
        })
        .map(|p| p.id)
        .collect();
    LayoutChanges { add, elect }
}

/// The broker a partition's records judge: its leader, or with none its
/// preferred leader (whose partition it is).
pub fn judged_broker(partition: &ProbePartition) -> Option<i32> {
    if partition.leader >= 0 {
        Some(partition.leader)
    } else {
        partition.replicas.first().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partition(id: i32, replicas: &[i32], leader: i32) -> ProbePartition {
        ProbePartition {
            id,
            replicas: replicas.to_vec(),
            leader,
        }
    }

    #[test]
    fn each_broker_leads_one_partition_with_the_next_brokers_as_followers() {
        let brokers = [1, 2, 5];
        assert_eq!(replicas_for(&brokers, 0, 3), vec![1, 2, 5]);
        assert_eq!(replicas_for(&brokers, 2, 3), vec![5, 1, 2]);
        assert_eq!(replicas_for(&brokers, 1, 2), vec![2, 5]);
        assert_eq!(
            replicas_for(&brokers, 1, 7),
            vec![2, 5, 1],
            "never more than the brokers"
        );
        let all: BTreeSet<i32> = brokers.into();
        let fresh = changes(&all, &[], 3);
        assert_eq!(fresh.add, vec![vec![1, 2, 5], vec![2, 5, 1], vec![5, 1, 2]]);
        assert!(fresh.elect.is_empty());
    }

    #[test]
    fn a_joining_broker_gets_a_partition_and_moved_leaders_are_put_back() {
        let brokers: BTreeSet<i32> = [1, 2, 3, 4].into();
        let partitions = [
            partition(0, &[1, 2, 3], 1),
            partition(1, &[2, 3, 1], 3), // moved: 2 is alive
            partition(2, &[3, 1, 2], -1),
        ];
        let found = changes(&brokers, &partitions, 3);
        assert_eq!(found.add, vec![vec![4, 1, 2]]);
        assert_eq!(found.elect, vec![1, 2]);
        // A preferred leader that is down is not elected.
        let without_two: BTreeSet<i32> = [1, 3, 4].into();
        assert_eq!(changes(&without_two, &partitions, 3).elect, vec![2]);
    }

    #[test]
    fn a_partition_without_a_leader_is_judged_against_its_preferred_leader() {
        assert_eq!(judged_broker(&partition(0, &[2, 3], 3)), Some(3));
        assert_eq!(judged_broker(&partition(0, &[2, 3], -1)), Some(2));
        assert_eq!(judged_broker(&partition(0, &[], -1)), None);
    }
}
