//! Topics, partitions and users, from the end offsets and the metadata (and
//! the agents' quota figures for users): traffic that stops, jumps or piles
//! onto a few partitions, topics laid out so that one broker's loss hurts
//! more than it must, and leaders that keep moving.

use std::collections::BTreeMap;

use crate::alerts::judge::{age, percent, timestamp, Judge};
use crate::catalogue::Alert;
use crate::config::{Config, TopicsConfig};
use crate::model::anomaly::{AnomalySettings, Direction, Series};
use crate::model::topics::{TopicFacts, TopicsFacts};

use super::Inputs;

/// A traffic history and the time of its last sample.
pub struct Rates<'a> {
    pub series: &'a Series,
    pub at: f64,
}

pub(super) fn judge(j: &mut Judge, config: &Config, inputs: &Inputs) {
    let settings = &config.topics;
    if let Some(topics) = inputs.topics {
        judge_topics(j, settings, topics, inputs.now);
    }
    if let Some(rates) = &inputs.topic_rates {
        anomalies(
            j,
            Alert::KafkaTopicTrafficAnomaly,
            rates,
            &settings.topic_anomalies(),
            records,
        );
    }
    too_large(j, settings, inputs);
    if let Some(rates) = &inputs.user_rates {
        anomalies(
            j,
            Alert::KafkaUserTrafficAnomaly,
            rates,
            &settings.user_anomalies(),
            super::broker::bytes,
        );
    }
}

fn judge_topics(j: &mut Judge, settings: &TopicsConfig, topics: &TopicsFacts, now: f64) {
    let skew_factor = j.threshold(Alert::KafkaTopicPartitionSkew);
    let concentration = j.threshold(Alert::KafkaTopicConcentrated);
    let flap_changes = j.threshold(Alert::KafkaPartitionLeaderFlapping);
    for topic in &topics.topics {
        let name = topic.topic.as_str();
        if !topic.internal {
            no_traffic(j, settings, topic, now);
            skew(j, settings, topic, skew_factor);
        }
        replication_factor(j, settings, topic, topics.brokers);
        concentrated(j, topic, topics.brokers, concentration);
        let flapping: Vec<&(i32, usize)> = topic
            .flapping
            .iter()
            .filter(|(_, n)| *n as f64 >= flap_changes)
            .collect();
        if flapping.is_empty() {
            j.clear(Alert::KafkaPartitionLeaderFlapping, &[name]);
            continue;
        }
        let listed: Vec<String> = flapping
            .iter()
            .take(10)
            .map(|(p, n)| format!("{p} ({n})"))
            .collect();
        let mut leaders: Vec<i32> = flapping
            .iter()
            .filter_map(|(p, _)| topic.partitions.iter().find(|f| f.partition == *p))
            .map(|f| f.leader)
            .collect();
        leaders.sort_unstable();
        leaders.dedup();
        let leaders: Vec<String> = leaders
            .iter()
            .map(|l| {
                if *l < 0 {
                    "none".to_owned()
                } else {
                    format!("broker {l}")
                }
            })
            .collect();
        j.judge(
            Alert::KafkaPartitionLeaderFlapping,
            &[name],
            true,
            &[
                ("count", flapping.len().to_string()),
                ("most", format!("{flap_changes}")),
                ("partitions", listed.join(", ")),
                ("leaders", leaders.join(", ")),
            ],
        );
    }
}

/// Partitions written too fast (or holding too much), per topic, from the
/// agents' largest and fastest partitions; every topic the agents see gets a
/// verdict, so that one no longer large resolves.
fn too_large(j: &mut Judge, settings: &TopicsConfig, inputs: &Inputs) {
    let per_day = j.threshold(Alert::KafkaPartitionTooLarge) * 1_073_741_824.0;
    let mut worst: BTreeMap<&str, (&crate::store::LargePartition, String, String)> =
        BTreeMap::new();
    for large in inputs.large_partitions {
        let written = large.size.written_bytes_per_day.filter(|w| *w >= per_day);
        let held = settings
            .max_partition_bytes
            .filter(|most| large.size.size_bytes > *most);
        let (what, figures) = match (written, held) {
            (Some(w), _) => (
                format!("is written {} a day", super::broker::bytes(w)),
                format!(
                    "{} written a day (limit {}), {} held",
                    super::broker::bytes(w),
                    super::broker::bytes(per_day),
                    super::broker::bytes(large.size.size_bytes as f64)
                ),
            ),
            (None, Some(most)) => (
                format!(
                    "holds {}",
                    super::broker::bytes(large.size.size_bytes as f64)
                ),
                format!(
                    "{} held (limit {})",
                    super::broker::bytes(large.size.size_bytes as f64),
                    super::broker::bytes(most as f64)
                ),
            ),
            (None, None) => continue,
        };
        worst
            .entry(large.size.topic.as_str())
            .or_insert((large, what, figures));
    }
    for topic in inputs.topics_on_brokers.keys() {
        if !worst.contains_key(topic.as_str()) {
            j.clear(Alert::KafkaPartitionTooLarge, &[topic]);
        }
    }
    for (topic, (large, what, figures)) in worst {
        j.judge(
            Alert::KafkaPartitionTooLarge,
            &[topic],
            true,
            &[
                ("partition", large.size.partition.to_string()),
                ("what", what),
                ("broker", large.broker.to_string()),
                ("log_dir", large.log_dir.clone()),
                ("figures", figures),
            ],
        );
    }
}

fn no_traffic(j: &mut Judge, settings: &TopicsConfig, topic: &TopicFacts, now: f64) {
    let quiet = now - topic.quiet_since();
    let active = quiet >= settings.no_traffic_after.as_secs_f64();
    if !active {
        j.clear(Alert::KafkaTopicNoTraffic, &[&topic.topic]);
        return;
    }
    let since = match topic.last_message_at {
        Some(at) => timestamp(at),
        None => format!(
            "{} (when brokerwatch first saw it; it took none since)",
            timestamp(topic.first_seen_at)
        ),
    };
    j.judge(
        Alert::KafkaTopicNoTraffic,
        &[&topic.topic],
        true,
        &[
            ("quiet", age(quiet)),
            ("since", since),
            ("partitions", topic.partitions.len().to_string()),
        ],
    );
}

/// `1234.5` records a second as an operator reads it.
fn records(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

fn skew(j: &mut Judge, settings: &TopicsConfig, topic: &TopicFacts, factor: f64) {
    let hot = topic.hot_partitions(factor).filter(|(hot, mean)| {
        !hot.is_empty() && mean * topic.partitions.len() as f64 >= settings.min_records_per_second
    });
    let Some((hot, mean)) = hot else {
        j.clear(Alert::KafkaTopicPartitionSkew, &[&topic.topic]);
        return;
    };
    let total = mean * topic.partitions.len() as f64;
    let hot_sum: f64 = hot.iter().filter_map(|p| p.records_per_second).sum();
    let hottest: Vec<String> = hot
        .iter()
        .take(5)
        .map(|p| {
            let leader = if p.leader < 0 {
                "no leader".to_owned()
            } else {
                format!("led by broker {}", p.leader)
            };
            format!(
                "partition {} ({leader}) {} records/s",
                p.partition,
                records(p.records_per_second.unwrap_or(0.0))
            )
        })
        .collect();
    j.judge(
        Alert::KafkaTopicPartitionSkew,
        &[&topic.topic],
        true,
        &[
            ("count", hot.len().to_string()),
            ("partitions", topic.partitions.len().to_string()),
            ("share", percent(hot_sum / total)),
            ("hottest", hottest.join(", ")),
            ("mean", records(mean)),
        ],
    );
}

fn replication_factor(j: &mut Judge, settings: &TopicsConfig, topic: &TopicFacts, brokers: usize) {
    let rf = topic.replication_factor;
    let target = settings.min_replication_factor.min(brokers);
    let min_isr = topic.min_insync_replicas.map(|m| m as usize);
    let below = rf < target;
    let blocks_acks_all = min_isr.is_some_and(|m| m > 1 && rf <= m && rf < brokers);
    if rf == 0 || !(below || blocks_acks_all) {
        j.clear(Alert::KafkaTopicReplicationFactorLow, &[&topic.topic]);
        return;
    }
    let why = if below {
        format!(" (this cluster's topics should have {target})")
    } else {
        format!(
            ", no more than its min.insync.replicas {}",
            min_isr.unwrap_or(0)
        )
    };
    let consequence = if rf == 1 {
        "One broker's loss makes its partitions unavailable, and one disk's loss loses their data."
            .to_owned()
    } else if blocks_acks_all {
        "Producers with acks=all get NOT_ENOUGH_REPLICAS as soon as one replica falls out of sync (a broker restart, a slow disk).".to_owned()
    } else {
        format!(
            "It survives {} broker losses, fewer than this cluster's topics should.",
            rf - 1
        )
    };
    let wanted = target.max(min_isr.map_or(0, |m| m + 1)).min(brokers);
    j.judge(
        Alert::KafkaTopicReplicationFactorLow,
        &[&topic.topic],
        true,
        &[
            ("rf", rf.to_string()),
            ("why", why),
            ("consequence", consequence),
            ("target", wanted.to_string()),
        ],
    );
}

fn concentrated(j: &mut Judge, topic: &TopicFacts, brokers: usize, ratio: f64) {
    let replicas = (
        topic.replica_brokers,
        topic.replica_brokers_possible(brokers),
    );
    let leaders = (topic.leader_brokers, topic.leader_brokers_possible(brokers));
    let short = |(spanned, possible): (usize, usize)| {
        possible >= 2 && (spanned as f64) < ratio * possible as f64
    };
    let (what, (spanned, possible)) = if short(replicas) {
        ("replicas", replicas)
    } else if short(leaders) {
        ("leaders", leaders)
    } else {
        j.clear(Alert::KafkaTopicConcentrated, &[&topic.topic]);
        return;
    };
    j.judge(
        Alert::KafkaTopicConcentrated,
        &[&topic.topic],
        true,
        &[
            ("spanned", spanned.to_string()),
            ("possible", possible.to_string()),
            ("what", what.to_owned()),
            (
                "detail",
                format!(
                    "Its {} partitions' replicas are on {} brokers (of {} they could use), their leaders on {} (of {}).",
                    topic.partitions.len(),
                    replicas.0,
                    replicas.1,
                    leaders.0,
                    leaders.1
                ),
            ),
        ],
    );
}

fn anomalies(
    j: &mut Judge,
    alert: Alert,
    rates: &Rates,
    settings: &AnomalySettings,
    unit: fn(f64) -> String,
) {
    // Series this round did not read keep their alerts' state.
    for (name, history) in rates
        .series
        .histories()
        .iter()
        .filter(|(_, h)| h.last_at() == Some(rates.at))
    {
        let anomaly = history.judge(rates.at, settings);
        for direction in [Direction::Surge, Direction::Drop] {
            let Some(a) = anomaly.filter(|a| a.direction == direction) else {
                j.clear(alert, &[name, direction.as_str()]);
                continue;
            };
            let yesterday = match a.yesterday {
                Some(y) if y > 0.0 => format!(
                    " and {:.1}× the same hour yesterday ({})",
                    a.current / y,
                    unit(y)
                ),
                Some(_) => " (the same hour yesterday had none)".to_owned(),
                None => {
                    " (less than a day of history: no same hour yesterday to compare)".to_owned()
                }
            };
            let advice = match direction {
                Direction::Surge => "A new or runaway producer, a replay or a retry storm: find who writes it (client quotas and the brokers' request metrics name the users) before its brokers' disks and network fill; a consumer's lag will follow.",
                Direction::Drop => "A producer failing, cut off or throttled: check its producers' logs and KafkaUserThrottled; consumers downstream will see the gap.",
            };
            j.judge(
                alert,
                &[name, direction.as_str()],
                true,
                &[
                    (
                        "changed",
                        match direction {
                            Direction::Surge => "surged",
                            Direction::Drop => "dropped",
                        }
                        .to_owned(),
                    ),
                    ("current", unit(a.current)),
                    ("baseline", unit(a.baseline)),
                    (
                        "ratio",
                        if a.baseline > 0.0 {
                            format!("{:.2}×", a.current / a.baseline)
                        } else {
                            "far above (it had none)".to_owned()
                        },
                    ),
                    ("yesterday", yesterday),
                    ("advice", advice.to_owned()),
                ],
            );
        }
    }
}

#[cfg(test)]
mod tests;
