//! The broker's own metrics, from the Prometheus JMX exporter most Kafka
//! operators already run beside the broker, mapped onto one fixed set
//! ([`BrokerMetricsReport`]). Parsing is pure; the endpoint is fetched with a
//! timeout by the daemon, so a slow or missing exporter is one counted error,
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
    fn garbage_is_an_error_that_says_what_to_check() {
        assert_eq!(
            parse_jmx_exporter("<html><body>Not Found</body></html>").unwrap_err(),
            "no Kafka broker metrics in the answer: is the URL the broker's JMX exporter?"
        );
        assert!(parse_jmx_exporter("jvm_threads_current 42\n").is_err());
        assert!(parse_jmx_exporter("").is_err());
    }
}
