//! The broker's own metrics, from the Prometheus JMX exporter or the Jolokia
//! agent Kafka operators already run beside the broker, mapped onto one fixed
//! set ([`BrokerMetricsReport`]). Parsing is pure; the endpoint is fetched with a
//! timeout by its source (`mod.rs`), so a slow or missing exporter is one counted error,
//! never a stalled cycle.

use std::collections::BTreeMap;

use brokerwatch_common::{BrokerMetricsReport, TopicTraffic, UserQuota};
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

    /// GC time and count per generation, summed over the JVM's collectors
    /// (the exporter's `jvm_gc_collection_seconds` summary, by `gc`).
    fn gc(&self) -> GcTotals {
        let mut totals = GcTotals::default();
        for s in &self.0 {
            let (Some(collector), Some(value)) = (s.labels.get("gc"), number(&s.value)) else {
                continue;
            };
            match s.metric.as_str() {
                "jvm_gc_collection_seconds_sum" => totals.add(collector, Some(value), None),
                "jvm_gc_collection_seconds_count" => totals.add(collector, None, Some(value)),
                _ => {}
            }
        }
        totals
    }

    /// The log dirs the broker reports offline (`LogDirectoryOffline` = 1),
    /// whatever the exporter's rules named the label.
    fn offline_log_dirs(&self) -> Vec<String> {
        self.0
            .iter()
            .filter(|s| {
                s.metric == "kafka_log_logmanager_logdirectoryoffline"
                    && number(&s.value).is_some_and(|v| v >= 1.0)
            })
            .filter_map(|s| s.labels.values().next().cloned())
            .collect()
    }

    /// Per topic, the broker's counters of its traffic (the series with a `topic` label).
    fn topics(&self) -> Vec<TopicTraffic> {
        let mut topics: BTreeMap<String, TopicTraffic> = BTreeMap::new();
        for s in &self.0 {
            let Some(field) = s
                .metric
                .strip_prefix("kafka_server_brokertopicmetrics_")
                .and_then(topic_field)
            else {
                continue;
            };
            let (Some(topic), Some(value)) = (s.labels.get("topic"), number(&s.value)) else {
                continue;
            };
            *field(topic_entry(&mut topics, topic)) = Some(value);
        }
        topics.into_values().collect()
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

/// Where a per-topic counter goes, by its name (`bytesin_total` in the
/// exporter's naming, `BytesInPerSec` in the MBean's).
fn topic_field(name: &str) -> Option<fn(&mut TopicTraffic) -> &mut Option<f64>> {
    match name {
        "bytesin_total" | "BytesInPerSec" => Some(|t| &mut t.bytes_in_total),
        "bytesout_total" | "BytesOutPerSec" => Some(|t| &mut t.bytes_out_total),
        "messagesin_total" | "MessagesInPerSec" => Some(|t| &mut t.messages_in_total),
        _ => None,
    }
}

fn topic_entry<'a>(
    topics: &'a mut BTreeMap<String, TopicTraffic>,
    topic: &str,
) -> &'a mut TopicTraffic {
    topics
        .entry(topic.to_owned())
        .or_insert_with(|| TopicTraffic {
            topic: topic.to_owned(),
            ..TopicTraffic::default()
        })
}

/// Which kind of collection a JVM collector's time counts as: young (and
/// the pauses of concurrent collectors), old (full, stop-the-world
/// collections of the old generation), or neither (a concurrent cycle, whose
/// time is not a pause).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Generation {
    Young,
    Old,
}

/// G1, Parallel, Serial, CMS, ZGC (generational or not) and Shenandoah, by
/// the names their MXBeans give.
pub fn generation(collector: &str) -> Option<Generation> {
    const OLD: [&str; 4] = [
        "G1 Old Generation",
        "PS MarkSweep",
        "MarkSweepCompact",
        "ConcurrentMarkSweep",
    ];
    if OLD.contains(&collector) {
        Some(Generation::Old)
    } else if collector.contains("Young")
        || collector.ends_with("Pauses")
        || matches!(collector, "ParNew" | "PS Scavenge" | "Copy")
    {
        Some(Generation::Young)
    } else {
        None
    }
}

/// GC totals being summed over collectors.
#[derive(Debug, Default)]
struct GcTotals {
    young_seconds: Option<f64>,
    young_count: Option<f64>,
    old_seconds: Option<f64>,
    old_count: Option<f64>,
}

impl GcTotals {
    fn add(&mut self, collector: &str, seconds: Option<f64>, count: Option<f64>) {
        let (time, collections) = match generation(collector) {
            Some(Generation::Young) => (&mut self.young_seconds, &mut self.young_count),
            Some(Generation::Old) => (&mut self.old_seconds, &mut self.old_count),
            None => return,
        };
        for (total, value) in [(time, seconds), (collections, count)] {
            if let Some(value) = value {
                *total = Some(total.unwrap_or(0.0) + value);
            }
        }
    }

    fn into_report(self, report: &mut BrokerMetricsReport) {
        report.gc_young_seconds_total = self.young_seconds;
        report.gc_young_collections_total = self.young_count;
        report.gc_old_seconds_total = self.old_seconds;
        report.gc_old_collections_total = self.old_count;
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
    let mut report = BrokerMetricsReport {
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
        offline_log_dir_names: s.offline_log_dirs(),
        quotas: s.quotas(),
        topics: s.topics(),
        ..BrokerMetricsReport::default()
    };
    s.gc().into_report(&mut report);
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
/// The per-topic traffic meters, read with a wildcard.
const JOLOKIA_TOPICS: &str = "kafka.server:type=BrokerTopicMetrics,name=*,topic=*";
/// The JVM's collectors and the per-dir offline flags, read with wildcards.
const JOLOKIA_GC: &str = "java.lang:type=GarbageCollector,name=*";
const JOLOKIA_OFFLINE_DIRS: &str =
    "kafka.log:type=LogManager,name=LogDirectoryOffline,logDirectory=*";

/// A key of an MBean name: `name` of `java.lang:name=G1 Old Generation,type=...`.
fn mbean_key<'a>(mbean: &'a str, key: &str) -> Option<&'a str> {
    let (_, properties) = mbean.split_once(':')?;
    properties
        .split(',')
        .find_map(|p| p.strip_prefix(key)?.strip_prefix('='))
        .map(|v| v.trim_matches('"'))
}

/// The body of the one bulk read per interval (POST to the Jolokia URL).
pub fn jolokia_request() -> String {
    let reads = JOLOKIA_READS
        .iter()
        .map(|(mbean, _, _)| *mbean)
        .chain(JOLOKIA_QUOTAS.iter().map(|(mbean, _)| *mbean))
        .chain([JOLOKIA_GC, JOLOKIA_OFFLINE_DIRS, JOLOKIA_TOPICS])
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
    let mut topics: BTreeMap<String, TopicTraffic> = BTreeMap::new();
    let mut gc = GcTotals::default();
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
        } else if same_mbean(JOLOKIA_GC, mbean) {
            for (name, attributes) in answer["value"].as_object().into_iter().flatten() {
                if let Some(collector) = mbean_key(name, "name") {
                    gc.add(
                        collector,
                        attributes["CollectionTime"].as_f64().map(|ms| ms / 1000.0),
                        attributes["CollectionCount"].as_f64(),
                    );
                }
            }
        } else if same_mbean(JOLOKIA_TOPICS, mbean) {
            for (name, attributes) in answer["value"].as_object().into_iter().flatten() {
                let (Some(meter), Some(topic), Some(count)) = (
                    mbean_key(name, "name"),
                    mbean_key(name, "topic"),
                    attributes["Count"].as_f64(),
                ) else {
                    continue;
                };
                if let Some(field) = topic_field(meter) {
                    *field(topic_entry(&mut topics, topic)) = Some(count);
                }
            }
        } else if same_mbean(JOLOKIA_OFFLINE_DIRS, mbean) {
            for (name, attributes) in answer["value"].as_object().into_iter().flatten() {
                if attributes["Value"].as_f64().is_some_and(|v| v >= 1.0) {
                    if let Some(dir) = mbean_key(name, "logDirectory") {
                        report.offline_log_dir_names.push(dir.to_owned());
                    }
                }
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
    report.topics = topics.into_values().collect();
    gc.into_report(&mut report);
    Ok(report)
}

#[cfg(test)]
mod tests;
