//! The brokers' health, from the agents' reports of brokers that report
//! (a silent one is KafkaAgentDown's, and its figures are unknown, not
//! judged): the process and whether it answers, its own metrics, its log
//! dirs and descriptors, and what the kernel and its own log say. A broker
//! judged unresponsive gets no verdict on its idle ratios: one page for one
//! stuck broker.

use std::collections::{BTreeMap, BTreeSet};

use statrs::statistics::{Data, Median};

use crate::alerts::judge::{age, percent, Judge};
use crate::catalogue::Alert;
use crate::config::Config;
use crate::store::{BrokerEntry, Counter, Figure, Series, Store};

use super::Inputs;

/// A request's p99 must be this slow, whatever its peers, to be judged slow.
const SLOW_FLOOR_MS: f64 = 100.0;
/// A log dir with less free than this share is filling up, whatever its trend.
const LOW_FREE_RATIO: f64 = 0.05;
/// The log errors' rate must be this many times the hour before's.
const LOG_SURGE_FACTOR: f64 = 5.0;
/// A counter's increase is judged over at least this many seconds of samples.
const LEAST_SPAN_SECONDS: f64 = 60.0;

pub(super) fn judge(j: &mut Judge, config: &Config, inputs: &Inputs) {
    let missing_after = config.broker_missing_after.as_secs_f64();
    let fresh: Vec<(i32, &BrokerEntry)> = inputs
        .store
        .brokers()
        .filter(|(b, _)| inputs.store.is_fresh(**b, inputs.now, missing_after))
        .map(|(b, e)| (*b, e))
        .collect();
    let stuck = process_and_responsiveness(j, inputs, &fresh);
    let mut dirs_judged = BTreeSet::new();
    for (broker, entry) in &fresh {
        let b = Subject {
            id: *broker,
            label: broker.to_string(),
            entry,
        };
        if !stuck.contains(broker) {
            idle_ratios(j, inputs, &b);
        }
        if offline_log_dirs(j, &b) {
            dirs_judged.insert(*broker);
        }
        isr_churn(j, inputs, &b);
        gc_pressure(j, inputs, &b);
        log_dirs_filling(j, inputs, &b);
        file_descriptors(j, &b);
        logs::kernel_errors(j, inputs, &b);
        logs::log_errors(j, inputs, &b);
    }
    offline_log_dirs_from_the_cluster(j, config, inputs, &dirs_judged);
    slow_brokers(j, inputs, &fresh);
    active_controllers(j, &fresh);
    throttled_users(j, inputs, &fresh);
}

struct Subject<'a> {
    id: i32,
    label: String,
    entry: &'a BrokerEntry,
}

pub(super) fn bytes(value: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = value;
    let mut unit = 0;
    while value.abs() >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// The process down, or running but not working; returns the brokers
/// judged stuck now.
fn process_and_responsiveness(
    j: &mut Judge,
    inputs: &Inputs,
    fresh: &[(i32, &BrokerEntry)],
) -> BTreeSet<i32> {
    let mut stuck = BTreeSet::new();
    let idle_limit = j.threshold(Alert::KafkaBrokerUnresponsive);
    for (broker, entry) in fresh {
        let label = broker.to_string();
        let host = &entry.latest.host;
        let Some(up) = host.broker_up else { continue };
        let restarts = match entry.restarts {
            0 => String::new(),
            n => format!(" (it restarted {n} times since the collector started)"),
        };
        j.judge(
            Alert::KafkaBrokerProcessDown,
            &[&label],
            !up,
            &[("restarts", restarts)],
        );
        // Out of the metadata is KafkaBrokerDown's; unknown without [kafka].
        let membership = match inputs.replication {
            Some(facts) if !facts.brokers.contains_key(broker) => continue,
            Some(_) => format!("in cluster {}'s metadata", j.cluster()),
            None => "running".to_owned(),
        };
        let handlers = host
            .broker_metrics
            .as_ref()
            .and_then(|m| Some((m.request_handler_idle_ratio?, m.request_queue_size?)));
        let symptom = match (&host.broker_metrics_error, handlers) {
            _ if !up => continue,
            (Some(error), _) => Some((
                "its metrics endpoint does not answer".to_owned(),
                format!("Its process runs, but its metrics endpoint gave nothing: {error}."),
            )),
            (None, Some((idle, queued))) if idle < idle_limit && queued > 0.0 => Some((
                format!("its request handlers are idle {} with {queued} requests queued", percent(idle)),
                format!(
                    "Its request handler threads are idle {} (limit {}) while {queued} requests wait in its queue.",
                    percent(idle),
                    percent(idle_limit)
                ),
            )),
            (None, Some(_)) => None,
            // No metrics endpoint configured: nothing to judge it by.
            (None, None) => continue,
        };
        if symptom.is_some() {
            stuck.insert(*broker);
        }
        let (symptom, detail) = symptom.unwrap_or_default();
        j.judge(
            Alert::KafkaBrokerUnresponsive,
            &[&label],
            stuck.contains(broker),
            &[
                ("symptom", symptom),
                ("symptom_detail", detail),
                ("membership", membership),
            ],
        );
    }
    stuck
}

fn idle_ratios(j: &mut Judge, inputs: &Inputs, b: &Subject) {
    let queue = b
        .entry
        .latest
        .host
        .broker_metrics
        .as_ref()
        .and_then(|m| m.request_queue_size)
        .map_or_else(|| "no figure of".to_owned(), |q| q.to_string());
    for (alert, figure) in [
        (
            Alert::KafkaRequestHandlerIdleLow,
            Figure::RequestHandlerIdle,
        ),
        (
            Alert::KafkaNetworkProcessorIdleLow,
            Figure::NetworkProcessorIdle,
        ),
    ] {
        let Some(value) = inputs
            .store
            .robust(b.id, &Series::Broker(figure), inputs.now)
        else {
            continue;
        };
        let limit = j.threshold(alert);
        j.judge(
            alert,
            &[&b.label],
            value < limit,
            &[
                ("value", percent(value)),
                ("limit", percent(limit)),
                ("queue", queue.clone()),
            ],
        );
    }
}

/// From the broker's own metrics, where its agent reads them; whether it judged.
fn offline_log_dirs(j: &mut Judge, b: &Subject) -> bool {
    let host = &b.entry.latest.host;
    let Some(metrics) = &host.broker_metrics else {
        return false;
    };
    let Some(count) = metrics.offline_log_dirs else {
        return false;
    };
    let names = &metrics.offline_log_dir_names;
    let disks: Vec<String> = names
        .iter()
        .filter_map(|name| host.log_dirs.iter().find(|d| &d.log_dir == name))
        .map(|d| format!("{} on {}", d.log_dir, d.disks.join(", ")))
        .collect();
    j.judge(
        Alert::KafkaOfflineLogDirs,
        &[&b.label],
        count > 0.0,
        &[
            ("count", count.to_string()),
            (
                "dirs",
                if names.is_empty() {
                    "not named by its metrics".to_owned()
                } else {
                    names.join(", ")
                },
            ),
            (
                "disks",
                if disks.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", disks.join("; "))
                },
            ),
        ],
    );
    true
}

/// From DescribeLogDirs, for the brokers no agent judged (clusters without
/// agents, or agents without the broker's metrics), while fresh.
fn offline_log_dirs_from_the_cluster(
    j: &mut Judge,
    config: &Config,
    inputs: &Inputs,
    judged: &BTreeSet<i32>,
) {
    let (Some(kafka), Some(found)) = (&config.kafka, &inputs.cluster.controllers) else {
        return;
    };
    let Some(dirs) = found.log_dirs.as_ref().filter(|_| {
        inputs.now - found.log_dirs_at <= 3.0 * kafka.topic_config_interval.as_secs_f64()
    }) else {
        return;
    };
    for (broker, listed) in dirs.iter().filter(|(b, _)| !judged.contains(b)) {
        let offline: Vec<&str> = listed
            .iter()
            .filter(|d| d.offline())
            .map(|d| d.path.as_str())
            .collect();
        j.judge(
            Alert::KafkaOfflineLogDirs,
            &[&broker.to_string()],
            !offline.is_empty(),
            &[
                ("count", offline.len().to_string()),
                ("dirs", offline.join(", ")),
                ("disks", " (the broker says so in DescribeLogDirs; run the agent on it to name the disk)".to_owned()),
            ],
        );
    }
}

fn isr_churn(j: &mut Judge, inputs: &Inputs, b: &Subject) {
    let series = Series::Counter(Counter::IsrChanges);
    let Some((changes, span)) = inputs.store.increase(b.id, &series, inputs.now) else {
        return;
    };
    if span < LEAST_SPAN_SECONDS {
        return;
    }
    let per_minute = changes / span * 60.0;
    j.judge(
        Alert::KafkaIsrChurn,
        &[&b.label],
        per_minute > j.threshold(Alert::KafkaIsrChurn),
        &[
            ("rate", format!("{per_minute:.1}")),
            (
                "shrinks_and_expands",
                format!("{changes:.0} shrinks and expands"),
            ),
            ("span", age(span)),
        ],
    );
}

fn gc_pressure(j: &mut Judge, inputs: &Inputs, b: &Subject) {
    let store = inputs.store;
    let pauses = store.increase(b.id, &Series::Counter(Counter::GcPauseSeconds), inputs.now);
    let Some((paused, span)) = pauses.filter(|(_, span)| *span >= LEAST_SPAN_SECONDS) else {
        return;
    };
    let full = store
        .increase(
            b.id,
            &Series::Counter(Counter::GcOldCollections),
            inputs.now,
        )
        .map_or(0.0, |(n, _)| n);
    let share = paused / span;
    j.judge(
        Alert::KafkaBrokerGcPressure,
        &[&b.label],
        share > j.threshold(Alert::KafkaBrokerGcPressure) || full >= 2.0,
        &[
            ("share", percent(share)),
            ("pauses", format!("{paused:.1} s")),
            ("span", age(span)),
            ("full", format!("{full:.0}")),
        ],
    );
}

fn log_dirs_filling(j: &mut Judge, inputs: &Inputs, b: &Subject) {
    let hours_limit = j.threshold(Alert::KafkaLogDirFillingUp);
    for dir in &b.entry.latest.host.log_dirs {
        let size = (dir.used_bytes + dir.free_bytes) as f64;
        if size <= 0.0 {
            continue;
        }
        let free = dir.free_bytes as f64;
        // Growth over the last hours, once there is half an hour of it.
        let growth = inputs
            .store
            .slope(b.id, &Series::LogDirUsed(dir.log_dir.clone()), 1800.0);
        let hours_left = growth.filter(|g| *g > 0.0).map(|g| free / g / 3600.0);
        let low = free / size < LOW_FREE_RATIO;
        let soon = hours_left.is_some_and(|h| h < hours_limit);
        let when = match hours_left {
            Some(h) if soon => format!("will be full in {h:.1} h"),
            _ => format!("has only {} free", percent(free / size)),
        };
        j.judge(
            Alert::KafkaLogDirFillingUp,
            &[&b.label, &dir.log_dir],
            low || soon,
            &[
                ("when", when),
                ("free", bytes(free)),
                ("size", bytes(size)),
                (
                    "device",
                    dir.device
                        .clone()
                        .unwrap_or_else(|| dir.mount_point.clone()),
                ),
                (
                    "growth",
                    growth.map_or_else(String::new, |g| {
                        format!("; it grows {}/h", bytes(g * 3600.0))
                    }),
                ),
            ],
        );
    }
}

fn file_descriptors(j: &mut Judge, b: &Subject) {
    let host = &b.entry.latest.host;
    let process = host
        .broker_process
        .as_ref()
        .and_then(|p| Some((p.open_fds as f64, p.max_fds? as f64)))
        .filter(|(_, max)| *max > 0.0);
    let system = host
        .file_descriptors
        .as_ref()
        .map(|f| (f.allocated as f64, f.maximum as f64))
        .filter(|(_, max)| *max > 0.0);
    let shares = [("broker process", process), ("host", system)];
    let Some((scope, share)) = shares
        .iter()
        .filter_map(|(scope, used)| used.map(|(open, max)| (*scope, open / max)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
    else {
        return;
    };
    let figures: Vec<String> = shares
        .iter()
        .filter_map(|(scope, used)| {
            used.map(|(open, max)| format!("the {scope} has {open:.0} open of {max:.0}"))
        })
        .collect();
    j.judge(
        Alert::KafkaFileDescriptorsExhausting,
        &[&b.label],
        share > j.threshold(Alert::KafkaFileDescriptorsExhausting),
        &[
            ("share", percent(share)),
            ("scope", scope.to_owned()),
            ("figures", capitalised(&figures.join("; "))),
        ],
    );
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map_or_else(String::new, |c| c.to_uppercase().chain(chars).collect())
}

/// The values of an annotation's template.
type Figures = Vec<(&'static str, String)>;

fn median(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| Data::new(values.to_vec()).median())
}

/// Produce and fetch p99 against the peers' and the broker's own last hour.
fn slow_brokers(j: &mut Judge, inputs: &Inputs, fresh: &[(i32, &BrokerEntry)]) {
    let store: &Store = inputs.store;
    let factor = j.threshold(Alert::KafkaSlowBroker);
    let window = store.window_seconds();
    let requests = [
        ("produce", Figure::ProduceP99Ms),
        ("fetch", Figure::FetchP99Ms),
    ];
    // Per request, each broker's median p99 over the window.
    let medians: Vec<BTreeMap<i32, f64>> = requests
        .iter()
        .map(|(_, figure)| {
            fresh
                .iter()
                .filter_map(|(b, _)| {
                    Some((*b, store.robust(*b, &Series::Broker(*figure), inputs.now)?))
                })
                .collect()
        })
        .collect();
    for (broker, _) in fresh {
        // The request on which it is slowest against its peers.
        let mut worst: Option<(f64, bool, Figures)> = None;
        for ((request, figure), of_request) in requests.iter().zip(&medians) {
            let Some(&value) = of_request.get(broker) else {
                continue;
            };
            let peers: Vec<f64> = of_request
                .iter()
                .filter(|(b, _)| *b != broker)
                .map(|(_, v)| *v)
                .collect();
            if peers.len() < 2 {
                continue;
            }
            let Some(peers_median) = median(&peers).filter(|m| *m > 0.0) else {
                continue;
            };
            let history = store.median_between(
                *broker,
                &Series::History(*figure),
                inputs.now - window - 3600.0,
                inputs.now - window,
            );
            let ratio = value / peers_median;
            let slow = value > SLOW_FLOOR_MS
                && ratio > factor
                && history.is_none_or(|h| value > factor * h);
            let values = vec![
                ("request", (*request).to_owned()),
                ("value", format!("{value:.0} ms")),
                ("peers", format!("{peers_median:.0} ms")),
                ("factor", format!("{ratio:.1} times")),
                (
                    "history",
                    history.map_or_else(String::new, |h| {
                        format!(
                            ", and {:.1} times its own median of {h:.0} ms the hour before",
                            value / h
                        )
                    }),
                ),
            ];
            let worse = worst
                .as_ref()
                .is_none_or(|(r, was_slow, _)| (slow, ratio) > (*was_slow, *r));
            if worse {
                worst = Some((ratio, slow, values));
            }
        }
        if let Some((_, slow, values)) = worst {
            j.judge(
                Alert::KafkaSlowBroker,
                &[&broker.to_string()],
                slow,
                &values,
            );
        }
    }
}

fn active_controllers(j: &mut Judge, fresh: &[(i32, &BrokerEntry)]) {
    let claims: Option<Vec<(i32, f64)>> = fresh
        .iter()
        .map(|(b, e)| {
            let value = e.latest.host.broker_metrics.as_ref()?.active_controller?;
            Some((*b, value))
        })
        .collect();
    // Every reporting broker must have the figure: KRaft broker-only nodes
    // have none, and their controllers may not run an agent.
    let Some(claims) = claims.filter(|c| !c.is_empty()) else {
        return;
    };
    let count: f64 = claims.iter().map(|(_, v)| v).sum();
    let claiming: Vec<String> = claims
        .iter()
        .filter(|(_, v)| *v >= 1.0)
        .map(|(b, _)| format!("broker {b}"))
        .collect();
    j.judge(
        Alert::KafkaActiveControllerCount,
        &[],
        count.round() != 1.0,
        &[
            ("count", format!("{count:.0}")),
            (
                "claiming",
                if claiming.is_empty() {
                    "none".to_owned()
                } else {
                    claiming.join(", ")
                },
            ),
        ],
    );
}

fn throttled_users(j: &mut Judge, inputs: &Inputs, fresh: &[(i32, &BrokerEntry)]) {
    let mut users: BTreeMap<&str, Vec<(i32, f64)>> = BTreeMap::new();
    for (broker, _) in fresh {
        for series in inputs.store.series_of(*broker) {
            let Series::UserThrottleMs(user) = series else {
                continue;
            };
            if let Some(ms) = inputs.store.robust(*broker, series, inputs.now) {
                users.entry(user).or_default().push((*broker, ms));
            }
        }
    }
    let limit = j.threshold(Alert::KafkaUserThrottled);
    for (user, mut brokers) in users {
        brokers.sort_by(|a, b| b.1.total_cmp(&a.1));
        let most = brokers.first().map_or(0.0, |(_, ms)| *ms);
        let on: Vec<String> = brokers
            .iter()
            .filter(|(_, ms)| *ms > 0.0)
            .map(|(b, ms)| format!("broker {b} ({ms:.0} ms)"))
            .collect();
        j.judge(
            Alert::KafkaUserThrottled,
            &[user],
            most > limit,
            &[
                ("value", format!("{most:.0} ms")),
                (
                    "brokers",
                    if on.is_empty() {
                        "no broker".to_owned()
                    } else {
                        on.join(", ")
                    },
                ),
            ],
        );
    }
}

mod logs;

#[cfg(test)]
mod tests;
