//! The end-to-end probe (writes that fail, records slow to come back or
//! lost, per broker) and the controllers (a KRaft quorum behind or without
//! a leader, reassignments that stopped moving). Judged only on fresh
//! findings: a probe or a controller reading that stopped keeps its alerts
//! as they are.

use crate::alerts::judge::{age, Judge};
use crate::catalogue::Alert;
use crate::config::Config;
use crate::kafka::checks::Controllers;
use crate::kafka::probe::ProbeFindings;
use crate::model::probe::BrokerWindow;

use super::Inputs;

/// Attempts a broker's window needs before its success ratio is judged.
const MIN_ATTEMPTS: u64 = 3;

pub(super) fn judge(j: &mut Judge, config: &Config, inputs: &Inputs) {
    if let Some(probe) = inputs
        .cluster
        .probe
        .as_deref()
        .filter(|p| inputs.now - p.at <= config.probe.stale_after())
    {
        judge_probe(j, config, probe);
    }
    let Some(kafka) = &config.kafka else {
        return;
    };
    if let Some(found) = inputs
        .cluster
        .controllers
        .as_ref()
        .filter(|c| inputs.now - c.at <= kafka.metadata_stale_after())
    {
        quorum(j, found);
        reassignments(j, found, inputs.now);
    }
}

fn judge_probe(j: &mut Judge, config: &Config, probe: &ProbeFindings) {
    let min_ratio = j.threshold(Alert::KafkaProbeProduceFailing);
    let max_latency = j.threshold(Alert::KafkaProbeEndToEndLatencyHigh);
    let window = age(config.probe.window.as_secs_f64());
    let topic = config.probe.topic.clone();
    for (broker, w) in &probe.windows {
        let name = broker.to_string();
        let partitions = list(&w.partitions);
        let common = |extra: Vec<(&'static str, String)>| {
            let mut values = vec![
                ("partitions", partitions.clone()),
                ("topic", topic.clone()),
                ("window", window.clone()),
            ];
            values.extend(extra);
            values
        };
        let attempts = w.acknowledged + w.failed;
        if attempts >= MIN_ATTEMPTS {
            let ratio = w.success_ratio().unwrap_or(1.0);
            j.judge(
                Alert::KafkaProbeProduceFailing,
                &[&name],
                ratio < min_ratio,
                &common(vec![
                    ("acknowledged", w.acknowledged.to_string()),
                    ("attempts", attempts.to_string()),
                    (
                        "error",
                        w.last_error.clone().unwrap_or_else(|| "none given".into()),
                    ),
                ]),
            );
        }
        latency(j, &name, w, max_latency, common(Vec::new()));
        j.judge(
            Alert::KafkaProbeMessagesLost,
            &[&name],
            w.lost > 0,
            &common(vec![
                ("lost", w.lost.to_string()),
                ("duplicated", w.duplicated_total.to_string()),
            ]),
        );
    }
}

fn latency(
    j: &mut Judge,
    broker: &str,
    w: &BrokerWindow,
    max_latency: f64,
    mut values: Vec<(&'static str, String)>,
) {
    let waiting = w.oldest_waiting.unwrap_or(0.0);
    let Some(worst) = w
        .end_to_end_p99
        .into_iter()
        .chain(w.oldest_waiting)
        .reduce(f64::max)
    else {
        return; // nothing sent, nothing to judge
    };
    let seconds = |s: f64| format!("{s:.2}s");
    values.extend([
        ("latency", seconds(worst)),
        (
            "percentile",
            w.end_to_end_p99
                .map_or_else(|| "none read back".into(), seconds),
        ),
        ("received", w.received.to_string()),
        ("waiting", seconds(waiting)),
    ]);
    j.judge(
        Alert::KafkaProbeEndToEndLatencyHigh,
        &[broker],
        worst > max_latency,
        &values,
    );
}

fn list(items: &[i32]) -> String {
    items
        .iter()
        .map(i32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn quorum(j: &mut Judge, found: &Controllers) {
    let Some(quorum) = &found.quorum else {
        return; // ZooKeeper mode, or not answered yet
    };
    let max_seconds = j.threshold(Alert::KafkaControllerQuorumLagging);
    let lagging = quorum.lagging_voters(max_seconds);
    let voters = quorum.voters.len();
    let (active, state, details) = match quorum.leader() {
        None => (
            true,
            "has no leader".to_owned(),
            format!(
                "None of its {voters} voters leads (epoch {}).",
                quorum.epoch
            ),
        ),
        Some(_) if !lagging.is_empty() => {
            let named: Vec<String> = lagging
                .iter()
                .map(|l| match l.seconds {
                    Some(s) => format!(
                        "controller {} ({} records, {} behind)",
                        l.id,
                        l.records,
                        age(s)
                    ),
                    None => format!("controller {} ({} records behind)", l.id, l.records),
                })
                .collect();
            (
                true,
                format!("has {} of {voters} voters lagging", lagging.len()),
                format!(
                    "Leader {} (epoch {}, high watermark {}); lagging: {}.",
                    quorum.leader,
                    quorum.epoch,
                    quorum.high_watermark,
                    named.join(", ")
                ),
            )
        }
        Some(leader) => (false, "is caught up".into(), format!("Leader {leader}.")),
    };
    j.judge(
        Alert::KafkaControllerQuorumLagging,
        &[],
        active,
        &[("state", state), ("details", details)],
    );
}

fn reassignments(j: &mut Judge, found: &Controllers, now: f64) {
    let Some(moving) = &found.reassignments else {
        return;
    };
    let minutes = j.threshold(Alert::KafkaReassignmentStuck);
    let stuck: Vec<_> = moving
        .iter()
        .filter(|m| now - m.progressed_at >= minutes * 60.0)
        .collect();
    let mut adding: Vec<i32> = stuck
        .iter()
        .flat_map(|m| m.moving.adding.iter().copied())
        .collect();
    adding.sort_unstable();
    adding.dedup();
    let partitions: Vec<String> = stuck
        .iter()
        .take(10)
        .map(|m| {
            format!(
                "{}-{} (seen for {}, still for {})",
                m.moving.key.0,
                m.moving.key.1,
                age(now - m.since),
                age(now - m.progressed_at)
            )
        })
        .collect();
    let copied: u64 = stuck.iter().filter_map(|m| m.copied_bytes).sum();
    let throttled: Vec<String> = adding
        .iter()
        .filter_map(|b| found.throttles.get(b).map(|t| (b, t)))
        .flat_map(|(b, t)| {
            t.iter().map(move |(direction, rate)| {
                format!(
                    "broker {b} {direction} {}/s",
                    super::broker::bytes(*rate as f64)
                )
            })
        })
        .collect();
    let throttle = if throttled.is_empty() {
        "No replication throttle is set on the adding brokers.".to_owned()
    } else {
        format!("Throttled: {}.", throttled.join(", "))
    };
    let more = stuck.len().saturating_sub(10);
    j.judge(
        Alert::KafkaReassignmentStuck,
        &[],
        !stuck.is_empty(),
        &[
            ("stuck", stuck.len().to_string()),
            (
                "partitions",
                format!(
                    "{}{}",
                    partitions.join(", "),
                    if more > 0 {
                        format!(" and {more} more")
                    } else {
                        String::new()
                    }
                ),
            ),
            ("adding", list(&adding)),
            (
                "copied",
                if stuck.iter().any(|m| m.copied_bytes.is_some()) {
                    format!("hold {} so far", super::broker::bytes(copied as f64))
                } else {
                    "unknown (no log dirs)".into()
                },
            ),
            ("throttle", throttle),
        ],
    );
}

#[cfg(test)]
mod tests;
