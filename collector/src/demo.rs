//! `brokerwatch-collector demo`: the whole system on one machine with nothing
//! else installed. An embedded Kafka-protocol cluster of four brokers
//! (librdkafka's mock cluster) with skewed leadership and live traffic; three
//! consumer groups (one healthy, one falling behind, one that stops); the real
//! agent embedded as broker 1's host; and the collector watching it all,
//! printing the load table, replication, lag and alerts as they change.
//!
//! The four brokers share this one host, so brokers 2-4's host reports are
//! broker 1's real report scaled by their share of the partition leaders (the
//! traffic each serves): the imbalance the demo shows is the one its own
//! leadership skew creates. Each simulated host has two data disks sharing its
//! I/O 70/30, so the disk model inside a broker has something to show.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use brokerwatch_common::Report;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;

use crate::config::{from_toml_text, Flags};

const TOKEN: &str = "demo";
const TOPIC: &str = "orders";
const PARTITIONS: i32 = 12;
/// Who leads each partition of `orders`: broker 1 leads half of them.
const LEADERS: [i32; 12] = [1, 1, 1, 1, 1, 1, 2, 2, 3, 3, 4, 4];
const MESSAGES_PER_PARTITION_PER_SECOND: i64 = 50;
const MESSAGE_BYTES: usize = 512;
const REPLICATION_FACTOR: u64 = 3;
/// The stand-in segments' size at which they start again.
const SEGMENT_BYTES: u64 = 16 << 20;
pub const GROUPS: [&str; 3] = ["billing", "analytics", "audit"];

pub struct DemoOptions {
    pub listen: SocketAddr,
    pub agent_listen: SocketAddr,
    pub alertmanager: Option<String>,
}

/// The collector's config for the demo: short windows and `for` durations, so
/// that an imbalance alert and a lag alert fire within two minutes.
fn collector_config(options: &DemoOptions, bootstrap: &str, state_dir: &str) -> String {
    let alertmanagers = options
        .alertmanager
        .iter()
        .map(|u| format!("{u:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    let groups = GROUPS
        .iter()
        .map(|g| format!("{g:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        r#"cluster = "demo"
listen = "{listen}"
state_dir = {state_dir:?}
evaluation_interval = "2s"
[ingest]
tokens = ["{TOKEN}"]
[store]
window = "30s"
broker_missing_after = "20s"
[kafka]
metadata_interval = "5s"
[kafka.properties]
"bootstrap.servers" = "{bootstrap}"
[consumer_groups]
groups = [{groups}]
fetch_interval = "2s"
window = "2m"
stop_after = "20s"
err_lag = "1m"
[rules.KafkaBrokerLoadDeviation]
for = "20s"
[rules.KafkaClusterLoadImbalance]
for = "20s"
[rules.KafkaPreferredLeaderImbalance]
for = "20s"
[rules.KafkaConsumerGroupLag]
for = "10s"
[rules.KafkaAgentDown]
for = "30s"
[alertmanager]
urls = [{alertmanagers}]
resend_interval = "30s"
"#,
        listen = options.listen,
    )
}

/// Runs the embedded cluster and its clients on this thread (the mock
/// cluster is not Send): creates the topic with skewed leaders, then each
/// second produces to every partition and commits for each group.
fn run_cluster(
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
struct Broker1Traffic {
    messages_in: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    replication_bytes_out: AtomicU64,
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
            let _ = writeln!(
                out,
                "# TYPE {name} counter\n{name} {}",
                value.load(Ordering::Relaxed)
            );
        }
        out
    }
}

/// Broker 1's stand-in log: a segment file per partition it leads, in a
/// real directory. What it takes in is appended and what the groups consume
/// is read back from the segments' tails, so that the agent's log-dir,
/// disk and page-cache readings see real I/O.
struct StandInLog {
    segments: Vec<std::fs::File>,
    length: u64,
    payload: Vec<u8>,
}

impl StandInLog {
    fn create(dir: &std::path::Path) -> Result<Self, String> {
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
        Ok(StandInLog {
            segments,
            length: 0,
            payload: Vec::new(),
        })
    }

    /// One second: `produced` messages appended to each segment, and
    /// `consumed` messages per segment read back from its tail. A failed
    /// write or read only makes the demo's I/O smaller, so it is not fatal.
    fn second(&mut self, produced: u64, consumed: u64) {
        use std::os::unix::fs::FileExt as _;
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
async fn serve_broker1_metrics(traffic: Arc<Broker1Traffic>) -> Result<String, String> {
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

/// Every 5 s, broker 1's real report (from the embedded agent) is sent again
/// for brokers 2-4, scaled by their share of the leaders relative to broker 1.
async fn simulate_other_hosts(agent: String, collector: String, stop: Arc<AtomicBool>) {
    let client = reqwest::Client::new();
    let leaders = |broker: i32| LEADERS.iter().filter(|l| **l == broker).count() as f64;
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let Ok(response) = client.get(format!("{agent}/api/v1/report")).send().await else {
            continue;
        };
        let Ok(report) = response.json::<Report>().await else {
            continue;
        };
        for broker in 2..=4 {
            let scale = leaders(broker) / leaders(1);
            let mut copy = report.clone();
            copy.broker_id = broker;
            if let Some(cpu) = &mut copy.host.cpu {
                cpu.utilization_ratio *= scale;
                cpu.iowait_ratio *= scale;
            }
            // Each simulated host has two data disks (JBOD) sharing the I/O 70/30.
            copy.host.disks = copy
                .host
                .disks
                .first()
                .into_iter()
                .flat_map(|disk| {
                    [("data0", 0.7), ("data1", 0.3)].map(|(device, part)| {
                        let mut d = disk.clone();
                        d.device = device.to_owned();
                        d.read_bytes_per_second *= scale * part * 2.0;
                        d.written_bytes_per_second *= scale * part * 2.0;
                        d.utilization_ratio = (d.utilization_ratio * scale * part * 2.0).min(1.0);
                        d
                    })
                })
                .collect();
            for link in &mut copy.host.interfaces {
                link.receive_bytes_per_second *= scale;
                link.transmit_bytes_per_second *= scale;
            }
            if let Some(fd) = &mut copy.host.file_descriptors {
                fd.allocated = (fd.allocated as f64 * scale) as u64;
            }
            if let Some(memory) = &mut copy.host.memory {
                let used = (memory.total_bytes - memory.available_bytes) as f64 * scale;
                memory.available_bytes = memory.total_bytes.saturating_sub(used as u64);
            }
            let body = serde_json::to_vec(&copy).expect("a report serialises");
            let _ = client
                .post(format!("{collector}/api/v1/reports"))
                .bearer_auth(TOKEN)
                .header("Content-Type", "application/json")
                .body(body)
                .send()
                .await;
        }
    }
}

async fn get(client: &reqwest::Client, url: &str) -> Value {
    match client.get(url).send().await {
        Ok(response) => response.json().await.unwrap_or(Value::Null),
        Err(_) => Value::Null,
    }
}

/// What the demo prints every few seconds: the load table, replication, lag,
/// and the alerts that changed since the last print.
pub fn render(
    load: &Value,
    replication: &Value,
    groups: &Value,
    alerts: &Value,
    seen: &mut BTreeMap<String, String>,
) -> String {
    let mut out = String::new();
    for group in load["groups"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "load of group {} (metrics: {})",
            group["group"].as_str().unwrap_or("?"),
            group["metrics"]
                .as_array()
                .map(|m| m
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", "))
                .unwrap_or_default()
        );
        let _ = writeln!(
            out,
            "  {:>6} {:>8} {:>10}  verdict",
            "broker", "share", "deviation"
        );
        let limit = 0.10;
        for broker in group["brokers"].as_array().into_iter().flatten() {
            let deviation = broker["deviation"].as_f64().unwrap_or(0.0);
            let verdict = crate::model::verdict(
                deviation,
                limit,
                group["brokers"].as_array().is_some_and(|b| b.len() > 1),
            );
            let _ = writeln!(
                out,
                "  {:>6} {:>7.1}% {:>+9.1}%  {verdict}",
                broker["broker"],
                broker["share"].as_f64().unwrap_or(0.0) * 100.0,
                deviation * 100.0
            );
        }
        let (stddev, stddev_limit) = (
            group["stddev"].as_f64().unwrap_or(0.0),
            group["stddev_limit"].as_f64().unwrap_or(0.0),
        );
        let _ = writeln!(
            out,
            "  stddev {stddev:.4} {} limit {stddev_limit:.4}: {}",
            if stddev <= stddev_limit { "<=" } else { ">" },
            if group["balanced"] == true {
                "balanced"
            } else {
                "IMBALANCED"
            }
        );
    }
    if replication.get("partitions").is_some() {
        let _ = writeln!(
            out,
            "replication: {} partitions, {} under-replicated, {} offline, {} under min ISR, brokers down {}",
            replication["partitions"], replication["under_replicated"], replication["offline"], replication["under_min_isr"], replication["brokers_down"]
        );
    }
    for group in groups.as_array().into_iter().flatten() {
        let seconds = group["lag_seconds"]
            .as_f64()
            .map_or_else(|| "-".to_owned(), |s| format!("{s:.0}s"));
        let _ = writeln!(
            out,
            "lag: {:<10} {:<6} {:>8} messages {:>6} behind",
            group["group"].as_str().unwrap_or("?"),
            group["status"].as_str().unwrap_or("?"),
            group["lag_messages"],
            seconds
        );
    }
    for alert in alerts.as_array().into_iter().flatten() {
        let labels = &alert["labels"];
        let subject = ["broker", "consumergroup", "group", "device"]
            .iter()
            .filter_map(|k| labels[*k].as_str().map(|v| format!("{k}={v}")))
            .collect::<Vec<_>>()
            .join(",");
        let id = format!(
            "{}{{{subject}}}",
            labels["alertname"].as_str().unwrap_or("?")
        );
        let state = alert["state"].as_str().unwrap_or("?").to_owned();
        if seen.get(&id) != Some(&state) && state != "pending" {
            let _ = writeln!(
                out,
                "ALERT {} {id}: {}",
                state.to_uppercase(),
                alert["annotations"]["summary"].as_str().unwrap_or("")
            );
            seen.insert(id, state);
        }
    }
    out
}

async fn print_forever(collector: String, stop: Arc<AtomicBool>) {
    let client = reqwest::Client::new();
    let mut seen = BTreeMap::new();
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let load = get(&client, &format!("{collector}/api/v1/load")).await;
        let replication = get(&client, &format!("{collector}/api/v1/replication")).await;
        let groups = get(&client, &format!("{collector}/api/v1/consumergroups")).await;
        let alerts = get(&client, &format!("{collector}/api/v1/alerts")).await;
        println!(
            "----\n{}",
            render(&load, &replication, &groups, &alerts, &mut seen)
        );
    }
}

/// Runs the demo until `shutdown` completes.
pub async fn run(
    options: DemoOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    let stop = Arc::new(AtomicBool::new(false));
    let (bootstrap_in, bootstrap_out) = mpsc::channel();
    let cluster_stop = stop.clone();
    let traffic = Arc::new(Broker1Traffic::default());
    let cluster_traffic = traffic.clone();
    let state = std::env::temp_dir().join(format!("brokerwatch-demo-{}", std::process::id()));
    // The mock cluster keeps its data in memory; broker 1's agent watches a
    // stand-in log dir with a segment per partition it leads.
    let log_dir = state.join("kafka-logs");
    let log = StandInLog::create(&log_dir)?;
    let cluster = std::thread::Builder::new()
        .name("demo-cluster".into())
        .spawn(move || run_cluster(bootstrap_in, cluster_stop, cluster_traffic, log))
        .map_err(|e| format!("cannot start the embedded cluster: {e}"))?;
    let bootstrap = bootstrap_out
        .recv()
        .map_err(|_| "the embedded cluster did not start".to_owned())??;
    let config = from_toml_text(
        &collector_config(&options, &bootstrap, &state.display().to_string()),
        "demo config",
        &Flags::default(),
    )?;
    let collector_url = format!("http://{}", options.listen);
    // No broker process runs here: the agent reads broker 1's metrics from
    // a stand-in exporter fed by the demo's traffic, and counts the page
    // cache for the whole host.
    let broker_metrics = serve_broker1_metrics(traffic).await?;
    let agent_config = brokerwatch_agent::config::from_toml(
        &format!(
            "broker_id = 1\nlisten = \"{}\"\ninterval = \"5s\"\ncollector = \"{collector_url}\"\n[network]\nassumed_speed_mbits = 10000\n[log_dirs]\ndirs = [{:?}]\n[broker]\njmx_exporter_url = \"{broker_metrics}\"\n[page_cache]\ncount = \"host\"\n",
            options.agent_listen,
            log_dir.display().to_string()
        ),
        "demo agent config",
        &brokerwatch_agent::config::Flags::default(),
    )?;
    let agent_config = brokerwatch_agent::config::Config {
        collector_token: Some(brokerwatch_common::Secret::new(TOKEN)),
        ..agent_config
    };
    println!("brokerwatch demo: an embedded 4-broker Kafka cluster at {bootstrap}; topic {TOPIC} with {PARTITIONS} partitions, broker 1 leading half of them; groups {GROUPS:?} (healthy, falling behind, stopping after 15 s).");
    println!("collector: {collector_url} (/metrics, /api/v1/load, /api/v1/alerts); agent (broker 1, this host): http://{}/metrics. Ctrl-C stops.", options.agent_listen);
    let (agent_stop_tx, agent_stop_rx) = tokio::sync::oneshot::channel::<()>();
    let agent = tokio::spawn(brokerwatch_agent::server::run(agent_config, async {
        let _ = agent_stop_rx.await;
    }));
    let others = tokio::spawn(simulate_other_hosts(
        format!("http://{}", options.agent_listen),
        collector_url.clone(),
        stop.clone(),
    ));
    let printer = tokio::spawn(print_forever(collector_url, stop.clone()));
    let served = crate::server::run(config, shutdown).await;
    stop.store(true, Ordering::Relaxed);
    let _ = agent_stop_tx.send(());
    let _ = agent.await;
    others.abort();
    printer.abort();
    let _ = cluster.join();
    let _ = std::fs::remove_dir_all(&state);
    served
}
