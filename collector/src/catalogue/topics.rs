//! The alerts on topics, partitions and users: traffic that stops, jumps or
//! piles onto a few partitions, and topics laid out so that one broker's
//! loss hurts more than it must.

use super::*;

pub const KAFKA_TOPIC_NO_TRAFFIC: Spec = Spec {
    alert: Alert::KafkaTopicNoTraffic,
    name: "KafkaTopicNoTraffic",
    subject: &["topic"],
    origin: Origin::Cluster,
    for_seconds: 0,
    severity: Severity::Info,
    threshold: None,
    fires_when: "no new record for `[topics] no_traffic_after` (24 h); a clean-up candidate",
    summary: "Topic {topic} has taken no record for {quiet}",
    description: "Its end offsets have not moved since {since} ({partitions} partitions). If nothing writes to it any more, delete it (kafka-topics --delete --topic {topic}) to free its partitions' files and memory on every broker; if a producer should be writing, look there. GET /api/v1/topics?flag=no_traffic lists every such topic.",
    prometheus: Prometheus {
        comment: Some("Per cluster: the collector's own alert names each topic."),
        expr: "brokerwatch_topics_without_traffic > 0",
        summary: "{{ $value }} topics of cluster {{ $labels.cluster }} have taken no record for a day",
        description: "GET /api/v1/topics?flag=no_traffic on the collector lists them: delete those nothing writes to.",
    },
};

pub const KAFKA_TOPIC_TRAFFIC_ANOMALY: Spec = Spec {
    alert: Alert::KafkaTopicTrafficAnomaly,
    name: "KafkaTopicTrafficAnomaly",
    subject: &["topic", "direction"],
    origin: Origin::Cluster,
    for_seconds: MINUTE,
    severity: Severity::Warning,
    threshold: None,
    fires_when: "records per second ≥ 1.75× (surge) or ≤ 0.4× (drop) the last hour's median, beyond its noise, and the same against the same hour yesterday",
    summary: "Topic {topic}'s traffic {changed}: {current} records/s against {baseline} usual",
    description: "The last three reads' median is {ratio} of the last hour's median{yesterday}. {advice}",
    prometheus: Prometheus {
        comment: Some("A simpler test than the collector's (no noise band, no yesterday): the busiest topics only."),
        expr: "brokerwatch_topic_records_per_second > 1.75 * avg_over_time(brokerwatch_topic_records_per_second[1h] offset 5m) and brokerwatch_topic_records_per_second > 1\nor\nbrokerwatch_topic_records_per_second < 0.4 * avg_over_time(brokerwatch_topic_records_per_second[1h] offset 5m) and avg_over_time(brokerwatch_topic_records_per_second[1h] offset 5m) > 1",
        summary: "Topic {{ $labels.topic }}'s traffic changed suddenly: {{ $value | printf \"%.1f\" }} records/s",
        description: "Against its last hour. A surge: a new or runaway producer, a replay; a drop: a producer failing or cut off.",
    },
};

pub const KAFKA_USER_TRAFFIC_ANOMALY: Spec = Spec {
    alert: Alert::KafkaUserTrafficAnomaly,
    name: "KafkaUserTrafficAnomaly",
    subject: &["user", "direction"],
    origin: Origin::Agents,
    for_seconds: 2 * MINUTE,
    severity: Severity::Warning,
    threshold: None,
    fires_when: "a quota user's produce + fetch bytes per second ≥ 1.75× or ≤ 0.4× its last hour (and the same hour yesterday)",
    summary: "Client user {user}'s traffic {changed}: {current}/s against {baseline}/s usual",
    description: "Produce and fetch bytes over every broker; the last reads' median is {ratio} of the last hour's median{yesterday}. {advice}",
    prometheus: Prometheus {
        comment: Some("A simpler test than the collector's (no noise band, no yesterday)."),
        expr: "sum by (cluster, user) (brokerwatch_kafka_user_produce_bytes_per_second + brokerwatch_kafka_user_fetch_bytes_per_second) > 1.75 * sum by (cluster, user) (avg_over_time(brokerwatch_kafka_user_produce_bytes_per_second[1h] offset 5m) + avg_over_time(brokerwatch_kafka_user_fetch_bytes_per_second[1h] offset 5m))",
        summary: "Client user {{ $labels.user }}'s traffic surged: {{ $value | humanize1024 }}B/s",
        description: "Against its last hour: a new or runaway client, or a replay. Check its quota and who runs it.",
    },
};

pub const KAFKA_TOPIC_PARTITION_SKEW: Spec = Spec {
    alert: Alert::KafkaTopicPartitionSkew,
    name: "KafkaTopicPartitionSkew",
    subject: &["topic"],
    origin: Origin::Cluster,
    for_seconds: 30 * MINUTE,
    severity: Severity::Warning,
    threshold: positive(2.0, "A partition's records per second over the topic's mean per partition."),
    fires_when: "a partition takes ≥ 2× the topic's mean per partition (topics above `[topics] min_records_per_second`)",
    summary: "Topic {topic}: {count} of its {partitions} partitions take {share} of its records",
    description: "Hottest: {hottest} against a mean of {mean} records/s per partition. Keyed producers pile one key's records onto one partition, and its leader and consumer carry them alone. Spread the hot keys (a better key, or a salt), or add partitions (it moves keys).",
    prometheus: Prometheus {
        comment: Some("Per-partition rates are not exported (a million partitions would be a million series): the collector's alert only."),
        expr: "brokerwatch_topic_partition_skew_ratio >= {threshold}",
        summary: "Topic {{ $labels.topic }}'s hottest partition takes {{ $value | printf \"%.1f\" }}× its mean",
        description: "Keyed producers pile one key's records onto one partition: GET /api/v1/topics on the collector names it and its leader.",
    },
};

pub const KAFKA_TOPIC_REPLICATION_FACTOR_LOW: Spec = Spec {
    alert: Alert::KafkaTopicReplicationFactorLow,
    name: "KafkaTopicReplicationFactorLow",
    subject: &["topic"],
    origin: Origin::Cluster,
    for_seconds: 10 * MINUTE,
    severity: Severity::Warning,
    threshold: None,
    fires_when: "replication factor < `[topics] min_replication_factor` (3, at most the brokers there are), or ≤ its `min.insync.replicas` with brokers to spare",
    summary: "Topic {topic} has replication factor {rf}{why}",
    description: "{consequence} Raise it with a reassignment that adds replicas (kafka-reassign-partitions with a plan listing {target} replicas per partition).",
    prometheus: Prometheus {
        comment: None,
        expr: "brokerwatch_topic_replication_factor < 3 and on (cluster) count by (cluster) (brokerwatch_broker_in_metadata == 1) >= 3",
        summary: "Topic {{ $labels.topic }} has replication factor {{ $value }}",
        description: "Losing one broker loses (or stops) its partitions: add replicas with kafka-reassign-partitions.",
    },
};

pub const KAFKA_TOPIC_CONCENTRATED: Spec = Spec {
    alert: Alert::KafkaTopicConcentrated,
    name: "KafkaTopicConcentrated",
    subject: &["topic"],
    origin: Origin::Cluster,
    for_seconds: 30 * MINUTE,
    severity: Severity::Warning,
    threshold: ratio(0.75, "Brokers its replicas (or leaders) span, over those they could span, 0..1: fires below it."),
    fires_when: "its replicas or its leaders span < 0.75 of the brokers they could (leaders: one per partition; replicas: partitions + RF − 1, as Kafka lays them out)",
    summary: "Topic {topic} sits on {spanned} of the {possible} brokers its {what} could use",
    description: "{detail} A broker's loss or slowness hits it harder than it must, and those brokers carry its load alone. Reassign its partitions across the cluster (kafka-reassign-partitions --generate), or, for leaders only, run a preferred leader election.",
    prometheus: Prometheus {
        comment: Some("Possible: partitions + RF − 1 brokers (as Kafka lays replicas out), at most every broker."),
        expr: "brokerwatch_topic_replica_brokers / brokerwatch_topic_replica_brokers_possible < {threshold}",
        summary: "Topic {{ $labels.topic }}'s replicas span {{ $value | humanizePercentage }} of the brokers they could",
        description: "Reassign its partitions across the cluster (kafka-reassign-partitions --generate).",
    },
};

pub const KAFKA_PARTITION_LEADER_FLAPPING: Spec = Spec {
    alert: Alert::KafkaPartitionLeaderFlapping,
    name: "KafkaPartitionLeaderFlapping",
    subject: &["topic"],
    origin: Origin::Cluster,
    for_seconds: 0,
    severity: Severity::Warning,
    threshold: positive(3.0, "Leader changes of one partition within the last hour."),
    fires_when: "a partition's leader changed ≥ 3 times within the last hour",
    summary: "Topic {topic}: {count} partitions changed leader {most} times or more in the last hour",
    description: "Partitions (changes): {partitions}. Leaders involved now: {leaders}. Each change stalls its producers and consumers for a moment; repeated ones point at a broker that keeps dropping out (its session with the controller timing out: GC pauses, network) or at a reassignment or election loop.",
    prometheus: Prometheus {
        comment: None,
        expr: "increase(brokerwatch_partition_leader_changes_total[1h]) >= {threshold}",
        summary: "Topic {{ $labels.topic }}'s partitions changed leader {{ $value | printf \"%.0f\" }} times in the last hour",
        description: "Repeated changes point at a broker that keeps dropping out (GC pauses, network) or an election loop.",
    },
};

pub const KAFKA_PARTITION_TOO_LARGE: Spec = Spec {
    alert: Alert::KafkaPartitionTooLarge,
    name: "KafkaPartitionTooLarge",
    subject: &["topic"],
    origin: Origin::Agents,
    for_seconds: 30 * MINUTE,
    severity: Severity::Warning,
    threshold: positive(100.0, "GiB written per day to one partition, from its files' growth."),
    fires_when: "a partition is written ≥ 100 GiB a day (its files' growth, deletions left out), or holds more than `[topics] max_partition_bytes` (off by default)",
    summary: "Topic {topic}: partition {partition} {what}",
    description: "On broker {broker}, {log_dir}: {figures}. A partition sits whole on one disk of each replica's broker and is copied whole by replication, reassignment and recovery: one this large or this fast fills that disk first and makes every move slow. Add partitions to the topic and spread its keys, or lower its retention.ms / retention.bytes.",
    prometheus: Prometheus {
        comment: Some("The busiest topics' fastest-written partition, from the collector's series."),
        expr: "brokerwatch_topic_partition_written_bytes_per_day_max / 1073741824 >= {threshold}",
        summary: "Topic {{ $labels.topic }} has a partition written {{ $value | printf \"%.0f\" }} GiB a day",
        description: "GET /api/v1/topics/{{ $labels.topic }} on the collector names it: add partitions and spread its keys, or lower its retention.",
    },
};
