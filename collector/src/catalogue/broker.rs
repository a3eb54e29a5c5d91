//! The alerts on the brokers' health, from the agents' reports: the process
//! and whether it answers, its own metrics (idle ratios, latency, ISR
//! churn, the controller, offline log dirs, quota throttling, GC), its log
//! dirs' space and its descriptors, and what the kernel and its own log say.

use super::*;

pub const KAFKA_BROKER_PROCESS_DOWN: Spec = Spec {
    alert: Alert::KafkaBrokerProcessDown,
    name: "KafkaBrokerProcessDown",
    subject: &["broker"],
    origin: Origin::Agents,
    for_seconds: MINUTE,
    severity: Severity::Critical,
    threshold: None,
    fires_when: "the agent reports but the broker process is not running",
    summary: "The broker process of broker {broker} is not running",
    description: "The agent on its host reports, and finds no broker process{restarts}. Its partitions lose a replica and those it led move: look at the broker's log and the unit (systemctl status kafka; journalctl -u kafka), and for an OOM kill in the kernel log.",
    prometheus: Prometheus {
        comment: None,
        expr: "brokerwatch_broker_up == 0",
        summary: "The broker process of broker {{ $labels.broker_id }} is not running",
        description: "The agent on its host reports, and finds no broker process. Look at the broker's log and its unit (systemctl status kafka; journalctl -u kafka).",
    },
};

pub const KAFKA_BROKER_UNRESPONSIVE: Spec = Spec {
    alert: Alert::KafkaBrokerUnresponsive,
    name: "KafkaBrokerUnresponsive",
    subject: &["broker"],
    origin: Origin::Agents,
    for_seconds: 2 * MINUTE,
    severity: Severity::Critical,
    threshold: ratio(
        0.05,
        "Request-handler idle ratio below which, with requests queued, the broker is stuck, 0..1.",
    ),
    fires_when: "the process runs (and the broker is still in the metadata) but its metrics endpoint does not answer, or its request handlers are idle < 0.05 with requests queued",
    summary: "Broker {broker} runs but does not work: {symptom}",
    description: "{symptom_detail} It is still {membership}, so clients and followers keep sending to it and wait. Take a thread dump (jstack or kill -3 on the broker's pid), look for long GC pauses, a full disk or a hung disk in the kernel log; if it does not recover, restart it.",
    prometheus: Prometheus {
        comment: Some("The process runs, and its metrics endpoint stopped answering or its request handlers are stuck with requests queued."),
        expr: "brokerwatch_broker_up == 1\nand on (cluster, instance, broker_id)\n(\n  brokerwatch_agent_source_up{source=\"broker_metrics\"} == 0\n  or\n  (brokerwatch_kafka_request_handler_idle_ratio < {threshold} and on (cluster, instance, broker_id) brokerwatch_kafka_request_queue_size > 0)\n)",
        summary: "Broker {{ $labels.broker_id }} runs but does not work",
        description: "Its process runs, but its metrics endpoint does not answer or its request handlers are stuck with requests queued. Take a thread dump (jstack), look for GC pauses and disk errors; if it does not recover, restart it.",
    },
};

pub const KAFKA_SLOW_BROKER: Spec = Spec {
    alert: Alert::KafkaSlowBroker,
    name: "KafkaSlowBroker",
    subject: &["broker"],
    origin: Origin::Agents,
    for_seconds: 15 * MINUTE,
    severity: Severity::Warning,
    threshold: positive(
        3.0,
        "How many times its peers' median p99 (and its own of the last hour) a broker's produce or fetch p99 must be, over 100 ms.",
    ),
    fires_when: "produce or fetch p99 > 3 × the peers' median and > 3 × its own of the last hour, and over 100 ms",
    summary: "Broker {broker} is slow: {request} p99 {value}, its peers' median {peers}",
    description: "Its {request} p99 over the window is {value}: {factor} its peers' median of {peers}{history}. Clients with acks=all wait on it as a leader, and as a follower it holds back the ISR. Look at its disks (await, %util), its GC and its host's kernel log; moving leadership off it (a preferred leader election on other brokers, or reassigning) relieves the clients.",
    prometheus: Prometheus {
        comment: Some("Produce p99 against the median of every broker's; the collector also compares fetch p99 and the broker's own last hour."),
        expr: "brokerwatch_kafka_produce_total_time_p99_seconds > 0.1\nand\nbrokerwatch_kafka_produce_total_time_p99_seconds > on () group_left {threshold} * quantile(0.5, brokerwatch_kafka_produce_total_time_p99_seconds)",
        summary: "Broker {{ $labels.broker_id }} is slow: produce p99 {{ $value | humanizeDuration }}",
        description: "Its produce p99 is many times its peers'. Look at its disks (await, %util), its GC and its host's kernel log; moving leadership off it relieves the clients.",
    },
};

pub const KAFKA_ACTIVE_CONTROLLER_COUNT: Spec = Spec {
    alert: Alert::KafkaActiveControllerCount,
    name: "KafkaActiveControllerCount",
    subject: &[],
    origin: Origin::Agents,
    for_seconds: MINUTE,
    severity: Severity::Critical,
    threshold: None,
    fires_when: "the brokers' ActiveControllerCount does not sum to 1 (judged where every reporting broker has the figure: ZooKeeper mode, or KRaft with combined roles)",
    summary: "Cluster {cluster} has {count} active controllers",
    description: "Brokers claiming to be the active controller: {claiming}. With none, partition leadership and topic changes stall; with two, the cluster is split. Look at the controllers' logs and their connection to ZooKeeper or the KRaft quorum; restarting the stale controller ends a split.",
    prometheus: Prometheus {
        comment: Some("Only where brokers export the controller gauge (ZooKeeper mode, KRaft combined roles)."),
        expr: "sum by (cluster) (brokerwatch_kafka_active_controller) != 1",
        summary: "Cluster {{ $labels.cluster }} has {{ $value }} active controllers",
        description: "With none, partition leadership and topic changes stall; with two, the cluster is split. Look at the controllers' logs and their connection to ZooKeeper or the KRaft quorum.",
    },
};

pub const KAFKA_OFFLINE_LOG_DIRS: Spec = Spec {
    alert: Alert::KafkaOfflineLogDirs,
    name: "KafkaOfflineLogDirs",
    subject: &["broker"],
    origin: Origin::Agents,
    for_seconds: 0,
    severity: Severity::Critical,
    threshold: None,
    fires_when: "the broker has taken a log dir offline (its metrics through the agent; without one, its DescribeLogDirs answer)",
    summary: "Broker {broker} has taken {count} log dir(s) offline: {dirs}",
    description: "The partitions in them are offline on this broker (led elsewhere if they can be). A log dir goes offline on an I/O error: look at the kernel log for the disk under it{disks}, replace the disk, and restart the broker.",
    prometheus: Prometheus {
        comment: None,
        expr: "brokerwatch_kafka_offline_log_dirs > 0",
        summary: "Broker {{ $labels.broker_id }} has taken {{ $value }} log dir(s) offline",
        description: "A log dir goes offline on an I/O error: look at the kernel log for the disk under it (brokerwatch_kafka_log_dir_offline names it), replace the disk, and restart the broker.",
    },
};

pub const KAFKA_REQUEST_HANDLER_IDLE_LOW: Spec = Spec {
    alert: Alert::KafkaRequestHandlerIdleLow,
    name: "KafkaRequestHandlerIdleLow",
    subject: &["broker"],
    origin: Origin::Agents,
    for_seconds: 10 * MINUTE,
    severity: Severity::Warning,
    threshold: ratio(0.3, "Median request-handler idle ratio, 0..1: fires below it."),
    fires_when: "median request-handler idle < 0.3",
    summary: "Broker {broker}'s request handlers are idle only {value} of the time",
    description: "Median over the window {value} (limit {limit}); {queue} requests queued now. Requests wait for a handler thread: latency rises for every client of broker {broker}. Look at its disks and its share of the load; raise num.io.threads if the host has CPU to spare.",
    prometheus: Prometheus {
        comment: None,
        expr: "avg_over_time(brokerwatch_kafka_request_handler_idle_ratio[5m]) < {threshold}",
        summary: "Broker {{ $labels.broker_id }}'s request handlers are idle only {{ $value | humanizePercentage }} of the time",
        description: "Requests wait for a handler thread. Look at its disks and its share of the load; raise num.io.threads if the host has CPU to spare.",
    },
};

pub const KAFKA_NETWORK_PROCESSOR_IDLE_LOW: Spec = Spec {
    alert: Alert::KafkaNetworkProcessorIdleLow,
    name: "KafkaNetworkProcessorIdleLow",
    subject: &["broker"],
    origin: Origin::Agents,
    for_seconds: 10 * MINUTE,
    severity: Severity::Warning,
    threshold: ratio(0.3, "Median network-processor idle ratio, 0..1: fires below it."),
    fires_when: "median network-processor idle < 0.3",
    summary: "Broker {broker}'s network threads are idle only {value} of the time",
    description: "Median over the window {value} (limit {limit}). Busy network threads delay every request and the followers' fetches: under-replicated partitions follow. Look at the connections and bytes on broker {broker}; raise num.network.threads if the host has CPU to spare.",
    prometheus: Prometheus {
        comment: None,
        expr: "avg_over_time(brokerwatch_kafka_network_processor_idle_ratio[5m]) < {threshold}",
        summary: "Broker {{ $labels.broker_id }}'s network threads are idle only {{ $value | humanizePercentage }} of the time",
        description: "Busy network threads delay every request and the followers' fetches: under-replicated partitions follow. Raise num.network.threads if the host has CPU to spare.",
    },
};

pub const KAFKA_ISR_CHURN: Spec = Spec {
    alert: Alert::KafkaIsrChurn,
    name: "KafkaIsrChurn",
    subject: &["broker"],
    origin: Origin::Agents,
    for_seconds: 10 * MINUTE,
    severity: Severity::Warning,
    threshold: positive(1.0, "ISR shrinks and expands per minute over the window."),
    fires_when: "ISR shrinks and expands > 1 per minute",
    summary: "The ISRs of broker {broker}'s partitions change {rate} times a minute",
    description: "{shrinks_and_expands} over the last {span}. Followers fall out of the ISR and catch up again: they are slow to fetch (replica.lag.time.max.ms), or broker {broker} is slow to answer. Look at the followers' hosts and at broker {broker}'s network and request handler idle.",
    prometheus: Prometheus {
        comment: None,
        expr: "(rate(brokerwatch_kafka_isr_shrinks_total[5m]) + rate(brokerwatch_kafka_isr_expands_total[5m])) * 60 > {threshold}",
        summary: "The ISRs of broker {{ $labels.broker_id }}'s partitions change {{ $value | printf \"%.1f\" }} times a minute",
        description: "Followers fall out of the ISR and catch up again. Look at the followers' hosts and at this broker's network and request handler idle.",
    },
};

pub const KAFKA_USER_THROTTLED: Spec = Spec {
    alert: Alert::KafkaUserThrottled,
    name: "KafkaUserThrottled",
    subject: &["user"],
    origin: Origin::Agents,
    for_seconds: 15 * MINUTE,
    severity: Severity::Warning,
    threshold: positive(100.0, "Median throttle time per request, ms, produce or fetch."),
    fires_when: "a quota user's median produce or fetch throttle time > 100 ms on a broker",
    summary: "Client user {user} is throttled {value} per request",
    description: "On {brokers}. It is over its quota: its clients slow down by design. Raise its quota (kafka-configs --entity-type users --entity-name {user} --alter --add-config producer_byte_rate=...,consumer_byte_rate=...), or ask its owners why its traffic grew.",
    prometheus: Prometheus {
        comment: None,
        expr: "max by (cluster, user) (brokerwatch_kafka_user_produce_throttle_seconds) * 1000 > {threshold}\nor\nmax by (cluster, user) (brokerwatch_kafka_user_fetch_throttle_seconds) * 1000 > {threshold}",
        summary: "Client user {{ $labels.user }} is throttled {{ $value | printf \"%.0f\" }} ms per request",
        description: "It is over its quota: raise it (kafka-configs --entity-type users) or ask its owners why its traffic grew.",
    },
};

pub const KAFKA_BROKER_GC_PRESSURE: Spec = Spec {
    alert: Alert::KafkaBrokerGcPressure,
    name: "KafkaBrokerGcPressure",
    subject: &["broker"],
    origin: Origin::Agents,
    for_seconds: 5 * MINUTE,
    severity: Severity::Warning,
    threshold: ratio(0.10, "Share of wall time in GC pauses over the window, 0..1."),
    fires_when: "GC pauses > 0.10 of wall time, or 2 or more full (old) collections in the window",
    summary: "Broker {broker}'s JVM spends {share} of its time in GC pauses",
    description: "{pauses} in GC pauses over the last {span}, and {full} full (old-generation) collections. Every request waits through a pause; followers may drop out of the ISR. Look at the heap (it should be 6 GB or so for most brokers; the page cache does the caching), at a leak after an upgrade, and at its GC log.",
    prometheus: Prometheus {
        comment: None,
        expr: "sum by (cluster, instance, broker_id) (rate(brokerwatch_kafka_gc_seconds_total[5m])) > {threshold}\nor\nsum by (cluster, instance, broker_id) (increase(brokerwatch_kafka_gc_collections_total{generation=\"old\"}[5m])) >= 2",
        summary: "Broker {{ $labels.broker_id }}'s JVM is under GC pressure",
        description: "Long or repeated GC pauses: every request waits through them. Look at the heap size, a leak after an upgrade, and the GC log.",
    },
};

pub const KAFKA_LOG_DIR_FILLING_UP: Spec = Spec {
    alert: Alert::KafkaLogDirFillingUp,
    name: "KafkaLogDirFillingUp",
    subject: &["broker", "log_dir"],
    origin: Origin::Agents,
    for_seconds: 10 * MINUTE,
    severity: Severity::Warning,
    threshold: positive(24.0, "Hours until full, projected from the last hours' growth."),
    fires_when: "free space < 5 %, or full within 24 h at the growth of the last hours",
    summary: "Log dir {log_dir} of broker {broker} {when}",
    description: "{free} free of {size} on {device}{growth}. A full log dir goes offline and its partitions with it. Lower retention (retention.ms, retention.bytes) on its biggest topics, reassign partitions to other log dirs or brokers, or add disk.",
    prometheus: Prometheus {
        comment: Some("Less than 5 % free, or full within the threshold's hours at the last 6 hours' growth."),
        expr: "brokerwatch_logdir_free_bytes < 0.05 * (brokerwatch_logdir_free_bytes + brokerwatch_logdir_used_bytes)\nor\npredict_linear(brokerwatch_logdir_free_bytes[6h], {threshold} * 3600) < 0",
        summary: "Log dir {{ $labels.log_dir }} of broker {{ $labels.broker_id }} is filling up",
        description: "A full log dir goes offline and its partitions with it. Lower retention on its biggest topics, reassign partitions, or add disk.",
    },
};

pub const KAFKA_FILE_DESCRIPTORS_EXHAUSTING: Spec = Spec {
    alert: Alert::KafkaFileDescriptorsExhausting,
    name: "KafkaFileDescriptorsExhausting",
    subject: &["broker"],
    origin: Origin::Agents,
    for_seconds: 5 * MINUTE,
    severity: Severity::Critical,
    threshold: ratio(0.9, "Open over the limit, the broker process's or the host's, 0..1."),
    fires_when: "the broker process's open files > 0.9 of its limit, or the host's > 0.9 of fs.file-max",
    summary: "Broker {broker} uses {share} of its {scope}'s file descriptors",
    description: "{figures}. Out of descriptors, the broker cannot open segments or accept connections, and dies. Raise LimitNOFILE in its unit (Kafka wants 100,000 or more), and look for a connection leak in a client (brokerwatch_tcp_established_connections).",
    prometheus: Prometheus {
        comment: None,
        expr: "brokerwatch_broker_process_open_fds / brokerwatch_broker_process_max_fds > {threshold}\nor\nbrokerwatch_filefd_allocated / brokerwatch_filefd_maximum > {threshold}",
        summary: "Broker {{ $labels.broker_id }} uses {{ $value | humanizePercentage }} of its file descriptors",
        description: "Out of descriptors, the broker cannot open segments or accept connections. Raise LimitNOFILE in its unit and look for a client leaking connections.",
    },
};

pub const KAFKA_HOST_KERNEL_ERRORS: Spec = Spec {
    alert: Alert::KafkaHostKernelErrors,
    name: "KafkaHostKernelErrors",
    subject: &["broker", "kind"],
    origin: Origin::Agents,
    for_seconds: 0,
    severity: Severity::Warning,
    threshold: None,
    fires_when: "the kernel log reported a disk I/O or medium error, a filesystem error, a hung task, a lockup, an OOM kill, a link down or a machine check within the window",
    summary: "The kernel of broker {broker}'s host reports {what}: {count} in the last {span}",
    description: "{devices}. {advice} The lines are in the host's kernel log (dmesg -T, journalctl -k).",
    prometheus: Prometheus {
        comment: Some("A series that did not exist 5 minutes ago is a first event: increase() cannot see it."),
        expr: "increase(brokerwatch_kernel_events_total[5m]) > 0\nor\n(brokerwatch_kernel_events_total unless brokerwatch_kernel_events_total offset 5m)",
        summary: "The kernel of broker {{ $labels.broker_id }}'s host reports {{ $labels.kind }} on {{ $labels.device }}",
        description: "The lines are in the host's kernel log (dmesg -T, journalctl -k).",
    },
};

pub const KAFKA_BROKER_LOG_ERRORS: Spec = Spec {
    alert: Alert::KafkaBrokerLogErrors,
    name: "KafkaBrokerLogErrors",
    subject: &["broker"],
    origin: Origin::Agents,
    for_seconds: 5 * MINUTE,
    severity: Severity::Warning,
    threshold: positive(10.0, "ERROR and FATAL lines per minute over the window, at the least (and 5 times the hour before)."),
    fires_when: "ERROR and FATAL lines > 10 a minute and > 5 × the rate of the hour before",
    summary: "Broker {broker} logs {rate} errors a minute",
    description: "{lines} ERROR and FATAL lines over the last {span}, against {baseline} a minute the hour before, in {file}. The loggers: {loggers}. Read them (grep -E 'ERROR|FATAL' {file} | tail).",
    prometheus: Prometheus {
        comment: None,
        expr: "sum by (cluster, instance, broker_id) (rate(brokerwatch_broker_log_lines_total[5m])) * 60 > {threshold}\nand\nsum by (cluster, instance, broker_id) (rate(brokerwatch_broker_log_lines_total[5m])) > 5 * sum by (cluster, instance, broker_id) (rate(brokerwatch_broker_log_lines_total[1h] offset 5m))",
        summary: "Broker {{ $labels.broker_id }} logs {{ $value | printf \"%.0f\" }} errors a minute",
        description: "Far more ERROR and FATAL lines than the hour before: brokerwatch_broker_log_lines_total shows which loggers. Read them in the broker's server.log.",
    },
};
