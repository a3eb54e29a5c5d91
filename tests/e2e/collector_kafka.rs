//! The collector daemon watching a Kafka-protocol cluster (librdkafka's mock
//! cluster, in this process): the replication figures and the lag of a
//! configured group reach its API, its /metrics and its alerts.

use std::time::Duration;

use brokerwatch_tests::{commit_as_group, eventually, get_json, start_collector, Scrape};
use rdkafka::config::ClientConfig;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

#[test]
fn replication_lag_and_their_alerts_come_from_the_cluster() {
    let mock = MockCluster::new(3).expect("mock cluster");
    mock.create_topic("orders", 6, 3).expect("topic");
    let bootstrap = mock.bootstrap_servers();
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()
        .expect("producer");
    for i in 0..600 {
        producer
            .send(
                BaseRecord::to("orders")
                    .partition(i % 6)
                    .payload("o")
                    .key("k"),
            )
            .expect("send");
    }
    producer.flush(Duration::from_secs(10)).expect("flush");
    // billing has read 40 of the 100 messages of each partition.
    commit_as_group(&bootstrap, "billing", "orders", &[40; 6]);
    mock.partition_leader("orders", 0, None).expect("no leader");

    let state = tempfile::tempdir().unwrap();
    let (_collector, url) = start_collector(&format!(
        r#"cluster = "mock"
listen = "127.0.0.1:0"
state_dir = {:?}
evaluation_interval = "200ms"
[ingest]
allow_unauthenticated = true
[kafka]
metadata_interval = "500ms"
expected_brokers = [1, 2, 3, 4]
[kafka.properties]
"bootstrap.servers" = "{bootstrap}"
[consumer_groups]
groups = ["billing"]
fetch_interval = "500ms"
max_lag_messages = 100
[rules.KafkaOfflinePartitions]
for = "0s"
[rules.KafkaBrokerDown]
for = "0s"
[rules.KafkaConsumerGroupLag]
for = "0s"
"#,
        state.path().to_str().unwrap()
    ));

    let replication = eventually(
        "the cluster's metadata in the API",
        Duration::from_secs(30),
        || {
            let r = get_json(&format!("{url}/api/v1/replication"));
            (r["partitions"] == 6).then_some(r)
        },
    );
    assert_eq!(replication["offline"], 1);
    assert_eq!(replication["brokers_down"], serde_json::json!([4]));
    for broker in replication["brokers"].as_array().unwrap() {
        assert_eq!(broker["partitions"], 6, "{broker}");
    }

    let alerts = eventually(
        "the offline, broker-down and lag alerts firing",
        Duration::from_secs(30),
        || {
            let alerts = get_json(&format!("{url}/api/v1/alerts"));
            let firing: Vec<String> = alerts
                .as_array()?
                .iter()
                .filter(|a| a["state"] == "firing")
                .map(|a| {
                    format!(
                        "{}{}",
                        a["labels"]["alertname"].as_str().unwrap_or(""),
                        a["labels"]["broker"]
                            .as_str()
                            .or(a["labels"]["consumergroup"].as_str())
                            .unwrap_or("")
                    )
                })
                .collect();
            [
                "KafkaOfflinePartitions",
                "KafkaBrokerDown4",
                "KafkaConsumerGroupLagbilling",
            ]
            .iter()
            .all(|a| firing.iter().any(|f| f == a))
            .then_some(alerts)
        },
    );
    let lag = alerts
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["labels"]["alertname"] == "KafkaConsumerGroupLag")
        .unwrap();
    assert!(
        lag["annotations"]["summary"]
            .as_str()
            .unwrap()
            .starts_with("Consumer group billing is "),
        "{lag}"
    );
    // orders/0 has no leader, so its end offset cannot be read: 5 partitions of 60.
    assert!(
        lag["annotations"]["summary"]
            .as_str()
            .unwrap()
            .contains(": 300 messages"),
        "{lag}"
    );

    let metrics = Scrape::fetch(&format!("{url}/metrics"));
    assert_eq!(
        metrics.sum("brokerwatch_offline_partitions", &[("cluster", "mock")]),
        Some(1.0)
    );
    assert_eq!(
        metrics.sum("brokerwatch_broker_partitions", &[("broker", "1")]),
        Some(6.0)
    );
    assert_eq!(
        metrics.sum(
            "brokerwatch_consumergroup_lag_messages",
            &[("consumergroup", "billing"), ("topic", "orders")]
        ),
        Some(300.0)
    );
    assert_eq!(
        metrics
            .by_label("brokerwatch_consumergroup_status", "status")
            .values()
            .sum::<f64>(),
        1.0,
        "one status at a time"
    );
    let groups = get_json(&format!("{url}/api/v1/consumergroups"));
    assert_eq!(groups[0]["group"], "billing");
    assert_eq!(groups[0]["lag_messages"], 300);
}
