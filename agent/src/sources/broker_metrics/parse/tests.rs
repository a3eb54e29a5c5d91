use super::*;
use crate::sources::fixture;

#[test]
fn parses_a_kafka_2_broker_through_the_jmx_exporter() {
    let m = parse_jmx_exporter(&fixture("jmx_exporter_kafka2.txt")).unwrap();
    assert_eq!(
        m.bytes_in_total,
        Some(9.8123876123e10),
        "the broker-wide series, not a topic's"
    );
    assert_eq!(m.bytes_out_total, Some(2.91238761231e11));
    assert_eq!(m.messages_in_total, Some(8.12387612e8));
    assert_eq!(m.replication_bytes_in_total, Some(1.9624775224e11));
    assert_eq!(m.replication_bytes_out_total, Some(1.8812e11));
    assert_eq!(m.under_replicated_partitions, Some(3.0));
    assert_eq!(m.under_min_isr_partitions, Some(1.0));
    assert_eq!(m.offline_partitions, Some(0.0));
    assert_eq!(m.active_controller, Some(1.0));
    assert_eq!(
        (m.leader_count, m.partition_count),
        (Some(412.0), Some(1236.0))
    );
    assert_eq!(m.request_handler_idle_ratio, Some(0.8712));
    assert_eq!(m.network_processor_idle_ratio, Some(0.6543));
    assert_eq!(m.request_queue_size, Some(7.0));
    assert_eq!(m.produce_total_time_p99_ms, Some(48.5));
    assert_eq!(m.fetch_consumer_total_time_p99_ms, Some(502.0));
    assert_eq!(
        (m.isr_shrinks_total, m.isr_expands_total),
        (Some(17.0), Some(15.0))
    );
    assert_eq!(m.offline_log_dirs, Some(0.0));
    assert_eq!(m.offline_log_dir_names, ["/data/kafka-2"]);
    // G1: young and old generations.
    assert_eq!(
        (m.gc_young_seconds_total, m.gc_young_collections_total),
        (Some(412.37), Some(15230.0))
    );
    assert_eq!(
        (m.gc_old_seconds_total, m.gc_old_collections_total),
        (Some(3.5), Some(2.0))
    );
    assert_eq!(
        m.quotas,
        [
            UserQuota {
                user: "analytics".into(),
                fetch_bytes_per_second: Some(10_485_760.0),
                fetch_throttle_ms: Some(0.0),
                ..UserQuota::default()
            },
            UserQuota {
                user: "ingest".into(),
                produce_bytes_per_second: Some(5_242_880.0),
                produce_throttle_ms: Some(120.0),
                ..UserQuota::default()
            },
        ]
    );
}

#[test]
fn parses_a_kraft_3_broker_with_percentile_gauges_and_no_controller_metrics() {
    let m = parse_jmx_exporter(&fixture("jmx_exporter_kraft3.txt")).unwrap();
    assert_eq!(m.bytes_in_total, Some(1.23456789e9));
    assert_eq!(m.messages_in_total, Some(1_234_567.0));
    assert_eq!(m.leader_count, Some(51.0));
    assert_eq!(
        m.request_handler_idle_ratio,
        Some(0.95),
        "the ratio gauge, not the meter's _total count"
    );
    assert_eq!(m.produce_total_time_p99_ms, Some(12.0));
    assert_eq!(m.fetch_consumer_total_time_p99_ms, Some(505.0));
    assert_eq!(
        (m.active_controller, m.offline_partitions),
        (None, None),
        "a KRaft broker node has no controller gauges"
    );
    assert!(m.quotas.is_empty());
    // Generational ZGC: pauses count, concurrent cycles do not; no full
    // collections, whatever "Major" says.
    assert_eq!(
        (m.gc_young_seconds_total, m.gc_young_collections_total),
        (Some(1.215 + 0.006), Some(24_300.0 + 120.0))
    );
    assert_eq!(
        (m.gc_old_seconds_total, m.gc_old_collections_total),
        (None, None)
    );
    assert!(m.offline_log_dir_names.is_empty());
}

#[test]
fn each_collector_counts_as_young_old_or_concurrent() {
    use Generation::{Old, Young};
    for (collector, expected) in [
        ("G1 Young Generation", Some(Young)),
        ("G1 Old Generation", Some(Old)),
        ("G1 Concurrent GC", None),
        ("ParNew", Some(Young)),
        ("ConcurrentMarkSweep", Some(Old)),
        ("PS Scavenge", Some(Young)),
        ("PS MarkSweep", Some(Old)),
        ("Copy", Some(Young)),
        ("MarkSweepCompact", Some(Old)),
        ("ZGC Cycles", None),
        ("ZGC Pauses", Some(Young)),
        ("ZGC Major Cycles", None),
        ("Shenandoah Pauses", Some(Young)),
        ("Shenandoah Cycles", None),
    ] {
        assert_eq!(super::generation(collector), expected, "{collector}");
    }
}

#[test]
fn parses_a_jolokia_bulk_read_with_the_same_values() {
    let m = parse_jolokia(&fixture("jolokia_kafka3.json")).unwrap();
    assert_eq!(m.bytes_in_total, Some(98_123_876_123.0));
    assert_eq!(m.bytes_out_total, Some(291_238_761_231.0));
    assert_eq!(m.replication_bytes_out_total, Some(188_120_000_000.0));
    assert_eq!(m.under_replicated_partitions, Some(3.0));
    assert_eq!(
        (m.offline_partitions, m.active_controller),
        (None, None),
        "404 on a KRaft broker node: absent"
    );
    assert_eq!(m.request_handler_idle_ratio, Some(0.8712));
    assert_eq!(m.produce_total_time_p99_ms, Some(48.5));
    assert_eq!(m.fetch_consumer_total_time_p99_ms, Some(502.0));
    assert_eq!(
        (m.isr_shrinks_total, m.isr_expands_total),
        (Some(17.0), Some(15.0))
    );
    assert_eq!(m.offline_log_dir_names, ["/data/kafka-2"]);
    // Milliseconds in Jolokia, seconds here; G1's concurrent cycles left out.
    assert_eq!(
        (m.gc_young_seconds_total, m.gc_young_collections_total),
        (Some(412.37), Some(15230.0))
    );
    assert_eq!(
        (m.gc_old_seconds_total, m.gc_old_collections_total),
        (Some(3.5), Some(2.0))
    );
    assert_eq!(m.quotas.len(), 2);
    assert_eq!(
        m.quotas[1],
        UserQuota {
            user: "ingest".into(),
            produce_bytes_per_second: Some(5_242_880.0),
            produce_throttle_ms: Some(120.0),
            ..UserQuota::default()
        }
    );
    // The JMX exporter's view of the same broker agrees where both report.
    let exporter = parse_jmx_exporter(&fixture("jmx_exporter_kafka2.txt")).unwrap();
    assert_eq!(
        (
            m.bytes_in_total,
            m.leader_count,
            m.produce_total_time_p99_ms
        ),
        (
            exporter.bytes_in_total,
            exporter.leader_count,
            exporter.produce_total_time_p99_ms
        )
    );
}

#[test]
fn the_bulk_request_reads_every_mbean_once() {
    let body: Vec<serde_json::Value> = serde_json::from_str(&jolokia_request()).unwrap();
    assert_eq!(body.len(), 24);
    assert!(body.iter().all(|r| r["type"] == "read"));
    assert!(same_mbean(
        "kafka.server:type=ReplicaManager,name=LeaderCount",
        "kafka.server:name=LeaderCount,type=ReplicaManager"
    ));
    assert!(parse_jolokia("{\"status\": 500}")
        .unwrap_err()
        .starts_with("not a Jolokia bulk-read answer"));
    assert_eq!(
        parse_jolokia("[]").unwrap_err(),
        "no Kafka broker MBeans in the answer: is the URL the broker's Jolokia agent?"
    );
}

#[test]
fn garbage_is_an_error_that_says_what_to_check() {
    assert_eq!(
        parse_jmx_exporter("<html><body>Not Found</body></html>").unwrap_err(),
        "no Kafka broker metrics in the answer: is the URL the broker's JMX exporter?"
    );
    assert!(parse_jmx_exporter("jvm_threads_current 42\n").is_err());
    assert!(parse_jmx_exporter("").is_err());
}

#[test]
fn per_topic_traffic_comes_from_the_topic_labelled_series_and_mbeans() {
    let exporter = parse_jmx_exporter(&fixture("jmx_exporter_kafka2.txt")).unwrap();
    let orders = exporter
        .topics
        .iter()
        .find(|t| t.topic == "orders")
        .unwrap();
    assert_eq!(
        (orders.bytes_in_total, orders.bytes_out_total),
        (Some(6.0e10), Some(2.0e11))
    );
    assert!(exporter.topics.iter().any(|t| t.topic == "payments"));
    assert_eq!(
        exporter.bytes_in_total.map(|b| b > 6.0e10),
        Some(true),
        "the broker-wide series stays"
    );
    let answer = serde_json::json!([
        {"request": {"type": "read", "mbean": "kafka.server:type=ReplicaManager,name=LeaderCount"},
         "value": {"Value": 3.0}, "status": 200},
        {"request": {"type": "read", "mbean": "kafka.server:type=BrokerTopicMetrics,name=*,topic=*"},
         "value": {
            "kafka.server:name=BytesInPerSec,topic=orders,type=BrokerTopicMetrics": {"Count": 1200.0, "OneMinuteRate": 3.0},
            "kafka.server:name=MessagesInPerSec,topic=orders,type=BrokerTopicMetrics": {"Count": 12.0},
            "kafka.server:name=BytesOutPerSec,topic=logs,type=BrokerTopicMetrics": {"Count": 7.0},
            "kafka.server:name=TotalProduceRequestsPerSec,topic=logs,type=BrokerTopicMetrics": {"Count": 9.0}
         }, "status": 200}
    ]);
    let jolokia = parse_jolokia(&answer.to_string()).unwrap();
    assert_eq!(
        jolokia.topics,
        [
            brokerwatch_common::TopicTraffic {
                topic: "logs".into(),
                bytes_in_total: None,
                bytes_out_total: Some(7.0),
                messages_in_total: None,
            },
            brokerwatch_common::TopicTraffic {
                topic: "orders".into(),
                bytes_in_total: Some(1200.0),
                bytes_out_total: None,
                messages_in_total: Some(12.0),
            },
        ]
    );
}
