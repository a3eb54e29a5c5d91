//! The end-to-end probe against librdkafka's mock cluster (three brokers)
//! and the real broker (tansu): records written to the partition each
//! broker leads, read back, timed and counted; a broker set down fires its
//! own probe alert and no other broker's, and it recovers; a record written
//! twice is a duplicate (lost and out-of-order records are the model's
//! tests').

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use brokerwatch_tests::{
    eventually, free_port, get_json, open_collector_config, scripted_kafka, start_collector,
    start_tansu, start_tansu_behind, Scrape,
};
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

fn probe_config(state_dir: &Path, bootstrap: &str) -> String {
    format!(
        r#"{header}[kafka]
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
"#,
        header = open_collector_config("probed", state_dir)
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
    let (collector, url) = start_collector(&probe_config(state.path(), &mock.bootstrap_servers()));
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
    // Back up, its reads may wait for librdkafka's reconnect backoff a
    // while (a real delay, which the latency alert may say): all resolve.
    eventually(
        "every probe alert resolved",
        Duration::from_secs(60),
        || {
            probe_alerts(&url)
                .iter()
                .all(|(_, _, s)| s != "firing")
                .then_some(())
        },
    );
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
    let config = probe_config(state.path(), &bootstrap).replace(
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

/// tansu answers a consumer's fetches after a restart with a zero topic id
/// and a leader hint, on which librdkafka 2.12 dereferences a NULL topic
/// name: the probe's process dies. The collector goes on, starts the probe
/// again, and its counters carry on from where they were.
#[test]
fn a_broker_restart_that_kills_the_probes_client_does_not_stop_the_collector() {
    let port = free_port();
    let mut tansu = start_tansu(port);
    let state = tempfile::tempdir().unwrap();
    let config = probe_config(state.path(), &format!("127.0.0.1:{port}"))
        .replace("interval = \"200ms\"", "interval = \"300ms\"")
        .replace("timeout = \"1s\"", "timeout = \"2s\"");
    let (mut collector, url) = start_collector(&config);
    let metrics = format!("{url}/metrics");
    let received = |scrape: &Scrape| {
        scrape
            .sum(
                "brokerwatch_probe_records_received_total",
                &[("broker", "111")],
            )
            .unwrap_or(0.0)
    };
    eventually("records read back", Duration::from_secs(60), || {
        (received(&Scrape::fetch(&metrics)) >= 5.0).then_some(())
    });
    tansu.kill_hard();
    let before = received(&Scrape::fetch(&metrics));
    let _tansu = start_tansu(port);
    eventually(
        "records read back after the restart",
        Duration::from_secs(90),
        || (received(&Scrape::fetch(&metrics)) >= before + 10.0).then_some(()),
    );
    // Whether or not that restart killed it (it does not every time), the
    // probe's process dies here as it would there. The probe's thread started it: each thread lists its own children
    // (one that just died and is not yet reaped is a zombie, left alone).
    let alive_child = || -> Option<i32> {
        std::fs::read_dir(format!("/proc/{}/task", collector.pid()))
            .ok()?
            .flatten()
            .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
            .flat_map(|c| {
                c.split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .collect::<Vec<i32>>()
            })
            .find(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                    stat.rsplit_once(") ")
                        .is_some_and(|(_, rest)| !rest.starts_with('Z'))
                })
            })
    };
    let restarts = eventually("the probe's process", Duration::from_secs(30), || {
        let restarts = Scrape::fetch(&metrics).sum("brokerwatch_probe_process_restarts_total", &[]);
        alive_child().and(restarts)
    });
    let child = alive_child().expect("the probe's process");
    // SIGKILL: Rust's own SIGSEGV handler shrugs off one sent by kill(2).
    unsafe { libc::kill(child, libc::SIGKILL) };
    eventually(
        "the probe's process started again",
        Duration::from_secs(30),
        || {
            (Scrape::fetch(&metrics).sum("brokerwatch_probe_process_restarts_total", &[])?
                > restarts)
                .then_some(())
        },
    );
    let after = received(&Scrape::fetch(&metrics));
    let scrape = eventually(
        "records read back by the probe's next process",
        Duration::from_secs(60),
        || {
            let scrape = Scrape::fetch(&metrics);
            (received(&scrape) >= after + 10.0).then_some(scrape)
        },
    );
    let log = collector.log();
    assert!(
        log.contains("probe: its process ended (signal: 9 (SIGKILL)); started again in"),
        "{log}"
    );
    assert_eq!(
        scrape.sum("brokerwatch_probe_records_lost_total", &[("broker", "111")]),
        Some(0.0)
    );
    assert!(
        collector
            .terminate(Duration::from_secs(10))
            .is_some_and(|s| s.success()),
        "the collector stayed up and stops cleanly"
    );
    eprintln!(
        "probe process restarts on the broker's restart: {restarts}; read back {before} before it, {} in all",
        received(&scrape)
    );
}

/// A record batch taken out of a Fetch answer on its way back (a proxy in
/// front of tansu): to the consumer, a record the broker acknowledged with
/// acks=all is gone while later ones come. The probe counts it lost and
/// KafkaProbeMessagesLost names the broker.
#[test]
fn on_a_real_broker_an_acknowledged_record_gone_from_the_log_is_lost() {
    let port = free_port();
    let proxy = scripted_kafka::BatchDroppingProxy::start(port);
    let _tansu = start_tansu_behind(port, proxy.port);
    let state = tempfile::tempdir().unwrap();
    let config = probe_config(state.path(), &format!("127.0.0.1:{}", proxy.port))
        .replace("interval = \"200ms\"", "interval = \"300ms\"")
        .replace("timeout = \"1s\"", "timeout = \"2s\"")
        .replace("window = \"3s\"", "window = \"60s\"");
    let (collector, url) = start_collector(&config);
    let metrics = format!("{url}/metrics");
    let count = |name: &str| {
        Scrape::fetch(&metrics)
            .sum(name, &[("broker", "111")])
            .unwrap_or(0.0)
    };
    eventually("records read back", Duration::from_secs(60), || {
        (count("brokerwatch_probe_records_received_total") >= 10.0).then_some(())
    });
    assert_eq!(count("brokerwatch_probe_records_lost_total"), 0.0);
    proxy.drop_next.store(true, Ordering::SeqCst);
    let alert = eventually("KafkaProbeMessagesLost", Duration::from_secs(30), || {
        get_json(&format!("{url}/api/v1/alerts"))
            .as_array()?
            .iter()
            .find(|a| {
                a["labels"]["alertname"] == "KafkaProbeMessagesLost" && a["state"] == "firing"
            })
            .cloned()
    });
    assert!(!proxy.drop_next.load(Ordering::SeqCst), "one batch dropped");
    assert_eq!(
        count("brokerwatch_probe_records_lost_total"),
        1.0,
        "{}",
        collector.log()
    );
    assert_eq!(alert["labels"]["broker"], "111");
    assert_eq!(
        alert["annotations"]["summary"],
        "1 acknowledged records lost on broker 111"
    );
    // Later records keep coming, and nothing else is lost.
    let received = count("brokerwatch_probe_records_received_total");
    eventually(
        "records read back after the gap",
        Duration::from_secs(30),
        || (count("brokerwatch_probe_records_received_total") >= received + 10.0).then_some(()),
    );
    assert_eq!(count("brokerwatch_probe_records_lost_total"), 1.0);
}
