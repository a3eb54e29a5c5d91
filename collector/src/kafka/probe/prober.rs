//! The probe's I/O: keeps the probe topic laid out, writes a record to each
//! partition every `interval` with acks=all, reads them back in its own
//! group and commits. Runs in the probe's own process (see the module above).

use std::collections::BTreeSet;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use tracing::{info, warn};

use super::ProbeFindings;
use crate::clock::unix_now;
use crate::config::{KafkaConfig, ProbeConfig};
use crate::kafka::wire::Wire;
use crate::model::probe::layout::{self, ProbePartition};
use crate::model::probe::{Probe, ProbeRecord};

/// How often the layout is checked when all is well.
const LAYOUT_EVERY: Duration = Duration::from_secs(60);
/// After a refusal to create the topic (ACLs), asked again this much later.
const REFUSED_RETRY: Duration = Duration::from_secs(600);

type Delivered = (i32, u64, Result<(), String>, f64);

struct Deliveries(mpsc::Sender<Delivered>);

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = Box<(i32, u64)>;

    fn delivery(&self, result: &DeliveryResult<'_>, opaque: Self::DeliveryOpaque) {
        let (partition, sequence) = *opaque;
        let result = result.as_ref().map(drop).map_err(|(e, _)| e.to_string());
        let _ = self.0.send((partition, sequence, result, unix_now()));
    }
}

struct Clients {
    producer: BaseProducer<Deliveries>,
    consumer: BaseConsumer,
    admin: AdminClient<DefaultClientContext>,
    runtime: tokio::runtime::Runtime,
    wire: Option<Wire>,
    deliveries: mpsc::Receiver<Delivered>,
}

fn clients(kafka: &KafkaConfig, config: &ProbeConfig) -> Result<Clients, String> {
    let base = || crate::kafka::client_config(&kafka.properties, "brokerwatch-probe");
    let (tx, deliveries) = mpsc::channel();
    let timeout_ms = config.timeout.as_millis().to_string();
    let producer = base()
        .set("acks", "all")
        .set("enable.idempotence", "false")
        // One request in flight: a partition's records land in the order sent.
        .set("max.in.flight.requests.per.connection", "1")
        .set("linger.ms", "0")
        .set("message.timeout.ms", &timeout_ms)
        .set("request.timeout.ms", &timeout_ms)
        .create_with_context(Deliveries(tx))
        .map_err(|e| format!("probe: cannot create a producer from kafka.properties: {e}"))?;
    let consumer = base()
        .set("group.id", &config.group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("allow.auto.create.topics", "false")
        .set("fetch.wait.max.ms", "50")
        .create()
        .map_err(|e| format!("probe: cannot create a consumer from kafka.properties: {e}"))?;
    let admin = base()
        .create()
        .map_err(|e| format!("probe: cannot create an admin client: {e}"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("probe: cannot start a runtime: {e}"))?;
    let wire = Wire::new(&kafka.properties, kafka.timeout)
        .map_err(|e| warn!("probe: {e}"))
        .ok();
    Ok(Clients {
        producer,
        consumer,
        admin,
        runtime,
        wire,
        deliveries,
    })
}

/// Runs the probe until the process ends, handing each round's findings to
/// `publish`; returns only when its clients cannot be made (said why).
pub fn run(kafka: &KafkaConfig, config: &ProbeConfig, mut publish: impl FnMut(ProbeFindings)) {
    let clients = match clients(kafka, config) {
        Ok(c) => c,
        Err(e) => {
            warn!("{e}; the probe is off, everything else runs");
            return;
        }
    };
    // Distinct per process and start: the start time's bits, the pid mixed in.
    let run = unix_now().to_bits() ^ u64::from(std::process::id()).rotate_left(32);
    let grace = (2.0 * config.interval.as_secs_f64()).max(1.0);
    let mut prober = Prober {
        probe: Probe::new(run, grace, config.window.as_secs_f64()),
        clients,
        timeout: kafka.timeout,
        config: config.clone(),
        partitions: Vec::new(),
        assigned: BTreeSet::new(),
        brokers_without: Vec::new(),
        layout_due: Instant::now(),
        said: None,
    };
    info!(topic = %prober.config.topic, group = %prober.config.group, "probe: a record to each broker every {}", humantime::format_duration(prober.config.interval));
    loop {
        let started = Instant::now();
        if Instant::now() >= prober.layout_due {
            prober.lay_out();
        }
        prober.send();
        prober.read_until(started + prober.config.interval);
        prober.commit();
        let now = unix_now();
        let forget_after = (10.0 * prober.config.timeout.as_secs_f64()).max(600.0);
        prober.probe.settle(now, forget_after);
        if !prober.partitions.is_empty() {
            publish(prober.findings(now));
        }
    }
}

struct Prober {
    probe: Probe,
    clients: Clients,
    config: ProbeConfig,
    timeout: Duration,
    partitions: Vec<ProbePartition>,
    assigned: BTreeSet<i32>,
    brokers_without: Vec<i32>,
    layout_due: Instant,
    /// The last layout problem said (each is said once).
    said: Option<String>,
}

impl Prober {
    fn say(&mut self, problem: String) {
        if self.said.as_ref() != Some(&problem) {
            warn!("{problem}");
            self.said = Some(problem);
        }
    }

    /// Reads the topic's layout; creates, extends and puts leaders back as needed.
    fn lay_out(&mut self) {
        self.layout_due = Instant::now() + LAYOUT_EVERY;
        let topic = self.config.topic.clone();
        let metadata = match self
            .clients
            .consumer
            .fetch_metadata(Some(&topic), self.timeout)
        {
            Ok(m) => m,
            Err(e) => {
                self.layout_due = Instant::now() + self.config.interval;
                return self.say(format!("probe: metadata request failed: {e}"));
            }
        };
        let brokers: BTreeSet<i32> = metadata.brokers().iter().map(|b| b.id()).collect();
        let found = metadata.topics().iter().find(|t| t.name() == topic);
        let partitions: Vec<ProbePartition> = found
            .filter(|t| t.error().is_none())
            .map(|t| {
                t.partitions()
                    .iter()
                    .map(|p| ProbePartition {
                        id: p.id(),
                        replicas: p.replicas().to_vec(),
                        leader: p.leader(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let changes = layout::changes(&brokers, &partitions, self.config.replication_factor);
        if !changes.add.is_empty() {
            let assignment: Vec<&[i32]> = changes.add.iter().map(Vec::as_slice).collect();
            let options = AdminOptions::new().request_timeout(Some(self.timeout));
            let result = if partitions.is_empty() {
                // An hour of records is plenty to read back: at 1,000
                // brokers that keeps about 120 MB per copy, not a week's 20 GB.
                let new = NewTopic::new(
                    &topic,
                    assignment.len() as i32,
                    TopicReplication::Variable(&assignment),
                )
                .set("retention.ms", "3600000");
                self.clients
                    .runtime
                    .block_on(self.clients.admin.create_topics([&new], &options))
            } else {
                let new = NewPartitions::new(&topic, partitions.len() + assignment.len())
                    .assign(&assignment);
                self.clients
                    .runtime
                    .block_on(self.clients.admin.create_partitions([&new], &options))
            };
            let what = if partitions.is_empty() {
                "create topic"
            } else {
                "add partitions to"
            };
            match result.map(|mut r| r.pop()) {
                Ok(Some(Ok(_)) | Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists)))) => {
                    info!(topic, partitions = assignment.len(), "probe: {what} {topic}: done");
                    self.layout_due = Instant::now();
                    self.said = None;
                }
                Ok(Some(Err((_, code @ (RDKafkaErrorCode::TopicAuthorizationFailed | RDKafkaErrorCode::ClusterAuthorizationFailed))))) => {
                    self.layout_due = Instant::now() + REFUSED_RETRY;
                    self.say(format!("probe: the cluster refuses to {what} {topic} ({code}); grant this client Create on it, or create it with one partition led by each broker; the probe waits, everything else runs"));
                }
                Ok(Some(Err((_, code)))) => self.say(format!("probe: cannot {what} {topic}: {code}; create it with one partition led by each broker, or fix the cause; asked again in a minute")),
                Ok(None) => {}
                Err(e) => self.say(format!("probe: cannot {what} {topic}: {e}; asked again in a minute")),
            }
        }
        if !changes.elect.is_empty() {
            self.put_leaders_back(&changes.elect);
        }
        self.brokers_without = brokers
            .iter()
            .copied()
            .filter(|b| {
                !partitions
                    .iter()
                    .any(|p| layout::judged_broker(p) == Some(*b))
            })
            .collect();
        self.assign(&partitions);
        self.partitions = partitions;
    }

    /// Preferred-leader elections for the probe partitions whose leader moved.
    fn put_leaders_back(&mut self, elect: &[i32]) {
        use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
        use kafka_protocol::messages::{ElectLeadersRequest, TopicName};
        use kafka_protocol::protocol::StrBytes;
        let Some(wire) = self.clients.wire.as_mut() else {
            return;
        };
        let request = ElectLeadersRequest::default()
            .with_election_type(0) // preferred
            .with_timeout_ms(self.timeout.as_millis().min(60_000) as i32)
            .with_topic_partitions(Some(vec![TopicPartitions::default()
                .with_topic(TopicName(StrBytes::from_string(self.config.topic.clone())))
                .with_partitions(elect.to_vec())]));
        let result = wire
            .refresh()
            .and_then(|_| wire.send_to_controller(&request));
        match result {
            Ok(answer) if answer.error_code == 0 => {
                info!(partitions = ?elect, "probe: preferred leaders elected for the probe partitions that had moved");
            }
            Ok(answer) => self.say(format!("probe: the cluster refused to put the probe partitions' leaders back (error {}); their records are judged against their current leaders", answer.error_code)),
            Err(e) => self.say(format!("probe: cannot put the probe partitions' leaders back: {e}; their records are judged against their current leaders")),
        }
    }

    /// Reads new partitions from their end (a new run's records come after).
    fn assign(&mut self, partitions: &[ProbePartition]) {
        let ids: BTreeSet<i32> = partitions.iter().map(|p| p.id).collect();
        if ids == self.assigned {
            return;
        }
        let mut list = TopicPartitionList::new();
        for id in &ids {
            let offset = match self.clients.consumer.position().ok().and_then(|tpl| {
                tpl.find_partition(&self.config.topic, *id)
                    .map(|e| e.offset())
            }) {
                Some(Offset::Offset(at)) if self.assigned.contains(id) => Offset::Offset(at),
                _ => match self.clients.consumer.fetch_watermarks(
                    &self.config.topic,
                    *id,
                    self.timeout,
                ) {
                    Ok((_, high)) => Offset::Offset(high),
                    Err(_) => Offset::Beginning,
                },
            };
            let _ = list.add_partition_offset(&self.config.topic, *id, offset);
        }
        match self.clients.consumer.assign(&list) {
            Ok(()) => self.assigned = ids,
            Err(e) => self.say(format!("probe: cannot read the probe topic back: {e}")),
        }
    }

    fn send(&mut self) {
        let now = unix_now();
        let topic = self.config.topic.clone();
        for partition in &self.partitions {
            let Some(broker) = layout::judged_broker(partition) else {
                continue;
            };
            let sequence = self.probe.sent(partition.id, broker, now);
            if partition.leader < 0 {
                self.probe.delivered(
                    partition.id,
                    sequence,
                    Err("the partition has no leader".into()),
                    now,
                );
                continue;
            }
            let value = ProbeRecord {
                run: self.probe.run(),
                sequence,
                sent_micros: (now * 1e6) as u64,
            }
            .encode(self.config.record_bytes);
            let record: BaseRecord<'_, (), [u8], Box<(i32, u64)>> =
                BaseRecord::with_opaque_to(&topic, Box::new((partition.id, sequence)))
                    .partition(partition.id)
                    .payload(value.as_slice());
            if let Err((e, _)) = self.clients.producer.send(record) {
                self.probe
                    .delivered(partition.id, sequence, Err(e.to_string()), now);
            }
        }
    }

    fn take_deliveries(&mut self) {
        self.clients.producer.poll(Duration::ZERO);
        while let Ok((partition, sequence, result, at)) = self.clients.deliveries.try_recv() {
            self.probe.delivered(partition, sequence, result, at);
        }
    }

    /// Reads records back (and takes acknowledgements) until `deadline`.
    fn read_until(&mut self, deadline: Instant) {
        loop {
            self.take_deliveries();
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            match self
                .clients
                .consumer
                .poll(left.min(Duration::from_millis(20)))
            {
                Some(Ok(message)) => {
                    if let Some(record) = message.payload().and_then(ProbeRecord::decode) {
                        self.probe.received(message.partition(), record, unix_now());
                    }
                }
                Some(Err(KafkaError::PartitionEOF(_))) | None => {}
                Some(Err(e)) => self.say(format!("probe: reading the probe topic back: {e}")),
            }
        }
    }

    fn commit(&mut self) {
        let Ok(positions) = self.clients.consumer.position() else {
            return;
        };
        if positions
            .elements()
            .iter()
            .all(|e| !matches!(e.offset(), Offset::Offset(_)))
        {
            return;
        }
        let started = Instant::now();
        match self.clients.consumer.commit(&positions, CommitMode::Sync) {
            Ok(()) => self
                .probe
                .commit_latency
                .observe(started.elapsed().as_secs_f64()),
            Err(e) => {
                self.probe.commit_failures += 1;
                self.say(format!(
                    "probe: committing in group {}: {e}",
                    self.config.group
                ));
            }
        }
    }

    fn findings(&self, now: f64) -> ProbeFindings {
        ProbeFindings {
            at: now,
            windows: self.probe.windows(now),
            totals: self.probe.totals().clone(),
            commit_latency: self.probe.commit_latency.clone(),
            commit_failures: self.probe.commit_failures,
            brokers_without_partition: self.brokers_without.clone(),
            restarts: 0,
        }
    }
}
