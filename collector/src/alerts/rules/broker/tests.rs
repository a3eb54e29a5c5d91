//! Each broker-health alert fires on its condition and stays quiet on
//! normal figures, from reports as agents send them every 10 s.

use std::collections::BTreeMap;

use brokerwatch_common::{
    BrokerLogReport, BrokerMetricsReport, BrokerProcessReport, FileDescriptorReport, KernelEvents,
    LogDirReport, LoggerErrors, Report, UserQuota,
};

use super::super::tests::{config, default_config, find, host_verdicts};
use super::super::{verdicts, Inputs};
use crate::alerts::state::Verdict;
use crate::model::replication::ReplicationFacts;
use crate::store::tests::report;
use crate::store::Store;

/// Healthy broker figures.
fn healthy() -> BrokerMetricsReport {
    BrokerMetricsReport {
        request_handler_idle_ratio: Some(0.8),
        network_processor_idle_ratio: Some(0.7),
        request_queue_size: Some(2.0),
        produce_total_time_p99_ms: Some(20.0),
        fetch_consumer_total_time_p99_ms: Some(500.0),
        isr_shrinks_total: Some(10.0),
        isr_expands_total: Some(10.0),
        offline_log_dirs: Some(0.0),
        active_controller: Some(0.0),
        gc_young_seconds_total: Some(100.0),
        gc_old_seconds_total: Some(0.0),
        gc_old_collections_total: Some(0.0),
        ..BrokerMetricsReport::default()
    }
}

fn process() -> BrokerProcessReport {
    BrokerProcessReport {
        pid: 4242,
        cpu_seconds: 1.0,
        resident_memory_bytes: 1 << 30,
        threads: 200,
        open_fds: 5_000,
        max_fds: Some(100_000),
        read_bytes: None,
        written_bytes: None,
        start_time_ticks: 1000,
    }
}

/// Brokers 1 to 4 reporting every 10 s from 0 to `until`; `shape` changes
/// broker `b`'s report at second `t`.
fn store_of(until: f64, shape: impl Fn(i32, f64, &mut Report)) -> (Store, BTreeMap<i32, f64>) {
    let mut store = Store::new(300.0);
    let mut t = 0.0;
    while t <= until {
        for b in 1..=4 {
            let mut r = report(b, 1.0);
            r.host.broker_up = Some(true);
            r.host.broker_process = Some(process());
            let mut m = healthy();
            m.active_controller = Some(if b == 1 { 1.0 } else { 0.0 });
            r.host.broker_metrics = Some(m);
            shape(b, t, &mut r);
            store.insert(r, t);
        }
        t += 10.0;
    }
    let last_seen = (1..=4).map(|b| (b, until)).collect();
    (store, last_seen)
}

fn judged(shape: impl Fn(i32, f64, &mut Report)) -> Vec<Verdict> {
    let (store, last_seen) = store_of(600.0, shape);
    host_verdicts(&default_config(), &store, &last_seen, 600.0)
}

fn metrics(r: &mut Report) -> &mut BrokerMetricsReport {
    r.host.broker_metrics.as_mut().unwrap()
}

fn active(verdicts: &[Verdict], alert: &str, subject: &[(&str, &str)]) -> bool {
    find(verdicts, alert, subject).active
}

#[test]
fn healthy_brokers_raise_nothing() {
    let verdicts = judged(|_, _, _| {});
    let raised: Vec<&str> = verdicts
        .iter()
        .filter(|v| v.active)
        .map(|v| v.labels["alertname"].as_str())
        .collect();
    assert!(raised.is_empty(), "{raised:?}");
    for alert in [
        "KafkaBrokerProcessDown",
        "KafkaBrokerUnresponsive",
        "KafkaSlowBroker",
        "KafkaRequestHandlerIdleLow",
        "KafkaNetworkProcessorIdleLow",
        "KafkaIsrChurn",
        "KafkaBrokerGcPressure",
        "KafkaFileDescriptorsExhausting",
        "KafkaOfflineLogDirs",
    ] {
        assert!(!active(&verdicts, alert, &[("broker", "2")]), "{alert}");
    }
    assert!(!active(&verdicts, "KafkaActiveControllerCount", &[]));
}

#[test]
fn a_process_gone_is_down_and_a_restart_is_counted() {
    let verdicts = judged(|b, t, r| {
        if b == 2 && t >= 300.0 {
            r.host.broker_up = Some(false);
            r.host.broker_process = None;
            r.host.broker_metrics = None;
        }
        if b == 3 && t >= 200.0 {
            r.host.broker_process.as_mut().unwrap().start_time_ticks = 2000;
        }
    });
    let down = find(&verdicts, "KafkaBrokerProcessDown", &[("broker", "2")]);
    assert!(down.active && down.labels["severity"] == "critical");
    assert_eq!(
        down.annotations["summary"],
        "The broker process of broker 2 is not running"
    );
    // No unresponsive verdict for a process that is not there.
    assert!(verdicts.iter().all(
        |v| !(v.labels["alertname"] == "KafkaBrokerUnresponsive" && v.labels["broker"] == "2")
    ));
    let restarted = find(&verdicts, "KafkaBrokerProcessDown", &[("broker", "3")]);
    assert!(!restarted.active);
    assert!(restarted.annotations["description"]
        .contains("(it restarted 1 times since the collector started)"));
}

#[test]
fn a_broker_that_runs_but_does_not_answer_is_unresponsive_and_nothing_else_pages() {
    let verdicts = judged(|b, t, r| {
        if b == 2 && t >= 300.0 {
            // Stuck: handlers idle 0 with the queue growing, then no answer.
            let m = metrics(r);
            m.request_handler_idle_ratio = Some(0.0);
            m.network_processor_idle_ratio = Some(0.0);
            m.request_queue_size = Some(t);
            if t >= 500.0 {
                r.host.broker_metrics = None;
                r.host.broker_metrics_error = Some(
                    "http://127.0.0.1:7071/metrics: no answer within 5s; is the JMX exporter up?"
                        .into(),
                );
            }
        }
        if b == 3 {
            // Busy but working: idle low, nothing queued.
            metrics(r).request_handler_idle_ratio = Some(0.01);
            metrics(r).request_queue_size = Some(0.0);
        }
    });
    let stuck = find(&verdicts, "KafkaBrokerUnresponsive", &[("broker", "2")]);
    assert!(stuck.active);
    assert_eq!(
        stuck.annotations["summary"],
        "Broker 2 runs but does not work: its metrics endpoint does not answer"
    );
    assert!(stuck.annotations["description"].starts_with("Its process runs, but its metrics endpoint gave nothing: http://127.0.0.1:7071/metrics: no answer within 5s"));
    assert!(stuck.annotations["description"].contains("It is still running, so clients"));
    // Its idle ratios are not judged: one page for one stuck broker.
    assert!(verdicts.iter().all(
        |v| !(v.labels.get("broker").map(String::as_str) == Some("2")
            && v.labels["alertname"].ends_with("IdleLow"))
    ));
    assert!(!active(
        &verdicts,
        "KafkaBrokerUnresponsive",
        &[("broker", "3")]
    ));
    // Broker 3 is busy, not stuck: that is the idle alert's.
    assert!(active(
        &verdicts,
        "KafkaRequestHandlerIdleLow",
        &[("broker", "3")]
    ));

    // Handlers stuck with requests queued, the endpoint still answering.
    let handlers = judged(|b, _, r| {
        if b == 4 {
            metrics(r).request_handler_idle_ratio = Some(0.01);
            metrics(r).request_queue_size = Some(500.0);
        }
    });
    let stuck = find(&handlers, "KafkaBrokerUnresponsive", &[("broker", "4")]);
    assert!(stuck.active);
    assert_eq!(
        stuck.annotations["summary"],
        "Broker 4 runs but does not work: its request handlers are idle 1.0% with 500 requests queued"
    );
}

#[test]
fn unresponsive_is_judged_only_for_brokers_in_the_metadata() {
    let (store, last_seen) = store_of(600.0, |b, _, r| {
        if b == 2 {
            r.host.broker_metrics = None;
            r.host.broker_metrics_error = Some("refused".into());
        }
    });
    let config = default_config();
    let load = crate::model::cluster::cluster_load(
        &config.load_params(),
        BTreeMap::new(),
        BTreeMap::new(),
    );
    let judge = |brokers: &[i32]| {
        let facts = ReplicationFacts {
            brokers: brokers.iter().map(|b| (*b, Default::default())).collect(),
            ..ReplicationFacts::default()
        };
        verdicts(
            &config,
            &Inputs {
                last_seen: &last_seen,
                replication: Some(&facts),
                ..Inputs::quiet(&store, &load, 600.0)
            },
        )
    };
    let listed = judge(&[1, 2, 3, 4]);
    let stuck = find(&listed, "KafkaBrokerUnresponsive", &[("broker", "2")]);
    assert!(stuck.active);
    assert!(stuck.annotations["description"].contains("It is still in cluster prod's metadata"));
    let gone = judge(&[1, 3, 4]);
    assert!(
        gone.iter()
            .all(|v| !(v.labels["alertname"] == "KafkaBrokerUnresponsive"
                && v.labels["broker"] == "2")),
        "out of the metadata is KafkaBrokerDown's"
    );
}

#[test]
fn a_broker_slow_against_its_peers_and_its_own_past_is_slow() {
    let slow_from = |from: f64| {
        move |b: i32, t: f64, r: &mut Report| {
            if b == 2 && t >= from {
                metrics(r).produce_total_time_p99_ms = Some(250.0);
            }
        }
    };
    // Slow for the last 5 minutes of an hour and a half: against peers
    // (20 ms) and its own hour before (20 ms), 12.5 times.
    let (store, last_seen) = store_of(5400.0, slow_from(5100.0));
    let verdicts = host_verdicts(&default_config(), &store, &last_seen, 5400.0);
    let slow = find(&verdicts, "KafkaSlowBroker", &[("broker", "2")]);
    assert!(slow.active);
    assert_eq!(
        slow.annotations["summary"],
        "Broker 2 is slow: produce p99 250 ms, its peers' median 20 ms"
    );
    assert!(slow.annotations["description"].contains("12.5 times its peers' median of 20 ms, and 12.5 times its own median of 20 ms the hour before"));
    assert!(!active(&verdicts, "KafkaSlowBroker", &[("broker", "1")]));
    // Always this slow (its own hour before too): not a change, not paged.
    let (store, last_seen) = store_of(5400.0, slow_from(0.0));
    let verdicts = host_verdicts(&default_config(), &store, &last_seen, 5400.0);
    assert!(!active(&verdicts, "KafkaSlowBroker", &[("broker", "2")]));
    // 3 times slower but under 100 ms: not slow.
    let quick = judged(|b, _, r| {
        if b == 2 {
            metrics(r).produce_total_time_p99_ms = Some(80.0);
        }
    });
    assert!(!active(&quick, "KafkaSlowBroker", &[("broker", "2")]));
}

#[test]
fn the_controller_count_must_be_one_where_every_broker_has_it() {
    let two = judged(|b, _, r| {
        if b == 3 {
            metrics(r).active_controller = Some(1.0);
        }
    });
    let split = find(&two, "KafkaActiveControllerCount", &[]);
    assert!(split.active && split.labels["severity"] == "critical");
    assert_eq!(
        split.annotations["summary"],
        "Cluster prod has 2 active controllers"
    );
    assert!(split.annotations["description"]
        .starts_with("Brokers claiming to be the active controller: broker 1, broker 3."));
    let none = judged(|_, _, r| metrics(r).active_controller = Some(0.0));
    assert!(active(&none, "KafkaActiveControllerCount", &[]));
    // KRaft broker nodes: no figure on some, no verdict.
    let kraft = judged(|b, _, r| {
        if b != 1 {
            metrics(r).active_controller = None;
        }
    });
    assert!(kraft
        .iter()
        .all(|v| v.labels["alertname"] != "KafkaActiveControllerCount"));
}

#[test]
fn an_offline_log_dir_is_named_with_its_disks() {
    let verdicts = judged(|b, _, r| {
        if b == 2 {
            metrics(r).offline_log_dirs = Some(1.0);
            metrics(r).offline_log_dir_names = vec!["/data/kafka-2".into()];
            r.host.log_dirs = vec![LogDirReport {
                log_dir: "/data/kafka-2".into(),
                mount_point: "/data".into(),
                device: Some("sdc1".into()),
                disks: vec!["sdc".into()],
                used_bytes: 1,
                free_bytes: 1 << 40,
                partitions: 1,
                size_bytes: 1,
                topics: Vec::new(),
                largest_partitions: Vec::new(),
            }];
        }
    });
    let offline = find(&verdicts, "KafkaOfflineLogDirs", &[("broker", "2")]);
    assert!(offline.active);
    assert_eq!(
        offline.annotations["summary"],
        "Broker 2 has taken 1 log dir(s) offline: /data/kafka-2"
    );
    assert!(offline.annotations["description"].contains("the disk under it (/data/kafka-2 on sdc)"));
}

#[test]
fn low_idle_ratios_fire_each_on_its_own() {
    let verdicts = judged(|b, _, r| match b {
        2 => metrics(r).request_handler_idle_ratio = Some(0.2),
        3 => metrics(r).network_processor_idle_ratio = Some(0.25),
        _ => {}
    });
    let handlers = find(&verdicts, "KafkaRequestHandlerIdleLow", &[("broker", "2")]);
    assert!(handlers.active);
    assert_eq!(
        handlers.annotations["summary"],
        "Broker 2's request handlers are idle only 20.0% of the time"
    );
    assert!(handlers.annotations["description"]
        .starts_with("Median over the window 20.0% (limit 30.0%); 2 requests queued now."));
    assert!(!active(
        &verdicts,
        "KafkaNetworkProcessorIdleLow",
        &[("broker", "2")]
    ));
    assert!(active(
        &verdicts,
        "KafkaNetworkProcessorIdleLow",
        &[("broker", "3")]
    ));
    assert!(!active(
        &verdicts,
        "KafkaRequestHandlerIdleLow",
        &[("broker", "3")]
    ));
}

#[test]
fn isr_churn_is_shrinks_and_expands_per_minute() {
    // Broker 2: one shrink and one expand every 10 s (12 a minute); broker
    // 3: one every minute and a half (0.7 a minute).
    let verdicts = judged(|b, t, r| {
        let m = metrics(r);
        match b {
            2 => (m.isr_shrinks_total, m.isr_expands_total) = (Some(t / 10.0), Some(t / 10.0)),
            3 => m.isr_shrinks_total = Some((t / 90.0).floor()),
            _ => {}
        }
    });
    let churn = find(&verdicts, "KafkaIsrChurn", &[("broker", "2")]);
    assert!(churn.active);
    assert_eq!(
        churn.annotations["summary"],
        "The ISRs of broker 2's partitions change 12.0 times a minute"
    );
    assert!(churn.annotations["description"]
        .starts_with("62 shrinks and expands over the last 5m 10s."));
    assert!(!active(&verdicts, "KafkaIsrChurn", &[("broker", "3")]));
}

#[test]
fn gc_pressure_is_pause_share_or_repeated_full_collections() {
    let verdicts = judged(|b, t, r| {
        let m = metrics(r);
        match b {
            // 2 s of pauses every 10 s: 20 %.
            2 => m.gc_young_seconds_total = Some(100.0 + t / 5.0),
            // Cheap young pauses, but a full collection every 2 minutes.
            3 => m.gc_old_collections_total = Some((t / 120.0).floor()),
            // 5 % in pauses: under the limit.
            4 => m.gc_young_seconds_total = Some(100.0 + t / 20.0),
            _ => {}
        }
    });
    let pressed = find(&verdicts, "KafkaBrokerGcPressure", &[("broker", "2")]);
    assert!(pressed.active);
    assert_eq!(
        pressed.annotations["summary"],
        "Broker 2's JVM spends 20.0% of its time in GC pauses"
    );
    assert!(active(
        &verdicts,
        "KafkaBrokerGcPressure",
        &[("broker", "3")]
    ));
    assert!(!active(
        &verdicts,
        "KafkaBrokerGcPressure",
        &[("broker", "4")]
    ));
}

fn log_dir(used: u64, free: u64) -> LogDirReport {
    LogDirReport {
        log_dir: "/data/kafka".into(),
        mount_point: "/data".into(),
        device: Some("sdb1".into()),
        disks: vec!["sdb".into()],
        used_bytes: used,
        free_bytes: free,
        partitions: 100,
        size_bytes: used,
        topics: Vec::new(),
        largest_partitions: Vec::new(),
    }
}

#[test]
fn a_log_dir_fills_up_when_it_is_nearly_full_or_will_be_within_a_day() {
    const GIB: u64 = 1 << 30;
    // Over two hours: broker 2 grows 10 GiB an hour with 100 GiB left at
    // the end (10 h); broker 3 has 2 % free; broker 4 grows 1 GiB an hour
    // with 500 GiB left (three weeks).
    let (store, last_seen) = store_of(7200.0, |b, t, r| {
        let hours = t / 3600.0;
        r.host.log_dirs = vec![match b {
            2 => {
                let used = ((880.0 + 10.0 * hours) * GIB as f64) as u64;
                log_dir(used, 1000 * GIB - used)
            }
            3 => log_dir(980 * GIB, 20 * GIB),
            4 => {
                let used = ((500.0 + hours) * GIB as f64) as u64;
                log_dir(used, 1000 * GIB - used)
            }
            _ => log_dir(100 * GIB, 900 * GIB),
        }];
    });
    let verdicts = host_verdicts(&default_config(), &store, &last_seen, 7200.0);
    let dir = [("broker", "2"), ("log_dir", "/data/kafka")];
    let filling = find(&verdicts, "KafkaLogDirFillingUp", &dir);
    assert!(filling.active, "{:?}", filling.annotations);
    assert!(
        filling.annotations["summary"]
            .starts_with("Log dir /data/kafka of broker 2 will be full in 10."),
        "{}",
        filling.annotations["summary"]
    );
    assert!(filling.annotations["description"]
        .contains("free of 1000.0 GiB on sdb1; it grows 10.0 GiB/h"));
    let nearly = find(&verdicts, "KafkaLogDirFillingUp", &[("broker", "3")]);
    assert!(nearly.active);
    assert_eq!(
        nearly.annotations["summary"],
        "Log dir /data/kafka of broker 3 has only 2.0% free"
    );
    assert!(!active(
        &verdicts,
        "KafkaLogDirFillingUp",
        &[("broker", "4")]
    ));
    assert!(!active(
        &verdicts,
        "KafkaLogDirFillingUp",
        &[("broker", "1")]
    ));
}

#[test]
fn descriptors_run_out_in_the_process_or_on_the_host() {
    let verdicts = judged(|b, _, r| match b {
        2 => r.host.broker_process.as_mut().unwrap().open_fds = 95_000,
        3 => {
            r.host.file_descriptors = Some(FileDescriptorReport {
                allocated: 970_000,
                maximum: 1_000_000,
            })
        }
        _ => {}
    });
    let process = find(
        &verdicts,
        "KafkaFileDescriptorsExhausting",
        &[("broker", "2")],
    );
    assert!(process.active);
    assert_eq!(
        process.annotations["summary"],
        "Broker 2 uses 95.0% of its broker process's file descriptors"
    );
    assert!(process.annotations["description"]
        .starts_with("The broker process has 95000 open of 100000."));
    let host = find(
        &verdicts,
        "KafkaFileDescriptorsExhausting",
        &[("broker", "3")],
    );
    assert!(host.active && host.annotations["summary"].ends_with("of its host's file descriptors"));
    assert!(!active(
        &verdicts,
        "KafkaFileDescriptorsExhausting",
        &[("broker", "4")]
    ));
}

#[test]
fn kernel_errors_fire_while_new_ones_come_and_name_their_devices() {
    let event = |kind: &str, device: Option<&str>, total: u64| KernelEvents {
        kind: kind.into(),
        device: device.map(str::to_owned),
        total,
    };
    let verdicts = judged(|b, t, r| match b {
        // A medium error at 420 s (the first: a new series) and another at 500 s.
        2 if t >= 420.0 => {
            r.host.kernel_events = vec![event(
                "medium_error",
                Some("sdb"),
                if t >= 500.0 { 2 } else { 1 },
            )]
        }
        // An OOM kill long ago (10 s): out of the window, quiet now.
        3 if t >= 10.0 => r.host.kernel_events = vec![event("oom_kill", None, 1)],
        _ => {}
    });
    let medium = find(
        &verdicts,
        "KafkaHostKernelErrors",
        &[("broker", "2"), ("kind", "medium_error")],
    );
    assert!(medium.active);
    assert_eq!(
        medium.annotations["summary"],
        "The kernel of broker 2's host reports disk medium errors: 2 in the last 5m"
    );
    assert!(
        medium.annotations["description"].starts_with("2 on sdb. The disk has unreadable sectors")
    );
    assert!(!active(
        &verdicts,
        "KafkaHostKernelErrors",
        &[("broker", "3"), ("kind", "oom_kill")]
    ));
}

#[test]
fn a_surge_of_log_errors_fires_a_steady_trickle_does_not() {
    let log = |total: u64| BrokerLogReport {
        file: "/var/log/kafka/server.log".into(),
        errors: vec![LoggerErrors {
            logger: "kafka.server.ReplicaFetcherThread".into(),
            errors_total: total,
            fatals_total: 0,
        }],
    };
    let (store, last_seen) = store_of(4200.0, |b, t, r| {
        let lines = match b {
            // 2 a minute for an hour, then 60 a minute.
            2 if t > 3900.0 => 130 + ((t - 3900.0) / 60.0 * 60.0) as u64,
            2 => (t / 30.0) as u64,
            // 30 a minute all along: many, but its usual.
            3 => (t / 2.0) as u64,
            _ => 0,
        };
        r.host.broker_log = Some(log(lines));
    });
    let verdicts = host_verdicts(&default_config(), &store, &last_seen, 4200.0);
    let surge = find(&verdicts, "KafkaBrokerLogErrors", &[("broker", "2")]);
    assert!(surge.active, "{:?}", surge.annotations);
    assert!(
        surge.annotations["summary"].starts_with("Broker 2 logs 5"),
        "{}",
        surge.annotations["summary"]
    );
    assert!(surge.annotations["description"].contains("in /var/log/kafka/server.log. The loggers: most since the agent started: kafka.server.ReplicaFetcherThread"));
    assert!(!active(
        &verdicts,
        "KafkaBrokerLogErrors",
        &[("broker", "3")]
    ));
    assert!(!active(
        &verdicts,
        "KafkaBrokerLogErrors",
        &[("broker", "4")]
    ));
}

#[test]
fn a_throttled_user_is_named_with_its_brokers() {
    let quota = |user: &str, produce: f64| UserQuota {
        user: user.into(),
        produce_throttle_ms: Some(produce),
        fetch_throttle_ms: Some(0.0),
        ..UserQuota::default()
    };
    let verdicts = judged(|b, _, r| {
        metrics(r).quotas = vec![
            quota("ingest", if b == 2 { 350.0 } else { 120.0 }),
            quota("analytics", 5.0),
        ];
    });
    let ingest = find(&verdicts, "KafkaUserThrottled", &[("user", "ingest")]);
    assert!(ingest.active);
    assert_eq!(
        ingest.annotations["summary"],
        "Client user ingest is throttled 350 ms per request"
    );
    assert!(ingest.annotations["description"].starts_with(
        "On broker 2 (350 ms), broker 1 (120 ms), broker 3 (120 ms), broker 4 (120 ms)."
    ));
    assert!(!active(
        &verdicts,
        "KafkaUserThrottled",
        &[("user", "analytics")]
    ));
}

#[test]
fn every_threshold_can_be_set() {
    let strict = config(
        "cluster = \"prod\"\n[ingest]\nallow_unauthenticated = true\n[rules.KafkaIsrChurn]\nthreshold = 100\n[rules.KafkaSlowBroker]\nthreshold = 1.5\n",
    );
    let (store, last_seen) = store_of(600.0, |b, t, r| {
        if b == 2 {
            let m = metrics(r);
            (m.isr_shrinks_total, m.isr_expands_total) = (Some(t / 10.0), Some(t / 10.0));
        }
    });
    let verdicts = host_verdicts(&strict, &store, &last_seen, 600.0);
    assert!(
        !active(&verdicts, "KafkaIsrChurn", &[("broker", "2")]),
        "12 a minute is under 100"
    );
}
