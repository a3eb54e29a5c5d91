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
/// Commit points needed before a trend is judged.
const TREND_POINTS: usize = 3;

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
        if growing(in_window.first().map(lag_at).into_iter().chain(commits)) {
            let old = lag_seconds.is_some_and(|s| s > rules.err_lag_seconds);
            return verdict(if old { Status::Err } else { Status::Warn });
        }
        verdict(Status::Ok)
    }
}

/// Lag that grows steadily over at least three (time, lag) points: a
/// positive least-squares slope, most steps up (three in five), and the last
/// point at least 10 % (and one message) above the first. One pass, no
/// allocation: it runs for every partition of every group.
fn growing(points: impl Iterator<Item = (f64, f64)>) -> bool {
    let (mut n, mut sum_t, mut sum_l, mut sum_tl, mut steps_up) = (0usize, 0.0, 0.0, 0.0, 0usize);
    let (mut first, mut last) = (None, 0.0);
    for (t, lag) in points {
        if n > 0 && lag > last {
            steps_up += 1;
        }
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
mod tests {
    use super::*;

    const RULES: LagRules = LagRules {
        window_seconds: 600.0,
        stop_after_seconds: 60.0,
        commit_intervals_to_stop: 3.0,
        err_lag_seconds: 120.0,
    };

    /// Samples every `every` seconds from t = 0; `end` and `committed` as functions of time.
    fn history(
        until: f64,
        every: f64,
        end: impl Fn(f64) -> i64,
        committed: impl Fn(f64) -> i64,
    ) -> PartitionHistory {
        let mut h = PartitionHistory::default();
        let mut t = 0.0;
        while t <= until {
            h.record(
                Sample {
                    at: t,
                    committed: committed(t),
                    end: end(t),
                },
                &RULES,
            );
            t += every;
        }
        h
    }

    /// A consumer that commits every `period` seconds what it has read, at `rate` msg/s.
    fn committing(rate: f64, period: f64, start: i64) -> impl Fn(f64) -> i64 {
        move |t| start + (rate * (t / period).floor() * period) as i64
    }

    fn status(h: &PartitionHistory) -> Status {
        h.evaluate(&RULES).unwrap().status
    }

    #[test]
    fn lag_in_seconds_survives_an_end_offset_that_steps_back() {
        // The topic is recreated at t = 20: the end offset falls from 1100 to
        // 100, then grows 10 msg/s. Committed 250 at t = 40 was the end at t = 35.
        let ends = [
            (0.0, 1000),
            (10.0, 1100),
            (20.0, 100),
            (30.0, 200),
            (40.0, 300),
        ];
        let mut h = PartitionHistory::default();
        for (at, end) in ends {
            h.record(
                Sample {
                    at,
                    committed: if at < 40.0 { 0 } else { 250 },
                    end,
                },
                &RULES,
            );
        }
        assert_eq!(h.evaluate(&RULES).unwrap().lag_seconds, Some(5.0));
        // Once the step back has left the window.
        let mut t = 50.0;
        while t <= 50.0 + RULES.window_seconds + 20.0 {
            h.record(
                Sample {
                    at: t,
                    committed: 250,
                    end: 300 + (t as i64 - 40) * 10,
                },
                &RULES,
            );
            t += 10.0;
        }
        let latest = *h.latest().unwrap();
        let lag = h.evaluate(&RULES).unwrap().lag_seconds.unwrap();
        // The end was 250 at t = 35, but that is before the window: extrapolated
        // at the window's average rate (10 msg/s) from its first sample.
        let first = h.samples[0];
        let expected = latest.at - (first.at - (first.end - 250) as f64 / 10.0);
        assert!((lag - expected).abs() < 1e-9, "{lag} vs {expected}");
    }

    #[test]
    fn a_consumer_that_keeps_up_is_ok() {
        // 100 msg/s produced, consumed and committed every 10 s.
        let h = history(
            300.0,
            10.0,
            |t| (100.0 * t) as i64,
            committing(100.0, 10.0, 0),
        );
        let lag = h.evaluate(&RULES).unwrap();
        assert_eq!(lag.status, Status::Ok);
        assert_eq!(lag.lag_messages, 0);
        assert_eq!(lag.lag_seconds, Some(0.0));
    }

    #[test]
    fn a_consumer_that_falls_behind_is_warn_then_err() {
        // Produced at 100 msg/s, consumed at 80: lag grows by 20 msg/s.
        let h = history(200.0, 10.0, |t| (100.0 * t) as i64, |t| (80.0 * t) as i64);
        let lag = h.evaluate(&RULES).unwrap();
        assert_eq!(lag.status, Status::Warn);
        assert_eq!(lag.lag_messages, 4000);
        // The end offset was at 16000 at t = 160: 40 s ago.
        assert!((lag.lag_seconds.unwrap() - 40.0).abs() < 1e-9);
        let h = history(900.0, 10.0, |t| (100.0 * t) as i64, |t| (80.0 * t) as i64);
        let lag = h.evaluate(&RULES).unwrap();
        assert_eq!(lag.status, Status::Err, "{lag:?}");
        assert!((lag.lag_seconds.unwrap() - 180.0).abs() < 1e-9);
    }

    #[test]
    fn a_consumer_that_stops_is_stop_and_one_that_is_stuck_on_an_idle_topic_is_stall() {
        let h = history(
            300.0,
            10.0,
            |t| (100.0 * t) as i64,
            |t| (100.0 * t.min(150.0)) as i64,
        );
        let lag = h.evaluate(&RULES).unwrap();
        assert_eq!(lag.status, Status::Stop);
        assert_eq!(lag.lag_messages, 15000);
        assert!((lag.lag_seconds.unwrap() - 150.0).abs() < 1e-9);
        // Nothing produced after t = 100; the consumer froze at 9000 of 10000.
        let h = history(
            300.0,
            10.0,
            |t| (100.0 * t.min(100.0)) as i64,
            |t| (100.0 * t.min(90.0)) as i64,
        );
        assert_eq!(status(&h), Status::Stall);
    }

    #[test]
    fn a_consumer_that_goes_back_is_rewind() {
        let h = history(
            100.0,
            10.0,
            |t| (100.0 * t) as i64,
            |t| if t < 60.0 { (100.0 * t) as i64 } else { 100 },
        );
        assert_eq!(status(&h), Status::Rewind);
    }

    #[test]
    fn steady_growth_with_one_zero_lag_sample_is_not_ok() {
        // Burrow: any zero-lag sample in the window means OK. Here the lag
        // was 0 at the start of the window and has grown at every commit since.
        let h = history(200.0, 10.0, |t| (100.0 * t) as i64, |t| (90.0 * t) as i64);
        assert_eq!(h.samples.first().map(|s| s.end - s.committed), Some(0));
        assert_eq!(status(&h), Status::Warn);
    }

    #[test]
    fn a_stop_after_zero_lag_is_not_hidden_by_it() {
        // Caught up (lag 0) until t = 200, then the consumer stops.
        let h = history(
            400.0,
            10.0,
            |t| (100.0 * t) as i64,
            |t| (100.0 * t.min(200.0)) as i64,
        );
        assert!(h.samples.iter().any(|s| s.end == s.committed));
        assert_eq!(status(&h), Status::Stop);
    }

    #[test]
    fn the_verdict_does_not_depend_on_how_often_the_consumer_commits() {
        for period in [5.0, 30.0, 90.0] {
            // Healthy: keeps up, commits every `period`. Not STOP though frozen between commits.
            let h = history(
                1200.0,
                10.0,
                |t| (100.0 * t) as i64,
                committing(100.0, period, 0),
            );
            assert_eq!(status(&h), Status::Ok, "healthy, commits every {period} s");
            // Falling behind at 80 of 100 msg/s: WARN whatever the commit period.
            let h = history(
                400.0,
                10.0,
                |t| (100.0 * t) as i64,
                committing(80.0, period, 0),
            );
            assert_eq!(
                status(&h),
                Status::Warn,
                "falling behind, commits every {period} s"
            );
            // Stopped for five periods (and longer than stop_after): STOP.
            let stopped_at = 1200.0 - 5.0 * period.max(RULES.stop_after_seconds);
            let h = history(
                1200.0,
                10.0,
                |t| (100.0 * t) as i64,
                move |t| committing(100.0, period, 0)(t.min(stopped_at)),
            );
            assert_eq!(
                status(&h),
                Status::Stop,
                "stopped, used to commit every {period} s"
            );
        }
    }

    #[test]
    fn lag_seconds_extrapolates_beyond_the_history() {
        let mut h = PartitionHistory::default();
        for i in 0..=10 {
            let t = i as f64 * 10.0;
            h.record(
                Sample {
                    at: t,
                    committed: 0,
                    end: 50_000 + 100 * i * 10,
                },
                &RULES,
            );
        }
        // At 100 msg/s, offset 0 was 500 s before the first sample: 600 s ago.
        assert!((h.evaluate(&RULES).unwrap().lag_seconds.unwrap() - 600.0).abs() < 1e-9);
    }

    #[test]
    fn groups_take_the_worst_partition_and_sum_the_lag() {
        let p = |status, lag_messages, lag_seconds| PartitionLag {
            status,
            lag_messages,
            lag_seconds,
        };
        let group = aggregate(
            "billing",
            &[
                ("orders", p(Status::Ok, 5, Some(1.0))),
                ("orders", p(Status::Stop, 100, Some(300.0))),
                ("refunds", p(Status::Warn, 10, None)),
            ],
        );
        assert_eq!(group.status, Status::Stop);
        assert_eq!(group.lag_messages, 115);
        assert_eq!(group.lag_seconds, Some(300.0));
        assert_eq!(
            group.topics[0].partitions_by_status,
            [(Status::Ok, 1), (Status::Stop, 1)]
        );
        assert_eq!(group.topics[1].status, Status::Warn);
        assert_eq!(Status::Stop.as_str(), "STOP");
        assert_eq!(serde_json::to_string(&Status::Warn).unwrap(), "\"WARN\"");
    }
}
