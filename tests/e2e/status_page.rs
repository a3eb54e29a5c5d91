//! The status page in a real browser (Debian's headless Chromium): the
//! collector with reports posted (broker 3 carrying six times the others'
//! load) and a mock Kafka cluster where a group named
//! `<script>alert(1)</script>` stops committing. The page renders without a
//! console error, shows the imbalance and the stopped group's alert, shows
//! the hostile name as text, and a screenshot is written.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use brokerwatch_tests::{
    eventually, open_collector_config, start_collector, system_binary, weighted_report,
};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

const HOSTILE: &str = "<script>alert(1)</script>";

/// Chromium, headless, as this machine allows it (root, no network).
fn chromium(profile: &Path, args: &[&str]) -> std::process::Output {
    Command::new(system_binary("chromium"))
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            &format!("--user-data-dir={}", profile.display()),
        ])
        .args(args)
        .output()
        .expect("run chromium")
}

fn post(url: &str, broker: i32, weight: f64) {
    let status = reqwest::blocking::Client::new()
        .post(format!("{url}/api/v1/reports"))
        .json(&weighted_report(broker, weight))
        .send()
        .expect("post a report")
        .status();
    assert_eq!(status.as_u16(), 202);
}

#[test]
fn the_status_page_renders_in_a_browser_and_shows_names_as_text() {
    let mock = MockCluster::new(3).expect("mock cluster");
    mock.create_topic("orders", 2, 3).expect("topic");
    let bootstrap = mock.bootstrap_servers();
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()
        .expect("producer");
    let group: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", HOSTILE)
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let state = tempfile::tempdir().unwrap();
    let (_collector, url) = start_collector(&format!(
        r#"{header}[kafka]
metadata_interval = "1s"
[kafka.properties]
"bootstrap.servers" = "{bootstrap}"
[consumer_groups]
groups = ["<script>alert(1)</script>"]
fetch_interval = "1s"
stop_after = "3s"
[rules.KafkaConsumerGroupLag]
for = "0s"
[rules.KafkaClusterLoadImbalance]
for = "0s"
[rules.KafkaBrokerLoadDeviation]
for = "0s"
"#,
        header = open_collector_config("page", state.path())
    ));
    // The group commits what there is for 3 s, then stops while messages arrive.
    for second in 0..12 {
        for partition in 0..2 {
            for _ in 0..50 {
                let record = BaseRecord::to("orders")
                    .partition(partition)
                    .payload("o")
                    .key("k");
                producer.send(record).expect("send");
            }
        }
        producer.flush(Duration::from_secs(5)).expect("flush");
        if second < 3 {
            let mut offsets = TopicPartitionList::new();
            for partition in 0..2 {
                offsets
                    .add_partition_offset("orders", partition, Offset::Offset(50 * (second + 1)))
                    .expect("offset");
            }
            group.commit(&offsets, CommitMode::Sync).expect("commit");
        }
        for broker in 1..=4 {
            post(&url, broker, if broker == 3 { 6.0 } else { 1.0 });
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    eventually("the stopped group's alert", Duration::from_secs(30), || {
        let alerts: serde_json::Value = reqwest::blocking::get(format!("{url}/api/v1/alerts"))
            .ok()?
            .json()
            .ok()?;
        alerts
            .as_array()?
            .iter()
            .any(|a| a["labels"]["consumergroup"] == HOSTILE && a["state"] == "firing")
            .then_some(())
    });

    let profile = tempfile::tempdir().unwrap();
    let dom = chromium(profile.path(), &["--dump-dom", &format!("{url}/")]);
    assert!(
        dom.status.success(),
        "{}",
        String::from_utf8_lossy(&dom.stderr)
    );
    let text = String::from_utf8_lossy(&dom.stdout);
    let log = String::from_utf8_lossy(&dom.stderr);
    let console: Vec<&str> = log.lines().filter(|l| l.contains("CONSOLE")).collect();
    assert!(console.is_empty(), "console messages: {console:?}");
    assert!(text.contains("KafkaClusterLoadImbalance"), "{text}");
    assert!(text.contains("IMBALANCED"));
    assert!(text.contains("broker 3 "), "broker 3's bar");
    // STOP, or STALL once the producer is done: stopped either way.
    assert!(
        ["STOP", "STALL"]
            .iter()
            .any(|status| text.contains(&format!(
                "Consumer group &lt;script&gt;alert(1)&lt;/script&gt; is {status}"
            ))),
        "{text}"
    );
    assert!(
        !text.contains(HOSTILE),
        "the group's name became markup:\n{text}"
    );

    let shot = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/status-page.png");
    let _ = std::fs::remove_file(&shot);
    let screenshot = chromium(
        profile.path(),
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1200,1600",
            &format!("{url}/"),
        ],
    );
    assert!(
        screenshot.status.success(),
        "{}",
        String::from_utf8_lossy(&screenshot.stderr)
    );
    let png = std::fs::read(&shot).expect("the screenshot");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
    eprintln!("screenshot: {} ({} bytes)", shot.display(), png.len());
}
