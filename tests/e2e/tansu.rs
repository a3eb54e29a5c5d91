//! The collector against a real Kafka-protocol broker (tansu, in-memory),
//! with a real producer and consumer groups committing through librdkafka:
//! groups found by ListGroups, lag equal to the client's end minus committed
//! offsets, each status and its alert on time against the configured
//! windows, under-min-ISR unknown where the broker does not say, and the
//! broker killed and restarted empty: the cluster's error stays until it
//! answers, the groups it lost are forgotten and their alerts resolve.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use brokerwatch_tests::{
    create_topics, eventually, free_port, get_json, open_collector_config, start_collector,
    start_tansu, Scrape,
};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;

const TOPIC: &str = "orders";
const PARTITIONS: i32 = 2;
const TIMEOUT: Duration = Duration::from_secs(5);
/// The collector's windows in this test.
const STOP_AFTER: f64 = 6.0;
const ERR_LAG: f64 = 12.0;
const WINDOW: f64 = 60.0;

fn client(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap);
    config
}

/// Produces one record per batch (tansu's latest offset is the last batch's
/// base + 1) to every partition every 100 ms, while `running`.
fn produce(bootstrap: String, running: Arc<AtomicBool>, stop: Arc<AtomicBool>) {
    let producer: BaseProducer = client(&bootstrap)
        .set("linger.ms", "0")
        .create()
        .expect("producer");
    while !stop.load(Ordering::Relaxed) {
        if running.load(Ordering::Relaxed) {
            for partition in 0..PARTITIONS {
                let record = BaseRecord::to(TOPIC)
                    .partition(partition)
                    .payload("o")
                    .key("k");
                if producer.send(record).is_ok() {
                    let _ = producer.flush(TIMEOUT);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn group(bootstrap: &str, name: &str) -> BaseConsumer {
    client(bootstrap)
        .set("group.id", name)
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer")
}

fn ends(consumer: &BaseConsumer) -> Vec<i64> {
    (0..PARTITIONS)
        .map(|p| {
            consumer
                .fetch_watermarks(TOPIC, p, TIMEOUT)
                .expect("watermarks")
                .1
        })
        .collect()
}

fn commit(consumer: &BaseConsumer, offsets: &[i64]) {
    let mut list = TopicPartitionList::new();
    for (partition, offset) in offsets.iter().enumerate() {
        list.add_partition_offset(TOPIC, partition as i32, Offset::Offset(*offset))
            .expect("offset");
    }
    consumer.commit(&list, CommitMode::Sync).expect("commit");
}

fn committed(consumer: &BaseConsumer) -> Vec<i64> {
    let mut list = TopicPartitionList::new();
    for partition in 0..PARTITIONS {
        list.add_partition(TOPIC, partition);
    }
    let offsets = consumer
        .committed_offsets(list, TIMEOUT)
        .expect("committed");
    (0..PARTITIONS)
        .map(
            |p| match offsets.find_partition(TOPIC, p).map(|e| e.offset()) {
                Some(Offset::Offset(o)) => o,
                other => panic!("no committed offset for {TOPIC}/{p}: {other:?}"),
            },
        )
        .collect()
}

/// When each (group, status) and each group's alert was first seen, in
/// seconds from the start.
#[derive(Default)]
struct Seen {
    statuses: BTreeMap<(String, String), f64>,
    alerts: BTreeMap<String, f64>,
}

impl Seen {
    fn look(&mut self, url: &str, at: f64) {
        for g in get_json(&format!("{url}/api/v1/consumergroups"))
            .as_array()
            .into_iter()
            .flatten()
        {
            let key = (
                g["group"].as_str().unwrap_or("").to_owned(),
                g["status"].as_str().unwrap_or("").to_owned(),
            );
            self.statuses.entry(key).or_insert(at);
        }
        for a in firing(url, "KafkaConsumerGroupLag") {
            let group = a["labels"]["consumergroup"]
                .as_str()
                .unwrap_or("")
                .to_owned();
            self.alerts.entry(group).or_insert(at);
        }
    }

    fn status(&self, group: &str, status: &str) -> Option<f64> {
        self.statuses
            .get(&(group.to_owned(), status.to_owned()))
            .copied()
    }
}

fn firing(url: &str, alertname: &str) -> Vec<Value> {
    get_json(&format!("{url}/api/v1/alerts"))
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["labels"]["alertname"] == alertname && a["state"] == "firing")
        .cloned()
        .collect()
}

fn lag_by_group(url: &str) -> BTreeMap<String, i64> {
    get_json(&format!("{url}/api/v1/consumergroups"))
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|g| Some((g["group"].as_str()?.to_owned(), g["lag_messages"].as_i64()?)))
        .collect()
}

#[test]
fn consumer_groups_on_a_real_broker_and_the_broker_killed_and_restarted() {
    let port = free_port();
    let mut tansu = start_tansu(port);
    let bootstrap = format!("127.0.0.1:{port}");
    create_topics(&bootstrap, &[(TOPIC, PARTITIONS)]);
    let state = tempfile::tempdir().unwrap();
    let (collector, url) = start_collector(&format!(
        r#"{header}[kafka]
metadata_interval = "1s"
timeout = "2s"
[kafka.properties]
"bootstrap.servers" = "{bootstrap}"
[consumer_groups]
fetch_interval = "1s"
window = "{WINDOW}s"
stop_after = "{STOP_AFTER}s"
err_lag = "{ERR_LAG}s"
# The probe has tests of its own (probe.rs); its topic would change the
# partition counts this test reads.
[probe]
enabled = false
[rules.KafkaConsumerGroupLag]
for = "0s"
[rules.KafkaClusterUnreachable]
for = "0s"
"#,
        header = open_collector_config("tansu", state.path())
    ));

    let (running, stop) = (
        Arc::new(AtomicBool::new(true)),
        Arc::new(AtomicBool::new(false)),
    );
    let producer = {
        let (bootstrap, running, stop) = (bootstrap.clone(), running.clone(), stop.clone());
        std::thread::spawn(move || produce(bootstrap, running, stop))
    };
    let names = ["keeps-up", "slow", "stops", "rewinds"];
    let groups: Vec<BaseConsumer> = names.iter().map(|n| group(&bootstrap, n)).collect();
    // Each group commits once a second: keeps-up what there is, slow half of
    // it, stops like keeps-up until 8 s, rewinds like keeps-up until 20 s and
    // then goes back to 0 and stays.
    const STOPS_AT: f64 = 8.0;
    const REWINDS_AT: f64 = 20.0;
    let started = Instant::now();
    let mut seen = Seen::default();
    let mut rewound = false;
    while started.elapsed() < Duration::from_secs(36) {
        let t = started.elapsed().as_secs_f64();
        let end = ends(&groups[0]);
        commit(&groups[0], &end);
        commit(&groups[1], &end.iter().map(|e| e / 2).collect::<Vec<_>>());
        if t < STOPS_AT {
            commit(&groups[2], &end);
        }
        if t < REWINDS_AT {
            commit(&groups[3], &end);
        } else if !rewound {
            commit(&groups[3], &[0, 0]);
            rewound = true;
        }
        let tick = Instant::now();
        while tick.elapsed() < Duration::from_secs(1) {
            seen.look(&url, started.elapsed().as_secs_f64());
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    // Every group was found by ListGroups (none is configured).
    let listed: Vec<String> = lag_by_group(&url).into_keys().collect();
    assert_eq!(listed, ["keeps-up", "rewinds", "slow", "stops"]);

    // Each status and its alert on time.
    let stop_at = seen.status("stops", "STOP").expect("stops went STOP");
    let warn_at = seen.status("slow", "WARN").expect("slow went WARN");
    let err_at = seen.status("slow", "ERR").expect("slow went ERR");
    let rewind_at = seen
        .status("rewinds", "REWIND")
        .expect("rewinds went REWIND");
    eprintln!(
        "figures (s from start; windows: stop_after {STOP_AFTER}, err_lag {ERR_LAG}, trend span {}): \
         STOP at {stop_at:.1} (stopped at {STOPS_AT}), WARN at {warn_at:.1}, ERR at {err_at:.1}, \
         REWIND at {rewind_at:.1} (rewound at {REWINDS_AT}); alerts {:?}",
        WINDOW / 4.0,
        seen.alerts
    );
    assert!(
        (STOPS_AT + STOP_AFTER - 1.0..=STOPS_AT + STOP_AFTER + 5.0).contains(&stop_at),
        "STOP at {stop_at}"
    );
    assert!(
        warn_at >= WINDOW / 4.0,
        "WARN before a trend could be told: {warn_at}"
    );
    assert!(err_at > warn_at && err_at >= ERR_LAG, "ERR at {err_at}");
    assert!(
        (REWINDS_AT..=REWINDS_AT + 4.0).contains(&rewind_at),
        "REWIND at {rewind_at}"
    );
    for (group, status_at) in [("stops", stop_at), ("slow", err_at), ("rewinds", rewind_at)] {
        let alert_at = seen.alerts.get(group).copied().expect("the group's alert");
        assert!(
            (status_at - 0.5..=status_at + 2.0).contains(&alert_at),
            "{group}'s alert at {alert_at}, its status at {status_at}"
        );
    }
    assert!(!seen.alerts.contains_key("keeps-up"), "{:?}", seen.alerts);
    assert!(
        seen.statuses
            .keys()
            .filter(|(g, _)| g == "keeps-up")
            .all(|(_, s)| s == "OK" || s == "WARN"),
        "{:?}",
        seen.statuses
    );

    // Lag is exact: with production paused, the collector's lag of each
    // group is the client's end offsets minus its committed offsets.
    running.store(false, Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(500));
    let end: i64 = ends(&groups[0]).iter().sum();
    let expected: BTreeMap<String, i64> = names
        .iter()
        .zip(&groups)
        .map(|(name, consumer)| {
            let lag = end - committed(consumer).iter().sum::<i64>();
            ((*name).to_owned(), lag)
        })
        .collect();
    assert!(expected["stops"] > 100, "{expected:?}");
    eventually("lag equal to the client's", Duration::from_secs(10), || {
        (lag_by_group(&url) == expected).then_some(())
    });

    // tansu answers DescribeConfigs without entries: under-min-ISR is unknown.
    let replication = get_json(&format!("{url}/api/v1/replication"));
    assert_eq!(replication["partitions"], PARTITIONS, "{replication}");
    assert!(replication["under_min_isr"].is_null(), "{replication}");
    let scrape = Scrape::fetch(&format!("{url}/metrics"));
    assert!(scrape
        .sum("brokerwatch_under_min_isr_partitions", &[])
        .is_none());
    assert_eq!(scrape.sum("brokerwatch_broker_partitions", &[]), Some(2.0));

    // The broker is killed: the cluster is unreachable, and says so until
    // it answers again.
    tansu.kill_hard();
    let killed = Instant::now();
    eventually("KafkaClusterUnreachable", Duration::from_secs(20), || {
        firing(&url, "KafkaClusterUnreachable").into_iter().next()
    });
    let unreachable_after = killed.elapsed();
    for _ in 0..20 {
        let replication = get_json(&format!("{url}/api/v1/replication"));
        assert!(replication["error"].is_string(), "{replication}");
        std::thread::sleep(Duration::from_millis(100));
    }

    // An outage forgets nothing: the groups are the cluster's still.
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        !collector.log().contains("is gone"),
        "groups forgotten while the cluster could not be asked:\n{}",
        collector.log()
    );

    // Restarted (empty, in memory): it answers again, once said; the groups
    // it no longer knows are forgotten and their alerts resolve.
    let _tansu = start_tansu(port);
    let restarted = Instant::now();
    eventually("the cluster answers again", Duration::from_secs(20), || {
        firing(&url, "KafkaClusterUnreachable")
            .is_empty()
            .then_some(())
    });
    eventually("the lost groups forgotten", Duration::from_secs(20), || {
        lag_by_group(&url).is_empty().then_some(())
    });
    let forgotten_after = restarted.elapsed();
    let resolved = eventually("their alerts resolved", Duration::from_secs(10), || {
        let alerts = get_json(&format!("{url}/api/v1/alerts"));
        let lag: Vec<&Value> = alerts
            .as_array()?
            .iter()
            .filter(|a| a["labels"]["alertname"] == "KafkaConsumerGroupLag")
            .collect();
        lag.iter()
            .all(|a| a["state"] == "resolved")
            .then_some(lag.len())
    });
    assert_eq!(resolved, 3, "stops, slow and rewinds");
    let log = collector.log();
    assert_eq!(log.matches("the cluster answers again").count(), 1, "{log}");
    for group in ["stops", "slow", "rewinds", "keeps-up"] {
        assert_eq!(
            log.matches(&format!("consumer group {group} is gone"))
                .count(),
            1,
            "{log}"
        );
    }
    eprintln!(
        "figures: KafkaClusterUnreachable {:.1} s after the kill (3 metadata_interval of 1 s); groups forgotten {:.1} s after the restart (3 rounds of 1 s)",
        unreachable_after.as_secs_f64(),
        forgotten_after.as_secs_f64()
    );
    stop.store(true, Ordering::Relaxed);
    let _ = producer.join();
}
