//! Consumer lag: a group whose status is one of `alert_statuses`, or whose
//! lag is over its limits, with what to do about its status and where.

use crate::alerts::judge::{age, Judge};
use crate::catalogue::Alert;
use crate::config::Config;
use crate::model::lag::Status;

use super::Inputs;

pub(super) fn judge(j: &mut Judge, config: &Config, inputs: &Inputs) {
    // Groups the cluster no longer reports: nothing lags any more; their
    // alerts resolve (keeping the wording they fired with).
    for group in inputs.gone_groups {
        j.judge(
            Alert::KafkaConsumerGroupLag,
            &[group],
            false,
            &[
                ("status", "gone".to_owned()),
                ("messages", "no".to_owned()),
                ("behind", "no time".to_owned()),
                (
                    "advice",
                    "The cluster no longer reports the group's offsets.".to_owned(),
                ),
                ("topics", "none".to_owned()),
                ("running", String::new()),
            ],
        );
    }
    let described = inputs.cluster.groups.as_ref().map(|g| &*g.described);
    let limits = &config.consumer_groups;
    for group in inputs.groups {
        let over_messages = limits
            .max_lag_messages(&group.group)
            .is_some_and(|max| group.lag_messages > max);
        let over_seconds = limits
            .max_lag_seconds(&group.group)
            .is_some_and(|max| group.lag_seconds.is_some_and(|s| s > max));
        let behind = group
            .lag_seconds
            .map_or_else(|| "unknown time".to_owned(), age);
        let topics: Vec<String> = group
            .topics
            .iter()
            .filter(|t| t.status != Status::Ok || t.lag_messages > 0)
            .map(|t| {
                let statuses: Vec<String> = t
                    .partitions_by_status
                    .iter()
                    .map(|(s, n)| format!("{n} {}", s.as_str()))
                    .collect();
                format!(
                    "{} {} messages ({})",
                    t.topic,
                    t.lag_messages,
                    statuses.join(", ")
                )
            })
            .collect();
        let description = described.and_then(|d| d.get(&group.group));
        let nobody = description.is_some_and(|d| d.members == 0);
        let running = match description {
            Some(d) if nobody => format!(
                "No consumer is running: the group is {} with no members, so its lag grows until one starts. ",
                d.state
            ),
            Some(d) => format!("The group is {} with {} members. ", d.state, d.members),
            None => String::new(),
        };
        let advice = match group.status {
            Status::Stop | Status::Stall | Status::Err | Status::Warn if nobody => {
                "Start its consumers (or, if the group is retired, delete it: kafka-consumer-groups --delete --group ...)."
            }
            Status::Stop => "The consumers stopped committing while messages keep arriving: are they running, and are they stuck on a message?",
            Status::Stall => "The consumers are not moving though messages are waiting: look for a poison message or a stuck handler.",
            Status::Rewind => "The committed offset went back: someone reset the group, or the consumers restarted from an old position.",
            Status::Err | Status::Warn => "The consumers read more slowly than the producers write: add consumers (up to the partition count) or find what slows them.",
            Status::Ok => "The lag is over the group's limit though it is not growing.",
        };
        j.judge(
            Alert::KafkaConsumerGroupLag,
            &[&group.group],
            limits.alert_statuses.contains(&group.status) || over_messages || over_seconds,
            &[
                ("status", group.status.as_str().to_owned()),
                ("messages", group.lag_messages.to_string()),
                ("behind", behind),
                ("advice", advice.to_owned()),
                ("running", running),
                (
                    "topics",
                    if topics.is_empty() {
                        "none lagging".to_owned()
                    } else {
                        topics.join("; ")
                    },
                ),
            ],
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{cluster_verdicts, config, find};

    #[test]
    fn lag_fires_on_status_and_on_limits() {
        use crate::model::lag::{GroupLag, Status, TopicLag};
        let text = "cluster = \"prod\"\n[ingest]\nallow_unauthenticated = true\n[consumer_groups]\n[consumer_groups.limits.billing]\nmax_lag_messages = 1000\n";
        let config = config(text);
        let group = |name: &str, status: Status, lag_messages: i64| GroupLag {
            group: name.into(),
            status,
            lag_messages,
            lag_seconds: Some(90.0),
            topics: vec![TopicLag {
                topic: "events".into(),
                status,
                lag_messages,
                lag_seconds: Some(90.0),
                partitions_by_status: vec![(status, 2)],
            }],
        };
        let verdicts = cluster_verdicts(
            &config,
            None,
            None,
            &[
                group("stopped", Status::Stop, 500),
                group("slow", Status::Warn, 500),
                group("billing", Status::Warn, 5000),
            ],
        );
        let stopped = find(
            &verdicts,
            "KafkaConsumerGroupLag",
            &[("consumergroup", "stopped")],
        );
        assert!(stopped.active);
        assert_eq!(
            stopped.annotations["summary"],
            "Consumer group stopped is STOP: 500 messages, 1m 30s behind"
        );
        assert!(stopped.annotations["description"].contains("events 500 messages (2 STOP)"));
        assert!(
            !find(
                &verdicts,
                "KafkaConsumerGroupLag",
                &[("consumergroup", "slow")]
            )
            .active,
            "WARN alone does not page by default"
        );
        assert!(
            find(
                &verdicts,
                "KafkaConsumerGroupLag",
                &[("consumergroup", "billing")]
            )
            .active,
            "over billing's limit"
        );
        assert!(
            verdicts
                .iter()
                .all(|v| v.labels["alertname"] == "KafkaConsumerGroupLag"),
            "no metadata: no replication verdicts"
        );
    }

    #[test]
    fn a_group_that_is_gone_resolves_its_alert() {
        use crate::alerts::rules::{verdicts, Inputs};
        use crate::model::cluster::cluster_load;
        use std::collections::BTreeMap;
        let config = config("cluster = \"prod\"\n[ingest]\nallow_unauthenticated = true\n");
        let load = cluster_load(&config.load_params(), BTreeMap::new(), BTreeMap::new());
        let store = crate::store::Store::new(300.0);
        let gone = ["audit".to_owned()];
        let verdicts = verdicts(
            &config,
            &Inputs {
                gone_groups: &gone,
                ..Inputs::quiet(&store, &load, 0.0)
            },
        );
        let audit = find(
            &verdicts,
            "KafkaConsumerGroupLag",
            &[("consumergroup", "audit")],
        );
        assert!(!audit.active);
    }

    #[test]
    fn an_empty_group_reads_as_no_consumer_running() {
        use crate::alerts::rules::{verdicts, Inputs};
        use crate::kafka::checks::{ClusterState, GroupDescription, Groups};
        use crate::model::cluster::cluster_load;
        use crate::model::lag::{GroupLag, Status};
        use std::collections::BTreeMap;
        use std::sync::Arc;
        let config = config("cluster = \"prod\"\n[ingest]\nallow_unauthenticated = true\n");
        let load = cluster_load(&config.load_params(), BTreeMap::new(), BTreeMap::new());
        let store = crate::store::Store::new(300.0);
        let group = |name: &str| GroupLag {
            group: name.into(),
            status: Status::Stop,
            lag_messages: 500,
            lag_seconds: Some(90.0),
            topics: Vec::new(),
        };
        let groups = [group("idle"), group("busy"), group("unknown")];
        let described = |state: &str, members| GroupDescription {
            state: state.into(),
            members,
        };
        let cluster = ClusterState {
            groups: Some(Groups {
                at: 0.0,
                lag: Arc::new(groups.to_vec()),
                gone: Vec::new(),
                history: Arc::default(),
                described: Arc::new(
                    [
                        ("idle".to_owned(), described("Empty", 0)),
                        ("busy".to_owned(), described("Stable", 3)),
                    ]
                    .into(),
                ),
            }),
            ..ClusterState::default()
        };
        let verdicts = verdicts(
            &config,
            &Inputs {
                cluster: &cluster,
                groups: &groups,
                ..Inputs::quiet(&store, &load, 0.0)
            },
        );
        let description = |name: &str| {
            find(
                &verdicts,
                "KafkaConsumerGroupLag",
                &[("consumergroup", name)],
            )
            .annotations["description"]
                .clone()
        };
        assert!(
            description("idle").starts_with("No consumer is running: the group is Empty with no members, so its lag grows until one starts. Start its consumers"),
            "{}",
            description("idle")
        );
        assert!(
            description("busy").starts_with(
                "The group is Stable with 3 members. The consumers stopped committing"
            ),
            "{}",
            description("busy")
        );
        assert!(description("unknown").starts_with("The consumers stopped committing"));
    }
}
