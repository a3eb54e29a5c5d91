//! The alerts on the path a message takes (the end-to-end probe) and on the
//! controllers: the KRaft quorum and the reassignments in flight.

use super::*;

pub const KAFKA_PROBE_PRODUCE_FAILING: Spec = Spec {
    alert: Alert::KafkaProbeProduceFailing,
    name: "KafkaProbeProduceFailing",
    subject: &["broker"],
    origin: Origin::Cluster,
    for_seconds: MINUTE,
    severity: Severity::Critical,
    threshold: ratio(0.9, "Share of the probe's acks=all records acknowledged over the window, 0..1: fires below it."),
    fires_when: "fewer than 90 % of the probe's acks=all records to the partition the broker leads are acknowledged over `[probe] window` (at least 3 tried)",
    summary: "Writes to broker {broker} fail: {acknowledged} of {attempts} probe records acknowledged in the last {window}",
    description: "The probe's acks=all records to partition {partitions} of {topic}, led by broker {broker}, are failing; the last error: {error}. Producers writing to partitions this broker leads are likely failing too. Look at the broker's log and its followers (acks=all needs min.insync.replicas in sync); KafkaBrokerDown and KafkaUnderMinIsrPartitions say whether it is gone or short of replicas.",
    prometheus: Prometheus {
        comment: None,
        expr: "brokerwatch_probe_produce_success_ratio < {threshold}",
        summary: "Writes to broker {{ $labels.broker }} fail: {{ $value | humanizePercentage }} of the probe's records acknowledged",
        description: "The end-to-end probe's acks=all writes to the partition this broker leads are failing: producers to its partitions likely are too.",
    },
};

pub const KAFKA_PROBE_END_TO_END_LATENCY_HIGH: Spec = Spec {
    alert: Alert::KafkaProbeEndToEndLatencyHigh,
    name: "KafkaProbeEndToEndLatencyHigh",
    subject: &["broker"],
    origin: Origin::Cluster,
    for_seconds: 2 * MINUTE,
    severity: Severity::Warning,
    threshold: positive(2.0, "Seconds from a probe record's send to its read-back, 99th percentile over the window."),
    fires_when: "the probe's records through the broker take more than 2 s from send to read-back (99th percentile over `[probe] window`), or one acknowledged has waited longer",
    summary: "Messages through broker {broker} take {latency} end to end",
    description: "Probe records to partition {partitions} of {topic}, led by broker {broker}: 99th percentile {percentile} from send to read-back over the last {window} ({received} read back); the oldest acknowledged and not yet read has waited {waiting}. Consumers of this broker's partitions see the same delay: look at its request queue, disks and network (KafkaSlowBroker, KafkaHostDiskSaturated).",
    prometheus: Prometheus {
        comment: None,
        expr: "histogram_quantile(0.99, sum by (cluster, broker, le) (rate(brokerwatch_probe_end_to_end_latency_seconds_bucket[5m]))) > {threshold}",
        summary: "Messages through broker {{ $labels.broker }} take {{ $value | humanizeDuration }} end to end (p99)",
        description: "The end-to-end probe's records through this broker are slow from send to read-back: its consumers see the same delay.",
    },
};

pub const KAFKA_PROBE_MESSAGES_LOST: Spec = Spec {
    alert: Alert::KafkaProbeMessagesLost,
    name: "KafkaProbeMessagesLost",
    subject: &["broker"],
    origin: Origin::Cluster,
    for_seconds: 0,
    severity: Severity::Critical,
    threshold: None,
    fires_when: "a probe record acknowledged with acks=all never came back while later ones did (within `[probe] window`)",
    summary: "{lost} acknowledged records lost on broker {broker}",
    description: "{lost} probe records to partition {partitions} of {topic}, led by broker {broker}, were acknowledged with acks=all and then never read back, though later records were: the log lost acknowledged data (an unclean leader election, a truncated replica, or a disk that lied about a flush). {duplicated} records have come back twice since start. Check the broker's log for truncation and leader elections, and unclean.leader.election.enable.",
    prometheus: Prometheus {
        comment: None,
        expr: "increase(brokerwatch_probe_records_lost_total[5m]) > 0",
        summary: "Acknowledged records lost on broker {{ $labels.broker }}",
        description: "The end-to-end probe's acks=all records were acknowledged and never read back: the log lost acknowledged data.",
    },
};

pub const KAFKA_CONTROLLER_QUORUM_LAGGING: Spec = Spec {
    alert: Alert::KafkaControllerQuorumLagging,
    name: "KafkaControllerQuorumLagging",
    subject: &[],
    origin: Origin::Cluster,
    for_seconds: MINUTE,
    severity: Severity::Critical,
    threshold: positive(30.0, "Seconds a KRaft voter may have last caught up behind the freshest voter."),
    fires_when: "a KRaft controller voter last caught up more than 30 s behind the freshest, or the quorum has no leader",
    summary: "The controller quorum of cluster {cluster} {state}",
    description: "{details} With too few voters caught up the quorum cannot commit metadata changes (topic creation, leader elections, ISR changes stop). Look at the lagging controllers' logs, disks and network to the leader.",
    prometheus: Prometheus {
        comment: None,
        expr: "max by (cluster) (brokerwatch_controller_quorum_lag_seconds{role=\"voter\"}) > {threshold}\nor\nmax by (cluster) (brokerwatch_controller_quorum_leader) < 0",
        summary: "The controller quorum of cluster {{ $labels.cluster }} is lagging or has no leader",
        description: "brokerwatch_controller_quorum_lag_seconds names the voters behind; with too few caught up, metadata changes stop.",
    },
};

pub const KAFKA_REASSIGNMENT_STUCK: Spec = Spec {
    alert: Alert::KafkaReassignmentStuck,
    name: "KafkaReassignmentStuck",
    subject: &[],
    origin: Origin::Cluster,
    for_seconds: 0,
    severity: Severity::Warning,
    threshold: positive(30.0, "Minutes a reassignment may go without a replica joining or its copies growing."),
    fires_when: "a partition reassignment has gone 30 minutes without a replica joining or its copies growing",
    summary: "{stuck} partition reassignments in cluster {cluster} make no progress",
    description: "{partitions}. Adding brokers {adding}; copies {copied}. {throttle} Look at the adding brokers' logs and replica fetchers; raise the throttle, or cancel with kafka-reassign-partitions --cancel.",
    prometheus: Prometheus {
        comment: None,
        expr: "brokerwatch_reassignment_without_progress_seconds > {threshold} * 60",
        summary: "A partition reassignment in cluster {{ $labels.cluster }} makes no progress",
        description: "A reassignment in flight has gone without a replica joining or its copies growing: look at the adding brokers and the replication throttle.",
    },
};
