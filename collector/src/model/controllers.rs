//! The controllers' side of the cluster, from what DescribeQuorum,
//! ListPartitionReassignments and DescribeLogDirs answer: how far each voter
//! of the KRaft quorum is behind, and whether the reassignments in flight
//! still move.

use std::collections::{BTreeMap, HashMap};

use super::PartitionKey;

/// A voter or observer of the metadata log, as the quorum leader sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicaReading {
    pub id: i32,
    pub log_end_offset: i64,
    /// When it last caught up with the leader (ms, the leader's clock; -1 unknown).
    pub last_caught_up_ms: i64,
}

/// DescribeQuorum's answer for the metadata log.
#[derive(Debug, Clone, PartialEq)]
pub struct QuorumReading {
    /// -1 when the quorum has no leader.
    pub leader: i32,
    pub epoch: i32,
    pub high_watermark: i64,
    pub voters: Vec<ReplicaReading>,
    pub observers: Vec<ReplicaReading>,
}

/// How far one replica is behind.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicaLag {
    pub id: i32,
    pub voter: bool,
    /// Records behind the high watermark.
    pub records: i64,
    /// Seconds since it last caught up, behind the freshest voter (`None`
    /// where the quorum does not say).
    pub seconds: Option<f64>,
}

/// Records behind that mean a voter is lagging where the quorum gives no times.
pub const LAGGING_RECORDS_WITHOUT_TIMES: i64 = 1000;

impl QuorumReading {
    pub fn leader(&self) -> Option<i32> {
        (self.leader >= 0).then_some(self.leader)
    }

    /// Every voter's and observer's lag. Times are measured against the
    /// freshest voter's catch-up (the leader's clock, so no clock skew).
    pub fn lags(&self) -> Vec<ReplicaLag> {
        let freshest = self
            .voters
            .iter()
            .map(|v| v.last_caught_up_ms)
            .filter(|t| *t >= 0)
            .max();
        let lag = |r: &ReplicaReading, voter: bool| ReplicaLag {
            id: r.id,
            voter,
            records: (self.high_watermark - r.log_end_offset).max(0),
            seconds: freshest
                .filter(|_| r.last_caught_up_ms >= 0)
                .map(|f| (f - r.last_caught_up_ms).max(0) as f64 / 1000.0),
        };
        self.voters
            .iter()
            .map(|r| lag(r, true))
            .chain(self.observers.iter().map(|r| lag(r, false)))
            .collect()
    }

    /// The voters behind by more than `max_seconds` (or, where the quorum
    /// gives no times, by more than [`LAGGING_RECORDS_WITHOUT_TIMES`]).
    pub fn lagging_voters(&self, max_seconds: f64) -> Vec<ReplicaLag> {
        self.lags()
            .into_iter()
            .filter(|l| {
                l.voter
                    && l.seconds
                        .map_or(l.records > LAGGING_RECORDS_WITHOUT_TIMES, |s| {
                            s > max_seconds
                        })
            })
            .collect()
    }
}

/// A partition being reassigned, as the controller lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct Moving {
    pub key: PartitionKey,
    pub replicas: Vec<i32>,
    pub adding: Vec<i32>,
    pub removing: Vec<i32>,
}

/// One reassignment as followed over time.
#[derive(Debug, Clone, PartialEq)]
pub struct MovingFacts {
    pub moving: Moving,
    /// When the collector first saw it (the cluster does not say when it began).
    pub since: f64,
    /// The last time a replica joined or the copies grew.
    pub progressed_at: f64,
    /// Bytes the adding replicas hold so far (where log dirs are known).
    pub copied_bytes: Option<u64>,
}

/// Reassignments followed from one listing to the next.
#[derive(Debug, Default)]
pub struct ReassignmentWatch {
    followed: HashMap<PartitionKey, MovingFacts>,
}

impl ReassignmentWatch {
    /// Takes a listing; `sizes` gives a partition's bytes on a broker where
    /// the log dirs are known. A reassignment progresses when an adding
    /// replica joins or the adding replicas' bytes grow.
    pub fn observe(
        &mut self,
        listing: Vec<Moving>,
        sizes: Option<&HashMap<(PartitionKey, i32), u64>>,
        now: f64,
    ) -> Vec<MovingFacts> {
        let mut followed = HashMap::with_capacity(listing.len());
        for moving in listing {
            let copied_bytes = sizes.map(|sizes| {
                moving
                    .adding
                    .iter()
                    .filter_map(|b| sizes.get(&(moving.key.clone(), *b)))
                    .sum()
            });
            let facts = match self.followed.remove(&moving.key) {
                None => MovingFacts {
                    moving,
                    since: now,
                    progressed_at: now,
                    copied_bytes,
                },
                Some(before) => {
                    let joined = moving.adding.len() < before.moving.adding.len();
                    let grew =
                        matches!((before.copied_bytes, copied_bytes), (Some(b), Some(a)) if a > b);
                    MovingFacts {
                        progressed_at: if joined || grew {
                            now
                        } else {
                            before.progressed_at
                        },
                        since: before.since,
                        copied_bytes: copied_bytes.or(before.copied_bytes),
                        moving,
                    }
                }
            };
            followed.insert(facts.moving.key.clone(), facts);
        }
        self.followed = followed;
        let mut all: Vec<MovingFacts> = self.followed.values().cloned().collect();
        all.sort_by(|a, b| a.moving.key.cmp(&b.moving.key));
        all
    }
}

/// A log dir of a broker, as the broker describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct LogDir {
    pub path: String,
    /// The broker's error for it (0: online).
    pub error_code: i16,
    pub partitions: u64,
    pub size_bytes: u64,
    /// Capacity and free space (`None` before Kafka 3.3).
    pub total_bytes: Option<u64>,
    pub usable_bytes: Option<u64>,
}

impl LogDir {
    pub fn offline(&self) -> bool {
        self.error_code != 0
    }
}

/// Each broker's log dirs.
pub type BrokerLogDirs = BTreeMap<i32, Vec<LogDir>>;

#[cfg(test)]
mod tests {
    use super::*;

    fn replica(id: i32, log_end_offset: i64, last_caught_up_ms: i64) -> ReplicaReading {
        ReplicaReading {
            id,
            log_end_offset,
            last_caught_up_ms,
        }
    }

    #[test]
    fn a_voter_is_behind_by_records_and_by_seconds_against_the_freshest_voter() {
        let quorum = QuorumReading {
            leader: 1,
            epoch: 7,
            high_watermark: 5000,
            voters: vec![
                replica(1, 5000, 1_000_000),
                replica(2, 4990, 999_500),
                replica(3, 3000, 955_000),
            ],
            observers: vec![replica(4, 4800, -1)],
        };
        let lags = quorum.lags();
        assert_eq!(
            lags[2],
            ReplicaLag {
                id: 3,
                voter: true,
                records: 2000,
                seconds: Some(45.0)
            }
        );
        assert_eq!(lags[1].seconds, Some(0.5));
        assert_eq!(
            (lags[3].voter, lags[3].records, lags[3].seconds),
            (false, 200, None)
        );
        let lagging: Vec<i32> = quorum.lagging_voters(30.0).iter().map(|l| l.id).collect();
        assert_eq!(lagging, vec![3]);
        assert!(
            quorum.lagging_voters(45.0).is_empty(),
            "45 s is not more than 45 s"
        );
        assert_eq!(quorum.leader(), Some(1));
        assert_eq!(
            QuorumReading {
                leader: -1,
                ..quorum
            }
            .leader(),
            None
        );
    }

    #[test]
    fn without_times_a_voter_lags_by_records() {
        let quorum = QuorumReading {
            leader: 1,
            epoch: 1,
            high_watermark: 5000,
            voters: vec![
                replica(1, 5000, -1),
                replica(2, 3999, -1),
                replica(3, 4000, -1),
            ],
            observers: vec![],
        };
        let lagging: Vec<i32> = quorum.lagging_voters(30.0).iter().map(|l| l.id).collect();
        assert_eq!(
            lagging,
            vec![2],
            "1,001 records behind; 1,000 is not more than 1,000"
        );
    }

    fn moving(partition: i32, adding: &[i32]) -> Moving {
        Moving {
            key: ("orders".into(), partition),
            replicas: vec![1, 2, 3, 4],
            adding: adding.to_vec(),
            removing: vec![1],
        }
    }

    #[test]
    fn a_reassignment_progresses_while_its_copies_grow_or_a_replica_joins() {
        let mut watch = ReassignmentWatch::default();
        let key = |p: i32| (("orders".to_owned(), p), 4);
        let sizes = |bytes: u64| HashMap::from([(key(0), bytes), (key(1), 10)]);
        let first = watch.observe(
            vec![moving(0, &[4]), moving(1, &[4, 5])],
            Some(&sizes(100)),
            10.0,
        );
        assert_eq!(first.len(), 2);
        assert_eq!(
            (
                first[0].since,
                first[0].progressed_at,
                first[0].copied_bytes
            ),
            (10.0, 10.0, Some(100))
        );
        // Partition 0 grows; partition 1 stands still.
        let second = watch.observe(
            vec![moving(0, &[4]), moving(1, &[4, 5])],
            Some(&sizes(200)),
            20.0,
        );
        assert_eq!((second[0].since, second[0].progressed_at), (10.0, 20.0));
        assert_eq!((second[1].since, second[1].progressed_at), (10.0, 10.0));
        // Partition 1's broker 5 joins: progress, though its bytes stand.
        let third = watch.observe(
            vec![moving(0, &[4]), moving(1, &[4])],
            Some(&sizes(200)),
            30.0,
        );
        assert_eq!(third[0].progressed_at, 20.0);
        assert_eq!(third[1].progressed_at, 30.0);
        // Without log dirs, the last bytes known stay, and only joins count.
        let fourth = watch.observe(vec![moving(0, &[4])], None, 40.0);
        assert_eq!(fourth.len(), 1, "partition 1 is done and forgotten");
        assert_eq!(
            (fourth[0].progressed_at, fourth[0].copied_bytes),
            (20.0, Some(200))
        );
        // Listed again after it ended: a new reassignment.
        let fifth = watch.observe(vec![moving(0, &[4]), moving(1, &[4])], None, 50.0);
        assert_eq!((fifth[1].since, fifth[1].progressed_at), (50.0, 50.0));
    }
}
