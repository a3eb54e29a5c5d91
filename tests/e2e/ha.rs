//! An active-active collector pair, the way Prometheus runs HA: an agent
//! pushes every report to both collectors (a buffer each), both evaluate
//! and deliver to the same two Alertmanagers gossiping on loopback, and the
//! Alertmanagers send each notice once.

use std::path::Path;
use std::time::{Duration, Instant};

use brokerwatch_tests::{
    eventually, get_json, open_collector_config, start_agent_with_config, start_alertmanager_pair,
    start_collector, Daemon, WebhookSink,
};
use serde_json::Value;

const PATIENCE: Duration = Duration::from_secs(30);
/// Longer than the Alertmanagers' peer timeout (3 s) and group interval
/// (1 s): a duplicate notice would have been sent by then.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(8);

/// `KafkaAgentDown` for broker 5 as the collector at `url` holds it.
fn agent_down(url: &str) -> Option<Value> {
    get_json(&format!("{url}/api/v1/alerts"))
        .as_array()?
        .iter()
        .find(|a| a["labels"]["alertname"] == "KafkaAgentDown" && a["labels"]["broker"] == "5")
        .cloned()
}

/// The statuses of the webhook's notices about broker 5's agent, in order.
fn statuses(webhook: &WebhookSink) -> Vec<String> {
    webhook
        .received()
        .iter()
        .filter_map(|n| {
            n["alerts"].as_array()?.iter().find_map(|a| {
                (a["labels"]["alertname"] == "KafkaAgentDown" && a["labels"]["broker"] == "5")
                    .then(|| a["status"].as_str().unwrap_or_default().to_owned())
            })
        })
        .collect()
}

fn notices(webhook: &WebhookSink, status: &str) -> usize {
    statuses(webhook).iter().filter(|s| *s == status).count()
}

fn member(state: &Path, alertmanagers: [u16; 2]) -> (Daemon, String) {
    start_collector(&format!(
        "{}[store]\nbroker_missing_after = \"1s\"\n[rules.KafkaAgentDown]\nfor = \"0s\"\n[alertmanager]\nurls = [\"http://127.0.0.1:{}\", \"http://127.0.0.1:{}\"]\nresend_interval = \"1s\"\n",
        open_collector_config("ha", state),
        alertmanagers[0],
        alertmanagers[1]
    ))
}

fn agent(collectors: [&str; 2]) -> Daemon {
    start_agent_with_config(
        &format!(
            "broker_id = 5\ninterval = \"200ms\"\ncollector = [\"{}\", \"{}\"]\n[broker]\nenabled = false\n[page_cache]\nebpf = false\n",
            collectors[0], collectors[1]
        ),
        tempfile::tempdir().unwrap(),
    )
    .0
}

#[test]
fn a_collector_pair_notifies_once_loses_a_member_mid_incident_and_still_resolves() {
    let webhook = WebhookSink::start();
    let [(_am1, am1), (_am2, am2)] = start_alertmanager_pair(&webhook.url);
    let (state_a, state_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut a, url_a) = member(state_a.path(), [am1, am2]);
    let (_b, url_b) = member(state_b.path(), [am1, am2]);

    let mut reporting = agent([&url_a, &url_b]);
    for url in [&url_a, &url_b] {
        eventually("the agent's reports at both members", PATIENCE, || {
            get_json(&format!("{url}/api/v1/brokers"))
                .as_array()
                .filter(|b| b.iter().any(|b| b["broker"] == 5))
                .map(|_| ())
        });
    }

    // The incident: broker 5's agent goes silent. Both members fire the
    // same alert (same labels), and the Alertmanagers send one notice.
    reporting.kill_hard();
    let from_a = eventually("KafkaAgentDown at member a", PATIENCE, || {
        agent_down(&url_a).filter(|a| a["state"] == "firing")
    });
    let from_b = eventually("KafkaAgentDown at member b", PATIENCE, || {
        agent_down(&url_b).filter(|a| a["state"] == "firing")
    });
    assert_eq!(from_a["labels"], from_b["labels"]);
    let fired = Instant::now();
    eventually("a firing notice at the webhook", PATIENCE, || {
        (notices(&webhook, "firing") > 0).then_some(())
    });
    println!(
        "first firing notice {:.1} s after both members fired",
        fired.elapsed().as_secs_f64()
    );
    std::thread::sleep(DUPLICATE_WINDOW);
    assert_eq!(notices(&webhook, "firing"), 1, "{:#?}", webhook.received());

    // Member a dies mid-incident; the agent comes back and reports to b
    // (a's buffer waits). b resolves it, and the resolve reaches the webhook.
    a.kill_hard();
    let _back = agent([&url_a, &url_b]);
    let lost = Instant::now();
    eventually("a resolved notice at the webhook", PATIENCE, || {
        (notices(&webhook, "resolved") > 0).then_some(())
    });
    println!(
        "resolved notice {:.1} s after member a was killed",
        lost.elapsed().as_secs_f64()
    );
    assert_eq!(
        agent_down(&url_b).map(|a| a["state"].clone()),
        Some(Value::from("resolved"))
    );
    std::thread::sleep(DUPLICATE_WINDOW);
    // One firing notice, then the resolve. Alertmanager's own HA delivery is
    // at least once: when a resolve lands while the second member waits out
    // its peer timeout, that member may repeat a firing notice and then
    // resolve it; the last word is always the resolve.
    let seen = statuses(&webhook);
    let first_resolve = seen.iter().position(|s| s == "resolved").unwrap();
    assert_eq!(
        &seen[..=first_resolve],
        ["firing", "resolved"],
        "{:#?}",
        webhook.received()
    );
    assert_eq!(
        seen.last().map(String::as_str),
        Some("resolved"),
        "{seen:?}"
    );
    println!("notices at the webhook, in order: {seen:?}");
}
