//! Broker health end to end, with a real agent and collector: a broker that
//! hangs while it stays in the cluster's metadata is paged once, as
//! unresponsive, and nothing else pages for it; a filesystem error written
//! into the kernel log (root can) reaches the collector as an alert naming
//! the device.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use brokerwatch_tests::{
    eventually, get_json, open_collector_config, start_agent_with_config, start_collector,
};
use rdkafka::mocking::MockCluster;
use serde_json::Value;

const PATIENCE: Duration = Duration::from_secs(30);

/// A stand-in for broker 1's JMX exporter: healthy, then stuck (handlers
/// idle 0, the request queue growing), then not answering at all.
struct Exporter {
    url: String,
    phase: Arc<AtomicU8>,
}

const HEALTHY: u8 = 0;
const STUCK: u8 = 1;
const SILENT: u8 = 2;

impl Exporter {
    fn start() -> Exporter {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/metrics", listener.local_addr().unwrap());
        let phase = Arc::new(AtomicU8::new(HEALTHY));
        let serving = phase.clone();
        std::thread::spawn(move || {
            let mut queued = 0;
            let mut held = Vec::new();
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream);
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let (idle, queue) = match serving.load(Ordering::Relaxed) {
                    HEALTHY => (0.8, 0),
                    STUCK => {
                        queued += 50;
                        (0.0, queued)
                    }
                    _ => {
                        // Hung: the connection is held and never answered.
                        held.push(reader);
                        continue;
                    }
                };
                let body = format!(
                    "# TYPE kafka_server_brokertopicmetrics_bytesin_total counter\nkafka_server_brokertopicmetrics_bytesin_total 1000\n\
                     # TYPE kafka_server_kafkarequesthandlerpool_requesthandleravgidlepercent gauge\nkafka_server_kafkarequesthandlerpool_requesthandleravgidlepercent {idle}\n\
                     # TYPE kafka_network_socketserver_networkprocessoravgidlepercent gauge\nkafka_network_socketserver_networkprocessoravgidlepercent {idle}\n\
                     # TYPE kafka_network_requestchannel_requestqueuesize gauge\nkafka_network_requestchannel_requestqueuesize {queue}\n"
                );
                let _ = reader.get_mut().write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    )
                    .as_bytes(),
                );
            }
        });
        Exporter { url, phase }
    }

    fn set(&self, phase: u8) {
        self.phase.store(phase, Ordering::Relaxed);
    }
}

/// A stand-in broker process: `sleep`, with a broker's command line.
struct FakeBroker(Child);

impl FakeBroker {
    fn start() -> FakeBroker {
        FakeBroker(
            Command::new("bash")
                .args([
                    "-c",
                    "exec -a 'java -Xmx1g kafka.Kafka /nonexistent/server.properties' sleep 600",
                ])
                .spawn()
                .expect("spawn a stand-in broker"),
        )
    }
}

impl Drop for FakeBroker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The collector's firing alerts about broker 1.
fn firing_for_broker_1(url: &str) -> Vec<(String, Value)> {
    get_json(&format!("{url}/api/v1/alerts"))
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|a| a["state"] == "firing" && a["labels"]["broker"] == "1")
        .map(|a| {
            (
                a["labels"]["alertname"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                a,
            )
        })
        .collect()
}

#[test]
fn a_hung_broker_still_in_the_metadata_pages_once_as_unresponsive() {
    let mock = MockCluster::new(3).expect("mock cluster");
    mock.create_topic("orders", 6, 3).expect("topic");
    let state = tempfile::tempdir().unwrap();
    let (_collector, url) = start_collector(&format!(
        "{}[store]\nwindow = \"4s\"\n[kafka]\nmetadata_interval = \"500ms\"\n[kafka.properties]\n\"bootstrap.servers\" = \"{}\"\n\
         [rules.KafkaBrokerUnresponsive]\nfor = \"1s\"\n\
         [rules.KafkaRequestHandlerIdleLow]\nfor = \"0s\"\n\
         [rules.KafkaNetworkProcessorIdleLow]\nfor = \"0s\"\n",
        open_collector_config("health", state.path()),
        mock.bootstrap_servers()
    ));
    let exporter = Exporter::start();
    let _broker = FakeBroker::start();
    let (_agent, _) = start_agent_with_config(
        &format!(
            "broker_id = 1\ninterval = \"200ms\"\ncollector = \"{url}\"\n[broker]\njmx_exporter_url = \"{}\"\nmetrics_timeout = \"150ms\"\n[page_cache]\nebpf = false\n[kernel_log]\nenabled = false\n",
            exporter.url
        ),
        tempfile::tempdir().unwrap(),
    );
    // Healthy for a while: nothing about broker 1.
    eventually("broker 1's reports", PATIENCE, || {
        get_json(&format!("{url}/api/v1/brokers"))
            .as_array()
            .filter(|b| b.iter().any(|b| b["broker"] == 1))
            .map(|_| ())
    });
    // Known and fresh: the mock cluster answers neither ListGroups nor
    // DescribeConfigs, and the poller waits a whole timeout on each at start.
    eventually("the cluster's metadata", PATIENCE, || {
        let replication = get_json(&format!("{url}/api/v1/replication"));
        (replication["error"].is_null()
            && replication["stale"] == false
            && replication["age_seconds"].as_f64().is_some_and(|a| a < 1.0))
        .then_some(())
    });
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(firing_for_broker_1(&url).len(), 0);

    // Stuck: handlers idle, the queue growing.
    exporter.set(STUCK);
    let stuck_at = Instant::now();
    let alert = eventually("KafkaBrokerUnresponsive while stuck", PATIENCE, || {
        firing_for_broker_1(&url)
            .into_iter()
            .find(|(name, _)| name == "KafkaBrokerUnresponsive")
            .map(|(_, a)| a)
    });
    println!(
        "unresponsive {:.1} s after the handlers stuck",
        stuck_at.elapsed().as_secs_f64()
    );
    assert_eq!(alert["labels"]["severity"], "critical");
    let summary = alert["annotations"]["summary"].as_str().unwrap();
    assert!(
        summary.starts_with(
            "Broker 1 runs but does not work: its request handlers are idle 0.0% with"
        ),
        "{summary}"
    );
    let description = alert["annotations"]["description"].as_str().unwrap();
    assert!(
        description.contains("It is still in cluster health's metadata"),
        "{description}"
    );

    // Stuck longer than the window (4 s): its idle ratios' medians are low
    // too, and still it is one page, not three.
    std::thread::sleep(Duration::from_secs(6));
    let names: Vec<String> = firing_for_broker_1(&url)
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        names,
        ["KafkaBrokerUnresponsive"],
        "one page for one stuck broker"
    );

    // Then silent: the endpoint no longer answers.
    exporter.set(SILENT);
    std::thread::sleep(Duration::from_secs(5));
    let firing = firing_for_broker_1(&url);
    let names: Vec<&str> = firing.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["KafkaBrokerUnresponsive"],
        "one page for one stuck broker"
    );
    // The alert keeps the wording it fired with; the endpoint's silence is
    // in the next verdict, which the API shows.
    let metrics = reqwest::blocking::get(format!("{url}/metrics"))
        .unwrap()
        .text()
        .unwrap();
    assert!(
        metrics.contains("brokerwatch_alerts_firing{alertname=\"KafkaBrokerUnresponsive\""),
        "{metrics}"
    );
}

#[test]
fn a_filesystem_error_in_the_kernel_log_is_an_alert_naming_the_device() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "writing into /dev/kmsg needs root (scripts/test.sh runs the suite as root)"
    );
    let state = tempfile::tempdir().unwrap();
    let (_collector, url) = start_collector(&format!(
        "{}[rules.KafkaHostKernelErrors]\nfor = \"0s\"\n",
        open_collector_config("health", state.path())
    ));
    let (_agent, metrics) = start_agent_with_config(
        &format!(
            "broker_id = 1\ninterval = \"200ms\"\ncollector = \"{url}\"\n[broker]\nenabled = false\n[page_cache]\nebpf = false\n"
        ),
        tempfile::tempdir().unwrap(),
    );
    eventually("the kernel log followed", PATIENCE, || {
        reqwest::blocking::get(&metrics)
            .ok()?
            .text()
            .ok()?
            .contains("brokerwatch_kernel_events_total{kind=\"filesystem_error\"")
            .then_some(())
    });
    // The collector has the agent's reports (what the agent counted before
    // the collector first heard of it is history).
    eventually("broker 1's reports", PATIENCE, || {
        get_json(&format!("{url}/api/v1/brokers"))
            .as_array()
            .filter(|b| b.iter().any(|b| b["broker"] == 1))
            .map(|_| ())
    });
    // A line as ext4 writes it, for a device no host has.
    std::fs::write(
        "/dev/kmsg",
        "<3>EXT4-fs error (device bw-e2e-test0): ext4_find_entry:1455: inode #2: comm java: reading directory lblock 0 (written by brokerwatch's test suite)\n",
    )
    .expect("write into /dev/kmsg");
    let alert = eventually("KafkaHostKernelErrors", PATIENCE, || {
        get_json(&format!("{url}/api/v1/alerts"))
            .as_array()?
            .iter()
            .find(|a| a["labels"]["alertname"] == "KafkaHostKernelErrors" && a["state"] == "firing")
            .cloned()
    });
    assert_eq!(alert["labels"]["kind"], "filesystem_error");
    assert_eq!(
        alert["annotations"]["summary"],
        "The kernel of broker 1's host reports filesystem errors: 1 in the last 5m"
    );
    assert!(alert["annotations"]["description"]
        .as_str()
        .unwrap()
        .starts_with("1 on bw-e2e-test0."));
    let text = reqwest::blocking::get(&metrics).unwrap().text().unwrap();
    assert!(
        text.contains("brokerwatch_kernel_events_total{kind=\"filesystem_error\",device=\"bw-e2e-test0\",broker_id=\"1\"} 1"),
        "{text}"
    );
}
