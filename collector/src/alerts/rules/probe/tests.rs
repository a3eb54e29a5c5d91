use std::collections::BTreeMap;
use std::sync::Arc;

use super::super::tests::{config, find};
use super::super::{verdicts, Inputs};
use crate::alerts::state::Verdict;
use crate::kafka::checks::{ClusterState, Controllers};
use crate::kafka::probe::ProbeFindings;
use crate::model::cluster::cluster_load;
use crate::model::controllers::{Moving, MovingFacts, QuorumReading, ReplicaReading};
use crate::model::probe::BrokerWindow;
use crate::store::Store;

const NOW: f64 = 10_000.0;

fn kafka_config() -> crate::config::Config {
    config(
        "cluster = \"prod\"\n[ingest]\nallow_unauthenticated = true\n\
         [kafka]\nmetadata_interval = \"10s\"\n[kafka.properties]\n\"bootstrap.servers\" = \"k:9092\"\n",
    )
}

fn judge(cluster: &ClusterState) -> Vec<Verdict> {
    let config = kafka_config();
    let load = cluster_load(&config.load_params(), BTreeMap::new(), BTreeMap::new());
    let store = Store::new(300.0);
    verdicts(
        &config,
        &Inputs {
            cluster,
            ..Inputs::quiet(&store, &load, NOW)
        },
    )
    .into_iter()
    .filter(|v| {
        let name = &v.labels["alertname"];
        name.starts_with("KafkaProbe")
            || name == "KafkaControllerQuorumLagging"
            || name == "KafkaReassignmentStuck"
    })
    .collect()
}

fn probed(at: f64, windows: &[(i32, BrokerWindow)]) -> ClusterState {
    ClusterState {
        probe: Some(Arc::new(ProbeFindings {
            at,
            windows: windows.iter().cloned().collect(),
            totals: BTreeMap::new(),
            commit_latency: Default::default(),
            commit_failures: 0,
            brokers_without_partition: Vec::new(),
            restarts: 0,
        })),
        ..ClusterState::default()
    }
}

fn window(partition: i32, acknowledged: u64, failed: u64) -> BrokerWindow {
    BrokerWindow {
        partitions: vec![partition],
        acknowledged,
        failed,
        last_error: (failed > 0).then(|| "Local: Message timed out".to_owned()),
        received: acknowledged,
        end_to_end_p99: (acknowledged > 0).then_some(0.02),
        ..BrokerWindow::default()
    }
}

#[test]
fn a_broker_whose_writes_fail_is_named_with_its_partition_and_error() {
    let verdicts = judge(&probed(
        NOW - 1.0,
        &[
            (1, window(0, 12, 0)),
            (2, window(1, 9, 3)),
            (3, window(2, 10, 1)),
        ],
    ));
    let two = find(&verdicts, "KafkaProbeProduceFailing", &[("broker", "2")]);
    assert!(two.active, "9 of 12 is below 90 %");
    assert_eq!(two.labels["severity"], "critical");
    assert_eq!(
        two.annotations["summary"],
        "Writes to broker 2 fail: 9 of 12 probe records acknowledged in the last 1m"
    );
    assert!(two.annotations["description"].contains(
        "records to partition 1 of brokerwatch-probe, led by broker 2, are failing; the last error: Local: Message timed out."
    ));
    assert!(!find(&verdicts, "KafkaProbeProduceFailing", &[("broker", "1")]).active);
    assert!(
        !find(&verdicts, "KafkaProbeProduceFailing", &[("broker", "3")]).active,
        "10 of 11 is above 90 %"
    );
    // Exactly 90 % is not below it.
    let at_edge = judge(&probed(NOW, &[(4, window(3, 9, 1))]));
    assert!(!find(&at_edge, "KafkaProbeProduceFailing", &[("broker", "4")]).active);
}

#[test]
fn too_few_attempts_or_stale_findings_give_no_verdict() {
    let few = judge(&probed(NOW, &[(1, window(0, 0, 2))]));
    assert!(
        few.iter()
            .all(|v| v.labels["alertname"] != "KafkaProbeProduceFailing"),
        "2 tries are too few"
    );
    // Stale: older than 3 intervals plus the timeout (25 s by default).
    let stale = judge(&probed(NOW - 25.5, &[(1, window(0, 0, 10))]));
    assert!(stale.is_empty(), "{stale:?}");
    let fresh = judge(&probed(NOW - 24.5, &[(1, window(0, 0, 10))]));
    assert!(find(&fresh, "KafkaProbeProduceFailing", &[("broker", "1")]).active);
}

#[test]
fn slow_read_back_or_a_record_long_awaited_is_high_latency() {
    let slow = BrokerWindow {
        end_to_end_p99: Some(2.5),
        ..window(0, 10, 0)
    };
    let waiting = BrokerWindow {
        oldest_waiting: Some(4.0),
        ..window(1, 10, 0)
    };
    let edge = BrokerWindow {
        end_to_end_p99: Some(2.0),
        ..window(2, 10, 0)
    };
    let verdicts = judge(&probed(NOW, &[(1, slow), (2, waiting), (3, edge)]));
    let one = find(
        &verdicts,
        "KafkaProbeEndToEndLatencyHigh",
        &[("broker", "1")],
    );
    assert!(one.active);
    assert_eq!(
        one.annotations["summary"],
        "Messages through broker 1 take 2.50s end to end"
    );
    let two = find(
        &verdicts,
        "KafkaProbeEndToEndLatencyHigh",
        &[("broker", "2")],
    );
    assert!(
        two.active,
        "a record waited 4 s though those read back were quick"
    );
    assert!(
        two.annotations["description"].contains("99th percentile 0.02s"),
        "{}",
        two.annotations["description"]
    );
    assert!(two.annotations["description"].contains("has waited 4.00s"));
    assert!(
        !find(
            &verdicts,
            "KafkaProbeEndToEndLatencyHigh",
            &[("broker", "3")]
        )
        .active
    );
    let nothing = judge(&probed(NOW, &[(4, BrokerWindow::default())]));
    assert!(nothing
        .iter()
        .all(|v| v.labels["alertname"] != "KafkaProbeEndToEndLatencyHigh"));
}

#[test]
fn lost_records_fire_at_once_naming_the_broker_and_the_duplicates() {
    let losing = BrokerWindow {
        lost: 3,
        duplicated_total: 1,
        ..window(2, 10, 0)
    };
    let verdicts = judge(&probed(NOW, &[(1, window(0, 10, 0)), (3, losing)]));
    let three = find(&verdicts, "KafkaProbeMessagesLost", &[("broker", "3")]);
    assert!(three.active);
    assert_eq!(three.for_seconds, 0.0);
    assert_eq!(
        three.annotations["summary"],
        "3 acknowledged records lost on broker 3"
    );
    assert!(three.annotations["description"].contains("1 records have come back twice"));
    assert!(!find(&verdicts, "KafkaProbeMessagesLost", &[("broker", "1")]).active);
}

fn voter(id: i32, end: i64, caught_up_ms: i64) -> ReplicaReading {
    ReplicaReading {
        id,
        log_end_offset: end,
        last_caught_up_ms: caught_up_ms,
    }
}

fn with_controllers(
    at: f64,
    quorum: Option<QuorumReading>,
    moving: Option<Vec<MovingFacts>>,
) -> ClusterState {
    ClusterState {
        controllers: Some(Controllers {
            at,
            quorum,
            reassignments: moving.map(Arc::new),
            throttles: Arc::new([(4, vec![("follower", 10_485_760)])].into()),
            ..Controllers::default()
        }),
        ..ClusterState::default()
    }
}

#[test]
fn a_quorum_without_a_leader_or_with_a_voter_behind_fires_and_names_it() {
    let quorum = QuorumReading {
        leader: 1,
        epoch: 7,
        high_watermark: 5000,
        voters: vec![
            voter(1, 5000, 100_000),
            voter(2, 4990, 99_800),
            voter(3, 3000, 55_000),
        ],
        observers: vec![],
    };
    let verdicts = judge(&with_controllers(NOW, Some(quorum.clone()), None));
    let lagging = find(&verdicts, "KafkaControllerQuorumLagging", &[]);
    assert!(lagging.active);
    assert_eq!(
        lagging.annotations["summary"],
        "The controller quorum of cluster prod has 1 of 3 voters lagging"
    );
    assert!(lagging.annotations["description"].starts_with(
        "Leader 1 (epoch 7, high watermark 5000); lagging: controller 3 (2000 records, 45s behind)."
    ));
    let leaderless = QuorumReading {
        leader: -1,
        ..quorum.clone()
    };
    let verdicts = judge(&with_controllers(NOW, Some(leaderless), None));
    let none = find(&verdicts, "KafkaControllerQuorumLagging", &[]);
    assert!(none.active);
    assert_eq!(
        none.annotations["summary"],
        "The controller quorum of cluster prod has no leader"
    );
    let caught_up = QuorumReading {
        voters: vec![
            voter(1, 5000, 100_000),
            voter(2, 4990, 99_800),
            voter(3, 4999, 99_000),
        ],
        ..quorum.clone()
    };
    assert!(
        !find(
            &judge(&with_controllers(NOW, Some(caught_up), None)),
            "KafkaControllerQuorumLagging",
            &[]
        )
        .active
    );
    // ZooKeeper mode (no quorum), or a reading older than 3 metadata intervals: no verdict.
    assert!(judge(&with_controllers(NOW, None, None)).is_empty());
    assert!(judge(&with_controllers(NOW - 31.0, Some(quorum), None)).is_empty());
}

#[test]
fn a_reassignment_without_progress_for_30_minutes_is_stuck() {
    let moving = |partition: i32, since: f64, progressed_at: f64| MovingFacts {
        moving: Moving {
            key: ("orders".into(), partition),
            replicas: vec![1, 2, 3, 4],
            adding: vec![4],
            removing: vec![1],
        },
        since,
        progressed_at,
        copied_bytes: Some(1_048_576),
    };
    let verdicts = judge(&with_controllers(
        NOW,
        None,
        Some(vec![
            moving(0, NOW - 7200.0, NOW - 1800.0),
            moving(1, NOW - 7200.0, NOW - 1799.0),
        ]),
    ));
    let stuck = find(&verdicts, "KafkaReassignmentStuck", &[]);
    assert!(stuck.active);
    assert_eq!(
        stuck.annotations["summary"],
        "1 partition reassignments in cluster prod make no progress"
    );
    assert_eq!(
        stuck.annotations["description"],
        "orders-0 (seen for 2h, still for 30m). Adding brokers 4; copies hold 1.0 MiB so far. Throttled: broker 4 follower 10.0 MiB/s. Look at the adding brokers' logs and replica fetchers; raise the throttle, or cancel with kafka-reassign-partitions --cancel."
    );
    let moving_on = judge(&with_controllers(
        NOW,
        None,
        Some(vec![moving(1, NOW - 7200.0, NOW - 60.0)]),
    ));
    assert!(!find(&moving_on, "KafkaReassignmentStuck", &[]).active);
    let none = judge(&with_controllers(NOW, None, Some(Vec::new())));
    assert!(
        !find(&none, "KafkaReassignmentStuck", &[]).active,
        "nothing in flight resolves it"
    );
}

#[test]
fn without_agents_the_brokers_own_log_dir_listing_tells_an_offline_dir() {
    use crate::model::controllers::LogDir;
    let dir = |path: &str, error_code: i16| LogDir {
        path: path.into(),
        error_code,
        partitions: 3,
        size_bytes: 1000,
        total_bytes: None,
        usable_bytes: None,
    };
    let listed = |at: f64| ClusterState {
        controllers: Some(Controllers {
            at: NOW,
            log_dirs: Some(Arc::new(
                [
                    (1, vec![dir("/data/a", 0)]),
                    (2, vec![dir("/data/a", 0), dir("/data/b", 56)]),
                ]
                .into(),
            )),
            log_dirs_at: at,
            ..Controllers::default()
        }),
        ..ClusterState::default()
    };
    let config = kafka_config();
    let load = cluster_load(&config.load_params(), BTreeMap::new(), BTreeMap::new());
    let store = Store::new(300.0);
    let judged = |cluster: &ClusterState| {
        verdicts(
            &config,
            &Inputs {
                cluster,
                ..Inputs::quiet(&store, &load, NOW)
            },
        )
    };
    let verdicts = judged(&listed(NOW - 60.0));
    let two = find(&verdicts, "KafkaOfflineLogDirs", &[("broker", "2")]);
    assert!(two.active);
    assert_eq!(
        two.annotations["summary"],
        "Broker 2 has taken 1 log dir(s) offline: /data/b"
    );
    assert!(!find(&verdicts, "KafkaOfflineLogDirs", &[("broker", "1")]).active);
    // Older than three topic_config_intervals (10 minutes each): no verdict.
    assert!(judged(&listed(NOW - 1800.0))
        .iter()
        .any(|v| v.labels["alertname"] == "KafkaOfflineLogDirs"));
    let stale = judged(&listed(NOW - 1801.0));
    assert!(stale
        .iter()
        .all(|v| v.labels["alertname"] != "KafkaOfflineLogDirs"));
}
