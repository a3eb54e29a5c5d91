//! The broker's own metrics, from the Prometheus JMX exporter or the Jolokia
//! agent Kafka operators already run beside the broker, mapped onto one fixed
//! set ([`BrokerMetricsReport`]). Parsing is pure; the endpoint is fetched with a
//! timeout by its source (`mod.rs`), so a slow or missing exporter is one counted error,
//! never a stalled cycle.

use std::collections::BTreeMap;

use brokerwatch_common::{BrokerMetricsReport, UserQuota};
use prometheus_parse::{Sample, Scrape, Value};

fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => Some(*v),
        _ => None,
    }
}

struct Samples(Vec<Sample>);

impl Samples {
    /// The broker-wide series of a metric: the one without a `topic` label.
    fn total(&self, names: &[&str]) -> Option<f64> {
        names.iter().find_map(|name| {
            self.0
                .iter()
                .find(|s| s.metric == *name && s.labels.get("topic").is_none())
                .and_then(|s| number(&s.value))
        })
    }

    /// The 99th percentile of a request's total time, in either shape the
    /// exporter's Kafka rules produce: a summary with quantiles, or a
    /// `_99thpercentile` gauge named by `name="TotalTimeMs"`.
    fn p99(&self, request: &str) -> Option<f64> {
        self.0.iter().find_map(|s| {
            let this_request = s.labels.get("request") == Some(request);
            match (&s.value, s.metric.as_str()) {
                (Value::Summary(quantiles), "kafka_network_requestmetrics_totaltimems")
                    if this_request =>
                {
                    quantiles
                        .iter()
                        .find(|q| (q.quantile - 0.99).abs() < 1e-9)
                        .map(|q| q.count)
                }
                (value, "kafka_network_requestmetrics_totaltimems")
                    if this_request
                        && s.labels
                            .get("quantile")
                            .and_then(|q| q.parse::<f64>().ok())
                            .is_some_and(|q| (q - 0.99).abs() < 1e-9) =>
                {
                    number(value)
                }
                (value, "kafka_network_requestmetrics_99thpercentile")
                    if this_request && s.labels.get("name") == Some("TotalTimeMs") =>
                {
                    number(value)
                }
                _ => None,
            }
        })
    }

    fn quotas(&self) -> Vec<UserQuota> {
        let mut users: BTreeMap<String, UserQuota> = BTreeMap::new();
        for s in &self.0 {
            let field: fn(&mut UserQuota) -> &mut Option<f64> = match s.metric.as_str() {
                "kafka_server_produce_byte_rate" => |q| &mut q.produce_bytes_per_second,
                "kafka_server_fetch_byte_rate" => |q| &mut q.fetch_bytes_per_second,
                "kafka_server_produce_throttle_time" => |q| &mut q.produce_throttle_ms,
                "kafka_server_fetch_throttle_time" => |q| &mut q.fetch_throttle_ms,
                _ => continue,
            };
            let (Some(user), Some(value)) = (s.labels.get("user"), number(&s.value)) else {
                continue;
            };
            let quota = users.entry(user.to_owned()).or_insert_with(|| UserQuota {
                user: user.to_owned(),
                ..UserQuota::default()
            });
            *field(quota) = Some(value);
        }
        users.into_values().collect()
    }
}

/// Where the broker's metrics come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Endpoint {
    /// A Prometheus JMX exporter's `/metrics` (GET).
    JmxExporter(String),
    /// A Jolokia agent's URL (one bulk read, POST).
    Jolokia(String),
}

impl Endpoint {
    pub fn url(&self) -> &str {
        match self {
            Endpoint::JmxExporter(url) | Endpoint::Jolokia(url) => url,
        }
    }

    pub fn parse(&self, text: &str) -> Result<BrokerMetricsReport, String> {
        match self {
            Endpoint::JmxExporter(_) => parse_jmx_exporter(text),
            Endpoint::Jolokia(_) => parse_jolokia(text),
        }
    }
}

/// Parses a JMX exporter scrape; an answer with none of Kafka's metrics in
/// it (an HTML page, another exporter) is an error.
pub fn parse_jmx_exporter(text: &str) -> Result<BrokerMetricsReport, String> {
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    let scrape =
        Scrape::parse(lines).map_err(|e| format!("not the Prometheus text format: {e}"))?;
    let s = Samples(scrape.samples);
    let report = BrokerMetricsReport {
        bytes_in_total: s.total(&["kafka_server_brokertopicmetrics_bytesin_total"]),
        bytes_out_total: s.total(&["kafka_server_brokertopicmetrics_bytesout_total"]),
        messages_in_total: s.total(&["kafka_server_brokertopicmetrics_messagesin_total"]),
        replication_bytes_in_total: s
            .total(&["kafka_server_brokertopicmetrics_replicationbytesin_total"]),
        replication_bytes_out_total: s
            .total(&["kafka_server_brokertopicmetrics_replicationbytesout_total"]),
        under_replicated_partitions: s
            .total(&["kafka_server_replicamanager_underreplicatedpartitions"]),
        under_min_isr_partitions: s
            .total(&["kafka_server_replicamanager_underminisrpartitioncount"]),
        offline_partitions: s.total(&["kafka_controller_kafkacontroller_offlinepartitionscount"]),
        active_controller: s.total(&["kafka_controller_kafkacontroller_activecontrollercount"]),
        leader_count: s.total(&["kafka_server_replicamanager_leadercount"]),
        partition_count: s.total(&["kafka_server_replicamanager_partitioncount"]),
        request_handler_idle_ratio: s
            .total(&["kafka_server_kafkarequesthandlerpool_requesthandleravgidlepercent"]),
        network_processor_idle_ratio: s
            .total(&["kafka_network_socketserver_networkprocessoravgidlepercent"]),
        request_queue_size: s.total(&["kafka_network_requestchannel_requestqueuesize"]),
        produce_total_time_p99_ms: s.p99("Produce"),
        fetch_consumer_total_time_p99_ms: s.p99("FetchConsumer"),
        isr_shrinks_total: s.total(&["kafka_server_replicamanager_isrshrinks_total"]),
        isr_expands_total: s.total(&["kafka_server_replicamanager_isrexpands_total"]),
        offline_log_dirs: s.total(&["kafka_log_logmanager_offlinelogdirectorycount"]),
        quotas: s.quotas(),
    };
    if report.bytes_in_total.is_none()
        && report.partition_count.is_none()
        && report.under_replicated_partitions.is_none()
    {
        return Err(
            "no Kafka broker metrics in the answer: is the URL the broker's JMX exporter?".into(),
        );
    }
    Ok(report)
}

/// The MBeans read from Jolokia in one bulk request, and where each goes:
/// (MBean, attribute, field).
type Field = fn(&mut BrokerMetricsReport) -> &mut Option<f64>;
const JOLOKIA_READS: [(&str, &str, Field); 19] = [
    (
        "kafka.server:type=BrokerTopicMetrics,name=BytesInPerSec",
        "Count",
        |r| &mut r.bytes_in_total,
    ),
    (
        "kafka.server:type=BrokerTopicMetrics,name=BytesOutPerSec",
        "Count",
        |r| &mut r.bytes_out_total,
    ),
    (
        "kafka.server:type=BrokerTopicMetrics,name=MessagesInPerSec",
        "Count",
        |r| &mut r.messages_in_total,
    ),
    (
        "kafka.server:type=BrokerTopicMetrics,name=ReplicationBytesInPerSec",
        "Count",
        |r| &mut r.replication_bytes_in_total,
    ),
    (
        "kafka.server:type=BrokerTopicMetrics,name=ReplicationBytesOutPerSec",
        "Count",
        |r| &mut r.replication_bytes_out_total,
    ),
    (
        "kafka.server:type=ReplicaManager,name=UnderReplicatedPartitions",
        "Value",
        |r| &mut r.under_replicated_partitions,
    ),
    (
        "kafka.server:type=ReplicaManager,name=UnderMinIsrPartitionCount",
        "Value",
        |r| &mut r.under_min_isr_partitions,
    ),
    (
        "kafka.controller:type=KafkaController,name=OfflinePartitionsCount",
        "Value",
        |r| &mut r.offline_partitions,
    ),
    (
        "kafka.controller:type=KafkaController,name=ActiveControllerCount",
        "Value",
        |r| &mut r.active_controller,
    ),
    (
        "kafka.server:type=ReplicaManager,name=LeaderCount",
        "Value",
        |r| &mut r.leader_count,
    ),
    (
        "kafka.server:type=ReplicaManager,name=PartitionCount",
        "Value",
        |r| &mut r.partition_count,
    ),
    // A meter whose rate is the idle share.
    (
        "kafka.server:type=KafkaRequestHandlerPool,name=RequestHandlerAvgIdlePercent",
        "OneMinuteRate",
        |r| &mut r.request_handler_idle_ratio,
    ),
    (
        "kafka.network:type=SocketServer,name=NetworkProcessorAvgIdlePercent",
        "Value",
        |r| &mut r.network_processor_idle_ratio,
    ),
    (
        "kafka.network:type=RequestChannel,name=RequestQueueSize",
        "Value",
        |r| &mut r.request_queue_size,
    ),
    (
        "kafka.network:type=RequestMetrics,name=TotalTimeMs,request=Produce",
        "99thPercentile",
        |r| &mut r.produce_total_time_p99_ms,
    ),
    (
        "kafka.network:type=RequestMetrics,name=TotalTimeMs,request=FetchConsumer",
        "99thPercentile",
        |r| &mut r.fetch_consumer_total_time_p99_ms,
    ),
    (
        "kafka.server:type=ReplicaManager,name=IsrShrinksPerSec",
        "Count",
        |r| &mut r.isr_shrinks_total,
    ),
    (
        "kafka.server:type=ReplicaManager,name=IsrExpandsPerSec",
        "Count",
        |r| &mut r.isr_expands_total,
    ),
    (
        "kafka.log:type=LogManager,name=OfflineLogDirectoryCount",
        "Value",
        |r| &mut r.offline_log_dirs,
    ),
];

/// The quota MBeans, read with a wildcard: (MBean pattern, direction).
const JOLOKIA_QUOTAS: [(&str, &str); 2] = [
    ("kafka.server:type=Produce,user=*", "produce"),
    ("kafka.server:type=Fetch,user=*", "fetch"),
];

/// The body of the one bulk read per interval (POST to the Jolokia URL).
pub fn jolokia_request() -> String {
    let reads = JOLOKIA_READS
        .iter()
        .map(|(mbean, _, _)| *mbean)
        .chain(JOLOKIA_QUOTAS.iter().map(|(mbean, _)| *mbean))
        .map(|mbean| serde_json::json!({ "type": "read", "mbean": mbean }));
    serde_json::Value::Array(reads.collect()).to_string()
}

/// MBean names as Jolokia echoes them may order their keys differently.
fn same_mbean(a: &str, b: &str) -> bool {
    let keys = |name: &str| -> Option<(String, Vec<String>)> {
        let (domain, properties) = name.split_once(':')?;
        let mut properties: Vec<String> = properties.split(',').map(str::to_owned).collect();
        properties.sort();
        Some((domain.to_owned(), properties))
    };
    keys(a).is_some_and(|k| Some(k) == keys(b))
}

/// Parses a Jolokia bulk-read answer. An MBean the broker does not have (a
/// KRaft broker node has no controller MBeans) is simply absent; an answer
/// that is not a bulk-read answer at all is an error.
pub fn parse_jolokia(text: &str) -> Result<BrokerMetricsReport, String> {
    let answers: Vec<serde_json::Value> = serde_json::from_str(text)
        .map_err(|e| format!("not a Jolokia bulk-read answer (a JSON array): {e}"))?;
    let mut report = BrokerMetricsReport::default();
    let mut found = 0;
    let mut quotas: BTreeMap<String, UserQuota> = BTreeMap::new();
    for answer in &answers {
        let Some(mbean) = answer["request"]["mbean"].as_str() else {
            continue;
        };
        if answer["status"] != 200 {
            continue;
        }
        if let Some((_, attribute, field)) =
            JOLOKIA_READS.iter().find(|(m, _, _)| same_mbean(m, mbean))
        {
            if let Some(value) = answer["value"][*attribute].as_f64() {
                *field(&mut report) = Some(value);
                found += 1;
            }
        } else if let Some((_, direction)) =
            JOLOKIA_QUOTAS.iter().find(|(m, _)| same_mbean(m, mbean))
        {
            for (name, attributes) in answer["value"].as_object().into_iter().flatten() {
                let Some(user) = name.split([',', ':']).find_map(|p| p.strip_prefix("user="))
                else {
                    continue;
                };
                let quota = quotas.entry(user.to_owned()).or_insert_with(|| UserQuota {
                    user: user.to_owned(),
                    ..UserQuota::default()
                });
                let (rate, throttle) = (
                    attributes["byte-rate"].as_f64(),
                    attributes["throttle-time"].as_f64(),
                );
                if *direction == "produce" {
                    (quota.produce_bytes_per_second, quota.produce_throttle_ms) = (rate, throttle);
                } else {
                    (quota.fetch_bytes_per_second, quota.fetch_throttle_ms) = (rate, throttle);
                }
            }
        }
    }
    if found == 0 {
        return Err(
            "no Kafka broker MBeans in the answer: is the URL the broker's Jolokia agent?".into(),
        );
    }
    report.quotas = quotas.into_values().collect();
    Ok(report)
}

#[cfg(test)]
mod tests {
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
        assert_eq!(body.len(), 21);
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
}
