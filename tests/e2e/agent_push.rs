//! The agent's push to the collector: while the collector is down the agent
//! keeps the newest reports in a bounded buffer (dropping and counting the
//! oldest), and delivers them when it is back; a wrong token is refused and
//! never reaches the collector's store.

use std::time::Duration;

use brokerwatch_tests::{
    eventually, free_port, start_agent_with_config, start_collector, Daemon, Scrape,
};
use serde_json::Value;

/// Starts an agent for `broker` with a config file naming the collector and its token.
fn agent(broker: i32, collector: &str, token: &str, buffer: usize) -> (Daemon, String) {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let config = format!(
        "broker_id = {broker}\ninterval = \"200ms\"\ncollector = \"{collector}\"\ncollector_token_file = {:?}\nreport_buffer = {buffer}\n",
        token_file.to_str().unwrap()
    );
    start_agent_with_config(&config, dir)
}

fn agent_counter(url: &str, name: &str) -> f64 {
    Scrape::fetch(url)
        .sum(name, &[])
        .unwrap_or_else(|| panic!("the agent has no {name}"))
}

fn brokers(collector: &str) -> Vec<Value> {
    reqwest::blocking::get(format!("{collector}/api/v1/brokers"))
        .and_then(|r| r.json::<Vec<Value>>())
        .unwrap_or_default()
}

#[test]
fn reports_wait_in_a_bounded_buffer_while_the_collector_is_down_and_arrive_when_it_is_back() {
    let port = free_port();
    let collector_url = format!("http://127.0.0.1:{port}");
    let (_agent, agent_url) = agent(7, &collector_url, "right", 5);
    let (_intruder, intruder_url) = agent(8, &collector_url, "wrong", 5);

    // Down: sends fail, the buffer fills to its bound and the oldest are dropped.
    eventually("dropped reports counted", Duration::from_secs(20), || {
        (agent_counter(&agent_url, "brokerwatch_agent_reports_dropped_total") >= 1.0).then_some(())
    });
    assert!(agent_counter(&agent_url, "brokerwatch_agent_report_send_errors_total") >= 1.0);
    assert_eq!(
        agent_counter(&agent_url, "brokerwatch_agent_report_backlog"),
        5.0,
        "the buffer holds its bound, no more"
    );
    assert_eq!(
        agent_counter(&agent_url, "brokerwatch_agent_reports_sent_total"),
        0.0
    );

    let state = tempfile::tempdir().unwrap();
    let (_collector, url) = start_collector(&format!(
        "cluster = \"push\"\nlisten = \"127.0.0.1:{port}\"\nstate_dir = {:?}\nevaluation_interval = \"200ms\"\n[ingest]\ntokens = [\"right\"]\n",
        state.path().to_str().unwrap()
    ));
    assert_eq!(url, collector_url);

    // Back: the buffered reports go first, then every new one.
    let sent = eventually(
        "the buffered reports delivered",
        Duration::from_secs(30),
        || {
            let sent = agent_counter(&agent_url, "brokerwatch_agent_reports_sent_total");
            (sent >= 6.0).then_some(sent)
        },
    );
    assert!(sent >= 6.0);
    let known = brokers(&url);
    let ours = known
        .iter()
        .find(|b| b["broker"] == 7)
        .expect("broker 7 in the collector");
    assert_eq!(ours["fresh"], true);
    assert_eq!(ours["report"]["broker_id"], 7);
    let received = Scrape::fetch(&format!("{url}/metrics"))
        .sum("brokerwatch_collector_reports_received_total", &[])
        .unwrap();
    assert!(received >= 6.0, "{received}");

    // The wrong token is refused: counted on both sides, never stored.
    eventually(
        "the intruder's reports refused",
        Duration::from_secs(20),
        || {
            (agent_counter(&intruder_url, "brokerwatch_agent_reports_refused_total") >= 1.0)
                .then_some(())
        },
    );
    assert!(brokers(&url).iter().all(|b| b["broker"] != 8));
    let forbidden = Scrape::fetch(&format!("{url}/metrics"))
        .sum(
            "brokerwatch_collector_reports_rejected_total",
            &[("reason", "forbidden")],
        )
        .unwrap();
    assert!(forbidden >= 1.0);
}
