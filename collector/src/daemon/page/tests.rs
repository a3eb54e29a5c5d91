use std::collections::BTreeMap;
use std::sync::Arc;

use super::*;
use crate::config::{from_toml_text, Flags};
use crate::daemon::Evaluator;
use crate::kafka::checks::{ClusterState, Groups};
use crate::model::lag::{GroupLag, TopicLag};
use crate::store::tests::report;
use crate::store::Store;

fn config() -> Config {
    from_toml_text(
        "cluster = \"prod<1>\"\n[ingest]\nallow_unauthenticated = true\n[rules.KafkaClusterLoadImbalance]\nfor = \"0s\"\n[rules.KafkaConsumerGroupLag]\nfor = \"0s\"\n[kafka.properties]\n\"bootstrap.servers\" = \"k:9092\"\n",
        "test",
        &Flags::default(),
    )
    .unwrap()
}

fn group(name: &str, status: Status, lag: i64) -> GroupLag {
    GroupLag {
        group: name.into(),
        status,
        lag_messages: lag,
        lag_seconds: Some(42.0),
        topics: vec![TopicLag {
            topic: "orders".into(),
            status,
            lag_messages: lag,
            lag_seconds: Some(42.0),
            partitions_by_status: vec![(status, 1)],
        }],
    }
}

/// The page of `brokers` reporting (broker 1 carrying four times the
/// others' load) and `groups` lagging.
fn page(brokers: i32, groups: Vec<GroupLag>) -> String {
    let config = Arc::new(config());
    let mut store = Store::new(300.0);
    let mut last_report = BTreeMap::new();
    for broker in 1..=brokers {
        store.insert(report(broker, if broker == 1 { 4.0 } else { 1.0 }), 100.0);
        last_report.insert(broker, 100.0);
    }
    let history: BTreeMap<String, Vec<i64>> = groups
        .iter()
        .map(|g| (g.group.clone(), vec![0, g.lag_messages / 2, g.lag_messages]))
        .collect();
    let cluster = Arc::new(ClusterState {
        groups: Some(Groups {
            at: 100.0,
            lag: Arc::new(groups),
            gone: Vec::new(),
            history: Arc::new(history),
            described: Arc::default(),
        }),
        ..ClusterState::default()
    });
    let mut evaluator = Evaluator::new(config.clone(), Default::default(), Default::default(), 0.0);
    let evaluation = evaluator.evaluate(&store, &last_report, &cluster, 101.0);
    let agents: Vec<AgentRow> = last_report
        .iter()
        .map(|(&broker, &at)| AgentRow {
            broker,
            last_report: at,
            fresh: true,
        })
        .collect();
    render(&PageInput {
        config: &config,
        evaluation: Some(&evaluation),
        agents: &agents,
        now: 110.0,
    })
}

#[test]
fn names_are_shown_as_text_never_as_markup() {
    let text = page(
        2,
        vec![group("<script>alert(1)</script>", Status::Stop, 900)],
    );
    assert!(!text.contains("<script"), "{text}");
    assert!(text.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(text.contains("cluster prod&lt;1&gt;"));
    assert_eq!(escape("a&b\"c'<d>"), "a&amp;b&quot;c&#39;&lt;d&gt;");
}

#[test]
fn alerts_come_first_then_the_load_replication_groups_and_agents() {
    let text = page(
        4,
        vec![
            group("audit", Status::Stop, 17400),
            group("billing", Status::Ok, 0),
        ],
    );
    let at = |needle: &str| {
        text.find(needle)
            .unwrap_or_else(|| panic!("no {needle:?} in the page:\n{text}"))
    };
    assert!(at("id=alerts") < at("id=load"));
    assert!(at("id=load") < at("id=replication"));
    assert!(at("id=replication") < at("id=groups"));
    assert!(at("id=groups") < at("id=agents"));
    // The imbalance and the stopped group fire, with their summaries.
    assert!(text.contains("KafkaClusterLoadImbalance"));
    assert!(text.contains("Consumer group audit is STOP: 17400 messages, 42s behind"));
    // Broker 1's bar says how much, in text.
    assert!(text.contains("broker 1 57.1% +128.6% over"), "{text}");
    assert!(text.contains("IMBALANCED"));
    // The stopped group is listed first, with its sparkline.
    assert!(at("audit") < at("billing"));
    assert!(text.contains("aria-label=\"lag over the last 3 rounds, up to 17400\""));
    assert!(text.contains("<a href=\"/api/v1/consumergroups\">audit</a>"));
    assert!(text.contains("4 reporting, 0 silent"));
    assert!(text.contains("No metadata yet."));
}

#[test]
fn long_lists_are_bounded_with_a_count_of_the_rest() {
    let groups = (0..400)
        .map(|i| group(&format!("g{i}"), Status::Ok, i))
        .collect();
    let text = page(200, groups);
    assert_eq!(
        text.matches("<text").count(),
        MOST_BROKERS,
        "bars of the most deviating brokers only"
    );
    assert!(text.contains("and 170 more brokers, nearer the mean"));
    assert!(text.contains("and 350 more groups"));
    assert!(text.contains("and 150 more agents, reporting"));
    assert!(text.len() < 200_000, "{} bytes", text.len());
}

#[test]
fn before_the_first_evaluation_the_page_says_so() {
    let config = config();
    let text = render(&PageInput {
        config: &config,
        evaluation: None,
        agents: &[],
        now: 0.0,
    });
    assert!(text.contains("No evaluation yet"));
    assert!(text.ends_with("</html>"));
}
