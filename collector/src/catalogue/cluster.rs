//! The alerts on the cluster's own state, read over the Kafka protocol:
//! replication, brokers in the metadata, consumer lag, reachability.

use super::*;

pub const KAFKA_UNDER_REPLICATED_PARTITIONS: Spec = Spec {
    alert: Alert::KafkaUnderReplicatedPartitions,
    name: "KafkaUnderReplicatedPartitions",
    subject: &[],
    origin: Origin::Cluster,
    for_seconds: MINUTE,
    severity: Severity::Critical,
    threshold: None,
    fires_when: "under-replicated partitions other than a reassignment's; the description names the suspect broker",
    summary: "{faults} under-replicated partitions in cluster {cluster}{internal}",
    description: "{cause}{moving} Topics: {topics}.",
    prometheus: Prometheus {
        comment: Some("A reassignment's catch-up (extra replicas) is expected, not paged."),
        expr: "brokerwatch_cluster_under_replicated_partitions - brokerwatch_reassigning_partitions > 0",
        summary: "{{ $value }} under-replicated partitions in cluster {{ $labels.cluster }}",
        description: "brokerwatch_broker_missing_from_isr_partitions shows which broker is missing from the ISRs; the collector's own alert names the suspect.",
    },
};

pub const KAFKA_OFFLINE_PARTITIONS: Spec = Spec {
    alert: Alert::KafkaOfflinePartitions,
    name: "KafkaOfflinePartitions",
    subject: &[],
    origin: Origin::Cluster,
    for_seconds: MINUTE,
    severity: Severity::Critical,
    threshold: None,
    fires_when: "partitions without a leader",
    summary: "{offline} partitions of cluster {cluster} have no leader{internal}",
    description: "Producers and consumers of those partitions are failing now. Topics: {topics}. Brokers down: {down}. Bring their replicas back, or (losing data) allow an unclean leader election.",
    prometheus: Prometheus {
        comment: None,
        expr: "brokerwatch_offline_partitions > 0",
        summary: "{{ $value }} partitions of cluster {{ $labels.cluster }} have no leader",
        description: "Producers and consumers of those partitions are failing now. Bring their replicas back, or (losing data) allow an unclean leader election.",
    },
};

pub const KAFKA_UNDER_MIN_ISR_PARTITIONS: Spec = Spec {
    alert: Alert::KafkaUnderMinIsrPartitions,
    name: "KafkaUnderMinIsrPartitions",
    subject: &[],
    origin: Origin::Cluster,
    for_seconds: MINUTE,
    severity: Severity::Critical,
    threshold: None,
    fires_when: "in-sync replicas below `min.insync.replicas`",
    summary: "{count} partitions of cluster {cluster} have fewer in-sync replicas than min.insync.replicas",
    description: "Producers with acks=all get NOT_ENOUGH_REPLICAS on them. {cause}",
    prometheus: Prometheus {
        comment: None,
        expr: "brokerwatch_under_min_isr_partitions > 0",
        summary: "{{ $value }} partitions of cluster {{ $labels.cluster }} have fewer in-sync replicas than min.insync.replicas",
        description: "Producers with acks=all get NOT_ENOUGH_REPLICAS on them.",
    },
};

pub const KAFKA_PREFERRED_LEADER_IMBALANCE: Spec = Spec {
    alert: Alert::KafkaPreferredLeaderImbalance,
    name: "KafkaPreferredLeaderImbalance",
    subject: &["broker"],
    origin: Origin::Cluster,
    for_seconds: 10 * MINUTE,
    severity: Severity::Warning,
    threshold: ratio(0.10, "Kafka's leader.imbalance.per.broker.percentage, as a ratio 0..1."),
    fires_when: "imbalance ratio > 0.10 (Kafka's `leader.imbalance.per.broker.percentage`)",
    summary: "Broker {broker} leads {leading} of the {preferred} partitions it is the preferred leader of",
    description: "Leader imbalance {ratio} (limit {limit}): its leadership sits on other brokers. Run a preferred leader election (kafka-leader-election --election-type PREFERRED) or check auto.leader.rebalance.enable.",
    prometheus: Prometheus {
        comment: None,
        expr: "brokerwatch_preferred_leader_imbalance_ratio > {threshold}",
        summary: "Broker {{ $labels.broker }} does not lead {{ $value | humanizePercentage }} of the partitions it prefers",
        description: "Run a preferred leader election (kafka-leader-election --election-type PREFERRED) or check auto.leader.rebalance.enable.",
    },
};

pub const KAFKA_BROKER_DOWN: Spec = Spec {
    alert: Alert::KafkaBrokerDown,
    name: "KafkaBrokerDown",
    subject: &["broker"],
    origin: Origin::Cluster,
    for_seconds: MINUTE,
    severity: Severity::Critical,
    threshold: None,
    fires_when: "expected but not in the metadata",
    summary: "Broker {broker} is not in cluster {cluster}'s metadata",
    description: "It was expected (configured or seen before). Its partitions lose a replica, and those it led move or go offline: check the broker process and host (KafkaAgentDown tells whether the host still reports).",
    prometheus: Prometheus {
        comment: None,
        expr: "brokerwatch_broker_in_metadata == 0",
        summary: "Broker {{ $labels.broker }} is not in cluster {{ $labels.cluster }}'s metadata",
        description: "Its partitions lose a replica and those it led move or go offline: check the broker process and host.",
    },
};

pub const KAFKA_CONSUMER_GROUP_LAG: Spec = Spec {
    alert: Alert::KafkaConsumerGroupLag,
    name: "KafkaConsumerGroupLag",
    subject: &["consumergroup"],
    origin: Origin::Cluster,
    for_seconds: 5 * MINUTE,
    severity: Severity::Warning,
    threshold: None,
    fires_when: "status or limits as above",
    summary: "Consumer group {consumergroup} is {status}: {messages} messages, {behind} behind",
    description: "{running}{advice} Topics: {topics}.",
    prometheus: Prometheus {
        comment: Some("A status of the default alert_statuses, or over the group's limits (exported where set)."),
        expr: "max by (cluster, consumergroup) (brokerwatch_consumergroup_status{status=~\"ERR|STOP|STALL|REWIND\"}) == 1\nor\nsum by (cluster, consumergroup) (brokerwatch_consumergroup_lag_messages) > on (cluster, consumergroup) brokerwatch_consumergroup_max_lag_messages\nor\nmax by (cluster, consumergroup) (brokerwatch_consumergroup_lag_seconds) > on (cluster, consumergroup) brokerwatch_consumergroup_max_lag_seconds",
        summary: "Consumer group {{ $labels.consumergroup }} is lagging",
        description: "brokerwatch_consumergroup_status shows its status, brokerwatch_consumergroup_lag_messages and _lag_seconds how far behind per topic, against the group's limits (brokerwatch_consumergroup_max_lag_messages, _max_lag_seconds).",
    },
};

pub const KAFKA_CLUSTER_UNREACHABLE: Spec = Spec {
    alert: Alert::KafkaClusterUnreachable,
    name: "KafkaClusterUnreachable",
    subject: &[],
    origin: Origin::Cluster,
    for_seconds: MINUTE,
    severity: Severity::Critical,
    threshold: None,
    fires_when: "the metadata is older than three `metadata_interval` (or never came); the description has the last error. Meanwhile the replication and lag alerts keep their state and their series are withheld, so nothing stale passes for fresh",
    summary: "The collector cannot read cluster {cluster}'s metadata (stale for {stale})",
    description: "Replication and consumer-lag alerts of {cluster} are on hold and their series withheld until the cluster answers again; last error: {error}. Check the collector's [kafka.properties] (bootstrap.servers, SASL/SSL) and that the brokers are reachable from the collector's host.",
    prometheus: Prometheus {
        comment: Some("Older than three metadata_interval, as the collector judges it."),
        expr: "brokerwatch_kafka_metadata_age_seconds > on (cluster) brokerwatch_kafka_metadata_stale_after_seconds",
        summary: "The collector cannot read cluster {{ $labels.cluster }}'s metadata (stale for {{ $value | humanizeDuration }})",
        description: "Replication and consumer-lag alerts of {{ $labels.cluster }} are on hold and their series withheld until the cluster answers again. Check the collector's [kafka.properties] and that the brokers are reachable from the collector's host.",
    },
};
