//! The embedded cluster: librdkafka's mock cluster of four brokers with
//! skewed leadership, a producer, and three consumer groups (one healthy,
//! one falling behind, one that stops); and broker 1's stand-ins for what a
//! real broker has on its host: a log dir with segments that see the
//! traffic, and a JMX exporter that counts it.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

pub const TOPIC: &str = "orders";
pub const PARTITIONS: i32 = 12;
/// Who leads each partition of `orders`: broker 1 leads half of them.
pub const LEADERS: [i32; 12] = [1, 1, 1, 1, 1, 1, 2, 2, 3, 3, 4, 4];
const MESSAGES_PER_PARTITION_PER_SECOND: i64 = 50;
const MESSAGE_BYTES: usize = 512;
const REPLICATION_FACTOR: u64 = 3;
/// The stand-in segments' size at which they start again.
const SEGMENT_BYTES: u64 = 16 << 20;
pub const GROUPS: [&str; 3] = ["billing", "analytics", "audit"];
/// The collector's end-to-end probe topic (its default name).
const PROBE_TOPIC: &str = "brokerwatch-probe";

/// Runs the embedded cluster and its clients on this thread (the mock
/// cluster is not Send): creates the topic with skewed leaders, then each
/// second produces to every partition and commits for each group.
pub fn run_cluster(
    bootstrap_out: mpsc::Sender<Result<String, String>>,
    stop: Arc<AtomicBool>,
    traffic: Arc<Broker1Traffic>,
    mut log: StandInLog,
) {
    let setup = || -> Result<(MockCluster<'static, rdkafka::producer::DefaultProducerContext>, BaseProducer, Vec<BaseConsumer>), String> {
        let mock = MockCluster::new(4).map_err(|e| format!("cannot start the embedded cluster: {e}"))?;
        mock.create_topic(TOPIC, PARTITIONS, 3).map_err(|e| format!("cannot create {TOPIC}: {e}"))?;
        for (partition, leader) in LEADERS.iter().enumerate() {
            mock.partition_leader(TOPIC, partition as i32, Some(*leader)).map_err(|e| format!("cannot place {TOPIC}/{partition}: {e}"))?;
        }
        // The collector's probe topic, laid out as it would create it
        // (the mock has no CreateTopics): one partition led by each broker.
        mock.create_topic(PROBE_TOPIC, 4, 3).map_err(|e| format!("cannot create {PROBE_TOPIC}: {e}"))?;
        for broker in 1..=4 {
            mock.partition_leader(PROBE_TOPIC, broker - 1, Some(broker)).map_err(|e| format!("cannot place {PROBE_TOPIC}/{}: {e}", broker - 1))?;
        }
        let bootstrap = mock.bootstrap_servers();
        let producer: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("linger.ms", "20")
            .create()
            .map_err(|e| format!("cannot create the demo producer: {e}"))?;
        let committers = GROUPS
            .iter()
            .map(|group| {
                ClientConfig::new()
                    .set("bootstrap.servers", &bootstrap)
                    .set("group.id", *group)
                    .set("enable.auto.commit", "false")
                    .create::<BaseConsumer>()
                    .map_err(|e| format!("cannot create the consumer of {group}: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok((mock, producer, committers))
    };
    let (mock, producer, committers) = match setup() {
        Ok(parts) => parts,
        Err(e) => {
            let _ = bootstrap_out.send(Err(e));
            return;
        }
    };
    let _ = bootstrap_out.send(Ok(mock.bootstrap_servers()));
    let payload = vec![b'x'; MESSAGE_BYTES];
    let mut second: i64 = 0;
    let (mut analytics, mut audit) = (0i64, 0i64);
    while !stop.load(Ordering::Relaxed) {
        second += 1;
        for partition in 0..PARTITIONS {
            for _ in 0..MESSAGES_PER_PARTITION_PER_SECOND {
                // A full queue only means the mock is slower than the demo: skip, try next second.
                let _ = producer.send(
                    BaseRecord::to(TOPIC)
                        .partition(partition)
                        .payload(&payload)
                        .key("k"),
                );
            }
        }
        producer.poll(Duration::ZERO);
        let _ = producer.flush(Duration::from_secs(5));
        let end = second * MESSAGES_PER_PARTITION_PER_SECOND;
        let (analytics_before, audit_before) = (analytics, audit);
        // billing keeps up; analytics reads 70 %; audit stops after 15 s.
        analytics += MESSAGES_PER_PARTITION_PER_SECOND * 7 / 10;
        if second <= 15 {
            audit = end;
        }
        let consumed = MESSAGES_PER_PARTITION_PER_SECOND
            + (analytics - analytics_before)
            + (audit - audit_before);
        traffic.second(MESSAGES_PER_PARTITION_PER_SECOND as u64, consumed as u64);
        log.second(MESSAGES_PER_PARTITION_PER_SECOND as u64, consumed as u64);
        for (consumer, offset) in committers.iter().zip([end, analytics, audit]) {
            let mut offsets = TopicPartitionList::new();
            for partition in 0..PARTITIONS {
                let _ = offsets.add_partition_offset(TOPIC, partition, Offset::Offset(offset));
            }
            let _ = consumer.commit(&offsets, CommitMode::Sync);
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Broker 1's byte counters as its JMX exporter would show them, kept from
/// the demo's own traffic: what it takes in for the partitions it leads,
/// what the groups' progress over those partitions means it served, and what
/// its followers fetch from it.
#[derive(Default)]
pub struct Broker1Traffic {
    messages_in: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    replication_bytes_out: AtomicU64,
    seconds: AtomicU64,
}

impl Broker1Traffic {
    fn led_partitions() -> u64 {
        LEADERS.iter().filter(|l| **l == 1).count() as u64
    }

    /// One second of traffic: `produced` messages per partition, and the
    /// groups' commits moved by `consumed` messages per partition in all.
    fn second(&self, produced: u64, consumed: u64) {
        let bytes = |messages: u64| messages * Self::led_partitions() * MESSAGE_BYTES as u64;
        self.messages_in
            .fetch_add(produced * Self::led_partitions(), Ordering::Relaxed);
        self.bytes_in.fetch_add(bytes(produced), Ordering::Relaxed);
        self.bytes_out.fetch_add(bytes(consumed), Ordering::Relaxed);
        self.replication_bytes_out.fetch_add(
            bytes(produced) * (REPLICATION_FACTOR - 1),
            Ordering::Relaxed,
        );
        self.seconds.fetch_add(1, Ordering::Relaxed);
    }

    /// The JMX exporter's text format, with the names its usual Kafka rules give.
    fn exposition(&self) -> String {
        let mut out = String::new();
        for (name, value) in [
            (
                "kafka_server_brokertopicmetrics_messagesin_total",
                &self.messages_in,
            ),
            (
                "kafka_server_brokertopicmetrics_bytesin_total",
                &self.bytes_in,
            ),
            (
                "kafka_server_brokertopicmetrics_bytesout_total",
                &self.bytes_out,
            ),
            (
                "kafka_server_brokertopicmetrics_replicationbytesout_total",
                &self.replication_bytes_out,
            ),
        ] {
            // Broker-wide, and for the demo's one topic (as the exporter
            // gives both).
            let value = value.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "# TYPE {name} counter\n{name} {value}\n{name}{{topic=\"{TOPIC}\"}} {value}"
            );
        }
        // A healthy broker's figures, and its JVM's collections: a young
        // pause of 8 ms every other second, no full collection.
        let seconds = self.seconds.load(Ordering::Relaxed);
        let _ = write!(
            out,
            "# TYPE kafka_server_kafkarequesthandlerpool_requesthandleravgidlepercent gauge\n\
             kafka_server_kafkarequesthandlerpool_requesthandleravgidlepercent 0.87\n\
             # TYPE kafka_network_socketserver_networkprocessoravgidlepercent gauge\n\
             kafka_network_socketserver_networkprocessoravgidlepercent 0.91\n\
             # TYPE kafka_network_requestchannel_requestqueuesize gauge\n\
             kafka_network_requestchannel_requestqueuesize 0\n\
             # TYPE kafka_network_requestmetrics_99thpercentile gauge\n\
             kafka_network_requestmetrics_99thpercentile{{name=\"TotalTimeMs\",request=\"Produce\"}} 14\n\
             kafka_network_requestmetrics_99thpercentile{{name=\"TotalTimeMs\",request=\"FetchConsumer\"}} 502\n\
             # TYPE kafka_server_replicamanager_isrshrinks_total counter\n\
             kafka_server_replicamanager_isrshrinks_total 0\n\
             # TYPE kafka_server_replicamanager_isrexpands_total counter\n\
             kafka_server_replicamanager_isrexpands_total 0\n\
             # TYPE kafka_server_replicamanager_underreplicatedpartitions gauge\n\
             kafka_server_replicamanager_underreplicatedpartitions 0\n\
             # TYPE kafka_controller_kafkacontroller_activecontrollercount gauge\n\
             kafka_controller_kafkacontroller_activecontrollercount 1\n\
             # TYPE kafka_log_logmanager_offlinelogdirectorycount gauge\n\
             kafka_log_logmanager_offlinelogdirectorycount 0\n\
             # TYPE jvm_gc_collection_seconds summary\n\
             jvm_gc_collection_seconds_count{{gc=\"G1 Young Generation\"}} {young}\n\
             jvm_gc_collection_seconds_sum{{gc=\"G1 Young Generation\"}} {young_seconds}\n\
             jvm_gc_collection_seconds_count{{gc=\"G1 Old Generation\"}} 0\n\
             jvm_gc_collection_seconds_sum{{gc=\"G1 Old Generation\"}} 0\n",
            young = seconds / 2,
            young_seconds = (seconds / 2) as f64 * 0.008,
        );
        out
    }
}

/// Broker 1's stand-in log: a segment file per partition it leads, in a
/// real directory. What it takes in is appended and what the groups consume
/// is read back from the segments' tails, so that the agent's log-dir,
/// disk and page-cache readings see real I/O.
pub struct StandInLog {
    segments: Vec<std::fs::File>,
    length: u64,
    payload: Vec<u8>,
    /// Its server.log, which the agent follows: a transient replica
    /// fetcher error every 30 s, as a busy cluster's logs have.
    server_log: Option<std::fs::File>,
    seconds: u64,
}

impl StandInLog {
    pub fn create(dir: &std::path::Path) -> Result<Self, String> {
        let fail = |e: std::io::Error| {
            format!(
                "cannot create the demo's log dir {}: {e}; set TMPDIR to a writable directory",
                dir.display()
            )
        };
        let mut segments = Vec::new();
        for (partition, leader) in LEADERS.iter().enumerate() {
            if *leader == 1 {
                let partition_dir = dir.join(format!("{TOPIC}-{partition}"));
                std::fs::create_dir_all(&partition_dir).map_err(fail)?;
                let segment = std::fs::OpenOptions::new()
                    .create(true)
                    .truncate(true)
                    .read(true)
                    .write(true)
                    .open(partition_dir.join("00000000000000000000.log"))
                    .map_err(fail)?;
                segments.push(segment);
            }
        }
        let server_log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(Self::server_log_path(dir))
            .ok();
        Ok(StandInLog {
            segments,
            length: 0,
            payload: Vec::new(),
            server_log,
            seconds: 0,
        })
    }

    /// Where broker 1's stand-in server.log is, beside its log dir.
    pub fn server_log_path(dir: &std::path::Path) -> std::path::PathBuf {
        dir.with_file_name("server.log")
    }

    fn log_line(&mut self, level: &str, text: &str, logger: &str) {
        use std::io::Write as _;
        let now = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
        let stamp = now
            .trim_end_matches('Z')
            .replace('T', " ")
            .replace('.', ",");
        if let Some(file) = &mut self.server_log {
            let _ = writeln!(file, "[{stamp}] {level} {text} ({logger})");
        }
    }

    /// One second: `produced` messages appended to each segment, and
    /// `consumed` messages per segment read back from its tail. A failed
    /// write or read only makes the demo's I/O smaller, so it is not fatal.
    fn second(&mut self, produced: u64, consumed: u64) {
        use std::os::unix::fs::FileExt as _;
        self.seconds += 1;
        if self.seconds.is_multiple_of(10) {
            self.log_line(
                "INFO",
                "[Log partition=demo-0, dir=kafka-logs] Rolled new log segment",
                "kafka.log.LocalLog",
            );
        }
        if self.seconds % 30 == 5 {
            self.log_line(
                "ERROR",
                "[ReplicaFetcher replicaId=1, leaderId=3, fetcherId=0] Error for partition demo-5 at offset 0 (NOT_LEADER_OR_FOLLOWER)",
                "kafka.server.ReplicaFetcherThread",
            );
        }
        let (append, read) = (
            produced * MESSAGE_BYTES as u64,
            consumed * MESSAGE_BYTES as u64,
        );
        self.payload.resize(append.max(read) as usize, b'x');
        if self.length + append > SEGMENT_BYTES {
            // Rolled, as retention would: the demo's disk use stays bounded.
            for segment in &self.segments {
                let _ = segment.set_len(0);
            }
            self.length = 0;
        }
        for segment in &self.segments {
            let _ = segment.write_all_at(&self.payload[..append as usize], self.length);
        }
        self.length += append;
        let from = self.length.saturating_sub(read);
        let read = (self.length - from) as usize;
        for segment in &self.segments {
            let _ = segment.read_at(&mut self.payload[..read], from);
        }
    }
}

/// Serves broker 1's stand-in JMX exporter on a port of its own; returns its URL.
pub async fn serve_broker1_metrics(traffic: Arc<Broker1Traffic>) -> Result<String, String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("cannot start the demo's broker metrics endpoint: {e}"))?;
    let url = format!(
        "http://{}/metrics",
        listener
            .local_addr()
            .map_err(|e| format!("cannot start the demo's broker metrics endpoint: {e}"))?
    );
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let traffic = traffic.clone();
            async move { traffic.exposition() }
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(url)
}
