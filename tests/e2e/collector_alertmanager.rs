//! The collector against a real Alertmanager: reports posted by the test make
//! one broker carry most of the load; the alert must reach Alertmanager with
//! the right labels, resolve there when the load evens out, survive
//! Alertmanager being down, and survive a collector killed mid-incident.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use brokerwatch_tests::{
    eventually, free_port, get_json, start_alertmanager, start_collector, weighted_report,
    WebhookSink,
};
use serde_json::Value;

const TOKEN: &str = "e2e-token";

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

/// Posts a report as an agent does; returns the HTTP status (0 when unreachable).
fn post(collector: &str, token: Option<&str>, encoding: Option<&str>, body: Vec<u8>) -> u16 {
    let mut request = reqwest::blocking::Client::new()
        .post(format!("{collector}/api/v1/reports"))
        .header("Content-Type", "application/json")
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(encoding) = encoding {
        request = request.header("Content-Encoding", encoding);
    }
    request.send().map_or(0, |r| r.status().as_u16())
}

/// Four agents reporting every 200 ms, with a load weight per broker the test can change.
struct Agents {
    weights: Arc<Mutex<[f64; 4]>>,
    stop: Arc<AtomicBool>,
}

impl Agents {
    fn start(collector: &str, weights: [f64; 4]) -> Agents {
        let agents = Agents {
            weights: Arc::new(Mutex::new(weights)),
            stop: Arc::new(AtomicBool::new(false)),
        };
        let (collector, weights, stop) = (
            collector.to_owned(),
            agents.weights.clone(),
            agents.stop.clone(),
        );
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let current = *weights.lock().expect("weights");
                for (i, weight) in current.iter().enumerate() {
                    let body = gzip(
                        &serde_json::to_vec(&weighted_report(i as i32 + 1, *weight)).expect("json"),
                    );
                    post(&collector, Some(TOKEN), Some("gzip"), body);
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        agents
    }

    fn set(&self, weights: [f64; 4]) {
        *self.weights.lock().expect("weights") = weights;
    }
}

impl Drop for Agents {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn collector_config(listen: &str, state_dir: &str, alertmanager_ports: &[u16]) -> String {
    let urls: Vec<String> = alertmanager_ports
        .iter()
        .map(|p| format!("\"http://127.0.0.1:{p}\""))
        .collect();
    let urls = urls.join(", ");
    format!(
        r#"cluster = "e2e"
listen = "{listen}"
state_dir = "{state_dir}"
evaluation_interval = "200ms"
[ingest]
tokens = ["{TOKEN}"]
[store]
window = "2s"
broker_missing_after = "30s"
[rules.KafkaBrokerLoadDeviation]
for = "1s"
[rules.KafkaClusterLoadImbalance]
for = "1s"
[alertmanager]
urls = [{urls}]
resend_interval = "1s"
timeout = "2s"
"#
    )
}

/// The alert for broker 3's deviation as Alertmanager holds it, if it does.
fn alertmanager_alert(port: u16) -> Option<Value> {
    let alerts = get_json(&format!("http://127.0.0.1:{port}/api/v2/alerts"));
    alerts
        .as_array()?
        .iter()
        .find(|a| {
            a["labels"]["alertname"] == "KafkaBrokerLoadDeviation" && a["labels"]["broker"] == "3"
        })
        .cloned()
}

/// The webhook notices about broker 3's deviation alert with this status.
fn notices(webhook: &WebhookSink, status: &str) -> Vec<Value> {
    webhook
        .received()
        .into_iter()
        .flat_map(|n| n["alerts"].as_array().cloned().unwrap_or_default())
        .filter(|a| {
            a["labels"]["alertname"] == "KafkaBrokerLoadDeviation"
                && a["labels"]["broker"] == "3"
                && a["status"] == status
        })
        .collect()
}

const HEAVY: [f64; 4] = [1.0, 1.0, 6.0, 1.0];
const EVEN: [f64; 4] = [1.0, 1.0, 1.0, 1.0];
const PATIENCE: Duration = Duration::from_secs(30);

#[test]
fn an_imbalance_alert_reaches_both_alertmanagers_of_a_pair_with_its_labels_and_resolves_there() {
    let webhook = WebhookSink::start();
    let (am_port, twin_port) = (free_port(), free_port());
    let _alertmanager = start_alertmanager(am_port, &webhook.url);
    let _twin = start_alertmanager(twin_port, &webhook.url);
    let state = tempfile::tempdir().unwrap();
    let (_collector, url) = start_collector(&collector_config(
        "127.0.0.1:0",
        state.path().to_str().unwrap(),
        &[am_port, twin_port],
    ));
    let agents = Agents::start(&url, HEAVY);

    let alert = eventually("the deviation alert in Alertmanager", PATIENCE, || {
        alertmanager_alert(am_port)
    });
    let twin = eventually("the deviation alert in its twin", PATIENCE, || {
        alertmanager_alert(twin_port)
    });
    assert_eq!(twin["labels"], alert["labels"]);
    assert_eq!(twin["startsAt"], alert["startsAt"]);
    let labels = &alert["labels"];
    assert_eq!(labels["cluster"], "e2e");
    assert_eq!(labels["severity"], "warning");
    assert_eq!(labels["group"], "default");
    assert_eq!(labels["broker"], "3");
    assert_eq!(alert["status"]["state"], "active");
    let summary = alert["annotations"]["summary"].as_str().unwrap();
    assert!(
        summary.starts_with("Broker 3 carries 66.7% of group default's load"),
        "{summary}"
    );
    assert!(alert["annotations"]["description"]
        .as_str()
        .unwrap()
        .contains("partitions and leaders on broker 3"));
    // The group alert rides along, labelled by group.
    let all = get_json(&format!("http://127.0.0.1:{am_port}/api/v2/alerts"));
    assert!(all
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["labels"]["alertname"] == "KafkaClusterLoadImbalance"
            && a["labels"]["group"] == "default"));
    eventually("a firing notice at the webhook", PATIENCE, || {
        (!notices(&webhook, "firing").is_empty()).then_some(())
    });

    agents.set(EVEN);
    let resolved = eventually("a resolved notice at the webhook", PATIENCE, || {
        notices(&webhook, "resolved").pop()
    });
    assert_eq!(resolved["labels"]["cluster"], "e2e");
    assert_ne!(resolved["endsAt"], "0001-01-01T00:00:00Z");
    for port in [am_port, twin_port] {
        eventually(
            "the alert no longer active in either Alertmanager",
            PATIENCE,
            || {
                alertmanager_alert(port)
                    .is_none_or(|a| a["status"]["state"] != "active")
                    .then_some(())
            },
        );
    }
    let collector_alerts = get_json(&format!("{url}/api/v1/alerts"));
    let ours = collector_alerts
        .as_array()
        .unwrap()
        .iter()
        .find(|a| {
            a["labels"]["broker"] == "3" && a["labels"]["alertname"] == "KafkaBrokerLoadDeviation"
        })
        .cloned()
        .unwrap();
    assert_eq!(ours["state"], "resolved");
}

#[test]
fn an_alert_that_fires_while_alertmanager_is_down_arrives_once_it_is_back() {
    let webhook = WebhookSink::start();
    let am_port = free_port();
    let state = tempfile::tempdir().unwrap();
    let (_collector, url) = start_collector(&collector_config(
        "127.0.0.1:0",
        state.path().to_str().unwrap(),
        &[am_port],
    ));
    let _agents = Agents::start(&url, HEAVY);

    eventually("the alert firing in the collector", PATIENCE, || {
        let alerts = get_json(&format!("{url}/api/v1/alerts"));
        alerts
            .as_array()?
            .iter()
            .find(|a| a["labels"]["broker"] == "3" && a["state"] == "firing")
            .cloned()
    });
    let failed_posts = eventually("failed posts counted", PATIENCE, || {
        let text = reqwest::blocking::get(format!("{url}/metrics"))
            .ok()?
            .text()
            .ok()?;
        let line = text.lines().find(|l| {
            l.starts_with("brokerwatch_collector_alertmanager_posts_total")
                && l.contains("result=\"error\"")
        })?;
        let count: f64 = line.rsplit(' ').next()?.parse().ok()?;
        (count >= 1.0).then_some(count)
    });
    assert!(failed_posts >= 1.0);

    let _alertmanager = start_alertmanager(am_port, &webhook.url);
    let alert = eventually("the alert in Alertmanager once it is up", PATIENCE, || {
        alertmanager_alert(am_port)
    });
    assert_eq!(alert["labels"]["cluster"], "e2e");
    assert_eq!(alert["status"]["state"], "active");
    eventually("a firing notice at the webhook", PATIENCE, || {
        (!notices(&webhook, "firing").is_empty()).then_some(())
    });
}

#[test]
fn a_collector_killed_while_an_alert_fires_keeps_it_and_still_resolves_it() {
    let webhook = WebhookSink::start();
    let am_port = free_port();
    let _alertmanager = start_alertmanager(am_port, &webhook.url);
    let state = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let config = collector_config(&listen, state.path().to_str().unwrap(), &[am_port]);
    let (mut collector, url) = start_collector(&config);
    let agents = Agents::start(&url, HEAVY);

    let before = eventually("the alert in Alertmanager", PATIENCE, || {
        alertmanager_alert(am_port)
    });
    let starts_at = before["startsAt"].as_str().unwrap().to_owned();
    let fingerprint = before["fingerprint"].as_str().unwrap().to_owned();
    collector.kill_hard();

    let (_collector, url_again) = start_collector(&config);
    assert_eq!(url_again, url);
    // The restarted collector holds the same alert, firing since the same moment.
    let restored = eventually("the restored alert", PATIENCE, || {
        let alerts = get_json(&format!("{url}/api/v1/alerts"));
        alerts
            .as_array()?
            .iter()
            .find(|a| {
                a["labels"]["broker"] == "3"
                    && a["labels"]["alertname"] == "KafkaBrokerLoadDeviation"
            })
            .cloned()
    });
    assert_eq!(restored["state"], "firing");
    // Several resend intervals later, Alertmanager still has exactly one such alert, unchanged.
    std::thread::sleep(Duration::from_secs(3));
    let all = get_json(&format!("http://127.0.0.1:{am_port}/api/v2/alerts"));
    let same: Vec<&Value> = all
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| {
            a["labels"]["alertname"] == "KafkaBrokerLoadDeviation" && a["labels"]["broker"] == "3"
        })
        .collect();
    assert_eq!(same.len(), 1, "{all}");
    assert_eq!(
        same[0]["startsAt"],
        starts_at.as_str(),
        "startsAt must not move across the restart"
    );
    assert_eq!(same[0]["fingerprint"], fingerprint.as_str());
    assert_eq!(
        notices(&webhook, "resolved").len(),
        0,
        "not resolved by the restart"
    );

    agents.set(EVEN);
    let resolved = eventually("the resolve after the restart", PATIENCE, || {
        notices(&webhook, "resolved").pop()
    });
    assert_eq!(resolved["startsAt"], starts_at.as_str());
}

#[test]
fn bad_reports_get_a_clear_4xx_a_counter_and_leave_the_store_alone() {
    let state = tempfile::tempdir().unwrap();
    let config = collector_config(
        "127.0.0.1:0",
        state.path().to_str().unwrap(),
        &[free_port()],
    )
    .replace("[ingest]\n", "[ingest]\nmax_body_bytes = 4096\n");
    let (_collector, url) = start_collector(&config);
    let good = serde_json::to_vec(&weighted_report(1, 1.0)).unwrap();
    assert_eq!(post(&url, Some(TOKEN), None, good.clone()), 202);
    let before = get_json(&format!("{url}/api/v1/brokers"));
    assert_eq!(before[0]["broker"], 1);

    let heavy = serde_json::to_vec(&weighted_report(1, 9.0)).unwrap();
    let future = String::from_utf8(heavy.clone())
        .unwrap()
        .replace("\"schema_version\":1", "\"schema_version\":99");
    let oversized = {
        let mut r = weighted_report(1, 9.0);
        r.agent_version = "x".repeat(8192);
        serde_json::to_vec(&r).unwrap()
    };
    /// (what, token, body, expected status, expected reason label)
    type Case<'a> = (&'a str, Option<&'a str>, Vec<u8>, u16, &'a str);
    let cases: [Case; 5] = [
        (
            "malformed JSON",
            Some(TOKEN),
            b"{\"schema_version\": 1, \"broker_".to_vec(),
            400,
            "malformed",
        ),
        (
            "a wrong schema version",
            Some(TOKEN),
            future.into_bytes(),
            400,
            "unsupported_schema",
        ),
        ("no token", None, heavy.clone(), 401, "unauthenticated"),
        ("a wrong token", Some("guess"), heavy, 403, "forbidden"),
        (
            "an oversized body",
            Some(TOKEN),
            oversized,
            413,
            "too_large",
        ),
    ];
    for (what, token, body, status, _) in &cases {
        assert_eq!(post(&url, *token, None, body.clone()), *status, "{what}");
    }
    let after = get_json(&format!("{url}/api/v1/brokers"));
    assert_eq!(
        after[0]["report"], before[0]["report"],
        "no refused report reached the store"
    );
    assert_eq!(after[0]["last_report"], before[0]["last_report"]);
    let metrics = reqwest::blocking::get(format!("{url}/metrics"))
        .unwrap()
        .text()
        .unwrap();
    for (what, _, _, _, reason) in &cases {
        let line = format!(
            "brokerwatch_collector_reports_rejected_total{{cluster=\"e2e\",reason=\"{reason}\"}} 1"
        );
        assert!(
            metrics.lines().any(|l| l == line),
            "{what}: no {line:?} in\n{metrics}"
        );
    }
    assert!(metrics
        .lines()
        .any(|l| l == "brokerwatch_collector_reports_received_total{cluster=\"e2e\"} 1"));
    // The refusal says why, in one line.
    let response = reqwest::blocking::Client::new()
        .post(format!("{url}/api/v1/reports"))
        .bearer_auth(TOKEN)
        .body(
            String::from_utf8(good)
                .unwrap()
                .replace("\"schema_version\":1", "\"schema_version\":2"),
        )
        .send()
        .unwrap();
    let text = response.text().unwrap();
    assert_eq!(text.trim().lines().count(), 1);
    assert!(
        text.starts_with("schema_version 2 is not supported; this collector reads version 1"),
        "{text}"
    );
}
