//! The agent reading the broker's own metrics from a JMX exporter: one that
//! answers (the values arrive on /metrics), one that hangs and one that
//! returns garbage (each a counted error, and the cycle still finishes on
//! time: the host keeps being read every interval).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use brokerwatch_tests::{eventually, start_agent_with_config, Daemon, Scrape};

/// Serves /good (a Kafka 2.x scrape), POST /jolokia (a Kafka 3.x bulk
/// read), /garbage (an HTML page) and /hang (reads the request, never answers).
fn stand_in_exporter() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../agent/tests/fixtures");
    let good = std::fs::read_to_string(fixtures.join("jmx_exporter_kafka2.txt")).expect("fixture");
    let jolokia = std::fs::read_to_string(fixtures.join("jolokia_kafka3.json")).expect("fixture");
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (good, jolokia) = (good.clone(), jolokia.clone());
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream);
                let mut request = String::new();
                let _ = reader.read_line(&mut request);
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let body = if request.starts_with("GET /good") {
                    good
                } else if request.starts_with("POST /jolokia") {
                    jolokia
                } else if request.starts_with("GET /garbage") {
                    "<html><body>Whitelabel Error Page</body></html>".to_owned()
                } else {
                    std::thread::sleep(Duration::from_secs(120));
                    return;
                };
                let _ = reader.get_mut().write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    )
                    .as_bytes(),
                );
            });
        }
    });
    url
}

fn agent(key: &str, exporter: &str) -> (Daemon, String) {
    let config = format!("broker_id = 5\ninterval = \"500ms\"\n[broker]\n{key} = \"{exporter}\"\nmetrics_timeout = \"200ms\"\n");
    start_agent_with_config(&config, tempfile::tempdir().unwrap())
}

fn errors(scrape: &Scrape) -> f64 {
    scrape
        .sum(
            "brokerwatch_agent_source_errors_total",
            &[("source", "broker_metrics")],
        )
        .unwrap_or(0.0)
}

#[test]
fn a_broker_exporter_that_answers_hangs_or_talks_garbage() {
    let exporter = stand_in_exporter();
    let (_good, good_url) = agent("jmx_exporter_url", &format!("{exporter}/good"));
    let (_jolokia, jolokia_url) = agent("jolokia_url", &format!("{exporter}/jolokia"));
    let (_hung, hung_url) = agent("jmx_exporter_url", &format!("{exporter}/hang"));
    let (_garbage, garbage_url) = agent("jmx_exporter_url", &format!("{exporter}/garbage"));

    let good = eventually(
        "the broker's metrics on the agent",
        Duration::from_secs(20),
        || {
            let scrape = Scrape::fetch(&good_url);
            scrape
                .sum("brokerwatch_kafka_bytes_in_total", &[])
                .is_some()
                .then_some(scrape)
        },
    );
    assert_eq!(
        good.sum("brokerwatch_kafka_bytes_in_total", &[]),
        Some(9.8123876123e10)
    );
    assert_eq!(
        good.sum("brokerwatch_kafka_produce_total_time_p99_seconds", &[]),
        Some(0.0485)
    );
    assert_eq!(
        good.sum("brokerwatch_kafka_under_replicated_partitions", &[]),
        Some(3.0)
    );
    assert_eq!(
        good.sum(
            "brokerwatch_kafka_user_produce_throttle_seconds",
            &[("user", "ingest")]
        ),
        Some(0.12)
    );
    assert_eq!(errors(&good), 0.0);

    // The same broker through Jolokia: the same figures.
    let jolokia = eventually(
        "the broker's metrics through Jolokia",
        Duration::from_secs(20),
        || {
            let scrape = Scrape::fetch(&jolokia_url);
            scrape
                .sum("brokerwatch_kafka_bytes_in_total", &[])
                .is_some()
                .then_some(scrape)
        },
    );
    for metric in [
        "brokerwatch_kafka_bytes_in_total",
        "brokerwatch_kafka_leader_count",
        "brokerwatch_kafka_produce_total_time_p99_seconds",
    ] {
        assert_eq!(jolokia.sum(metric, &[]), good.sum(metric, &[]), "{metric}");
    }
    assert_eq!(
        jolokia.sum(
            "brokerwatch_kafka_user_fetch_bytes_per_second",
            &[("user", "analytics")]
        ),
        Some(10_485_760.0)
    );

    // Hung: every cycle gives up after 200 ms, counts it, and reads the host anyway.
    let first = eventually(
        "the hung agent's first cycles",
        Duration::from_secs(20),
        || {
            let scrape = Scrape::fetch(&hung_url);
            scrape
                .sum("brokerwatch_cpu_seconds_total", &[])
                .is_some()
                .then_some(scrape)
        },
    );
    std::thread::sleep(Duration::from_millis(2500));
    let later = Scrape::fetch(&hung_url);
    assert!(
        errors(&later) - errors(&first) >= 3.0,
        "{} then {}",
        errors(&first),
        errors(&later)
    );
    let duration = later
        .sum("brokerwatch_agent_collect_duration_seconds", &[])
        .unwrap();
    assert!(
        (0.2..0.5).contains(&duration),
        "a cycle took {duration} s: the 200 ms timeout, and less than the 500 ms interval"
    );
    let busy = |s: &Scrape| s.sum("brokerwatch_cpu_seconds_total", &[]).unwrap();
    assert!(
        busy(&later) > busy(&first),
        "the host is still read every cycle"
    );
    assert!(later.sum("brokerwatch_kafka_bytes_in_total", &[]).is_none());

    // Garbage: counted, nothing invented.
    let garbage = eventually("the garbage counted", Duration::from_secs(20), || {
        let scrape = Scrape::fetch(&garbage_url);
        (errors(&scrape) >= 2.0).then_some(scrape)
    });
    assert!(garbage
        .sum("brokerwatch_kafka_bytes_in_total", &[])
        .is_none());
    assert_eq!(
        garbage.sum(
            "brokerwatch_agent_source_up",
            &[("source", "broker_metrics")]
        ),
        Some(0.0)
    );
}
