//! The load: a broker's deviation from its group's mean share, a group's
//! imbalance, and the imbalance of the disks inside one broker.

use crate::alerts::judge::{percent, signed_percent, Judge};
use crate::catalogue::Alert;
use crate::config::Config;
use crate::model::load::{GroupLoad, MemberLoad};

use super::Inputs;

/// The metrics in which a member's share is furthest above (or below) the mean.
fn leading_metrics<K>(member: &MemberLoad<K>, members: usize, above: bool) -> String {
    let mean = 1.0 / members as f64;
    let mut shares: Vec<_> = member.metric_shares.iter().collect();
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

pub(super) fn judge(j: &mut Judge, config: &Config, inputs: &Inputs) {
    let r = config.deviation;
    for (group, _missing) in &inputs.load.groups {
        let n = group.members.len();
        for m in &group.members {
            let over = m.deviation > 0.0;
            let advice = if over {
                format!("Look at the partitions and leaders on broker {}: move some away (kafka-reassign-partitions) or run a preferred leader election if leaders are skewed.", m.member)
            } else {
                format!("Broker {} takes less than its share, so the others carry more: move partitions or leaders onto it.", m.member)
            };
            j.judge(
                Alert::KafkaBrokerLoadDeviation,
                &[&group.group, &m.member.to_string()],
                group.deviates(m, r),
                &[
                    ("share", percent(m.share)),
                    ("deviation", signed_percent(m.deviation)),
                    ("mean", percent(1.0 / n as f64)),
                    ("limit", percent(r)),
                    ("side", if over { "Highest" } else { "Lowest" }.to_owned()),
                    ("leading", leading_metrics(m, n, over)),
                    ("advice", advice),
                ],
            );
        }
        if let Some((most, least)) = extremes(group) {
            j.judge(
                Alert::KafkaClusterLoadImbalance,
                &[&group.group],
                group.can_alert() && !group.balanced,
                &[
                    ("stddev", format!("{:.4}", group.stddev)),
                    ("limit", format!("{:.4}", group.stddev_limit)),
                    ("brokers", n.to_string()),
                    ("r", percent(r)),
                    ("most", most.member.to_string()),
                    ("most_share", percent(most.share)),
                    ("most_deviation", signed_percent(most.deviation)),
                    ("least", least.member.to_string()),
                    ("least_share", percent(least.share)),
                    ("least_deviation", signed_percent(least.deviation)),
                ],
            );
        }
    }

    for (broker, disks) in &inputs.load.disks {
        if let Some((most, least)) = extremes(disks) {
            j.judge(
                Alert::KafkaBrokerDiskImbalance,
                &[&broker.to_string()],
                disks.can_alert() && !disks.balanced,
                &[
                    ("most", most.member.clone()),
                    ("most_share", percent(most.share)),
                    ("stddev", format!("{:.4}", disks.stddev)),
                    ("limit", format!("{:.4}", disks.stddev_limit)),
                    ("disks", disks.members.len().to_string()),
                    ("least", least.member.clone()),
                    ("least_share", percent(least.share)),
                ],
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{default_config, find, host_verdicts};
    use crate::store::tests::report;
    use crate::store::Store;
    use std::collections::BTreeMap;

    #[test]
    fn a_slow_disk_is_not_load_to_move_away() {
        // Broker 4 serves what the others serve, but waits on its disks:
        // iowait 40 %, %util 90 %. That is a slow disk (KafkaHostIowaitHigh,
        // KafkaHostDiskSaturated), not a reason to move partitions off it.
        let config = default_config();
        let mut store = Store::new(300.0);
        for broker in 1..=4 {
            let mut r = report(broker, 1.0);
            if broker == 4 {
                r.host.cpu.as_mut().unwrap().iowait_ratio = 0.4;
                r.host.disks[0].utilization_ratio = 0.9;
            }
            store.insert(r, 100.0);
        }
        let last_seen: BTreeMap<i32, f64> = (1..=4).map(|b| (b, 100.0)).collect();
        let verdicts = host_verdicts(&config, &store, &last_seen, 100.0);
        for broker in ["1", "2", "3", "4"] {
            assert!(
                !find(&verdicts, "KafkaBrokerLoadDeviation", &[("broker", broker)]).active,
                "broker {broker}"
            );
        }
        assert!(
            !find(
                &verdicts,
                "KafkaClusterLoadImbalance",
                &[("group", "default")]
            )
            .active
        );
    }

    #[test]
    fn a_heavy_broker_gets_a_deviation_verdict_that_says_where_to_look() {
        let config = default_config();
        let mut store = Store::new(300.0);
        for broker in 1..=4 {
            store.insert(report(broker, if broker == 3 { 2.0 } else { 1.0 }), 100.0);
        }
        let last_seen: BTreeMap<i32, f64> = (1..=4).map(|b| (b, 100.0)).collect();
        let verdicts = host_verdicts(&config, &store, &last_seen, 100.0);
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
}
