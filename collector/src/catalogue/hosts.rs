//! The alerts on the agents' reports: the load model and the hosts.

use super::*;

pub const KAFKA_BROKER_LOAD_DEVIATION: Spec = Spec {
    alert: Alert::KafkaBrokerLoadDeviation,
    name: "KafkaBrokerLoadDeviation",
    subject: &["group", "broker"],
    origin: Origin::Agents,
    for_seconds: 15 * MINUTE,
    severity: Severity::Warning,
    threshold: None,
    fires_when: "r_n > r (10 %): the overloaded side; below -r too with `[load] alert_underloaded`",
    summary: "Broker {broker} carries {share} of group {group}'s load, {deviation} against the mean share of {mean}",
    description: "Its deviation {deviation} is beyond ±{limit}. {side} shares: {leading}. {advice}",
    prometheus: Prometheus {
        comment: None,
        expr: "brokerwatch_broker_load_deviation_ratio > {threshold}",
        summary: "Broker {{ $labels.broker }} carries {{ $value | humanizePercentage }} more than the mean load share of group {{ $labels.group }}",
        description: "Look at the partitions and leaders on broker {{ $labels.broker }} (brokerwatch_broker_metric_share shows which metric): reassign partitions or run a preferred leader election.",
    },
};

pub const KAFKA_CLUSTER_LOAD_IMBALANCE: Spec = Spec {
    alert: Alert::KafkaClusterLoadImbalance,
    name: "KafkaClusterLoadImbalance",
    subject: &["group"],
    origin: Origin::Agents,
    for_seconds: 15 * MINUTE,
    severity: Severity::Warning,
    threshold: None,
    fires_when: "σ > r / N",
    summary: "Group {group}'s load is uneven: standard deviation {stddev} against a limit of {limit}",
    description: "{brokers} brokers, limit r/N with r = {r}. Most loaded: broker {most} with {most_share} ({most_deviation}); least loaded: broker {least} with {least_share} ({least_deviation}). Move load from {from} to {to}: rebalance the group's partitions (kafka-reassign-partitions or Cruise Control).",
    prometheus: Prometheus {
        comment: None,
        expr: "brokerwatch_cluster_load_stddev > on (cluster, group) brokerwatch_cluster_load_stddev_limit",
        summary: "Group {{ $labels.group }}'s load is uneven: standard deviation {{ $value | printf \"%.4f\" }} over its limit",
        description: "Rebalance the group's partitions (kafka-reassign-partitions or Cruise Control); brokerwatch_broker_load_share shows who carries what.",
    },
};

pub const KAFKA_BROKER_DISK_IMBALANCE: Spec = Spec {
    alert: Alert::KafkaBrokerDiskImbalance,
    name: "KafkaBrokerDiskImbalance",
    subject: &["broker", "device"],
    origin: Origin::Agents,
    for_seconds: 30 * MINUTE,
    severity: Severity::Warning,
    threshold: None,
    fires_when: "a log disk's share of the broker's log-disk bytes > r (10 %) above the mean",
    summary: "Disk {device} of broker {broker} carries {share} of the bytes read and written on its {disks} log disks",
    description: "{deviation} against the mean share of {mean} (limit ±{limit}); {figures}. Move partitions from its log dirs ({dirs}) to those on {least}, which carries {least_share} (kafka-reassign-partitions with log_dirs).",
    prometheus: Prometheus {
        comment: Some("Only the disks under the broker's log dirs are compared."),
        expr: "brokerwatch_disk_load_deviation_ratio > {threshold}",
        summary: "Disk {{ $labels.device }} of broker {{ $labels.broker }} carries {{ $value | humanizePercentage }} more than the mean share of its log disks' bytes",
        description: "brokerwatch_disk_load_share shows which disk carries what. Move partitions between broker {{ $labels.broker }}'s log dirs (kafka-reassign-partitions with log_dirs).",
    },
};

pub const KAFKA_AGENT_DOWN: Spec = Spec {
    alert: Alert::KafkaAgentDown,
    name: "KafkaAgentDown",
    subject: &["broker"],
    origin: Origin::Agents,
    for_seconds: 2 * MINUTE,
    severity: Severity::Critical,
    threshold: None,
    fires_when: "no report for `broker_missing_after`",
    summary: "No report from the agent of broker {broker} for {silent}",
    description: "Its last report came at {last}. Broker {broker} is left out of the load until it reports. Check brokerwatch-agent on the host (systemctl status brokerwatch-agent) and its route to the collector.",
    prometheus: Prometheus {
        comment: Some("Silent for longer than the collector's broker_missing_after."),
        expr: "time() - brokerwatch_agent_last_report_timestamp_seconds > on (cluster) group_left brokerwatch_collector_broker_missing_after_seconds",
        summary: "No report from the agent of broker {{ $labels.broker }} for {{ $value | humanizeDuration }}",
        description: "Check brokerwatch-agent on the host (systemctl status brokerwatch-agent) and its route to the collector.",
    },
};

pub const KAFKA_HOST_DISK_SATURATED: Spec = Spec {
    alert: Alert::KafkaHostDiskSaturated,
    name: "KafkaHostDiskSaturated",
    subject: &["broker", "device"],
    origin: Origin::Agents,
    for_seconds: 10 * MINUTE,
    severity: Severity::Warning,
    threshold: ratio(0.90, "Median %util over the window, 0..1."),
    fires_when: "median %util > 0.9",
    summary: "Disk {device} of broker {broker} is busy {value} of the time",
    description: "Median %util over the window is {value} (limit {limit}){figures}. Requests queue behind it: produce and fetch latency on broker {broker} will rise. Check which log dirs sit on {device} and move partitions off it.",
    prometheus: Prometheus {
        comment: None,
        expr: "device:brokerwatch_disk_utilization:ratio_rate5m > {threshold}",
        summary: "Disk {{ $labels.device }} of broker {{ $labels.broker_id }} is busy {{ $value | humanizePercentage }} of the time",
        description: "Requests queue behind it: produce and fetch latency on broker {{ $labels.broker_id }} will rise. Check which log dirs sit on {{ $labels.device }} and move partitions off it.",
    },
};

pub const KAFKA_HOST_IOWAIT_HIGH: Spec = Spec {
    alert: Alert::KafkaHostIowaitHigh,
    name: "KafkaHostIowaitHigh",
    subject: &["broker"],
    origin: Origin::Agents,
    for_seconds: 10 * MINUTE,
    severity: Severity::Warning,
    threshold: ratio(0.25, "Median share of CPU time waiting on I/O over the window, 0..1."),
    fires_when: "median iowait > 0.25",
    summary: "Broker {broker}'s CPUs wait on I/O {value} of the time",
    description: "Median iowait over the window is {value} (limit {limit}): reads are missing the page cache or the disks are saturated. Look at the disk %util and the page-cache hit rate of broker {broker}.",
    prometheus: Prometheus {
        comment: None,
        expr: "broker_id:brokerwatch_cpu_iowait:ratio_rate5m > {threshold}",
        summary: "Broker {{ $labels.broker_id }}'s CPUs wait on I/O {{ $value | humanizePercentage }} of the time",
        description: "Reads are missing the page cache or the disks are saturated: look at disk %util and the page-cache hit rate of broker {{ $labels.broker_id }}.",
    },
};

pub const KAFKA_HOST_NETWORK_SATURATED: Spec = Spec {
    alert: Alert::KafkaHostNetworkSaturated,
    name: "KafkaHostNetworkSaturated",
    subject: &["broker", "device"],
    origin: Origin::Agents,
    for_seconds: 5 * MINUTE,
    severity: Severity::Warning,
    threshold: ratio(0.80, "Median share of the link speed, either direction, 0..1."),
    fires_when: "median link utilization > 0.8",
    summary: "Link {device} of broker {broker} runs at {value} of its speed",
    description: "Median utilization of the busier direction over the window is {value} (limit {limit}). Consumers and followers of broker {broker} will lag; move leaders off it or add bandwidth.",
    prometheus: Prometheus {
        comment: None,
        expr: "interface:brokerwatch_network_utilization:ratio_rate5m > {threshold}",
        summary: "Link {{ $labels.interface }} of broker {{ $labels.broker_id }} runs at {{ $value | humanizePercentage }} of its speed",
        description: "Consumers and followers of broker {{ $labels.broker_id }} will lag; move leaders off it or add bandwidth.",
    },
};

pub const KAFKA_PAGE_CACHE_HIT_RATIO_LOW: Spec = Spec {
    alert: Alert::KafkaPageCacheHitRatioLow,
    name: "KafkaPageCacheHitRatioLow",
    subject: &["broker"],
    origin: Origin::Agents,
    for_seconds: 10 * MINUTE,
    severity: Severity::Warning,
    threshold: ratio(0.80, "Median page-cache hit ratio (the ebpf method where it runs, else the estimate), 0..1: fires below it."),
    fires_when: "median page-cache hit ratio (ebpf, else estimate) < 0.8",
    summary: "Broker {broker} serves only {value} of its reads from the page cache",
    description: "Median page-cache hit ratio over the window is {value} (limit {limit}): consumers or followers of broker {broker} are reading from disk. Look for lagging consumers reading old data, and at the memory left for the page cache and the disk %util of broker {broker}.",
    prometheus: Prometheus {
        comment: None,
        expr: "broker_id:brokerwatch_page_cache_hit:ratio_rate5m < {threshold}",
        summary: "Broker {{ $labels.broker_id }} serves only {{ $value | humanizePercentage }} of its reads from the page cache",
        description: "Consumers or followers of broker {{ $labels.broker_id }} are reading from disk: look for lagging consumers reading old data, and at the memory left for the page cache and the disk %util of broker {{ $labels.broker_id }}.",
    },
};
