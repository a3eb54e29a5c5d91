//! The end-to-end probe against librdkafka's mock cluster (three brokers)
//! and the real broker (tansu): records written to the partition each
//! broker leads, read back, timed and counted; a broker set down fires its
//! own probe alert and no other broker's, and it recovers; a record written
//! twice is a duplicate (lost and out-of-order records are the model's
//! tests').

use std::time::Duration;

use brokerwatch_tests::{eventually, free_port, get_json, start_collector, start_tansu, Scrape};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;

/// The probe alerts, as (alertname, broker, state).
fn probe_alerts(url: &str) -> Vec<(String, String, String)> {
    get_json(&format!("{url}/api/v1/alerts"))
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|a| {
            a["labels"]["alertname"]
                .as_str()
                .is_some_and(|n| n.starts_with("KafkaProbe"))
        })
        .map(|a| {
            let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
            (
                text(&a["labels"]["alertname"]),
                text(&a["labels"]["broker"]),
                text(&a["state"]),
            )
        })
        .collect()
}

fn probe_config(state_dir: &str, bootstrap: &str) -> String {
    format!(
        r#"cluster = "probed"
listen = "127.0.0.1:0"
state_dir = {state_dir:?}
evaluation_interval = "200ms"
[ingest]
allow_unauthenticated = true
[kafka]
metadata_interval = "500ms"
timeout = "2s"
[kafka.properties]
"bootstrap.servers" = "{bootstrap}"
[probe]
interval = "200ms"
timeout = "1s"
window = "3s"
[rules.KafkaProbeProduceFailing]
for = "0s"
[rules.KafkaProbeEndToEndLatencyHigh]
for = "0s"
"#
    )
}

#[test]
fn a_broker_set_down_fires_its_own_probe_alert_only_and_recovers() {
    let mock = MockCluster::new(3).expect("mock cluster");
    // librdkafka's mock has no CreateTopics: the topic is laid out here,
    // one partition led by each broker.
    mock.create_topic("brokerwatch-probe", 3, 1).expect("topic");
    for partition in 0..3 {
        mock.partition_leader("brokerwatch-probe", partition, Some(partition + 1))
            .expect("leader");
    }
    let state = tempfile::tempdir().unwrap();
    let (collector, url) = start_collector(&probe_config(
        state.path().to_str().unwrap(),
        &mock.bootstrap_servers(),
    ));
    let metrics = format!("{url}/metrics");
    eventually(
        "records read back through every broker",
        Duration::from_secs(30),
        || {
            let scrape = Scrape::fetch(&metrics);
            let received = scrape.by_label("brokerwatch_probe_records_received_total", "broker");
            (["1", "2", "3"]
                .iter()
                .all(|b| received.get(*b).is_some_and(|n| *n >= 5.0)))
            .then_some(())
        },
    );
    let scrape = Scrape::fetch(&metrics);
    for broker in ["1", "2", "3"] {
        let acknowledged = scrape
            .sum(
                "brokerwatch_probe_records_acknowledged_total",
                &[("broker", broker)],
            )
            .unwrap();
        let timed = scrape
            .sum(
                "brokerwatch_probe_end_to_end_latency_seconds_count",
                &[("broker", broker)],
            )
            .unwrap();
        assert!(
            acknowledged >= 5.0 && timed >= 5.0,
            "broker {broker}: {acknowledged} acknowledged, {timed} timed"
        );
        assert_eq!(
            scrape.sum(
                "brokerwatch_probe_records_lost_total",
                &[("broker", broker)]
            ),
            Some(0.0)
        );
    }
    assert!(
        probe_alerts(&url)
            .iter()
            .all(|(_, _, state)| state != "firing"),
        "{:?}",
        probe_alerts(&url)
    );

    mock.broker_down(2).expect("down");
    let fired = eventually("broker 2's probe alert", Duration::from_secs(30), || {
        let alerts = probe_alerts(&url);
        alerts
            .iter()
            .any(|(name, b, s)| name == "KafkaProbeProduceFailing" && b == "2" && s == "firing")
            .then_some(alerts)
    });
    let others: Vec<_> = fired
        .iter()
        .filter(|(_, b, s)| b != "2" && s == "firing")
        .collect();
    assert!(others.is_empty(), "only broker 2's: {fired:?}");
    let alert = get_json(&format!("{url}/api/v1/alerts"))
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["labels"]["alertname"] == "KafkaProbeProduceFailing")
        .cloned()
        .unwrap();
    let summary = alert["annotations"]["summary"].as_str().unwrap();
    assert!(
        summary.starts_with("Writes to broker 2 fail: "),
        "{summary}"
    );
    let description = alert["annotations"]["description"].as_str().unwrap();
    assert!(
        description.contains("partition 1 of brokerwatch-probe, led by broker 2"),
        "{description}"
    );

    mock.broker_up(2).expect("up");
    eventually(
        "broker 2's probe alert resolved",
        Duration::from_secs(60),
        || {
            probe_alerts(&url)
                .iter()
                .all(|(name, b, s)| {
                    !(name == "KafkaProbeProduceFailing" && b == "2" && s == "firing")
                })
                .then_some(())
        },
    );
    let still: Vec<_> = probe_alerts(&url)
        .into_iter()
        .filter(|(_, _, s)| s == "firing")
        .collect();
    assert!(still.is_empty(), "{still:?}");
    // A duplicate: one of the probe's records (partition 0, led by broker 1),
    // read and written again as it is.
    let reader: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", mock.bootstrap_servers())
        .set("group.id", "probe-test-reader")
        .create()
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset("brokerwatch-probe", 0, Offset::Beginning)
        .unwrap();
    reader.assign(&assignment).unwrap();
    let copy = eventually("a probe record to copy", Duration::from_secs(20), || {
        reader
            .poll(Duration::from_millis(500))
            .and_then(Result::ok)
            .and_then(|m| m.payload().map(<[u8]>::to_vec))
    });
    let writer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", mock.bootstrap_servers())
        .set("acks", "all")
        .set("max.in.flight.requests.per.connection", "1")
        .set("allow.auto.create.topics", "false")
        .create()
        .unwrap();
    writer
        .send(
            BaseRecord::<(), [u8]>::to("brokerwatch-probe")
                .partition(0)
                .payload(copy.as_slice()),
        )
        .unwrap();
    writer.flush(Duration::from_secs(10)).unwrap();
    eventually("the duplicate counted", Duration::from_secs(20), || {
        (Scrape::fetch(&metrics)
            .sum(
                "brokerwatch_probe_records_duplicated_total",
                &[("broker", "1")],
            )
            .unwrap_or(0.0)
            == 1.0)
            .then_some(())
    });

    drop(collector);
}

fn counter(metrics: &str, name: &str) -> f64 {
    Scrape::fetch(metrics)
        .sum(name, &[("broker", "111")])
        .unwrap_or(0.0)
}

#[test]
fn on_a_real_broker_the_probe_times_its_records_and_loses_none() {
    let port = free_port();
    let _tansu = start_tansu(port);
    let bootstrap = format!("127.0.0.1:{port}");
    let state = tempfile::tempdir().unwrap();
    let config = probe_config(state.path().to_str().unwrap(), &bootstrap).replace(
        "interval = \"200ms\"\ntimeout = \"1s\"\nwindow = \"3s\"",
        "interval = \"300ms\"\ntimeout = \"2s\"\nwindow = \"60s\"",
    );
    let (_collector, url) = start_collector(&config);
    let metrics = format!("{url}/metrics");
    eventually(
        "records read back through broker 111",
        Duration::from_secs(60),
        || {
            (counter(
                &metrics,
                "brokerwatch_probe_end_to_end_latency_seconds_count",
            ) >= 10.0)
                .then_some(())
        },
    );
    let scrape = Scrape::fetch(&metrics);
    let (sum, count) = (
        scrape
            .sum(
                "brokerwatch_probe_end_to_end_latency_seconds_sum",
                &[("broker", "111")],
            )
            .unwrap(),
        scrape
            .sum(
                "brokerwatch_probe_end_to_end_latency_seconds_count",
                &[("broker", "111")],
            )
            .unwrap(),
    );
    let produce = scrape
        .sum(
            "brokerwatch_probe_produce_latency_seconds_count",
            &[("broker", "111")],
        )
        .unwrap();
    assert!(produce >= 10.0, "{produce} acknowledgements timed");
    assert!(
        sum / count > 0.0 && sum / count < 1.0,
        "mean end to end {:.3}s over {count}",
        sum / count
    );
    assert_eq!(
        counter(&metrics, "brokerwatch_probe_records_lost_total"),
        0.0
    );
    assert_eq!(
        counter(&metrics, "brokerwatch_probe_records_duplicated_total"),
        0.0
    );

    eprintln!(
        "mean end to end {:.1} ms over {count} records",
        sum / count * 1000.0
    );
}
