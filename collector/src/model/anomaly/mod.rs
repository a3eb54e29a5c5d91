//! Sudden change in a traffic series (a topic's records per second, a
//! user's bytes per second) against the series' own robust baseline: the
//! median and spread of its last hour, and the same hour of the previous
//! day once a day of history is there. A change must be clear against both
//! (a daily batch that doubles the traffic at 02:00 every night is not news
//! at 02:00) and clear of the hour's noise; the current level is the median
//! of the last three samples, so one odd round never counts.
//!
//! History is kept compactly (per-minute and per-hour means), so that it can
//! be written to the state dir and survive a restart.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// Samples whose median is the current level.
const CURRENT_SAMPLES: usize = 3;
/// Minutes of per-minute means kept: the recent baseline and some slack.
const MINUTES_KEPT: i64 = 70;
/// The recent baseline: the hour before the last few minutes (which hold
/// the change being judged).
const BASELINE_FROM_MINUTES: i64 = 63;
const BASELINE_TO_MINUTES: i64 = 3;
/// Minutes of the last hour that must be known before anything is judged.
const BASELINE_MIN_MINUTES: usize = 30;
/// Hours of per-hour means kept: enough for the same hour yesterday.
const HOURS_KEPT: i64 = 26;
const DAY_SECONDS: f64 = 86_400.0;
/// A series with no sample for this long is forgotten.
pub const FORGET_AFTER_SECONDS: f64 = 3600.0;
/// How far a change must stand out of the hour's noise, in robust standard
/// deviations (1.4826 × the median absolute deviation).
const NOISE_SIGMAS: f64 = 3.0;

/// When a change is an anomaly.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AnomalySettings {
    /// A surge: the current level at least this many times the baseline.
    pub surge_factor: f64,
    /// A drop: the current level at most this share of the baseline.
    pub drop_ratio: f64,
    /// Below this level a series is too quiet to judge: a baseline under it
    /// counts as this much for a surge, and a drop from it is not news.
    pub floor: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Surge,
    Drop,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Surge => "surge",
            Direction::Drop => "drop",
        }
    }
}

/// A sudden change, with the figures that show it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Anomaly {
    pub direction: Direction,
    /// The median of the last three samples.
    pub current: f64,
    /// The median of the last hour (without its last minutes).
    pub baseline: f64,
    /// The same hour of the previous day, once there is one: its busy
    /// minutes (90th percentile) for a surge, its quiet ones (10th) for a drop.
    pub yesterday: Option<f64>,
}

/// A mean being accumulated for one bucket (a minute, an hour).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
struct Bucket {
    index: i64,
    sum: f64,
    sum_of_squares: f64,
    count: u32,
}

impl Bucket {
    fn mean(&self) -> f64 {
        self.sum / f64::from(self.count.max(1))
    }

    /// The samples' standard deviation inside the bucket.
    fn deviation(&self) -> f64 {
        let mean = self.mean();
        (self.sum_of_squares / f64::from(self.count.max(1)) - mean * mean)
            .max(0.0)
            .sqrt()
    }
}

/// A closed bucket: its index, the mean and the standard deviation of its samples.
type Closed = (i64, f64, f64);

/// One series' history.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// When the newest sample was taken.
    #[serde(default)]
    last_at: Option<f64>,
    /// The last samples, newest last.
    last: VecDeque<f64>,
    /// Closed minutes (minutes since the epoch), oldest first.
    minutes: VecDeque<Closed>,
    minute: Option<Bucket>,
    /// Closed hours (hours since the epoch) with the 10th and 90th
    /// percentiles of their minutes' means, oldest first.
    hours: VecDeque<Closed>,
    hour: Option<Bucket>,
}

/// Adds `value` to the open bucket of `index`, closing the open one into
/// `closed` when the index moved on, and drops what is older than `kept`.
fn accumulate(
    open: &mut Option<Bucket>,
    closed: &mut VecDeque<Closed>,
    index: i64,
    value: f64,
    kept: i64,
) {
    match open {
        Some(bucket) if bucket.index == index => {
            bucket.sum += value;
            bucket.sum_of_squares += value * value;
            bucket.count += 1;
        }
        _ => {
            if let Some(done) = open.take() {
                closed.push_back((done.index, done.mean(), done.deviation()));
            }
            *open = Some(Bucket {
                index,
                sum: value,
                sum_of_squares: value * value,
                count: 1,
            });
        }
    }
    while closed.front().is_some_and(|(i, _, _)| *i <= index - kept) {
        closed.pop_front();
    }
}

/// The median of `values` (sorted in place); `None` for none.
fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    })
}

impl History {
    /// Records the series' value at `at` (Unix seconds). Values that are not
    /// finite and non-negative are not traffic and are skipped.
    pub fn record(&mut self, at: f64, value: f64) {
        if !(value.is_finite() && value >= 0.0) {
            return;
        }
        self.last_at = Some(at);
        self.last.push_back(value);
        if self.last.len() > CURRENT_SAMPLES {
            self.last.pop_front();
        }
        let minute = (at / 60.0).floor() as i64;
        accumulate(
            &mut self.minute,
            &mut self.minutes,
            minute,
            value,
            MINUTES_KEPT,
        );
        let hour = (at / 3600.0).floor() as i64;
        let before = self.hours.back().map(|h| h.0);
        accumulate(&mut self.hour, &mut self.hours, hour, value, HOURS_KEPT);
        // An hour closed: what is kept of it is a low and a high of its
        // minutes' means (the 10th and 90th percentiles: a lull or a burst
        // of a quarter of an hour shows, one odd minute does not), so that
        // it is not averaged away before it is compared with tomorrow's.
        if let Some(closed) = self.hours.back_mut().filter(|h| Some(h.0) != before) {
            let range = closed.0 * 60..(closed.0 + 1) * 60;
            let mut means: Vec<f64> = self
                .minutes
                .iter()
                .filter(|m| range.contains(&m.0))
                .map(|m| m.1)
                .collect();
            means.sort_by(f64::total_cmp);
            let at = |share: f64| means[((means.len() - 1) as f64 * share).round() as usize];
            if means.is_empty() {
                closed.2 = closed.1;
            } else {
                (closed.1, closed.2) = (at(0.1), at(0.9));
            }
        }
    }

    /// The level now: the median of the last samples, once there are enough.
    pub fn current(&self) -> Option<f64> {
        (self.last.len() == CURRENT_SAMPLES)
            .then(|| median(&mut self.last.iter().copied().collect::<Vec<_>>()))
            .flatten()
    }

    /// The last hour's median and its noise, without its last minutes;
    /// `None` while fewer than half its minutes are known. The noise is the
    /// larger of the minutes' robust spread (1.4826 × their median absolute
    /// deviation) and the samples' typical spread inside a minute (which
    /// the minutes' means smooth away, and the current level does not).
    fn baseline(&self, at: f64) -> Option<(f64, f64)> {
        let minute = (at / 60.0).floor() as i64;
        let recent: Vec<&Closed> = self
            .minutes
            .iter()
            .filter(|(i, _, _)| {
                *i >= minute - BASELINE_FROM_MINUTES && *i < minute - BASELINE_TO_MINUTES
            })
            .collect();
        if recent.len() < BASELINE_MIN_MINUTES {
            return None;
        }
        let centre = median(&mut recent.iter().map(|m| m.1).collect::<Vec<_>>())?;
        let between = 1.4826
            * median(
                &mut recent
                    .iter()
                    .map(|m| (m.1 - centre).abs())
                    .collect::<Vec<_>>(),
            )?;
        let within = median(&mut recent.iter().map(|m| m.2).collect::<Vec<_>>())?;
        Some((centre, between.max(within)))
    }

    /// The low and high minutes of the hour a day before `at`, if it was
    /// recorded.
    fn yesterday(&self, at: f64) -> Option<(f64, f64)> {
        let hour = ((at - DAY_SECONDS) / 3600.0).floor() as i64;
        self.hours
            .iter()
            .find(|(i, _, _)| *i == hour)
            .map(|(_, low, high)| (*low, *high))
    }

    /// When the newest sample was taken.
    pub fn last_at(&self) -> Option<f64> {
        self.last_at
    }

    /// Whether the series changed suddenly at `at`; `None` while its
    /// history is too short to say or the change is ordinary.
    pub fn judge(&self, at: f64, settings: &AnomalySettings) -> Option<Anomaly> {
        let current = self.current()?;
        let (baseline, spread) = self.baseline(at)?;
        let yesterday = self.yesterday(at);
        let surge_base = baseline.max(settings.floor);
        // Against yesterday, a surge must clear that hour's busy minutes and
        // a drop fall below its quiet ones.
        let surge = current >= settings.surge_factor * surge_base
            && current > baseline + NOISE_SIGMAS * spread
            && yesterday.is_none_or(|(_, high)| {
                current >= settings.surge_factor * high.max(settings.floor)
            });
        let drop = baseline >= settings.floor
            && current <= settings.drop_ratio * baseline
            && current < baseline - NOISE_SIGMAS * spread
            && yesterday.is_none_or(|(low, _)| current <= settings.drop_ratio * low);
        let (direction, yesterday) = if surge {
            (Direction::Surge, yesterday.map(|(_, high)| high))
        } else if drop {
            (Direction::Drop, yesterday.map(|(low, _)| low))
        } else {
            return None;
        };
        Some(Anomaly {
            direction,
            current,
            baseline,
            yesterday,
        })
    }

    /// Whether every time it holds is a time (a state file edited by hand
    /// may hold anything) and every value a rate.
    pub fn is_sane(&self) -> bool {
        let rate = |v: &f64| v.is_finite() && *v >= 0.0;
        let latest_minute = (crate::clock::LATEST_UNIX_SECONDS / 60.0) as i64;
        let bucket_ok = |b: &Option<Bucket>| {
            b.as_ref().is_none_or(|b| {
                b.index >= 0
                    && b.index <= latest_minute
                    && rate(&b.sum)
                    && rate(&b.sum_of_squares)
                    && b.count > 0
            })
        };
        self.last.iter().all(rate)
            && self
                .last_at
                .is_none_or(|t| (0.0..crate::clock::LATEST_UNIX_SECONDS).contains(&t))
            && self.last.len() <= CURRENT_SAMPLES
            && self
                .minutes
                .iter()
                .chain(&self.hours)
                .all(|(i, mean, deviation)| {
                    *i >= 0 && *i <= latest_minute && rate(mean) && rate(deviation)
                })
            && self.minutes.len() as i64 <= MINUTES_KEPT
            && self.hours.len() as i64 <= HOURS_KEPT
            && bucket_ok(&self.minute)
            && bucket_ok(&self.hour)
    }
}

#[cfg(test)]
mod tests;

/// The histories of many series (every topic, every user), bounded: past
/// `max` series, the quietest are forgotten first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Series {
    histories: std::collections::BTreeMap<String, History>,
}

impl Series {
    pub fn from_histories(histories: std::collections::BTreeMap<String, History>) -> Self {
        Series { histories }
    }

    pub fn histories(&self) -> &std::collections::BTreeMap<String, History> {
        &self.histories
    }

    /// Records one value per series at `at`. A series without a value this
    /// time keeps its history (a round that could not read it says nothing
    /// about its traffic) until it has had none for [`FORGET_AFTER_SECONDS`]
    /// (a deleted topic, a user gone); past `max` series, the quietest go.
    pub fn record(&mut self, at: f64, values: impl IntoIterator<Item = (String, f64)>, max: usize) {
        for (name, value) in values {
            self.histories.entry(name).or_default().record(at, value);
        }
        self.histories
            .retain(|_, h| h.last_at.is_some_and(|t| t > at - FORGET_AFTER_SECONDS));
        if self.histories.len() > max {
            // Stale first, then the quietest.
            let mut ranked: Vec<(bool, f64, String)> = self
                .histories
                .iter()
                .map(|(name, h)| {
                    (
                        h.last_at == Some(at),
                        h.last.back().copied().unwrap_or(0.0),
                        name.clone(),
                    )
                })
                .collect();
            ranked.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
            let excess = self.histories.len() - max;
            for (_, _, name) in ranked.into_iter().take(excess) {
                self.histories.remove(&name);
            }
        }
    }

    /// The series that changed suddenly at `at`, by name.
    pub fn judge(&self, at: f64, settings: &AnomalySettings) -> Vec<(&str, Anomaly)> {
        self.histories
            .iter()
            .filter_map(|(name, h)| Some((name.as_str(), h.judge(at, settings)?)))
            .collect()
    }

    pub fn is_sane(&self) -> bool {
        self.histories.values().all(History::is_sane)
    }
}
