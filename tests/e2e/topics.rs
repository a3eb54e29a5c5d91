//! Topics and partitions as the collector follows them, against librdkafka's
//! mock cluster (three brokers) with a keyed producer: records per second per
//! topic against what the producer sent, the hot partition of a keyed topic
//! named with its leader, a topic nobody writes to, a replication factor of
//! one, and a partition whose leader is moved three times. Against a real
//! broker (tansu): the rate, a keyed producer's hot partition, a silent
//! topic, and consumer groups' state and members (a group with a running
//! consumer, and one whose consumers are gone).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use brokerwatch_tests::{
    commit_as_group, create_topics, eventually, free_port, get_json, open_collector_config,
    start_collector, start_tansu, Scrape,
};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde_json::Value;

/// Writes to `orders` every 10 ms until `stop`: four records of ten carry
/// the key `customer-42` (one partition), the rest other keys; one record
/// to each of `spread`'s partitions. Counts what it sent to `orders`.
fn produce(bootstrap: String, sent: Arc<AtomicU64>, stop: Arc<AtomicBool>) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("linger.ms", "5")
        .create()
        .expect("producer");
    let mut n: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        for _ in 0..10 {
            n += 1;
            let key = if n % 10 < 7 {
                "customer-42".to_owned()
            } else {
                format!("customer-{n}")
            };
            if producer
                .send(BaseRecord::to("orders").payload("o").key(&key))
                .is_ok()
            {
                sent.fetch_add(1, Ordering::Relaxed);
            }
        }
        for partition in 0..3 {
            let _ = producer.send(
                BaseRecord::to("spread")
                    .partition(partition)
                    .payload("s")
                    .key("k"),
            );
        }
        producer.poll(Duration::ZERO);
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = producer.flush(Duration::from_secs(5));
}

/// A collector on the mock cluster at `bootstrap`, reading end offsets every
/// `fetch`, a topic silent after `silent_after`, and `rules` appended.
fn mock_config(
    bootstrap: &str,
    state: &std::path::Path,
    fetch: &str,
    silent_after: &str,
    rules: &str,
) -> String {
    format!(
        r#"cluster = "mock"
listen = "127.0.0.1:0"
state_dir = {:?}
evaluation_interval = "200ms"
[ingest]
allow_unauthenticated = true
[kafka]
metadata_interval = "300ms"
[kafka.properties]
"bootstrap.servers" = "{bootstrap}"
[consumer_groups]
fetch_interval = "{fetch}"
[topics]
no_traffic_after = "{silent_after}"
{rules}"#,
        state.to_str().unwrap()
    )
}

fn topics(url: &str) -> Vec<Value> {
    get_json(&format!("{url}/api/v1/topics"))["topics"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn topic(url: &str, name: &str) -> Option<Value> {
    topics(url).into_iter().find(|t| t["topic"] == name)
}

/// The firing alert `alertname` about `topic`, if any.
fn firing(url: &str, alertname: &str, topic: &str) -> Option<Value> {
    get_json(&format!("{url}/api/v1/alerts"))
        .as_array()?
        .iter()
        .find(|a| {
            a["state"] == "firing"
                && a["labels"]["alertname"] == alertname
                && a["labels"]["topic"] == topic
        })
        .cloned()
}

#[test]
fn topics_rates_skew_silence_replication_and_leader_changes_on_the_mock_cluster() {
    let mock = MockCluster::new(3).expect("mock cluster");
    mock.create_topic("orders", 6, 3).expect("topic");
    mock.create_topic("spread", 3, 3).expect("topic");
    mock.create_topic("quiet", 2, 1).expect("topic");
    let bootstrap = mock.bootstrap_servers();
    let sent = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let producer = {
        let (bootstrap, sent, stop) = (bootstrap.clone(), sent.clone(), stop.clone());
        std::thread::spawn(move || produce(bootstrap, sent, stop))
    };

    let state = tempfile::tempdir().unwrap();
    let (_collector, url) = start_collector(&mock_config(
        &bootstrap,
        state.path(),
        "500ms",
        "4s",
        "[rules.KafkaTopicPartitionSkew]\nfor = \"0s\"\n[rules.KafkaTopicReplicationFactorLow]\nfor = \"0s\"\n",
    ));

    // Records per second against what the producer sent over 5 s.
    eventually("orders' rate", Duration::from_secs(30), || {
        topic(&url, "orders")?["records_per_second"].as_f64()
    });
    let (before, started) = (sent.load(Ordering::Relaxed), Instant::now());
    std::thread::sleep(Duration::from_secs(5));
    let sent_rate =
        (sent.load(Ordering::Relaxed) - before) as f64 / started.elapsed().as_secs_f64();
    let orders = topic(&url, "orders").unwrap();
    let measured = orders["records_per_second"].as_f64().unwrap();
    assert!(
        (measured - sent_rate).abs() <= 0.3 * sent_rate,
        "orders: {measured:.0} records/s measured, {sent_rate:.0} sent"
    );
    assert_eq!(orders["partitions"], 6);
    assert_eq!(orders["replication_factor"], 3);
    assert_eq!(orders["replica_brokers"], 3);
    assert_eq!(orders["no_traffic"], false);

    // The keyed partition is named, with its leader.
    let detail = get_json(&format!("{url}/api/v1/topics/orders"));
    let partitions = detail["topics"][0]["partition_details"]
        .as_array()
        .unwrap()
        .clone();
    let hot = partitions
        .iter()
        .max_by_key(|p| p["end_offset"].as_i64().unwrap_or(0))
        .unwrap();
    let skew = eventually("the skew alert on orders", Duration::from_secs(30), || {
        firing(&url, "KafkaTopicPartitionSkew", "orders")
    });
    let description = skew["annotations"]["description"].as_str().unwrap();
    assert!(
        description.starts_with(&format!(
            "Hottest: partition {} (led by broker {})",
            hot["partition"], hot["leader"]
        )),
        "{description} / {hot}"
    );
    assert!(
        firing(&url, "KafkaTopicPartitionSkew", "spread").is_none(),
        "spread takes as much on each partition"
    );

    // Nobody writes to quiet: after no_traffic_after (4 s) it is a clean-up candidate.
    let quiet = eventually("quiet without traffic", Duration::from_secs(30), || {
        firing(&url, "KafkaTopicNoTraffic", "quiet")
    });
    assert_eq!(quiet["labels"]["severity"], "info");
    assert!(firing(&url, "KafkaTopicNoTraffic", "orders").is_none());
    let flagged = get_json(&format!("{url}/api/v1/topics?flag=no_traffic"));
    let names: Vec<&str> = flagged["topics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["topic"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["quiet"]);
    // Replication factor 1 on three brokers.
    let low = eventually(
        "quiet's replication factor",
        Duration::from_secs(30),
        || firing(&url, "KafkaTopicReplicationFactorLow", "quiet"),
    );
    assert_eq!(
        low["annotations"]["summary"],
        "Topic quiet has replication factor 1 (this cluster's topics should have 3)"
    );

    // spread/0's leader moved three times: counted, and flapping.
    let leader_of = |url: &str| {
        get_json(&format!("{url}/api/v1/topics/spread"))["topics"][0]["partition_details"][0]
            ["leader"]
            .as_i64()
    };
    let first = leader_of(&url).unwrap();
    for step in 1..=3 {
        let next = (first - 1 + step) % 3 + 1;
        mock.partition_leader("spread", 0, Some(next as i32))
            .expect("move the leader");
        eventually(
            "the leader moved in the collector's view",
            Duration::from_secs(30),
            || (leader_of(&url)? == next).then_some(()),
        );
    }
    let flapping = eventually("spread's leader flapping", Duration::from_secs(30), || {
        firing(&url, "KafkaPartitionLeaderFlapping", "spread")
    });
    assert!(
        flapping["annotations"]["description"]
            .as_str()
            .unwrap()
            .starts_with("Partitions (changes): 0 (3)."),
        "{flapping}"
    );
    let metrics = Scrape::fetch(&format!("{url}/metrics"));
    assert_eq!(
        metrics.sum(
            "brokerwatch_partition_leader_changes_total",
            &[("topic", "spread")]
        ),
        Some(3.0)
    );
    assert_eq!(metrics.sum("brokerwatch_topics", &[]), Some(3.0));
    assert_eq!(
        metrics.sum("brokerwatch_topics_without_traffic", &[]),
        Some(1.0)
    );
    assert!(metrics
        .sum(
            "brokerwatch_topic_records_per_second",
            &[("topic", "orders")]
        )
        .is_some_and(|r| r > 0.0));
    assert!(metrics
        .sum(
            "brokerwatch_topic_partition_skew_ratio",
            &[("topic", "orders")]
        )
        .is_some_and(|r| r >= 2.0));
    stop.store(true, Ordering::Relaxed);
    producer.join().unwrap();
}

/// Keyed records to `events` (three partitions), one per batch (tansu's
/// latest offset is the last batch's base + 1), four every 100 ms until
/// `stop`: three of four carry the key `customer-42`, the rest other keys.
/// Counts what was acknowledged.
fn produce_one_by_one(bootstrap: String, sent: Arc<AtomicU64>, stop: Arc<AtomicBool>) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("linger.ms", "0")
        .create()
        .expect("producer");
    let mut n: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        for _ in 0..4 {
            n += 1;
            let key = if n.is_multiple_of(4) {
                format!("customer-{n}")
            } else {
                "customer-42".to_owned()
            };
            let record = BaseRecord::to("events").payload("e").key(&key);
            if producer.send(record).is_ok() && producer.flush(Duration::from_secs(5)).is_ok() {
                sent.fetch_add(1, Ordering::Relaxed);
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn rates_and_consumer_group_state_on_a_real_broker() {
    let port = free_port();
    let _tansu = start_tansu(port);
    let bootstrap = format!("127.0.0.1:{port}");
    create_topics(&bootstrap, &[("events", 3), ("silent", 1)]);
    let sent = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let producer = {
        let (bootstrap, sent, stop) = (bootstrap.clone(), sent.clone(), stop.clone());
        std::thread::spawn(move || produce_one_by_one(bootstrap, sent, stop))
    };
    // "idle" committed once and has no consumer; "live" has one, polling.
    commit_as_group(&bootstrap, "idle", "events", &[0, 0, 0]);
    let live = {
        let (bootstrap, stop) = (bootstrap.clone(), stop.clone());
        std::thread::spawn(move || {
            let consumer: BaseConsumer = ClientConfig::new()
                .set("bootstrap.servers", &bootstrap)
                .set("group.id", "live")
                .set("auto.offset.reset", "earliest")
                .create()
                .expect("consumer");
            consumer.subscribe(&["events"]).expect("subscribe");
            while !stop.load(Ordering::Relaxed) {
                let _ = consumer.poll(Duration::from_millis(100));
            }
        })
    };

    let state = tempfile::tempdir().unwrap();
    let (_collector, url) = start_collector(&format!(
        r#"{header}[kafka]
metadata_interval = "1s"
timeout = "2s"
[kafka.properties]
"bootstrap.servers" = "{bootstrap}"
[consumer_groups]
fetch_interval = "1s"
[consumer_groups.limits.idle]
max_lag_messages = 5
[topics]
no_traffic_after = "4s"
[rules.KafkaConsumerGroupLag]
for = "0s"
[rules.KafkaTopicPartitionSkew]
for = "0s"
"#,
        header = open_collector_config("tansu", state.path())
    ));

    eventually("events' rate", Duration::from_secs(30), || {
        topic(&url, "events")?["records_per_second"].as_f64()
    });
    let (before, started) = (sent.load(Ordering::Relaxed), Instant::now());
    std::thread::sleep(Duration::from_secs(6));
    let sent_rate =
        (sent.load(Ordering::Relaxed) - before) as f64 / started.elapsed().as_secs_f64();
    let measured = topic(&url, "events").unwrap()["records_per_second"]
        .as_f64()
        .unwrap();
    assert!(
        (measured - sent_rate).abs() <= 0.3 * sent_rate,
        "events: {measured:.1} records/s measured, {sent_rate:.1} sent"
    );

    // The keyed partition, named with its leader (tansu's one node, 111);
    // the topic nobody writes to, flagged.
    let skew = eventually("the skew alert on events", Duration::from_secs(30), || {
        firing(&url, "KafkaTopicPartitionSkew", "events")
    });
    let detail = get_json(&format!("{url}/api/v1/topics/events"));
    let hot = detail["topics"][0]["partition_details"]
        .as_array()
        .unwrap()
        .iter()
        .max_by_key(|p| p["end_offset"].as_i64().unwrap_or(0))
        .unwrap()
        .clone();
    assert!(
        skew["annotations"]["description"]
            .as_str()
            .unwrap()
            .starts_with(&format!(
                "Hottest: partition {} (led by broker 111)",
                hot["partition"]
            )),
        "{skew} / {hot}"
    );
    eventually("silent without traffic", Duration::from_secs(30), || {
        firing(&url, "KafkaTopicNoTraffic", "silent")
    });
    assert!(firing(&url, "KafkaTopicNoTraffic", "events").is_none());

    let metrics = eventually("both groups described", Duration::from_secs(60), || {
        let metrics = Scrape::fetch(&format!("{url}/metrics"));
        (metrics.sum(
            "brokerwatch_consumergroup_members",
            &[("consumergroup", "live")],
        ) == Some(1.0))
        .then_some(metrics)
    });
    assert_eq!(
        metrics.sum(
            "brokerwatch_consumergroup_members",
            &[("consumergroup", "idle")]
        ),
        Some(0.0)
    );
    assert_eq!(
        metrics.sum(
            "brokerwatch_consumergroup_state",
            &[("consumergroup", "idle"), ("state", "Empty")]
        ),
        Some(1.0)
    );
    assert_eq!(
        metrics.sum(
            "brokerwatch_consumergroup_state",
            &[("consumergroup", "live"), ("state", "Stable")]
        ),
        Some(1.0)
    );
    let alert = eventually("idle's lag alert", Duration::from_secs(30), || {
        get_json(&format!("{url}/api/v1/alerts"))
            .as_array()?
            .iter()
            .find(|a| a["state"] == "firing" && a["labels"]["consumergroup"] == "idle")
            .cloned()
    });
    assert!(
        alert["annotations"]["description"]
            .as_str()
            .unwrap()
            .starts_with("No consumer is running: the group is Empty with no members"),
        "{alert}"
    );
    stop.store(true, Ordering::Relaxed);
    producer.join().unwrap();
    live.join().unwrap();
}

#[test]
fn what_a_topic_did_survives_a_restart() {
    let mock = MockCluster::new(1).expect("mock cluster");
    mock.create_topic("quiet", 1, 1).expect("topic");
    let bootstrap = mock.bootstrap_servers();
    let state = tempfile::tempdir().unwrap();
    let config = mock_config(&bootstrap, state.path(), "300ms", "25s", "");
    let first_start = Instant::now();
    {
        let (mut collector, url) = start_collector(&config);
        eventually("quiet followed", Duration::from_secs(30), || {
            topic(&url, "quiet").filter(|t| t["records_per_second"].is_number())
        });
        assert!(collector
            .terminate(Duration::from_secs(10))
            .unwrap()
            .success());
    }
    let kept = std::fs::read_to_string(state.path().join("traffic.json")).unwrap();
    assert!(kept.contains("\"quiet\":{\"first_seen_at\":"), "{kept}");
    // Restarted: quiet has been silent since the first run saw it, so it is
    // flagged 25 s after that, not 25 s after the restart (the mock cluster
    // makes each start wait a whole timeout, 10 s, on DescribeConfigs).
    let (_collector, url) = start_collector(&config);
    let restarted = Instant::now();
    eventually("quiet flagged", Duration::from_secs(30), || {
        firing(&url, "KafkaTopicNoTraffic", "quiet")
    });
    let flagged_after = restarted.elapsed();
    assert!(
        flagged_after < Duration::from_secs(30),
        "flagged {flagged_after:?} after the restart, {:?} after the first start",
        first_start.elapsed()
    );
    let quiet = topic(&url, "quiet").unwrap();
    assert!(quiet["quiet_seconds"].as_f64().unwrap() >= 25.0, "{quiet}");
}
