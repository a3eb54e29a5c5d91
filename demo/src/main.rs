//! `brokerwatch-demo`: the whole system on one machine with nothing else
//! installed. An embedded Kafka-protocol cluster of four brokers
//! (librdkafka's mock cluster) with skewed leadership and live traffic;
//! three consumer groups (one healthy, one falling behind, one that stops);
//! the real agent embedded as broker 1's host, the other hosts simulated
//! from it; and the collector watching it all, printing the load table,
//! replication, lag and alerts as they change.

mod cluster;
mod hosts;
mod print;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use brokerwatch_collector::config::{from_toml_text, Flags};
use brokerwatch_collector::daemon::views::{AlertView, ReplicationView};
use brokerwatch_collector::model::lag::GroupLag;
use brokerwatch_collector::model::LoadView;
use clap::Parser;
use cluster::{GROUPS, PARTITIONS, TOPIC};

/// The agents' token in the demo.
const TOKEN: &str = "demo";

/// The whole of brokerwatch on this machine: an embedded 4-broker Kafka
/// cluster with traffic and consumer groups, the agent, and the collector.
#[derive(Parser, Debug)]
#[command(name = "brokerwatch-demo", version)]
struct Options {
    /// Address of the collector's API and /metrics.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9798")]
    listen: SocketAddr,
    /// Address of the embedded agent's /metrics.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9797")]
    agent_listen: SocketAddr,
    /// Send the alerts to this Alertmanager too.
    #[arg(long, value_name = "URL")]
    alertmanager: Option<String>,
}

fn main() -> ExitCode {
    // The collector's probe runs as a child of this same program.
    if brokerwatch_collector::kafka::probe::run_child_if_asked() {
        return ExitCode::SUCCESS;
    }
    let options = Options::parse();
    brokerwatch_common::daemon::init_logging(tracing::Level::INFO);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("brokerwatch-demo: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(options, brokerwatch_common::daemon::shutdown_signal())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("brokerwatch-demo: {e}");
            ExitCode::from(2)
        }
    }
}

/// The collector's config for the demo: short windows and `for` durations, so
/// that an imbalance alert and a lag alert fire within two minutes.
fn collector_config(options: &Options, bootstrap: &str, state_dir: &str) -> String {
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
[probe]
interval = "1s"
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

async fn get<T: serde::de::DeserializeOwned>(client: &reqwest::Client, url: &str) -> Option<T> {
    client.get(url).send().await.ok()?.json().await.ok()
}

async fn print_forever(collector: String, deviation: f64, stop: Arc<AtomicBool>) {
    let client = reqwest::Client::new();
    let mut seen = BTreeMap::new();
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let load: LoadView = get(&client, &format!("{collector}/api/v1/load"))
            .await
            .unwrap_or(LoadView { groups: Vec::new() });
        let replication: Option<ReplicationView> =
            get(&client, &format!("{collector}/api/v1/replication")).await;
        let groups: Vec<GroupLag> = get(&client, &format!("{collector}/api/v1/consumergroups"))
            .await
            .unwrap_or_default();
        let alerts: Vec<AlertView> = get(&client, &format!("{collector}/api/v1/alerts"))
            .await
            .unwrap_or_default();
        println!(
            "----\n{}",
            print::render(
                &load,
                replication.as_ref(),
                &groups,
                &alerts,
                deviation,
                &mut seen
            )
        );
    }
}

/// Runs the demo until `shutdown` completes.
async fn run(
    options: Options,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    let stop = Arc::new(AtomicBool::new(false));
    let (bootstrap_in, bootstrap_out) = mpsc::channel();
    let cluster_stop = stop.clone();
    let traffic = Arc::new(cluster::Broker1Traffic::default());
    let cluster_traffic = traffic.clone();
    let state = std::env::temp_dir().join(format!("brokerwatch-demo-{}", std::process::id()));
    // The mock cluster keeps its data in memory; broker 1's agent watches a
    // stand-in log dir with a segment per partition it leads.
    let log_dir = state.join("kafka-logs");
    let log = cluster::StandInLog::create(&log_dir)?;
    let cluster = std::thread::Builder::new()
        .name("demo-cluster".into())
        .spawn(move || cluster::run_cluster(bootstrap_in, cluster_stop, cluster_traffic, log))
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
    let broker_metrics = cluster::serve_broker1_metrics(traffic).await?;
    let agent_config = brokerwatch_agent::config::from_toml(
        &format!(
            "broker_id = 1\nlisten = \"{}\"\ninterval = \"5s\"\ncollector = \"{collector_url}\"\n[network]\nassumed_speed_mbits = 10000\n[log_dirs]\ndirs = [{:?}]\n[broker]\njmx_exporter_url = \"{broker_metrics}\"\nlog_file = {:?}\n[page_cache]\ncount = \"host\"\n",
            options.agent_listen,
            log_dir.display().to_string(),
            cluster::StandInLog::server_log_path(&log_dir).display().to_string()
        ),
        "demo agent config",
        &brokerwatch_agent::config::Flags::default(),
    )?;
    let agent_config = brokerwatch_agent::config::Config {
        collector_token: Some(brokerwatch_common::Secret::new(TOKEN)),
        ..agent_config
    };
    println!("status page: {collector_url}/ (open it in a browser; it refreshes itself)");
    println!("brokerwatch demo: an embedded 4-broker Kafka cluster at {bootstrap}; topic {TOPIC} with {PARTITIONS} partitions, broker 1 leading half of them; groups {GROUPS:?} (healthy, falling behind, stopping after 15 s).");
    println!("collector: {collector_url} (/metrics, /api/v1/load, /api/v1/alerts); agent (broker 1, this host): http://{}/metrics. Ctrl-C stops.", options.agent_listen);
    let (agent_stop_tx, agent_stop_rx) = tokio::sync::oneshot::channel::<()>();
    let agent_host = brokerwatch_agent::host::Host::from_config(&agent_config);
    let agent = tokio::spawn(brokerwatch_agent::server::run(
        agent_config,
        agent_host,
        async {
            let _ = agent_stop_rx.await;
        },
    ));
    let others = tokio::spawn(hosts::simulate_other_hosts(
        format!("http://{}", options.agent_listen),
        collector_url.clone(),
        stop.clone(),
    ));
    let printer = tokio::spawn(print_forever(collector_url, config.deviation, stop.clone()));
    let served = brokerwatch_collector::daemon::run(config, shutdown).await;
    stop.store(true, Ordering::Relaxed);
    let _ = agent_stop_tx.send(());
    let _ = agent.await;
    others.abort();
    printer.abort();
    let _ = cluster.join();
    let _ = std::fs::remove_dir_all(&state);
    served
}
