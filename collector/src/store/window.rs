//! One series' samples over time, and what the rules ask of them: the
//! median over a window, a counter's increase, a trend's slope.

use std::collections::VecDeque;

use statrs::statistics::{Data, Median};

/// Samples `(at, value)`, oldest first: those within the retention, and the
/// newest one before it (so that an increase across the window's start is seen).
#[derive(Debug, Clone, Default)]
pub(super) struct Window(VecDeque<(f64, f64)>, bool);

impl Window {
    /// Adds a sample, unless the last one is less than `spacing` seconds
    /// older, and drops what is past `retention`.
    pub(super) fn push(&mut self, at: f64, value: f64, retention: f64, spacing: f64) {
        if self.0.back().is_some_and(|(t, _)| at - t < spacing) {
            return;
        }
        self.0.push_back((at, value));
        while self.0.get(1).is_some_and(|(t, _)| *t < at - retention) {
            self.0.pop_front();
            self.1 = true;
        }
    }

    /// The first sample the series ever had, while it is still kept.
    pub(super) fn first_ever(&self) -> Option<(f64, f64)> {
        self.0.front().copied().filter(|_| !self.1)
    }

    pub(super) fn newest_at(&self) -> Option<f64> {
        self.0.back().map(|(t, _)| *t)
    }

    /// The median of the samples within the `seconds` before `now`.
    pub(super) fn robust(&self, now: f64, seconds: f64) -> Option<f64> {
        self.median_between(now - seconds, now)
    }

    /// The median of the samples from `from` to `to`.
    pub(super) fn median_between(&self, from: f64, to: f64) -> Option<f64> {
        let values: Vec<f64> = self
            .0
            .iter()
            .filter(|(t, v)| (from..=to).contains(t) && v.is_finite())
            .map(|(_, v)| *v)
            .collect();
        (!values.is_empty()).then(|| Data::new(values).median())
    }

    /// How much a counter grew from `from` to `to`, counted from the last
    /// sample before `from`, and the seconds its samples span. A drop is a
    /// reset (the agent or the broker restarted): it counts from zero.
    pub(super) fn increase_between(&self, from: f64, to: f64) -> Option<(f64, f64)> {
        let start = self.0.iter().rposition(|(t, _)| *t < from).unwrap_or(0);
        let samples = self
            .0
            .range(start..)
            .take_while(|(t, _)| *t <= to)
            .collect::<Vec<_>>();
        let (first, last) = (samples.first()?, samples.last()?);
        let grew = samples
            .windows(2)
            .map(|pair| {
                let (before, after) = (pair[0].1, pair[1].1);
                if after >= before {
                    after - before
                } else {
                    after
                }
            })
            .sum();
        Some((grew, last.0 - first.0))
    }

    /// The least-squares slope of the samples (per second), when they span
    /// at least `least_seconds`.
    pub(super) fn slope(&self, least_seconds: f64) -> Option<f64> {
        let (first, last) = (self.0.front()?, self.0.back()?);
        if last.0 - first.0 < least_seconds || self.0.len() < 3 {
            return None;
        }
        let n = self.0.len() as f64;
        let mean_t = self.0.iter().map(|(t, _)| t).sum::<f64>() / n;
        let mean_v = self.0.iter().map(|(_, v)| v).sum::<f64>() / n;
        let (covariance, variance) = self.0.iter().fold((0.0, 0.0), |(c, v), (t, value)| {
            (
                c + (t - mean_t) * (value - mean_v),
                v + (t - mean_t).powi(2),
            )
        });
        (variance > 0.0).then(|| covariance / variance)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(samples: &[(f64, f64)], retention: f64, spacing: f64) -> Window {
        let mut w = Window::default();
        for (at, value) in samples {
            w.push(*at, *value, retention, spacing);
        }
        w
    }

    #[test]
    fn one_sample_before_the_retention_stays_and_spacing_thins_the_rest() {
        let w = window(
            &[(0.0, 1.0), (10.0, 2.0), (20.0, 3.0), (30.0, 4.0)],
            15.0,
            0.0,
        );
        assert_eq!(w.0, [(10.0, 2.0), (20.0, 3.0), (30.0, 4.0)]);
        assert_eq!(w.first_ever(), None, "the first sample was dropped");
        let thin = window(
            &[(0.0, 1.0), (30.0, 2.0), (60.0, 3.0), (61.0, 4.0)],
            600.0,
            60.0,
        );
        assert_eq!(thin.0, [(0.0, 1.0), (60.0, 3.0)]);
        assert_eq!(thin.first_ever(), Some((0.0, 1.0)));
        assert_eq!(w.robust(30.0, 15.0), Some(3.5));
        assert_eq!(w.newest_at(), Some(30.0));
    }

    #[test]
    fn a_counter_grows_across_the_window_start_and_a_reset_counts_from_zero() {
        let w = window(
            &[
                (0.0, 5.0),
                (100.0, 5.0),
                (200.0, 7.0),
                (300.0, 9.0),
                (400.0, 2.0),
            ],
            1000.0,
            0.0,
        );
        // From the sample at 100 (the last before 150): 2 + 2 + 2 after the reset.
        assert_eq!(w.increase_between(150.0, 400.0), Some((6.0, 300.0)));
        assert_eq!(w.increase_between(-600.0, 400.0), Some((6.0, 400.0)));
        assert_eq!(Window::default().increase_between(0.0, 1.0), None);
        // The hour before: from the sample at 100 (last before 150) to 300.
        assert_eq!(w.increase_between(150.0, 300.0), Some((4.0, 200.0)));
        assert_eq!(w.median_between(100.0, 300.0), Some(7.0));
    }

    #[test]
    fn the_slope_is_the_least_squares_trend_once_long_enough() {
        let w = window(
            &[(0.0, 100.0), (60.0, 136.0), (120.0, 172.0), (180.0, 208.0)],
            1e6,
            0.0,
        );
        let slope = w.slope(120.0).unwrap();
        assert!((slope - 0.6).abs() < 1e-9, "{slope}");
        assert_eq!(w.slope(200.0), None, "too short a history");
        let flat = window(&[(0.0, 1.0), (60.0, 1.0), (120.0, 1.0)], 1e6, 0.0);
        assert_eq!(flat.slope(60.0), Some(0.0));
    }
}
