//! Fault injection against the running daemons on 127.0.0.1: each fault is
//! injected, the daemons keep running, the fault is visible as a metric and
//! a log line, and afterwards what was accepted is still there and alerts
//! are delivered once. (Elsewhere: the collector down while agents buffer,
//! in agent_push.rs; a broker down, in collector_kafka.rs; a JMX endpoint
//! that hangs, in agent_broker_metrics.rs; a wall-clock step, in
//! clock_jump.rs; SIGKILL mid-incident, in collector_alertmanager.rs.)

use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use brokerwatch_tests::{
    eventually, free_port, get_json, get_text, http, minimal_report, open_collector_config,
    start_agent_with_config, start_alertmanager, start_collector, Scrape, WebhookSink,
};
use rdkafka::mocking::MockCluster;

/// A /proc and /sys made of the agent's fixtures, which the test can break.
#[path = "../../agent/tests/fixtures/host.rs"]
mod fixture_host;
use serde_json::Value;

fn firing(url: &str, alertname: &str) -> Vec<Value> {
    get_json(&format!("{url}/api/v1/alerts"))
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|a| a["state"] == "firing" && a["labels"]["alertname"] == alertname)
        .collect()
}

/// A minimal report for `broker`, as an agent would push it.
fn post_report(url: &str, broker: i32) {
    let status = http()
        .post(format!("{url}/api/v1/reports"))
        .json(&minimal_report(broker))
        .send()
        .expect("post a report")
        .status();
    assert_eq!(status.as_u16(), 202);
}

fn metric(url: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    Scrape::fetch(&format!("{url}/metrics")).sum(name, labels)
}

#[test]
fn kafka_slow_or_unreachable_is_an_alert_of_its_own_and_stale_data_is_withheld() {
    let mock = MockCluster::new(3).expect("mock cluster");
    mock.create_topic("orders", 6, 3).expect("topic");
    let bootstrap = mock.bootstrap_servers();
    let state = tempfile::tempdir().unwrap();
    let (mut collector, url) = start_collector(&format!(
        r#"{header}[kafka]
metadata_interval = "300ms"
timeout = "1s"
[kafka.properties]
"bootstrap.servers" = "{bootstrap}"
[consumer_groups]
fetch_interval = "300ms"
[rules.KafkaClusterUnreachable]
for = "0s"
"#,
        header = open_collector_config("faults", state.path())
    ));
    eventually("the cluster's series", Duration::from_secs(30), || {
        metric(&url, "brokerwatch_broker_partitions", &[]).filter(|p| *p == 18.0)
    });
    assert!(firing(&url, "KafkaClusterUnreachable").is_empty());

    // Slow: every broker answers after 3 s, beyond the collector's 1 s timeout.
    for broker in 1..=3 {
        mock.broker_round_trip_time(broker, Duration::from_secs(3))
            .expect("slow broker");
    }
    eventually(
        "KafkaClusterUnreachable while slow",
        Duration::from_secs(30),
        || firing(&url, "KafkaClusterUnreachable").into_iter().next(),
    );
    assert!(metric(&url, "brokerwatch_broker_partitions", &[]).is_none());
    // Fast again: the alert resolves and the series come back.
    for broker in 1..=3 {
        mock.broker_round_trip_time(broker, Duration::ZERO)
            .expect("fast broker");
    }
    eventually(
        "the cluster's series again",
        Duration::from_secs(30),
        || {
            (firing(&url, "KafkaClusterUnreachable").is_empty()
                && metric(&url, "brokerwatch_broker_partitions", &[]) == Some(18.0))
            .then_some(())
        },
    );

    // The slow phase may have logged a failure of its own (a request that
    // timed out): the outage below is counted from here.
    let failures_before = collector
        .log()
        .matches("retrying, and alerts on the cluster's state wait")
        .count();
    drop(mock); // every broker of the cluster goes away
    let alert = eventually("KafkaClusterUnreachable", Duration::from_secs(30), || {
        firing(&url, "KafkaClusterUnreachable").into_iter().next()
    });
    assert_eq!(alert["labels"]["severity"], "critical");
    let scrape = Scrape::fetch(&format!("{url}/metrics"));
    assert!(
        scrape.sum("brokerwatch_broker_partitions", &[]).is_none(),
        "stale partition counts are still exported as current"
    );
    assert!(scrape
        .sum("brokerwatch_cluster_under_replicated_partitions", &[])
        .is_none());
    let age = scrape
        .sum("brokerwatch_kafka_metadata_age_seconds", &[])
        .expect("the metadata's age stays visible");
    assert!(age > 0.9, "metadata age {age}");
    let replication = eventually("the error in the API", Duration::from_secs(30), || {
        let replication = get_json(&format!("{url}/api/v1/replication"));
        replication["error"].is_string().then_some(replication)
    });
    assert_eq!(replication["stale"], true, "{replication}");
    // The error stays while the cluster is gone: a round with nothing to ask
    // (no group to fetch offsets for) does not clear it.
    let answered_before = collector.log().matches("the cluster answers again").count();
    for _ in 0..30 {
        let replication = get_json(&format!("{url}/api/v1/replication"));
        assert!(replication["error"].is_string(), "{replication}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        collector.log().matches("the cluster answers again").count(),
        answered_before,
        "the collector said the cluster answers while it was gone"
    );
    assert_eq!(
        collector
            .log()
            .matches("retrying, and alerts on the cluster's state wait")
            .count(),
        failures_before + 1,
        "the failure is logged once, not once per attempt"
    );
    // The collector itself keeps serving reports.
    post_report(&url, 1);
    assert!(collector
        .terminate(Duration::from_secs(10))
        .is_some_and(|s| s.success()));
}

/// A collector that raises KafkaAgentDown one second after an agent's last
/// report and sends to the Alertmanager on `am_port` every `resend`;
/// `alertmanager` adds lines to that section.
fn agent_down_collector(
    state: &Path,
    am_port: u16,
    resend: &str,
    alertmanager: &str,
) -> (brokerwatch_tests::Daemon, String) {
    start_collector(&format!(
        "{}[store]\nbroker_missing_after = \"1s\"\n[rules.KafkaAgentDown]\nfor = \"0s\"\n[alertmanager]\nurls = [\"http://127.0.0.1:{am_port}\"]\nresend_interval = \"{resend}\"\n{alertmanager}",
        open_collector_config("faults", state)
    ))
}

/// Accepts connections and never answers: an Alertmanager that hangs.
fn hanging_server(listener: TcpListener) -> std::sync::Arc<std::sync::atomic::AtomicBool> {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopping = stop.clone();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        while !stopping.load(std::sync::atomic::Ordering::Relaxed) {
            if let Ok((stream, _)) = listener.accept() {
                held.push(stream);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    stop
}

#[test]
fn alertmanager_slow_then_back_gets_the_alert_once_and_lost_resolutions_are_counted() {
    let port = free_port();
    let hang = hanging_server(TcpListener::bind(("127.0.0.1", port)).unwrap());
    let state = tempfile::tempdir().unwrap();
    let (collector, url) = agent_down_collector(
        state.path(),
        port,
        "1s",
        "timeout = \"1s\"\nresolved_retention = \"2s\"\n",
    );
    post_report(&url, 1);
    post_report(&url, 2);
    // Broker 2's agent goes quiet; broker 1's keeps reporting.
    use std::sync::atomic::{AtomicBool, Ordering};
    let reporting = std::sync::Arc::new(AtomicBool::new(true));
    let two_reports = std::sync::Arc::new(AtomicBool::new(false));
    let keep_reporting = {
        let (url, reporting, two_reports) = (url.clone(), reporting.clone(), two_reports.clone());
        std::thread::spawn(move || {
            while reporting.load(Ordering::Relaxed) {
                post_report(&url, 1);
                if two_reports.load(Ordering::Relaxed) {
                    post_report(&url, 2);
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };
    // The alert fires on time although Alertmanager hangs: evaluation never waits on it.
    eventually(
        "KafkaAgentDown while Alertmanager hangs",
        Duration::from_secs(10),
        || {
            firing(&url, "KafkaAgentDown")
                .into_iter()
                .find(|a| a["labels"]["broker"] == "2")
        },
    );
    eventually("failed posts counted", Duration::from_secs(10), || {
        metric(
            &url,
            "brokerwatch_collector_alertmanager_posts_total",
            &[("result", "error")],
        )
        .filter(|n| *n >= 2.0)
    });
    assert!(
        metric(
            &url,
            "brokerwatch_collector_evaluation_duration_seconds",
            &[]
        )
        .unwrap()
            < 0.5,
        "evaluation waited on Alertmanager"
    );

    // Alertmanager comes back on the same address: the alert arrives, once.
    hang.store(true, Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(100));
    let webhook = WebhookSink::start();
    let alertmanager = start_alertmanager(port, &webhook.url);
    let alerts_in_am = || {
        get_json(&format!("http://127.0.0.1:{port}/api/v2/alerts"))
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    eventually("the alert in Alertmanager", Duration::from_secs(30), || {
        alerts_in_am()
            .iter()
            .any(|a| a["labels"]["alertname"] == "KafkaAgentDown" && a["labels"]["broker"] == "2")
            .then_some(())
    });
    std::thread::sleep(Duration::from_secs(3)); // a few resends
    let notices: Vec<Value> = webhook
        .received()
        .into_iter()
        .flat_map(|n| n["alerts"].as_array().cloned().unwrap_or_default())
        .filter(|a| a["labels"]["alertname"] == "KafkaAgentDown" && a["status"] == "firing")
        .collect();
    assert_eq!(
        notices.len(),
        1,
        "notified {} times: {notices:?}",
        notices.len()
    );

    // Alertmanager goes down again; the alert resolves and, 2 s later, leaves
    // the book before its resolution could be delivered: counted as dropped.
    drop(alertmanager);
    two_reports.store(true, Ordering::Relaxed);
    let drops = || {
        metric(
            &url,
            "brokerwatch_collector_alertmanager_dropped_alerts_total",
            &[],
        )
        .unwrap_or(0.0)
    };
    assert_eq!(drops(), 0.0);
    std::thread::sleep(Duration::from_secs(4));
    let webhook = WebhookSink::start();
    let _alertmanager = start_alertmanager(port, &webhook.url);
    eventually(
        "the lost resolution counted",
        Duration::from_secs(30),
        || (drops() == 1.0).then_some(()),
    );
    reporting.store(false, Ordering::Relaxed);
    keep_reporting.join().unwrap();
    let log = collector.log();
    assert_eq!(
        log.matches("cannot deliver alerts to").count(),
        2,
        "one line per outage, not per retry:\n{log}"
    );
}

/// A tmpfs of `size` mounted at a new directory, unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("mount");
        assert!(status.success(), "mount tmpfs (the suite runs as root)");
        SmallDisk { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills what is left with one file; returns it.
    fn fill(&self) -> std::path::PathBuf {
        use std::io::Write as _;
        let filler = self.path().join("filler");
        let mut file = std::fs::File::create(&filler).unwrap();
        let block = [0u8; 4096];
        while file.write_all(&block).is_ok() {}
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.dir.path())
            .status();
    }
}

#[test]
fn a_full_state_disk_keeps_the_collector_alerting_and_the_write_is_retried() {
    let disk = SmallDisk::mount("256k");
    let state_dir = disk.path().join("collector");
    std::fs::create_dir(&state_dir).unwrap();
    let filler = disk.fill();
    let webhook = WebhookSink::start();
    let am_port = free_port();
    let _alertmanager = start_alertmanager(am_port, &webhook.url);
    let (collector, url) = agent_down_collector(&state_dir, am_port, "1s", "");
    post_report(&url, 4);
    eventually(
        "KafkaAgentDown with a full disk",
        Duration::from_secs(10),
        || firing(&url, "KafkaAgentDown").into_iter().next(),
    );
    eventually(
        "the alert delivered with a full disk",
        Duration::from_secs(20),
        || {
            webhook
                .received()
                .iter()
                .any(|n| n["alerts"][0]["labels"]["alertname"] == "KafkaAgentDown")
                .then_some(())
        },
    );
    assert!(metric(&url, "brokerwatch_collector_state_write_errors_total", &[]).unwrap() >= 1.0);
    assert_eq!(
        metric(&url, "brokerwatch_collector_state_writable", &[]),
        Some(0.0)
    );
    let health = get_text(&format!("{url}/healthz"));
    assert!(
        health.contains("the state file cannot be written"),
        "{health}"
    );
    assert!(
        !state_dir.join("state.json").exists() || {
            let text = std::fs::read_to_string(state_dir.join("state.json")).unwrap_or_default();
            !text.contains("KafkaAgentDown")
        }
    );

    // Space comes back: the next evaluation writes the state, alert included.
    std::fs::remove_file(filler).unwrap();
    eventually("the state written again", Duration::from_secs(10), || {
        (metric(&url, "brokerwatch_collector_state_writable", &[]) == Some(1.0)).then_some(())
    });
    let saved = std::fs::read_to_string(state_dir.join("state.json")).unwrap();
    assert!(saved.contains("KafkaAgentDown"), "{saved}");
    let log = collector.log();
    assert_eq!(
        log.matches("the write is retried every evaluation").count(),
        1,
        "{log}"
    );
    assert_eq!(log.matches("state file writable again").count(), 1, "{log}");
}

#[test]
fn a_missing_or_garbled_proc_file_is_counted_and_the_other_sources_carry_on() {
    let dir = tempfile::tempdir().unwrap();
    let (proc, sys) = fixture_host::broker_host(dir.path());
    // meminfo is missing from the start (a container without it); stat is
    // garbled later, in place, as a kernel file would read.
    let meminfo = std::fs::read(proc.join("meminfo")).unwrap();
    std::fs::remove_file(proc.join("meminfo")).unwrap();
    let stat = std::fs::read(proc.join("stat")).unwrap();
    let (mut agent, url) = start_agent_with_config(
        &format!(
            "broker_id = 8\ninterval = \"200ms\"\nproc_path = {:?}\nsys_path = {:?}\n[broker]\nenabled = false\n[page_cache]\nebpf = false\n",
            proc.display().to_string(),
            sys.display().to_string()
        ),
        tempfile::tempdir().unwrap(),
    );
    let up = |source: &str| {
        Scrape::fetch(&url).sum("brokerwatch_agent_source_up", &[("source", source)])
    };
    let errors = |source: &str| {
        Scrape::fetch(&url)
            .sum(
                "brokerwatch_agent_source_errors_total",
                &[("source", source)],
            )
            .unwrap_or(0.0)
    };
    eventually("memory down, cpu up", Duration::from_secs(10), || {
        (up("memory") == Some(0.0) && up("cpu") == Some(1.0)).then_some(())
    });
    std::fs::write(proc.join("stat"), "cpu  garbage\nintr x\n").unwrap();
    eventually("cpu down too", Duration::from_secs(10), || {
        (up("cpu") == Some(0.0)).then_some(())
    });
    std::thread::sleep(Duration::from_millis(600));
    let scrape = Scrape::fetch(&url);
    assert!(
        errors("memory") >= 2.0 && errors("cpu") >= 2.0,
        "counted each cycle"
    );
    assert!(
        scrape.sum("brokerwatch_memory_total_bytes", &[]).is_none()
            && scrape.sum("brokerwatch_cpu_seconds_total", &[]).is_none(),
        "a missing or garbled file's figures are absent, not zero or stale"
    );
    assert!(
        scrape
            .sum("brokerwatch_disk_read_bytes_total", &[])
            .is_some()
            && scrape
                .sum("brokerwatch_network_receive_bytes_total", &[])
                .is_some(),
        "the other sources carry on"
    );

    std::fs::write(proc.join("meminfo"), meminfo).unwrap();
    std::fs::write(proc.join("stat"), stat).unwrap();
    eventually("both recovered", Duration::from_secs(10), || {
        (up("memory") == Some(1.0) && up("cpu") == Some(1.0)).then_some(())
    });
    let log = agent.log();
    for source in ["memory", "cpu"] {
        let failing = log
            .lines()
            .filter(|l| l.contains("source failing") && l.contains(&format!("source=\"{source}\"")))
            .count();
        assert_eq!(failing, 1, "{source}: logged once per state change:\n{log}");
    }
    assert_eq!(log.matches("source recovered").count(), 2, "{log}");
    assert!(agent
        .terminate(Duration::from_secs(10))
        .is_some_and(|s| s.success()));
}

#[test]
fn sigterm_saves_the_state_and_finishes_the_deliveries() {
    let webhook = WebhookSink::start();
    let am_port = free_port();
    let _alertmanager = start_alertmanager(am_port, &webhook.url);
    let state = tempfile::tempdir().unwrap();
    let (mut collector, url) = agent_down_collector(state.path(), am_port, "30s", "");
    // The agent pushes to this collector; on SIGTERM its last reports go out.
    let (mut agent, _) = start_agent_with_config(
        &format!(
            "broker_id = 9\ninterval = \"200ms\"\ncollector = \"{url}\"\n[broker]\nenabled = false\n[page_cache]\nebpf = false\n"
        ),
        tempfile::tempdir().unwrap(),
    );
    eventually("the agent's reports", Duration::from_secs(10), || {
        get_json(&format!("{url}/api/v1/brokers"))
            .as_array()
            .filter(|b| b.iter().any(|b| b["broker"] == 9))
            .map(|_| ())
    });
    let status = agent
        .terminate(Duration::from_secs(10))
        .expect("the agent stops");
    assert!(status.success(), "{status}");
    assert!(
        agent.log().contains("every report delivered; stopped"),
        "{}",
        agent.log()
    );

    // Its silence raises KafkaAgentDown; SIGTERM right after it fires.
    eventually("KafkaAgentDown", Duration::from_secs(10), || {
        firing(&url, "KafkaAgentDown").into_iter().next()
    });
    let status = collector
        .terminate(Duration::from_secs(10))
        .expect("the collector stops");
    assert!(status.success(), "{status}");
    let log = collector.log();
    assert!(
        log.contains("state saved and alerts delivered; stopped"),
        "{log}"
    );
    let saved = std::fs::read_to_string(state.path().join("state.json")).unwrap();
    assert!(saved.contains("KafkaAgentDown"), "{saved}");
    eventually("the alert in Alertmanager", Duration::from_secs(10), || {
        get_json(&format!("http://127.0.0.1:{am_port}/api/v2/alerts"))
            .as_array()?
            .iter()
            .any(|a| a["labels"]["alertname"] == "KafkaAgentDown")
            .then_some(())
    });
}
