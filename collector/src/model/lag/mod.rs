//! Consumer lag with a verdict. Each partition of each group keeps a sliding
//! window of (time, committed offset, end offset) samples taken on the
//! collector's schedule; a status per partition and per group is decided over
//! the window with Burrow's meanings, fixing what Burrow's users complain of:
//!
//! - lag that grows steadily is never OK: the trend is judged on the lag at
//!   the moments the consumer committed, not on "any zero-lag sample means OK";
//! - a consumer that stopped is not hidden by one zero-lag sample: a frozen
//!   committed offset with lag behind it is STOP (or STALL) however the
//!   window began;
//! - the verdict does not depend on how often the consumer commits: samples
//!   are taken by time, the trend uses only the commit points, and "frozen"
//!   means frozen for longer than three of the consumer's own usual commit
//!   intervals (and at least `stop_after`).
//!
//! Statuses, most severe last: OK (keeping up), WARN (lag growing), ERR (lag
//! growing and older than `err_lag_seconds`), REWIND (the committed offset
//! went back), STALL (frozen with lag, nothing produced lately: the consumer
//! is stuck behind messages it has), STOP (frozen with lag while new messages
//! keep arriving). OffsetFetch tells no commit times, so Burrow's "still
//! committing" of STALL is read off the topic instead.
//!
//! Lag in seconds is how long ago the end offset was where the consumer is
//! now, interpolated in the end-offset history (extrapolated at the average
//! production rate when the consumer is further behind than the history).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Ok,
    Warn,
    Err,
    Rewind,
    Stall,
    Stop,
}

impl Status {
    pub const ALL: [Status; 6] = [
        Status::Ok,
        Status::Warn,
        Status::Err,
        Status::Rewind,
        Status::Stall,
        Status::Stop,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Warn => "WARN",
            Status::Err => "ERR",
            Status::Rewind => "REWIND",
            Status::Stall => "STALL",
            Status::Stop => "STOP",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub at: f64,
    pub committed: i64,
    pub end: i64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LagRules {
    /// How far back the window reaches.
    pub window_seconds: f64,
    /// A committed offset frozen (with lag) at least this long is STOP or STALL...
    pub stop_after_seconds: f64,
    /// ... and for at least this many of the consumer's usual commit intervals.
    pub commit_intervals_to_stop: f64,
    /// Growing lag older than this is ERR rather than WARN.
    pub err_lag_seconds: f64,
}

impl Default for LagRules {
    fn default() -> Self {
        LagRules {
            window_seconds: 600.0,
            stop_after_seconds: 120.0,
            commit_intervals_to_stop: 3.0,
            err_lag_seconds: 300.0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PartitionLag {
    pub status: Status,
    pub lag_messages: i64,
    pub lag_seconds: Option<f64>,
}

/// The window of one partition of one group.
#[derive(Debug, Clone, Default)]
pub struct PartitionHistory {
    samples: Vec<Sample>,
    /// When the committed offset last changed, and the gaps between such changes.
    last_commit_change: Option<f64>,
    commit_intervals: VecDeque<f64>,
    /// The time of the sample before the latest step back of the committed
    /// offset: a rewind is in the window while that sample is.
    /// Evaluations run far more often than records, for every partition of
    /// every group: what a record can keep, it keeps.
    rewound_from: Option<f64>,
}

const KEPT_COMMIT_INTERVALS: usize = 8;
/// Points (the window's start and the commits) needed before lag is judged
/// growing, and the share of the window they must span: a consumer's first
/// few commits as it starts are not a trend (Burrow waits for a full window).
const TREND_POINTS: usize = 5;
const TREND_SPAN_OF_WINDOW: f64 = 0.25;

impl PartitionHistory {
    pub fn record(&mut self, sample: Sample, rules: &LagRules) {
        if let Some(previous) = self.samples.last() {
            if sample.at <= previous.at {
                return; // a clock step backwards: keep the history consistent
            }
            if sample.committed < previous.committed {
                self.rewound_from = Some(previous.at);
            }
            if sample.committed != previous.committed {
                if let Some(changed) = self.last_commit_change {
                    self.commit_intervals.push_back(sample.at - changed);
                    if self.commit_intervals.len() > KEPT_COMMIT_INTERVALS {
                        self.commit_intervals.pop_front();
                    }
                }
                self.last_commit_change = Some(sample.at);
            }
        } else {
            self.last_commit_change = None;
        }
        self.samples.push(sample);
        // Keep one sample older than the window: the interpolation and the
        // "frozen since" reach back to it. A Vec rather than a ring: records
        // come once per fetch, evaluations far more often, and they read slices.
        let old = self
            .samples
            .partition_point(|s| s.at < sample.at - rules.window_seconds);
        let drop = old
            .saturating_sub(1)
            .min(self.samples.len().saturating_sub(2));
        self.samples.drain(..drop);
    }

    pub fn latest(&self) -> Option<&Sample> {
        self.samples.last()
    }

    /// The consumer's usual time between commits (the median of the last
    /// few), once it has been seen.
    fn usual_commit_interval(&self) -> Option<f64> {
        let mut sorted = [0.0; KEPT_COMMIT_INTERVALS];
        let n = self.commit_intervals.len();
        if n == 0 {
            return None;
        }
        for (slot, interval) in sorted.iter_mut().zip(&self.commit_intervals) {
            *slot = *interval;
        }
        sorted[..n].sort_by(f64::total_cmp);
        Some(sorted[n / 2])
    }

    /// How long ago the end offset was at `committed`.
    fn lag_seconds(&self, committed: i64) -> Option<f64> {
        let latest = self.samples.last()?;
        if committed >= latest.end {
            return Some(0.0);
        }
        let first = self.samples.first()?;
        let interpolate = |a: &Sample, b: &Sample| {
            let at = a.at + (committed - a.end) as f64 / (b.end - a.end) as f64 * (b.at - a.at);
            latest.at - at
        };
        // From the newest pair back: a consumer is most often a little behind,
        // so this touches the last few samples only.
        for pair in self.samples.windows(2).rev() {
            let (a, b) = (&pair[0], &pair[1]);
            if a.end <= committed && committed < b.end {
                return Some(interpolate(a, b));
            }
        }
        // Further behind than the history: extrapolate at the average rate.
        let span = latest.at - first.at;
        let produced = (latest.end - first.end) as f64;
        if span <= 0.0 || produced <= 0.0 {
            return None;
        }
        let at = first.at - (first.end - committed) as f64 / (produced / span);
        Some(latest.at - at)
    }

    pub fn evaluate(&self, rules: &LagRules) -> Option<PartitionLag> {
        let latest = *self.samples.last()?;
        let lag_messages = (latest.end - latest.committed).max(0);
        let lag_seconds = self.lag_seconds(latest.committed);
        let verdict = |status| {
            Some(PartitionLag {
                status,
                lag_messages,
                lag_seconds,
            })
        };
        // `record` keeps at most one sample older than the window, first.
        let start = usize::from(
            self.samples.len() > 1 && self.samples[0].at < latest.at - rules.window_seconds,
        );
        let in_window = &self.samples[start..];
        let window_start = in_window.first().map_or(latest.at, |s| s.at);
        if self.rewound_from.is_some_and(|at| at >= window_start) {
            return verdict(Status::Rewind);
        }
        if lag_messages == 0 {
            return verdict(Status::Ok);
        }
        let first = self.samples.first().expect("not empty");
        let frozen_since = self.last_commit_change.unwrap_or(first.at);
        let frozen_for = latest.at - frozen_since;
        let needed = self
            .usual_commit_interval()
            .map_or(rules.stop_after_seconds, |usual| {
                (usual * rules.commit_intervals_to_stop).max(rules.stop_after_seconds)
            });
        if frozen_for >= needed {
            // Messages still arriving (over the last `needed` seconds) while
            // the consumer does not move: stopped. None arriving: stalled.
            let since = self.samples.partition_point(|s| s.at < latest.at - needed);
            let end_before = self.samples.get(since).map_or(first.end, |s| s.end);
            return verdict(if latest.end > end_before {
                Status::Stop
            } else {
                Status::Stall
            });
        }
        // The trend, on the lag at the start of the window and at the
        // moments the consumer committed.
        let lag_at = |s: &Sample| (s.at, (s.end - s.committed) as f64);
        let commits = in_window
            .windows(2)
            .filter(|w| w[1].committed != w[0].committed)
            .map(|w| lag_at(&w[1]));
        let points = in_window.first().map(lag_at).into_iter().chain(commits);
        if growing(points, TREND_SPAN_OF_WINDOW * rules.window_seconds) {
            let old = lag_seconds.is_some_and(|s| s > rules.err_lag_seconds);
            return verdict(if old { Status::Err } else { Status::Warn });
        }
        verdict(Status::Ok)
    }
}

/// Lag that grows steadily over at least [`TREND_POINTS`] (time, lag)
/// points spanning `min_span` seconds: a positive least-squares slope, most
/// steps up (three in five), and the last point at least 10 % (and one
/// message) above the first. One pass, no allocation: it runs for every
/// partition of every group.
fn growing(points: impl Iterator<Item = (f64, f64)>, min_span: f64) -> bool {
    let (mut n, mut sum_t, mut sum_l, mut sum_tl, mut steps_up) = (0usize, 0.0, 0.0, 0.0, 0usize);
    let (mut first, mut last, mut span) = (None, 0.0, (0.0, 0.0));
    for (t, lag) in points {
        if n > 0 && lag > last {
            steps_up += 1;
        }
        if first.is_none() {
            span.0 = t;
        }
        span.1 = t;
        first.get_or_insert(lag);
        last = lag;
        n += 1;
        sum_t += t;
        sum_l += lag;
        sum_tl += t * lag;
    }
    let Some(first) = first else { return false };
    let covariance = sum_tl - sum_t * sum_l / n as f64;
    n >= TREND_POINTS
        && span.1 - span.0 >= min_span
        && covariance > 0.0
        && steps_up * 5 >= (n - 1) * 3
        && last - first >= (first * 0.1).max(1.0)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopicLag {
    pub topic: String,
    pub status: Status,
    pub lag_messages: i64,
    pub lag_seconds: Option<f64>,
    /// Partitions per status, for "where to look".
    pub partitions_by_status: Vec<(Status, u64)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupLag {
    pub group: String,
    pub status: Status,
    pub lag_messages: i64,
    pub lag_seconds: Option<f64>,
    pub topics: Vec<TopicLag>,
}

/// The lag windows of every watched partition, keyed (group, topic, partition):
/// in group order, as the daemon keeps them.
pub type Histories = std::collections::BTreeMap<(String, String, i32), PartitionHistory>;

/// Fetch rounds in a row a partition may go unreported (its group's offsets
/// expired, its topic deleted or shrunk) before it is forgotten: one or two
/// (a rebalance, a leader moving) are not the end.
pub const FORGET_AFTER_ROUNDS: u32 = 3;

/// How many rounds in a row each partition went unreported.
pub type Misses = std::collections::BTreeMap<(String, String, i32), u32>;

/// Records one successful round of offsets: every (group, topic, partition)
/// the cluster reported, with its sample. Forgets the partitions it has not
/// reported for [`FORGET_AFTER_ROUNDS`] rounds; returns the groups left with
/// none, in order.
pub fn record_round(
    histories: &mut Histories,
    misses: &mut Misses,
    fetched: Vec<((String, String, i32), Sample)>,
    rules: &LagRules,
) -> Vec<String> {
    let mut reported = std::collections::BTreeSet::new();
    for (key, sample) in fetched {
        misses.remove(&key);
        histories
            .entry(key.clone())
            .or_default()
            .record(sample, rules);
        reported.insert(key);
    }
    let groups_before: std::collections::BTreeSet<String> =
        histories.keys().map(|(g, _, _)| g.clone()).collect();
    histories.retain(|key, _| {
        if reported.contains(key) {
            return true;
        }
        let missed = misses.entry(key.clone()).or_default();
        *missed += 1;
        if *missed >= FORGET_AFTER_ROUNDS {
            misses.remove(key);
            return false;
        }
        true
    });
    let groups_after: std::collections::BTreeSet<&String> =
        histories.keys().map(|(g, _, _)| g).collect();
    groups_before
        .into_iter()
        .filter(|g| !groups_after.contains(g))
        .collect()
}

/// Every group's verdict from its partitions' windows, in group order.
pub fn evaluate_groups(histories: &Histories, rules: &LagRules) -> Vec<GroupLag> {
    let verdicts: Vec<(&str, &str, PartitionLag)> = histories
        .iter()
        .filter_map(|((group, topic, _), history)| {
            Some((group.as_str(), topic.as_str(), history.evaluate(rules)?))
        })
        .collect();
    verdicts
        .chunk_by(|a, b| a.0 == b.0)
        .map(|chunk| {
            let partitions: Vec<(&str, PartitionLag)> = chunk
                .iter()
                .map(|(_, topic, verdict)| (*topic, *verdict))
                .collect();
            aggregate(chunk[0].0, &partitions)
        })
        .collect()
}

/// Aggregates partition verdicts (`(topic, verdict)`, any order) into a
/// group's: lag summed, seconds the worst, status the most severe.
pub fn aggregate(group: &str, partitions: &[(&str, PartitionLag)]) -> GroupLag {
    let mut topics: std::collections::BTreeMap<&str, TopicLag> = std::collections::BTreeMap::new();
    for (topic, p) in partitions {
        let entry = topics.entry(topic).or_insert_with(|| TopicLag {
            topic: (*topic).to_owned(),
            status: Status::Ok,
            lag_messages: 0,
            lag_seconds: None,
            partitions_by_status: Vec::new(),
        });
        entry.status = entry.status.max(p.status);
        entry.lag_messages += p.lag_messages;
        entry.lag_seconds = max_option(entry.lag_seconds, p.lag_seconds);
        match entry
            .partitions_by_status
            .iter_mut()
            .find(|(s, _)| *s == p.status)
        {
            Some((_, count)) => *count += 1,
            None => entry.partitions_by_status.push((p.status, 1)),
        }
    }
    let topics: Vec<TopicLag> = topics
        .into_values()
        .map(|mut t| {
            t.partitions_by_status.sort();
            t
        })
        .collect();
    GroupLag {
        group: group.to_owned(),
        status: topics.iter().map(|t| t.status).max().unwrap_or(Status::Ok),
        lag_messages: topics.iter().map(|t| t.lag_messages).sum(),
        lag_seconds: topics
            .iter()
            .fold(None, |acc, t| max_option(acc, t.lag_seconds)),
        topics,
    }
}

fn max_option(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests;
