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

/// Brokers as an operator lists them: `broker 4`, `brokers 1, 2, 3`.
fn brokers(members: &[&MemberLoad<i32>]) -> String {
    let ids: Vec<String> = members.iter().map(|m| m.member.to_string()).collect();
    match ids.as_slice() {
        [one] => format!("broker {one}"),
        _ => format!("brokers {}", ids.join(", ")),
    }
}

/// Where to move load to: the brokers beyond -r, else those below the
/// mean share, most underloaded first (five at most).
fn targets(group: &GroupLoad<i32>, r: f64) -> Vec<&MemberLoad<i32>> {
    let mut below: Vec<&MemberLoad<i32>> =
        group.members.iter().filter(|m| m.deviation < -r).collect();
    if below.is_empty() {
        below = group.members.iter().filter(|m| m.deviation < 0.0).collect();
    }
    below.sort_by(|a, b| {
        a.deviation
            .total_cmp(&b.deviation)
            .then(a.member.cmp(&b.member))
    });
    below.truncate(5);
    below
}

pub(super) fn judge(j: &mut Judge, config: &Config, inputs: &Inputs) {
    let r = config.deviation;
    for (group, missing) in &inputs.load.groups {
        if missing.iter().any(|b| inputs.awaited.contains(b)) {
            // Restarted and not all heard from: judged on part of the
            // group, its alerts would resolve and fire again. They keep
            // their state until it is whole or the missing are missing.
            continue;
        }
        let n = group.members.len();
        let below = targets(group, r);
        for m in &group.members {
            let over = m.deviation > 0.0;
            let advice = if over {
                let to: Vec<String> = below
                    .iter()
                    .map(|t| format!("{} ({})", t.member, signed_percent(t.deviation)))
                    .collect();
                format!("Look at the partitions and leaders on broker {}: move some to the brokers below their share, {} (kafka-reassign-partitions, or a preferred leader election if leaders are skewed).", m.member, to.join(", "))
            } else {
                format!("Broker {} takes less than its share, so the others carry more: move partitions or leaders onto it.", m.member)
            };
            j.judge(
                Alert::KafkaBrokerLoadDeviation,
                &[&group.group, &m.member.to_string()],
                group.deviates(m, r) && (over || config.alert_underloaded),
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
            let mut above: Vec<&MemberLoad<i32>> =
                group.members.iter().filter(|m| m.deviation > r).collect();
            if above.is_empty() {
                above.push(most);
            }
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
                    ("from", brokers(&above)),
                    ("to", brokers(&below)),
                ],
            );
        }
    }

    let disk_r = config.disk_deviation;
    for (broker, disks) in &inputs.load.disks {
        let Some((_, least)) = extremes(disks) else {
            continue;
        };
        let latest = inputs.store.get(*broker).map(|e| &e.latest.host);
        let n = disks.members.len();
        for d in &disks.members {
            let over = d.deviation > 0.0;
            let figures = latest
                .and_then(|h| h.disks.iter().find(|r| r.device == d.member))
                .map_or_else(
                    || "its latest figures are not in the report".to_owned(),
                    |r| {
                        format!(
                            "it is busy {} of the time, r_await {:.1} ms, w_await {:.1} ms, queue {:.1}",
                            percent(r.utilization_ratio),
                            r.read_await_seconds * 1000.0,
                            r.write_await_seconds * 1000.0,
                            r.queue_length
                        )
                    },
                );
            let dirs: Vec<&str> = latest
                .map(|h| {
                    h.log_dirs
                        .iter()
                        .filter(|l| l.disks.contains(&d.member))
                        .map(|l| l.log_dir.as_str())
                        .collect()
                })
                .unwrap_or_default();
            j.judge(
                Alert::KafkaBrokerDiskImbalance,
                &[&broker.to_string(), &d.member],
                disks.deviates(d, disk_r) && (over || config.alert_underloaded),
                &[
                    ("share", percent(d.share)),
                    ("disks", n.to_string()),
                    ("deviation", signed_percent(d.deviation)),
                    ("mean", percent(1.0 / n as f64)),
                    ("limit", percent(disk_r)),
                    ("figures", figures),
                    ("dirs", dirs.join(", ")),
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
    fn one_hot_broker_pages_once_and_names_where_to_move_load() {
        let mut store = Store::new(300.0);
        for broker in 1..=4 {
            store.insert(report(broker, if broker == 4 { 2.0 } else { 1.0 }), 100.0);
        }
        let last_seen: BTreeMap<i32, f64> = (1..=4).map(|b| (b, 100.0)).collect();
        let verdicts = host_verdicts(&default_config(), &store, &last_seen, 100.0);
        let hot = find(&verdicts, "KafkaBrokerLoadDeviation", &[("broker", "4")]);
        assert!(hot.active);
        assert!(
            hot.annotations["description"].ends_with(
                "Look at the partitions and leaders on broker 4: move some to the brokers below their share, 1 (-20.0%), 2 (-20.0%), 3 (-20.0%) (kafka-reassign-partitions, or a preferred leader election if leaders are skewed)."
            ),
            "{}",
            hot.annotations["description"]
        );
        for broker in ["1", "2", "3"] {
            assert!(
                !find(&verdicts, "KafkaBrokerLoadDeviation", &[("broker", broker)]).active,
                "underloaded broker {broker} pages too"
            );
        }
        let group = find(
            &verdicts,
            "KafkaClusterLoadImbalance",
            &[("group", "default")],
        );
        assert!(group.active);
        assert!(
            group.annotations["description"].contains("Move load from broker 4 to brokers 1, 2, 3"),
            "{}",
            group.annotations["description"]
        );
        // Warnings on the underloaded side, when asked for.
        let mut config = default_config();
        config.alert_underloaded = true;
        let verdicts = host_verdicts(&config, &store, &last_seen, 100.0);
        let cold = find(&verdicts, "KafkaBrokerLoadDeviation", &[("broker", "1")]);
        assert!(cold.active);
        assert!(cold.annotations["description"].contains("move partitions or leaders onto it"));
    }

    #[test]
    fn a_hot_log_disk_is_named_with_its_figures_and_where_to_move() {
        use crate::store::tests::{disk, log_dir};
        let config = default_config();
        let mut store = Store::new(300.0);
        let mut r = report(1, 1.0);
        r.host.disks = vec![
            disk("sda", 0.0, 0.0, 0.0),
            disk("sdb", 6e6, 3e6, 0.97),
            disk("sdc", 1e6, 0.0, 0.2),
        ];
        r.host.log_dirs = vec![log_dir("/data/1", &["sdb"]), log_dir("/data/2", &["sdc"])];
        r.host.disks[1].read_await_seconds = 0.002;
        r.host.disks[1].write_await_seconds = 0.004;
        r.host.disks[1].queue_length = 1.9;
        store.insert(r, 100.0);
        let verdicts = host_verdicts(&config, &store, &BTreeMap::from([(1, 100.0)]), 100.0);
        let hot = find(
            &verdicts,
            "KafkaBrokerDiskImbalance",
            &[("broker", "1"), ("device", "sdb")],
        );
        assert!(hot.active);
        assert_eq!(
            hot.annotations["summary"],
            "Disk sdb of broker 1 carries 90.0% of the bytes read and written on its 2 log disks"
        );
        assert_eq!(
            hot.annotations["description"],
            "+80.0% against the mean share of 50.0% (limit ±10.0%); it is busy 97.0% of the time, r_await 2.0 ms, w_await 4.0 ms, queue 1.9. Move partitions from its log dirs (/data/1) to those on sdc, which carries 10.0% (kafka-reassign-partitions with log_dirs)."
        );
        assert!(
            !find(&verdicts, "KafkaBrokerDiskImbalance", &[("device", "sdc")]).active,
            "the cold disk is where to move, not a page"
        );
        assert!(
            verdicts.iter().all(
                |v| v.labels.get("device").map(String::as_str) != Some("sda")
                    || v.labels["alertname"] != "KafkaBrokerDiskImbalance"
            ),
            "the OS disk is not compared"
        );
    }

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
        assert!(
            !light.active,
            "20 % against 25 % is -20 %, but the underloaded side does not page by default"
        );
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
