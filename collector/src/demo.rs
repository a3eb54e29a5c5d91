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
use std::sync::atomic::{AtomicBool, Ordering};
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
fn run_cluster(bootstrap_out: mpsc::Sender<Result<String, String>>, stop: Arc<AtomicBool>) {
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
    let payload = vec![b'x'; 512];
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
        // billing keeps up; analytics reads 70 %; audit stops after 15 s.
        analytics += MESSAGES_PER_PARTITION_PER_SECOND * 7 / 10;
        if second <= 15 {
            audit = end;
        }
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
    let cluster = std::thread::Builder::new()
        .name("demo-cluster".into())
        .spawn(move || run_cluster(bootstrap_in, cluster_stop))
        .map_err(|e| format!("cannot start the embedded cluster: {e}"))?;
    let bootstrap = bootstrap_out
        .recv()
        .map_err(|_| "the embedded cluster did not start".to_owned())??;
    let state = std::env::temp_dir().join(format!("brokerwatch-demo-{}", std::process::id()));
    let config = from_toml_text(
        &collector_config(&options, &bootstrap, &state.display().to_string()),
        "demo config",
        &Flags::default(),
    )?;
    let collector_url = format!("http://{}", options.listen);
    // The mock cluster keeps its data in memory; broker 1's agent watches a
    // stand-in log dir with a directory per partition it leads.
    let log_dir = state.join("kafka-logs");
    for (partition, leader) in LEADERS.iter().enumerate() {
        if *leader == 1 {
            std::fs::create_dir_all(log_dir.join(format!("{TOPIC}-{partition}"))).map_err(|e| {
                format!(
                    "cannot create the demo's log dir {}: {e}",
                    log_dir.display()
                )
            })?;
        }
    }
    let agent_config = brokerwatch_agent::config::from_toml(
        &format!(
            "broker_id = 1\nlisten = \"{}\"\ninterval = \"5s\"\ncollector = \"{collector_url}\"\n[network]\nassumed_speed_mbits = 10000\n[log_dirs]\ndirs = [{:?}]\n",
            options.agent_listen,
            log_dir.display().to_string()
        ),
        "demo agent config",
        &brokerwatch_agent::config::Flags::default(),
    )?;
    let agent_config = brokerwatch_agent::config::Config {
        collector_token: Some(TOKEN.to_owned()),
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
