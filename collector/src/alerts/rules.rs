//! The collector core's alert rules: each turns the load picture and the
//! store into verdicts, one per subject it can judge now. A subject it
//! cannot judge (a broker with no fresh report, for the host rules) gets no
//! verdict, so its alert keeps its state rather than resolving for lack of data.

use std::collections::BTreeMap;

use super::state::Verdict;
use crate::config::Config;
use crate::model::cluster::ClusterLoad;
use crate::model::lag::{GroupLag, Status};
use crate::model::load::{GroupLoad, MemberLoad};
use crate::model::replication::ReplicationFacts;
use crate::store::{Store, PAGE_CACHE_HIT};

fn percent(ratio: f64) -> String {
    format!("{:.1}%", ratio * 100.0)
}

fn signed_percent(ratio: f64) -> String {
    format!("{:+.1}%", ratio * 100.0)
}

/// `2m 30s` rather than `150.2s`.
fn age(seconds: f64) -> String {
    humantime::format_duration(std::time::Duration::from_secs(seconds.max(0.0) as u64)).to_string()
}

struct Judge<'a> {
    config: &'a Config,
    verdicts: Vec<Verdict>,
}

impl Judge<'_> {
    fn judge(
        &mut self,
        rule: &str,
        subject: &[(&str, String)],
        active: bool,
        summary: String,
        description: String,
    ) {
        let spec = self.config.rule(rule);
        if !spec.enabled {
            return;
        }
        let mut labels: BTreeMap<String, String> = [
            ("alertname".to_owned(), rule.to_owned()),
            ("cluster".to_owned(), self.config.cluster.clone()),
            ("severity".to_owned(), spec.severity.as_str().to_owned()),
        ]
        .into();
        labels.extend(subject.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
        self.verdicts.push(Verdict {
            labels,
            annotations: [
                ("summary".to_owned(), summary),
                ("description".to_owned(), description),
            ]
            .into(),
            active,
            for_seconds: spec.for_duration.as_secs_f64(),
        });
    }
}

/// The metrics in which a member's share is furthest above (or below) the mean.
fn leading_metrics<K>(member: &MemberLoad<K>, members: usize, above: bool) -> String {
    let mean = 1.0 / members as f64;
    let mut shares: Vec<(&String, &f64)> = member.metric_shares.iter().collect();
    shares.sort_by(|a, b| {
        let (da, db) = (a.1 - mean, b.1 - mean);
        if above {
            db.total_cmp(&da)
        } else {
            da.total_cmp(&db)
        }
    });
    shares
        .iter()
        .take(3)
        .map(|(metric, share)| format!("{metric} {}", percent(**share)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn extremes<K: Clone>(group: &GroupLoad<K>) -> Option<(&MemberLoad<K>, &MemberLoad<K>)> {
    let most = group
        .members
        .iter()
        .max_by(|a, b| a.share.total_cmp(&b.share))?;
    let least = group
        .members
        .iter()
        .min_by(|a, b| a.share.total_cmp(&b.share))?;
    Some((most, least))
}

pub fn verdicts(
    config: &Config,
    load: &ClusterLoad,
    store: &Store,
    last_seen: &BTreeMap<i32, f64>,
    now: f64,
) -> Vec<Verdict> {
    let mut j = Judge {
        config,
        verdicts: Vec::new(),
    };
    let r = config.deviation;

    for (group, _missing) in &load.groups {
        let n = group.members.len();
        let alerting = group.can_alert();
        for m in &group.members {
            let over = m.deviation > 0.0;
            j.judge(
                "KafkaBrokerLoadDeviation",
                &[("group", group.group.clone()), ("broker", m.member.to_string())],
                                group.deviates(m, r),
                format!(
                    "Broker {} carries {} of group {}'s load, {} against the mean share of {}",
                    m.member,
                    percent(m.share),
                    group.group,
                    signed_percent(m.deviation),
                    percent(1.0 / n as f64)
                ),
                format!(
                    "Its deviation {} is beyond ±{}. {} shares: {}. {}",
                    signed_percent(m.deviation),
                    percent(r),
                    if over { "Highest" } else { "Lowest" },
                    leading_metrics(m, n, over),
                    if over {
                        format!("Look at the partitions and leaders on broker {}: move some away (kafka-reassign-partitions) or run a preferred leader election if leaders are skewed.", m.member)
                    } else {
                        format!("Broker {} takes less than its share, so the others carry more: move partitions or leaders onto it.", m.member)
                    }
                ),
            );
        }
        if let Some((most, least)) = extremes(group) {
            j.judge(
                "KafkaClusterLoadImbalance",
                &[("group", group.group.clone())],
                alerting && !group.balanced,
                format!(
                    "Group {}'s load is uneven: standard deviation {:.4} against a limit of {:.4}",
                    group.group, group.stddev, group.stddev_limit
                ),
                format!(
                    "{} brokers, limit r/N with r = {}. Most loaded: broker {} with {} ({}); least loaded: broker {} with {} ({}). Rebalance the group's partitions (kafka-reassign-partitions or Cruise Control).",
                    n,
                    percent(r),
                    most.member,
                    percent(most.share),
                    signed_percent(most.deviation),
                    least.member,
                    percent(least.share),
                    signed_percent(least.deviation)
                ),
            );
        }
    }

    for (broker, disks) in &load.disks {
        if let Some((most, least)) = extremes(disks) {
            j.judge(
                "KafkaBrokerDiskImbalance",
                &[("broker", broker.to_string())],
                disks.can_alert() && !disks.balanced,
                format!(
                    "The disks of broker {broker} are unevenly loaded: {} carries {} of their I/O",
                    most.member,
                    percent(most.share)
                ),
                format!(
                    "Standard deviation {:.4} against a limit of {:.4} over {} disks; least loaded: {} with {}. Move partitions between broker {broker}'s log dirs (kafka-reassign-partitions with log_dirs).",
                    disks.stddev,
                    disks.stddev_limit,
                    disks.members.len(),
                    least.member,
                    percent(least.share)
                ),
            );
        }
    }

    let missing_after = config.broker_missing_after.as_secs_f64();
    for (broker, seen) in last_seen {
        let silent = now - seen;
        j.judge(
            "KafkaAgentDown",
            &[("broker", broker.to_string())],
            silent > missing_after,
            format!("No report from the agent of broker {broker} for {}", age(silent)),
            format!(
                "Its last report came at {}. Broker {broker} is left out of the load until it reports. Check brokerwatch-agent on the host (systemctl status brokerwatch-agent) and its route to the collector.",
                humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs_f64(seen.max(0.0)))
            ),
        );
    }

    let threshold = |rule: &str| {
        config
            .rule(rule)
            .threshold
            .expect("host rules have thresholds")
    };
    for (&broker, _) in store
        .brokers()
        .filter(|(b, _)| store.is_fresh(**b, now, missing_after))
    {
        for name in store
            .series_names(broker)
            .map(str::to_owned)
            .collect::<Vec<_>>()
        {
            let Some(value) = store.robust(broker, &name, now) else {
                continue;
            };
            if let Some(device) = name
                .strip_prefix("disk:")
                .and_then(|s| s.strip_suffix(":io_util"))
            {
                let limit = threshold("KafkaHostDiskSaturated");
                j.judge(
                    "KafkaHostDiskSaturated",
                    &[("broker", broker.to_string()), ("device", device.to_owned())],
                    value > limit,
                    format!("Disk {device} of broker {broker} is busy {} of the time", percent(value)),
                    format!(
                        "Median %util over the window is {} (limit {}). Requests queue behind it: produce and fetch latency on broker {broker} will rise. Check which log dirs sit on {device} and move partitions off it.",
                        percent(value),
                        percent(limit)
                    ),
                );
            } else if let Some(interface) = name
                .strip_prefix("link:")
                .and_then(|s| s.strip_suffix(":utilization"))
            {
                let limit = threshold("KafkaHostNetworkSaturated");
                j.judge(
                    "KafkaHostNetworkSaturated",
                    &[("broker", broker.to_string()), ("device", interface.to_owned())],
                    value > limit,
                    format!("Link {interface} of broker {broker} runs at {} of its speed", percent(value)),
                    format!(
                        "Median utilization of the busier direction over the window is {} (limit {}). Consumers and followers of broker {broker} will lag; move leaders off it or add bandwidth.",
                        percent(value),
                        percent(limit)
                    ),
                );
            } else if name == PAGE_CACHE_HIT {
                let limit = threshold("KafkaPageCacheHitRatioLow");
                j.judge(
                    "KafkaPageCacheHitRatioLow",
                    &[("broker", broker.to_string())],
                    value < limit,
                    format!("Broker {broker} serves only {} of its reads from the page cache", percent(value)),
                    format!(
                        "Median page-cache hit ratio over the window is {} (limit {}): consumers or followers of broker {broker} are reading from disk. Look for lagging consumers reading old data, and at the memory left for the page cache and the disk %util of broker {broker}.",
                        percent(value),
                        percent(limit)
                    ),
                );
            } else if name == "iowait" {
                let limit = threshold("KafkaHostIowaitHigh");
                j.judge(
                    "KafkaHostIowaitHigh",
                    &[("broker", broker.to_string())],
                    value > limit,
                    format!("Broker {broker}'s CPUs wait on I/O {} of the time", percent(value)),
                    format!(
                        "Median iowait over the window is {} (limit {}): reads are missing the page cache or the disks are saturated. Look at the disk %util and the page-cache hit rate of broker {broker}.",
                        percent(value),
                        percent(limit)
                    ),
                );
            }
        }
    }
    j.verdicts
}

/// Whether the collector can read the cluster: how long its metadata has
/// been stale (or missing since start), past `stale_after`, and the last error.
#[derive(Debug, Clone, Default)]
pub struct KafkaHealth {
    pub stale_for_seconds: Option<f64>,
    pub error: Option<String>,
}

/// The cluster's own state: whether it can be read at all, replication
/// health (when the metadata is fresh) and consumer groups (when their
/// offsets are).
pub fn cluster_verdicts(
    config: &Config,
    kafka: Option<&KafkaHealth>,
    replication: Option<&ReplicationFacts>,
    groups: &[GroupLag],
) -> Vec<Verdict> {
    let mut j = Judge {
        config,
        verdicts: Vec::new(),
    };
    if let Some(health) = kafka {
        let cluster = config.cluster.clone();
        let stale = health.stale_for_seconds.unwrap_or(0.0);
        j.judge(
            "KafkaClusterUnreachable",
            &[],
            health.stale_for_seconds.is_some(),
            format!(
                "The collector cannot read cluster {cluster}'s metadata (stale for {})",
                humantime::format_duration(std::time::Duration::from_secs(stale.max(0.0) as u64))
            ),
            format!(
                "Replication and consumer-lag alerts of {cluster} are on hold and their series withheld until the cluster answers again; last error: {}. Check the collector's [kafka.properties] (bootstrap.servers, SASL/SSL) and that the brokers are reachable from the collector's host.",
                health.error.as_deref().unwrap_or("none recorded")
            ),
        );
    }
    if let Some(facts) = replication {
        replication_verdicts(&mut j, facts);
    }
    for group in groups {
        let limits = &config.consumer_groups;
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
        let advice = match group.status {
            Status::Stop => "The consumers stopped committing while messages keep arriving: are they running, and are they stuck on a message?",
            Status::Stall => "The consumers are not moving though messages are waiting: look for a poison message or a stuck handler.",
            Status::Rewind => "The committed offset went back: someone reset the group, or the consumers restarted from an old position.",
            Status::Err | Status::Warn => "The consumers read more slowly than the producers write: add consumers (up to the partition count) or find what slows them.",
            Status::Ok => "The lag is over the group's limit though it is not growing.",
        };
        j.judge(
            "KafkaConsumerGroupLag",
            &[("consumergroup", group.group.clone())],
            limits.alert_statuses.contains(&group.status) || over_messages || over_seconds,
            format!(
                "Consumer group {} is {}: {} messages, {behind} behind",
                group.group,
                group.status.as_str(),
                group.lag_messages
            ),
            format!(
                "{advice} Topics: {}.",
                if topics.is_empty() {
                    "none lagging".to_owned()
                } else {
                    topics.join("; ")
                }
            ),
        );
    }
    j.verdicts
}

fn replication_verdicts(j: &mut Judge<'_>, facts: &ReplicationFacts) {
    let cluster = j.config.cluster.clone();
    let reassigning = facts.diagnosis.reassigning;
    let faults = facts.under_replicated - reassigning;
    let mut topics: Vec<(&String, &u64)> = facts.under_replicated_topics.iter().collect();
    topics.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let topics: Vec<String> = topics
        .iter()
        .take(5)
        .map(|(t, n)| format!("{t} {n}"))
        .collect();
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
        "KafkaUnderReplicatedPartitions",
        &[],
        faults > 0,
        format!("{faults} under-replicated partitions in cluster {cluster}"),
        format!("{cause}{moving} Topics: {}.", topics.join(", ")),
    );
    j.judge(
        "KafkaOfflinePartitions",
        &[],
        facts.offline > 0,
        format!("{} partitions of cluster {cluster} have no leader", facts.offline),
        format!(
            "Producers and consumers of those partitions are failing now. Brokers down: {:?}. Bring their replicas back, or (losing data) allow an unclean leader election.",
            facts.brokers_down
        ),
    );
    j.judge(
        "KafkaUnderMinIsrPartitions",
        &[],
        facts.under_min_isr > 0,
        format!("{} partitions of cluster {cluster} have fewer in-sync replicas than min.insync.replicas", facts.under_min_isr),
        format!("Producers with acks=all get NOT_ENOUGH_REPLICAS on them. {cause}"),
    );
    let threshold = j
        .config
        .rule("KafkaPreferredLeaderImbalance")
        .threshold
        .expect("has a threshold");
    for (broker, b) in &facts.brokers {
        let ratio = b.preferred_leader_imbalance_ratio();
        j.judge(
            "KafkaPreferredLeaderImbalance",
            &[("broker", broker.to_string())],
            ratio > threshold,
            format!("Broker {broker} leads {} of the {} partitions it is the preferred leader of", b.preferred - b.preferred_not_leading, b.preferred),
            format!(
                "Leader imbalance {} (limit {}): its leadership sits on other brokers. Run a preferred leader election (kafka-leader-election --election-type PREFERRED) or check auto.leader.rebalance.enable.",
                percent(ratio),
                percent(threshold)
            ),
        );
    }
    let down: std::collections::BTreeSet<i32> = facts.brokers_down.iter().copied().collect();
    for broker in facts.brokers.keys().copied().chain(down.iter().copied()) {
        j.judge(
            "KafkaBrokerDown",
            &[("broker", broker.to_string())],
            down.contains(&broker),
            format!("Broker {broker} is not in cluster {cluster}'s metadata"),
            "It was expected (configured or seen before). Its partitions lose a replica, and those it led move or go offline: check the broker process and host (KafkaAgentDown tells whether the host still reports).".to_owned(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{from_toml_text, Flags};
    use crate::model::cluster::cluster_load;
    use crate::store::tests::{disk, link, report};
    use std::collections::BTreeSet;

    fn config() -> Config {
        let text = "cluster = \"prod\"\n[ingest]\nallow_unauthenticated = true\n[rules.KafkaHostIowaitHigh]\nenabled = false\n";
        from_toml_text(text, "test", &Flags::default()).unwrap()
    }

    fn find<'a>(verdicts: &'a [Verdict], alertname: &str, subject: &[(&str, &str)]) -> &'a Verdict {
        verdicts
            .iter()
            .find(|v| {
                v.labels["alertname"] == alertname
                    && subject
                        .iter()
                        .all(|(k, val)| v.labels.get(*k).map(String::as_str) == Some(*val))
            })
            .unwrap_or_else(|| panic!("no {alertname} {subject:?} verdict"))
    }

    #[test]
    fn a_heavy_broker_gets_a_deviation_verdict_that_says_where_to_look() {
        let config = config();
        let mut store = Store::new(300.0);
        for broker in 1..=4 {
            store.insert(report(broker, if broker == 3 { 2.0 } else { 1.0 }), 100.0);
        }
        let last_seen: BTreeMap<i32, f64> = (1..=4).map(|b| (b, 100.0)).collect();
        let load = cluster_load(&config, &store, &BTreeSet::new(), 100.0, None);
        let verdicts = verdicts(&config, &load, &store, &last_seen, 100.0);
        let heavy = find(&verdicts, "KafkaBrokerLoadDeviation", &[("broker", "3")]);
        assert!(heavy.active);
        assert_eq!(heavy.labels["cluster"], "prod");
        assert_eq!(heavy.labels["severity"], "warning");
        assert_eq!(heavy.labels["group"], "default");
        assert_eq!(heavy.for_seconds, 900.0);
        assert_eq!(heavy.annotations["summary"], "Broker 3 carries 40.0% of group default's load, +60.0% against the mean share of 25.0%");
        assert!(
            heavy.annotations["description"]
                .starts_with("Its deviation +60.0% is beyond ±10.0%. Highest shares: "),
            "{}",
            heavy.annotations["description"]
        );
        assert!(heavy.annotations["description"].contains("partitions and leaders on broker 3"));
        let light = find(&verdicts, "KafkaBrokerLoadDeviation", &[("broker", "1")]);
        assert!(light.active, "20 % against 25 % is -20 %");
        let imbalance = find(
            &verdicts,
            "KafkaClusterLoadImbalance",
            &[("group", "default")],
        );
        assert!(imbalance.active);
        assert!(imbalance.annotations["description"]
            .contains("Most loaded: broker 3 with 40.0% (+60.0%)"));
        assert!(!find(&verdicts, "KafkaAgentDown", &[("broker", "2")]).active);
        // Disabled rules give no verdicts at all.
        assert!(verdicts
            .iter()
            .all(|v| v.labels["alertname"] != "KafkaHostIowaitHigh"));
    }

    #[test]
    fn an_unreachable_cluster_is_an_alert_of_its_own_naming_the_error() {
        let config = config();
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
    fn a_low_page_cache_hit_ratio_fires_preferring_the_ebpf_method() {
        let config = config();
        let mut store = Store::new(300.0);
        // Broker 1: ebpf says 55 %, the estimate 95 %: the exact method wins.
        let mut cold = report(1, 1.0);
        cold.host.page_cache_hit_ratio_ebpf = Some(0.55);
        cold.host.page_cache_hit_ratio_estimate = Some(0.95);
        // Broker 2: only the estimate, 97 %. Broker 3: neither: no verdict.
        let mut warm = report(2, 1.0);
        warm.host.page_cache_hit_ratio_estimate = Some(0.97);
        for r in [cold, warm, report(3, 1.0)] {
            store.insert(r, 1000.0);
        }
        let last_seen = BTreeMap::from([(1, 1000.0), (2, 1000.0), (3, 1000.0)]);
        let load = cluster_load(&config, &store, &BTreeSet::new(), 1000.0, None);
        let verdicts = verdicts(&config, &load, &store, &last_seen, 1000.0);
        let low = find(&verdicts, "KafkaPageCacheHitRatioLow", &[("broker", "1")]);
        assert!(low.active);
        assert_eq!(
            low.annotations["summary"],
            "Broker 1 serves only 55.0% of its reads from the page cache"
        );
        assert!(!find(&verdicts, "KafkaPageCacheHitRatioLow", &[("broker", "2")]).active);
        assert!(verdicts
            .iter()
            .all(|v| !(v.labels["alertname"] == "KafkaPageCacheHitRatioLow"
                && v.labels["broker"] == "3")));
    }

    #[test]
    fn host_rules_judge_fresh_brokers_only_and_agent_down_says_since_when() {
        let config = config();
        let mut store = Store::new(300.0);
        let mut busy = report(1, 1.0);
        busy.host.disks = vec![disk("sdb", 0.0, 0.0, 0.97), disk("sdc", 0.0, 0.0, 0.20)];
        busy.host.interfaces = vec![link("ens1f0", 1.2e9, 0.0, Some(1.25e9))];
        store.insert(busy, 1000.0);
        store.insert(report(2, 1.0), 500.0);
        let last_seen = BTreeMap::from([(1, 1000.0), (2, 500.0)]);
        let load = cluster_load(&config, &store, &BTreeSet::new(), 1000.0, None);
        let verdicts = verdicts(&config, &load, &store, &last_seen, 1000.0);
        let disk = find(
            &verdicts,
            "KafkaHostDiskSaturated",
            &[("broker", "1"), ("device", "sdb")],
        );
        assert!(disk.active);
        assert_eq!(
            disk.annotations["summary"],
            "Disk sdb of broker 1 is busy 97.0% of the time"
        );
        assert!(!find(&verdicts, "KafkaHostDiskSaturated", &[("device", "sdc")]).active);
        let link = find(
            &verdicts,
            "KafkaHostNetworkSaturated",
            &[("broker", "1"), ("device", "ens1f0")],
        );
        assert!(link.active && link.annotations["summary"].ends_with("runs at 96.0% of its speed"));
        assert!(find(&verdicts, "KafkaBrokerDiskImbalance", &[("broker", "1")]).active);
        // Broker 2 is silent: no host verdicts (unknown), but agent down.
        assert!(verdicts
            .iter()
            .all(
                |v| !(v.labels.get("broker").map(String::as_str) == Some("2")
                    && v.labels["alertname"].starts_with("KafkaHost"))
            ));
        let down = find(&verdicts, "KafkaAgentDown", &[("broker", "2")]);
        assert!(down.active);
        assert_eq!(down.labels["severity"], "critical");
        assert_eq!(
            down.annotations["summary"],
            "No report from the agent of broker 2 for 8m 20s"
        );
        assert!(down.annotations["description"]
            .starts_with("Its last report came at 1970-01-01T00:08:20Z."));
        // A group of one fresh broker never alerts on load.
        assert!(!find(&verdicts, "KafkaBrokerLoadDeviation", &[("broker", "1")]).active);
    }

    #[test]
    fn under_replication_names_the_suspect_and_a_reassignment_does_not_page() {
        use crate::model::replication::{analyze, tests::partition, Snapshot, TopicMeta};
        let config = config();
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
    fn lag_fires_on_status_and_on_limits() {
        use crate::model::lag::{GroupLag, Status, TopicLag};
        let text = "cluster = \"prod\"\n[ingest]\nallow_unauthenticated = true\n[consumer_groups]\n[consumer_groups.limits.billing]\nmax_lag_messages = 1000\n";
        let config = from_toml_text(text, "test", &Flags::default()).unwrap();
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
}
