//! The cluster's own state, from its metadata: whether it can be read at
//! all, and replication health (under-replicated, offline and under-min-ISR
//! partitions with a diagnosis, the preferred-leader imbalance, brokers down).

use std::collections::{BTreeMap, BTreeSet};

use crate::alerts::judge::{age, percent, Judge};
use crate::catalogue::Alert;
use crate::model::replication::{is_internal, ReplicationFacts, INTERNAL_TOPICS};

use super::Inputs;

/// Whether the collector can read the cluster: how long its metadata has
/// been stale (or missing since start), past `stale_after`, and the last error.
#[derive(Debug, Clone, Default)]
pub struct KafkaHealth {
    pub stale_for_seconds: Option<f64>,
    pub error: Option<String>,
}

pub(super) fn judge(j: &mut Judge, inputs: &Inputs) {
    if let Some(health) = inputs.kafka {
        let stale = health.stale_for_seconds.unwrap_or(0.0);
        j.judge(
            Alert::KafkaClusterUnreachable,
            &[],
            health.stale_for_seconds.is_some(),
            &[
                ("stale", age(stale)),
                (
                    "error",
                    health
                        .error
                        .as_deref()
                        .unwrap_or("none recorded")
                        .to_owned(),
                ),
            ],
        );
    }
    if let Some(facts) = inputs.replication {
        replication(j, facts);
    }
}

/// The topics most affected (five at most) and every internal one, each
/// with its count; an internal topic says what breaks.
fn topic_list(counts: &BTreeMap<String, u64>) -> String {
    let mut topics: Vec<(&String, &u64)> = counts.iter().collect();
    topics.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let listed: Vec<String> = topics
        .iter()
        .enumerate()
        .filter(|(i, (t, _))| *i < 5 || is_internal(t))
        .map(
            |(_, (t, n))| match INTERNAL_TOPICS.iter().find(|(name, _)| name == t) {
                Some((_, what)) => format!("{t} {n} (internal: {what})"),
                None => format!("{t} {n}"),
            },
        )
        .collect();
    listed.join(", ")
}

/// `, 2 of them of __consumer_offsets`: an internal topic in the summary.
fn internal_part(counts: &BTreeMap<String, u64>) -> String {
    let internal: Vec<String> = counts
        .iter()
        .filter(|(t, _)| is_internal(t))
        .map(|(t, n)| format!("{n} of {t}"))
        .collect();
    if internal.is_empty() {
        String::new()
    } else {
        format!(", {}", internal.join(" and "))
    }
}

fn replication(j: &mut Judge, facts: &ReplicationFacts) {
    let reassigning = facts.diagnosis.reassigning;
    let faults = facts.under_replicated - reassigning;
    let cause = match facts.diagnosis.suspects.as_slice() {
        [] if faults > 0 => format!(
            "No few brokers explain them (the best three cover {:.0}%): look at the network, the controller, or load across the cluster.",
            facts.diagnosis.explained_ratio * 100.0
        ),
        [] => String::new(),
        suspects => {
            let named: Vec<String> = suspects.iter().map(|(b, n)| format!("broker {b} (missing from {n})")).collect();
            format!(
                "Suspect: {}, together {:.0}% of them. Check that broker: is it up, are its disks or network failing, is it in long GC pauses?",
                named.join(", "),
                facts.diagnosis.explained_ratio * 100.0
            )
        }
    };
    let moving = if reassigning > 0 {
        let topics: Vec<String> = facts
            .diagnosis
            .reassigning_topics
            .iter()
            .map(|(t, n)| format!("{t} {n}"))
            .collect();
        format!(" {reassigning} more are in partitions with extra replicas ({}): a reassignment is probably running, and they are expected until it ends.", topics.join(", "))
    } else {
        String::new()
    };
    j.judge(
        Alert::KafkaUnderReplicatedPartitions,
        &[],
        faults > 0,
        &[
            ("faults", faults.to_string()),
            ("internal", internal_part(&facts.under_replicated_topics)),
            ("cause", cause.clone()),
            ("moving", moving),
            ("topics", topic_list(&facts.under_replicated_topics)),
        ],
    );
    j.judge(
        Alert::KafkaOfflinePartitions,
        &[],
        facts.offline > 0,
        &[
            ("offline", facts.offline.to_string()),
            ("internal", internal_part(&facts.offline_topics)),
            ("topics", topic_list(&facts.offline_topics)),
            ("down", format!("{:?}", facts.brokers_down)),
        ],
    );
    // Unknown (no topic's minimum known): no verdict, the alert keeps its state.
    if let Some(count) = facts.under_min_isr {
        j.judge(
            Alert::KafkaUnderMinIsrPartitions,
            &[],
            count > 0,
            &[("count", count.to_string()), ("cause", cause)],
        );
    }
    let threshold = j.threshold(Alert::KafkaPreferredLeaderImbalance);
    for (broker, b) in &facts.brokers {
        let ratio = b.preferred_leader_imbalance_ratio();
        j.judge(
            Alert::KafkaPreferredLeaderImbalance,
            &[&broker.to_string()],
            ratio > threshold,
            &[
                (
                    "leading",
                    (b.preferred - b.preferred_not_leading).to_string(),
                ),
                ("preferred", b.preferred.to_string()),
                ("ratio", percent(ratio)),
                ("limit", percent(threshold)),
            ],
        );
    }
    let down: BTreeSet<i32> = facts.brokers_down.iter().copied().collect();
    for broker in facts.brokers.keys().copied().chain(down.iter().copied()) {
        j.judge(
            Alert::KafkaBrokerDown,
            &[&broker.to_string()],
            down.contains(&broker),
            &[],
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{cluster_verdicts, default_config, find};
    use super::*;

    #[test]
    fn an_unreachable_cluster_is_an_alert_of_its_own_naming_the_error() {
        let config = default_config();
        let stale = KafkaHealth {
            stale_for_seconds: Some(185.0),
            error: Some("kafka metadata: Local: Broker transport failure".into()),
        };
        let verdicts = cluster_verdicts(&config, Some(&stale), None, &[]);
        let unreachable = find(&verdicts, "KafkaClusterUnreachable", &[]);
        assert!(unreachable.active);
        assert_eq!(unreachable.labels["severity"], "critical");
        assert_eq!(
            unreachable.annotations["summary"],
            "The collector cannot read cluster prod's metadata (stale for 3m 5s)"
        );
        assert!(unreachable.annotations["description"].contains("Broker transport failure"));
        let fresh = cluster_verdicts(&config, Some(&KafkaHealth::default()), None, &[]);
        assert!(!find(&fresh, "KafkaClusterUnreachable", &[]).active);
        // Without [kafka], no verdict at all.
        assert!(cluster_verdicts(&config, None, None, &[]).is_empty());
    }

    #[test]
    fn under_replication_names_the_suspect_and_a_reassignment_does_not_page() {
        use crate::model::replication::{analyze, tests::partition, Snapshot, TopicMeta};
        let config = default_config();
        let topic = |partitions| TopicMeta {
            name: "orders".into(),
            min_insync_replicas: Some(2),
            partitions,
        };
        let faulty = Snapshot {
            brokers: vec![1, 2, 3],
            topics: vec![topic(vec![
                partition(0, 1, &[1, 2, 3], &[1, 2]),
                partition(1, 2, &[2, 3, 1], &[2, 1]),
                partition(2, 1, &[1, 2, 3], &[1]),
            ])],
        };
        let facts = analyze(&faulty, &BTreeSet::from([1, 2, 3, 4]));
        let verdicts = cluster_verdicts(&config, None, Some(&facts), &[]);
        let urp = find(&verdicts, "KafkaUnderReplicatedPartitions", &[]);
        assert!(urp.active);
        assert_eq!(urp.labels["severity"], "critical");
        assert_eq!(
            urp.annotations["summary"],
            "3 under-replicated partitions in cluster prod"
        );
        assert!(
            urp.annotations["description"]
                .starts_with("Suspect: broker 3 (missing from 3), together 100% of them."),
            "{}",
            urp.annotations["description"]
        );
        assert!(
            find(&verdicts, "KafkaUnderMinIsrPartitions", &[]).active,
            "orders/2 has one in-sync replica of 2 needed"
        );
        assert!(!find(&verdicts, "KafkaOfflinePartitions", &[]).active);
        assert!(find(&verdicts, "KafkaBrokerDown", &[("broker", "4")]).active);
        assert!(!find(&verdicts, "KafkaBrokerDown", &[("broker", "1")]).active);
        // Broker 3 is the preferred leader of nothing; broker 2 of orders/1, which it leads.
        assert!(
            !find(
                &verdicts,
                "KafkaPreferredLeaderImbalance",
                &[("broker", "2")]
            )
            .active
        );

        let moving = Snapshot {
            brokers: vec![1, 2, 3, 4],
            topics: vec![topic(vec![
                partition(0, 1, &[1, 2, 3], &[1, 2, 3]),
                partition(1, 2, &[2, 3], &[2, 3]),
                partition(2, 2, &[1, 2, 3, 4], &[1, 2, 3]),
            ])],
        };
        let mut moving = moving;
        moving.topics[0].partitions[1] = partition(1, 2, &[2, 3, 1], &[2, 3, 1]);
        let facts = analyze(&moving, &BTreeSet::new());
        let urp = find(
            &cluster_verdicts(&config, None, Some(&facts), &[]),
            "KafkaUnderReplicatedPartitions",
            &[],
        )
        .clone();
        assert!(!urp.active, "only a reassignment's catch-up");
        assert!(urp.annotations["description"].contains("1 more are in partitions with extra replicas (orders 1): a reassignment is probably running"));
        // Leader imbalance: broker 1 prefers orders/0 and orders/2 but leads one.
        let imbalance = find(
            &cluster_verdicts(&config, None, Some(&facts), &[]),
            "KafkaPreferredLeaderImbalance",
            &[("broker", "1")],
        )
        .clone();
        assert!(imbalance.active);
        assert_eq!(
            imbalance.annotations["summary"],
            "Broker 1 leads 1 of the 2 partitions it is the preferred leader of"
        );
    }

    #[test]
    fn internal_topics_page_named_as_such() {
        use crate::model::replication::{analyze, tests::partition, Snapshot, TopicMeta};
        let config = default_config();
        let topic = |name: &str, partitions| TopicMeta {
            name: name.into(),
            min_insync_replicas: None,
            partitions,
        };
        let snapshot = Snapshot {
            brokers: vec![1, 2, 3],
            topics: vec![
                topic("orders", vec![partition(0, 1, &[1, 2, 3], &[1, 2])]),
                topic(
                    "__consumer_offsets",
                    vec![
                        partition(0, -1, &[3, 1, 2], &[3]),
                        partition(1, 2, &[2, 3, 1], &[2, 1]),
                    ],
                ),
                topic(
                    "__transaction_state",
                    vec![partition(0, 1, &[1, 3, 2], &[1, 2])],
                ),
            ],
        };
        let facts = analyze(&snapshot, &BTreeSet::new());
        let verdicts = cluster_verdicts(&config, None, Some(&facts), &[]);
        let offline = find(&verdicts, "KafkaOfflinePartitions", &[]);
        assert!(offline.active);
        assert_eq!(
            offline.annotations["summary"],
            "1 partitions of cluster prod have no leader, 1 of __consumer_offsets"
        );
        assert!(
            offline.annotations["description"]
                .contains("Topics: __consumer_offsets 1 (internal: every consumer group's commits and fetches of offsets)."),
            "{}",
            offline.annotations["description"]
        );
        let urp = find(&verdicts, "KafkaUnderReplicatedPartitions", &[]);
        assert_eq!(
            urp.annotations["summary"],
            "4 under-replicated partitions in cluster prod, 2 of __consumer_offsets and 1 of __transaction_state"
        );
        assert!(urp.annotations["description"]
            .contains("__transaction_state 1 (internal: every transactional producer)"));
    }
}
