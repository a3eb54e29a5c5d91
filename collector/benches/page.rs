//! The status page at scale: 1,000 brokers reporting (one of them hot) in
//! one resource group, 5,000 consumer groups with a 60-round sparkline each,
//! and the alerts they raise. Prints the page's size and the time to render
//! it (best and median of 21), the evaluation itself not included.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use brokerwatch_collector::config::{from_toml_text, Flags};
use brokerwatch_collector::daemon::page::{render, AgentRow, PageInput};
use brokerwatch_collector::daemon::Evaluator;
use brokerwatch_collector::kafka::checks::{ClusterState, Groups};
use brokerwatch_collector::model::lag::{GroupLag, Status, TopicLag};
use brokerwatch_collector::store::Store;
use brokerwatch_common::{CpuReport, HostReport, Report, SCHEMA_VERSION};

const BROKERS: i32 = 1000;
const GROUPS: usize = 5000;

fn report(broker: i32) -> Report {
    let weight = if broker == 7 {
        3.0
    } else {
        1.0 + (broker % 10) as f64 / 50.0
    };
    Report {
        schema_version: SCHEMA_VERSION,
        broker_id: broker,
        agent_version: "bench".into(),
        timestamp_ms: 0,
        interval_seconds: 10.0,
        host: HostReport {
            cpu: Some(CpuReport {
                cpus: 32,
                utilization_ratio: 0.02 * weight,
                iowait_ratio: 0.01,
            }),
            ..HostReport::default()
        },
    }
}

fn group(i: usize) -> GroupLag {
    let status = [
        Status::Ok,
        Status::Ok,
        Status::Ok,
        Status::Warn,
        Status::Stop,
    ][i % 5];
    let topic = |t: usize| TopicLag {
        topic: format!("topic-{t}"),
        status,
        lag_messages: (i * 10) as i64,
        lag_seconds: Some(i as f64 / 10.0),
        partitions_by_status: vec![(status, 12)],
    };
    GroupLag {
        group: format!("group-{i:05}"),
        status,
        lag_messages: (i * 20) as i64,
        lag_seconds: Some(i as f64 / 10.0),
        topics: vec![topic(i % 97), topic(i % 89)],
    }
}

fn main() {
    let config = Arc::new(
        from_toml_text(
            "cluster = \"bench\"\n[ingest]\nallow_unauthenticated = true\n[rules.KafkaConsumerGroupLag]\nfor = \"0s\"\n[rules.KafkaBrokerLoadDeviation]\nfor = \"0s\"\n",
            "bench",
            &Flags::default(),
        )
        .expect("config"),
    );
    let mut store = Store::new(300.0);
    let mut last_report = BTreeMap::new();
    for broker in 1..=BROKERS {
        store.insert(report(broker), 100.0);
        last_report.insert(broker, 100.0);
    }
    let groups: Vec<GroupLag> = (0..GROUPS).map(group).collect();
    let history: BTreeMap<String, Vec<i64>> = groups
        .iter()
        .map(|g| {
            (
                g.group.clone(),
                (0..60).map(|r| r * g.lag_messages / 60).collect(),
            )
        })
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
    let input = PageInput {
        config: &config,
        evaluation: Some(&evaluation),
        agents: &agents,
        now: 110.0,
    };
    let mut times: Vec<Duration> = (0..21)
        .map(|_| {
            let started = Instant::now();
            std::hint::black_box(render(&input));
            started.elapsed()
        })
        .collect();
    times.sort();
    let page = render(&input);
    println!(
        "status page, {BROKERS} brokers and {GROUPS} groups ({} alerts): {} bytes ({:.1} KiB), rendered in {:.2} ms best, {:.2} ms median",
        evaluation.alerts.alerts.len(),
        page.len(),
        page.len() as f64 / 1024.0,
        times[0].as_secs_f64() * 1000.0,
        times[10].as_secs_f64() * 1000.0
    );
}
