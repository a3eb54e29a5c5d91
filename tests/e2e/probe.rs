//! The end-to-end probe against librdkafka's mock cluster (three brokers)
//! and the real broker (tansu): records written to the partition each
//! broker leads, read back, timed and counted; a broker set down fires its
//! own probe alert and no other broker's, and it recovers.

use std::time::Duration;

use brokerwatch_tests::{eventually, get_json, start_collector, Scrape};
use rdkafka::mocking::MockCluster;
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

pub fn probe_config(state_dir: &str, bootstrap: &str) -> String {
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
    drop(collector);
}
