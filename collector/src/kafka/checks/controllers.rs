//! The controllers, over the Kafka protocol spoken directly (librdkafka
//! offers none of these): the KRaft quorum (DescribeQuorum), the controller
//! the metadata names and its changes, the reassignments in flight
//! (ListPartitionReassignments), and every `topic_config_interval` each
//! broker's log dirs (DescribeLogDirs) and replication throttles
//! (DescribeConfigs). A request a cluster does not offer is said once and
//! not asked again; a failure is said once per outage and keeps the last
//! findings (their age shows).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Instant;

use brokerwatch_common::exposition::Families;
use brokerwatch_common::outage::Outage;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use kafka_protocol::messages::{
    DescribeConfigsRequest, DescribeLogDirsRequest, DescribeQuorumRequest,
    ListPartitionReassignmentsRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use tracing::{info, warn};

use crate::config::KafkaConfig;
use crate::kafka::wire::{Wire, WireError};
use crate::kafka::PartitionKey;
use crate::model::controllers::{
    BrokerLogDirs, LogDir, Moving, MovingFacts, QuorumReading, ReassignmentWatch, ReplicaReading,
};

/// The broker configs that throttle a reassignment's copying.
pub const THROTTLES: [(&str, &str); 2] = [
    ("leader.replication.throttled.rate", "leader"),
    ("follower.replication.throttled.rate", "follower"),
];

/// What the controllers' side of the cluster showed at its last reading.
#[derive(Debug, Clone, Default)]
pub struct Controllers {
    pub at: f64,
    /// The controller the metadata names, and how often that changed.
    pub controller: Option<i32>,
    pub controller_changes: u64,
    /// The KRaft quorum (`None` on ZooKeeper-mode clusters or before it answered).
    pub quorum: Option<QuorumReading>,
    pub quorum_leader_changes: u64,
    /// The reassignments in flight (`None` until the controller listed them).
    pub reassignments: Option<Arc<Vec<MovingFacts>>>,
    /// Each broker's log dirs, as of `log_dirs_at`.
    pub log_dirs: Option<Arc<BrokerLogDirs>>,
    pub log_dirs_at: f64,
    /// Each broker's replication throttles in bytes per second, by direction.
    pub throttles: Arc<BTreeMap<i32, Vec<(&'static str, u64)>>>,
}

impl Controllers {
    /// The partitions being reassigned, with the replicas they add.
    pub fn moving(&self) -> Option<HashMap<PartitionKey, Vec<i32>>> {
        self.reassignments.as_ref().map(|all| {
            all.iter()
                .map(|m| (m.moving.key.clone(), m.moving.adding.clone()))
                .collect()
        })
    }
}

pub struct ControllersCheck {
    config: KafkaConfig,
    wire: Option<Wire>,
    outage: Outage,
    /// Requests the cluster does not offer: said once, not asked again.
    unsupported: BTreeSet<&'static str>,
    watch: ReassignmentWatch,
    log_dirs_read_at: Option<Instant>,
    sizes: Option<HashMap<(PartitionKey, i32), u64>>,
}

impl ControllersCheck {
    pub fn new(config: KafkaConfig) -> Self {
        let wire = Wire::new(&config.properties, config.timeout)
            .map_err(|e| warn!("{e}"))
            .ok();
        ControllersCheck {
            config,
            wire,
            outage: Outage::default(),
            unsupported: BTreeSet::new(),
            watch: ReassignmentWatch::default(),
            log_dirs_read_at: None,
            sizes: None,
        }
    }

    /// Whether to go on with `what` after `result`: an unsupported request
    /// is said once and skipped from then on.
    fn offered<T>(
        &mut self,
        what: &'static str,
        result: Result<T, WireError>,
        why: &str,
    ) -> Result<Option<T>, String> {
        match result {
            Ok(answer) => Ok(Some(answer)),
            Err(WireError::Unsupported(_)) => {
                if self.unsupported.insert(what) {
                    info!("kafka: the cluster does not offer {what}; {why}");
                }
                Ok(None)
            }
            Err(WireError::Failed(e)) => Err(e),
        }
    }

    /// One reading into `found` (kept where a request fails).
    pub fn read(&mut self, found: &mut Controllers, now: f64) -> Result<(), String> {
        let wire = self.wire.as_mut().expect("checked by the caller");
        let controller = wire.refresh().map_err(|e| e.to_string())?;
        if found.at > 0.0 && controller.is_some() && controller != found.controller {
            found.controller_changes += 1;
        }
        found.controller = controller.or(found.controller);
        if !self.unsupported.contains("DescribeQuorum") {
            let request = DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
                .with_topic_name(TopicName(StrBytes::from_static_str("__cluster_metadata")))
                .with_partitions(vec![PartitionData::default().with_partition_index(0)])]);
            let answer = self.wire.as_mut().expect("set").send_any(&request);
            if let Some(answer) = self.offered("DescribeQuorum", answer, "a ZooKeeper-mode cluster (or Kafka before 3.3): the controller is followed through the metadata only")? {
                let partition = answer
                    .topics
                    .first()
                    .and_then(|t| t.partitions.first())
                    .filter(|p| answer.error_code == 0 && p.error_code == 0)
                    .ok_or_else(|| format!("kafka: DescribeQuorum refused (error {})", answer.error_code))?;
                let replicas = |list: &[kafka_protocol::messages::describe_quorum_response::ReplicaState]| {
                    list.iter()
                        .map(|r| ReplicaReading {
                            id: r.replica_id.0,
                            log_end_offset: r.log_end_offset,
                            last_caught_up_ms: r.last_caught_up_timestamp,
                        })
                        .collect()
                };
                let reading = QuorumReading {
                    leader: partition.leader_id.0,
                    epoch: partition.leader_epoch,
                    high_watermark: partition.high_watermark,
                    voters: replicas(&partition.current_voters),
                    observers: replicas(&partition.observers),
                };
                if let Some(before) = &found.quorum {
                    if reading.epoch > before.epoch {
                        found.quorum_leader_changes += 1;
                    }
                }
                found.quorum = Some(reading);
            }
        }
        self.read_log_dirs(found, now)?;
        if !self.unsupported.contains("ListPartitionReassignments") {
            let request = ListPartitionReassignmentsRequest::default()
                .with_timeout_ms(self.config.timeout.as_millis().min(60_000) as i32)
                .with_topics(None);
            let answer = self
                .wire
                .as_mut()
                .expect("set")
                .send_to_controller(&request);
            if let Some(answer) = self.offered(
                "ListPartitionReassignments",
                answer,
                "reassignments are told from replica counts",
            )? {
                if answer.error_code != 0 {
                    return Err(format!(
                        "kafka: ListPartitionReassignments refused (error {}): {}",
                        answer.error_code,
                        answer.error_message.as_deref().unwrap_or("no reason given")
                    ));
                }
                let listing = answer
                    .topics
                    .iter()
                    .flat_map(|t| {
                        t.partitions.iter().map(|p| Moving {
                            key: (t.name.to_string(), p.partition_index),
                            replicas: p.replicas.iter().map(|b| b.0).collect(),
                            adding: p.adding_replicas.iter().map(|b| b.0).collect(),
                            removing: p.removing_replicas.iter().map(|b| b.0).collect(),
                        })
                    })
                    .collect();
                found.reassignments = Some(Arc::new(self.watch.observe(
                    listing,
                    self.sizes.as_ref(),
                    now,
                )));
            }
        }
        found.at = now;
        Ok(())
    }

    /// Each broker's log dirs and throttles, every `topic_config_interval`.
    fn read_log_dirs(&mut self, found: &mut Controllers, now: f64) -> Result<(), String> {
        if self
            .log_dirs_read_at
            .is_some_and(|at| at.elapsed() < self.config.topic_config_interval)
        {
            return Ok(());
        }
        self.log_dirs_read_at = Some(Instant::now());
        let wire = self.wire.as_mut().expect("set");
        let brokers: Vec<i32> = wire.brokers().collect();
        let mut dirs = BrokerLogDirs::new();
        let mut sizes = HashMap::new();
        let mut throttles = BTreeMap::new();
        let mut failures = Vec::new();
        for broker in brokers {
            if !self.unsupported.contains("DescribeLogDirs") {
                let answer = self
                    .wire
                    .as_mut()
                    .expect("set")
                    .send_to(broker, &DescribeLogDirsRequest::default().with_topics(None));
                match self.offered(
                    "DescribeLogDirs",
                    answer,
                    "log dirs come from the agents only",
                ) {
                    Ok(Some(answer)) => {
                        let listed = answer.results.iter().map(|dir| {
                            let mut size_bytes = 0;
                            let mut partitions = 0;
                            for topic in &dir.topics {
                                for p in &topic.partitions {
                                    let bytes = p.partition_size.max(0) as u64;
                                    size_bytes += bytes;
                                    partitions += 1;
                                    *sizes
                                        .entry((
                                            (topic.name.to_string(), p.partition_index),
                                            broker,
                                        ))
                                        .or_default() += bytes;
                                }
                            }
                            let known = |v: i64| u64::try_from(v).ok();
                            LogDir {
                                path: dir.log_dir.to_string(),
                                error_code: dir.error_code,
                                partitions,
                                size_bytes,
                                total_bytes: known(dir.total_bytes),
                                usable_bytes: known(dir.usable_bytes),
                            }
                        });
                        dirs.insert(broker, listed.collect());
                    }
                    Ok(None) => {}
                    Err(e) => failures.push(e),
                }
            }
            if !self.unsupported.contains("DescribeConfigs") {
                let request = DescribeConfigsRequest::default().with_resources(vec![
                    DescribeConfigsResource::default()
                        .with_resource_type(4) // BROKER
                        .with_resource_name(StrBytes::from_string(broker.to_string()))
                        .with_configuration_keys(Some(
                            THROTTLES
                                .iter()
                                .map(|(k, _)| StrBytes::from_static_str(k))
                                .collect(),
                        )),
                ]);
                let answer = self.wire.as_mut().expect("set").send_to(broker, &request);
                match answer {
                    Ok(answer) => {
                        let set: Vec<(&'static str, u64)> = answer
                            .results
                            .iter()
                            .filter(|r| r.error_code == 0)
                            .flat_map(|r| r.configs.iter())
                            .filter_map(|c| {
                                let (_, direction) =
                                    THROTTLES.iter().find(|(k, _)| **k == *c.name)?;
                                let rate: u64 = c.value.as_deref()?.parse().ok()?;
                                Some((*direction, rate))
                            })
                            .collect();
                        throttles.insert(broker, set);
                    }
                    // Throttles are a detail of a stuck reassignment's
                    // alert: a broker that will not tell them (or hangs up,
                    // as some Kafka-compatible brokers do) is said once.
                    Err(e) => {
                        if self.unsupported.insert("DescribeConfigs") {
                            info!("kafka: broker {broker} does not describe its configs ({e}); replication throttles are unknown and not asked again");
                        }
                    }
                }
            }
        }
        if !dirs.is_empty() {
            found.log_dirs = Some(Arc::new(dirs));
            found.log_dirs_at = now;
            self.sizes = Some(sizes);
        }
        found.throttles = Arc::new(throttles);
        // Asked again an interval later, not at the next round: a broker
        // that takes a whole timeout to answer must not slow every round.
        failures.into_iter().next().map_or(Ok(()), Err)
    }
}

impl ControllersCheck {
    /// Reads every `metadata_interval` on the calling thread (its own: a
    /// broker that hangs must not hold up the metadata), publishing after
    /// each reading. Failures are said once per outage and keep the last
    /// findings (their age shows).
    pub fn run_forever(mut self, publish: &tokio::sync::watch::Sender<Option<Controllers>>) {
        if self.wire.is_none() {
            return;
        }
        let mut found = Controllers::default();
        loop {
            let started = Instant::now();
            let result = self.read(&mut found, crate::clock::unix_now());
            if found.at > 0.0 {
                publish.send_replace(Some(found.clone()));
            }
            match result {
                Ok(()) => {
                    if self.outage.recovered() {
                        info!("kafka: the controllers' requests are answered again");
                    }
                }
                Err(e) => {
                    if self.outage.failed(e.clone()) {
                        warn!("{e}; the quorum, reassignment and log-dir figures keep their last values (see their age) until it answers");
                    }
                }
            }
            std::thread::sleep(
                self.config
                    .metadata_interval
                    .saturating_sub(started.elapsed()),
            );
        }
    }
}

/// A log dir series: name, help, its value where known.
type LogDirColumn = (&'static str, &'static str, fn(&LogDir) -> Option<f64>);

/// The controllers' series.
pub fn expose(found: &Controllers, families: &mut Families, now: f64) {
    families
        .gauge(
            "brokerwatch_controller_reading_age_seconds",
            "Age of the controllers' figures (quorum, reassignments).",
        )
        .value(now - found.at);
    if let Some(controller) = found.controller {
        families
            .gauge(
                "brokerwatch_controller_id",
                "The controller the metadata names (in KRaft, a broker that forwards to it).",
            )
            .value(f64::from(controller));
    }
    families
        .counter(
            "brokerwatch_controller_changes_total",
            "Times the controller the metadata names changed.",
        )
        .value(found.controller_changes as f64);
    if let Some(quorum) = &found.quorum {
        families
            .gauge(
                "brokerwatch_controller_quorum_leader",
                "The KRaft quorum's leader (-1: none).",
            )
            .value(f64::from(quorum.leader));
        families
            .gauge(
                "brokerwatch_controller_quorum_epoch",
                "The KRaft quorum leader's epoch.",
            )
            .value(f64::from(quorum.epoch));
        families
            .gauge(
                "brokerwatch_controller_quorum_high_watermark",
                "The metadata log's high watermark.",
            )
            .value(quorum.high_watermark as f64);
        families
            .counter(
                "brokerwatch_controller_quorum_leader_changes_total",
                "Quorum leader elections seen (epoch rises).",
            )
            .value(found.quorum_leader_changes as f64);
        let lags = quorum.lags();
        let role = |voter: bool| if voter { "voter" } else { "observer" };
        let mut records = families.gauge(
            "brokerwatch_controller_quorum_lag_records",
            "Records a voter or observer is behind the metadata log's high watermark.",
        );
        for lag in &lags {
            records.add(
                &[("replica", &lag.id.to_string()), ("role", role(lag.voter))],
                lag.records as f64,
            );
        }
        let mut seconds = families.gauge(
            "brokerwatch_controller_quorum_lag_seconds",
            "Seconds since a voter or observer last caught up, behind the freshest voter.",
        );
        for lag in &lags {
            if let Some(s) = lag.seconds {
                seconds.add(
                    &[("replica", &lag.id.to_string()), ("role", role(lag.voter))],
                    s,
                );
            }
        }
    }
    if let Some(moving) = &found.reassignments {
        families
            .gauge(
                "brokerwatch_reassignments_in_progress",
                "Partitions being reassigned, as the controller lists them.",
            )
            .value(moving.len() as f64);
        let oldest = moving.iter().map(|m| now - m.since).fold(0.0, f64::max);
        families
            .gauge(
                "brokerwatch_reassignment_oldest_age_seconds",
                "How long the oldest reassignment in flight has been seen.",
            )
            .value(oldest);
        let still = moving
            .iter()
            .map(|m| now - m.progressed_at)
            .fold(0.0, f64::max);
        families
            .gauge("brokerwatch_reassignment_without_progress_seconds", "The longest a reassignment in flight has gone without a replica joining or its copies growing.")
            .value(still);
    }
    let mut throttle = families.gauge(
        "brokerwatch_broker_replication_throttle_bytes_per_second",
        "A broker's replication throttle (leader or follower side), where set.",
    );
    for (broker, set) in found.throttles.iter() {
        for (direction, rate) in set {
            throttle.add(
                &[("broker", &broker.to_string()), ("direction", direction)],
                *rate as f64,
            );
        }
    }
    if let Some(dirs) = &found.log_dirs {
        let rows: Vec<(String, &LogDir)> = dirs
            .iter()
            .flat_map(|(b, list)| list.iter().map(move |d| (b.to_string(), d)))
            .collect();
        let columns: [LogDirColumn; 4] = [
            (
                "brokerwatch_broker_log_dir_offline",
                "1 when the broker reports the log dir offline (DescribeLogDirs).",
                |d| Some(f64::from(u8::from(d.offline()))),
            ),
            (
                "brokerwatch_broker_log_dir_size_bytes",
                "Bytes of the partitions in the log dir, as the broker reports them.",
                |d| Some(d.size_bytes as f64),
            ),
            (
                "brokerwatch_broker_log_dir_total_bytes",
                "Capacity of the log dir's volume (Kafka 3.3+).",
                |d| d.total_bytes.map(|b| b as f64),
            ),
            (
                "brokerwatch_broker_log_dir_usable_bytes",
                "Free space of the log dir's volume (Kafka 3.3+).",
                |d| d.usable_bytes.map(|b| b as f64),
            ),
        ];
        for (name, help, value) in columns {
            let mut family = families.gauge(name, help);
            for (broker, dir) in &rows {
                if let Some(v) = value(dir) {
                    family.add(&[("broker", broker), ("log_dir", &dir.path)], v);
                }
            }
        }
    }
}
