use super::*;

const DAY: f64 = 86_400.0;
/// The fetch interval of the synthetic series.
const STEP: f64 = 30.0;

fn settings() -> AnomalySettings {
    AnomalySettings {
        surge_factor: 1.75,
        drop_ratio: 0.4,
        floor: 1.0,
    }
}

/// A reproducible noise in [-1, 1) (xorshift), so the test cannot flake.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }
}

/// A topic's records per second: 1,000 on average, 1.6× at the day's peak
/// and 0.4× at night, with ±15 % noise per sample.
fn daily(at: f64, noise: &mut Noise) -> f64 {
    let cycle = 1.0 + 0.6 * (2.0 * std::f64::consts::PI * at / DAY).sin();
    1000.0 * cycle * (1.0 + 0.15 * noise.next())
}

/// Feeds `value(at)` from `from` to `to`, judging after each sample; the
/// times (and directions) at which it judged a change.
fn run(
    history: &mut History,
    from: f64,
    to: f64,
    mut value: impl FnMut(f64) -> f64,
) -> Vec<(f64, Direction)> {
    let mut found = Vec::new();
    let mut at = from;
    while at < to {
        history.record(at, value(at));
        if let Some(anomaly) = history.judge(at, &settings()) {
            found.push((at, anomaly.direction));
        }
        at += STEP;
    }
    found
}

#[test]
fn a_week_of_daily_cycle_and_noise_never_is_an_anomaly() {
    let mut noise = Noise(0x9e37_79b9_7f4a_7c15);
    let mut history = History::default();
    let found = run(&mut history, 0.0, 7.0 * DAY, |at| daily(at, &mut noise));
    assert_eq!(
        found,
        [],
        "20,160 samples of a daily cycle with ±15 % noise"
    );
}

#[test]
fn a_doubling_and_a_fall_below_a_third_are_found_within_three_samples() {
    let mut noise = Noise(7);
    let mut history = History::default();
    let start = 7.0 * DAY;
    run(&mut history, 0.0, start, |at| daily(at, &mut noise));
    // At the top of the day's cycle (the hardest case for a surge).
    let surge_at = start + 0.25 * DAY;
    let found = run(&mut history, start, surge_at + 10.0 * STEP, |at| {
        let factor = if at >= surge_at { 2.0 } else { 1.0 };
        factor * daily(at, &mut noise)
    });
    let first = found.first().expect("the doubling is found");
    assert_eq!(first.1, Direction::Surge);
    assert!(
        first.0 >= surge_at && first.0 <= surge_at + 2.0 * STEP,
        "found {} samples after the doubling",
        (first.0 - surge_at) / STEP
    );
    assert!(found
        .iter()
        .all(|(at, d)| *at >= surge_at && *d == Direction::Surge));

    // The next day, traffic falls to a quarter at the bottom of the cycle.
    let mut history_b = History::default();
    let mut noise = Noise(11);
    run(&mut history_b, 0.0, start, |at| daily(at, &mut noise));
    let drop_at = start + 0.75 * DAY;
    run(&mut history_b, start, drop_at, |at| daily(at, &mut noise));
    let found = run(&mut history_b, drop_at, drop_at + 10.0 * STEP, |at| {
        0.25 * daily(at, &mut noise)
    });
    let first = found.first().expect("the fall is found");
    assert_eq!(first.1, Direction::Drop);
    assert!(first.0 <= drop_at + 2.0 * STEP);
}

/// `days` of traffic around 1,000 (with `noise` of ±`spread`) that is
/// `factor` times that from 02:00 to 02:30 every night: the changes judged
/// the first night are `direction`, and none after it.
fn nightly_change_is_news_the_first_night_only(
    mut noise: Noise,
    spread: f64,
    factor: f64,
    days: f64,
    direction: Direction,
) {
    let night = |at: f64| (2.0 * 3600.0..2.5 * 3600.0).contains(&(at % DAY));
    let mut history = History::default();
    let found = run(&mut history, 0.0, days * DAY, |at| {
        let base = 1000.0 * (1.0 + spread * noise.next());
        if night(at) {
            factor * base
        } else {
            base
        }
    });
    assert!(
        found
            .iter()
            .any(|(at, d)| *at < DAY && night(*at) && *d == direction),
        "the first night's change is news"
    );
    let later: Vec<_> = found.iter().filter(|(at, _)| *at >= DAY).collect();
    assert_eq!(
        later,
        Vec::<&(f64, Direction)>::new(),
        "the same hour yesterday had it too"
    );
}

#[test]
fn a_daily_batch_is_news_the_first_night_only() {
    // Traffic triples.
    nightly_change_is_news_the_first_night_only(Noise(3), 0.1, 3.0, 4.0, Direction::Surge);
}

#[test]
fn one_odd_sample_is_not_a_change() {
    let mut history = History::default();
    run(&mut history, 0.0, 7200.0, |_| 500.0);
    history.record(7200.0, 5000.0);
    assert_eq!(history.judge(7200.0, &settings()), None);
    history.record(7230.0, 500.0);
    assert_eq!(history.judge(7230.0, &settings()), None);
    // Two high samples of three: the median moved.
    history.record(7260.0, 5000.0);
    history.record(7290.0, 5000.0);
    let anomaly = history.judge(7290.0, &settings()).unwrap();
    assert_eq!(anomaly.direction, Direction::Surge);
    assert_eq!(anomaly.current, 5000.0);
    assert_eq!(anomaly.baseline, 500.0);
    assert_eq!(anomaly.yesterday, None);
}

#[test]
fn limits_are_inclusive_and_quiet_series_are_judged_from_the_floor() {
    let flat = |value: f64| {
        let mut history = History::default();
        run(&mut history, 0.0, 3600.0, |_| value);
        history
    };
    let at_end = |mut history: History, value: f64| {
        for at in [3600.0, 3630.0, 3660.0] {
            history.record(at, value);
        }
        history.judge(3660.0, &settings()).map(|a| a.direction)
    };
    assert_eq!(at_end(flat(100.0), 175.0), Some(Direction::Surge));
    assert_eq!(at_end(flat(100.0), 174.0), None);
    assert_eq!(at_end(flat(100.0), 40.0), Some(Direction::Drop));
    assert_eq!(at_end(flat(100.0), 41.0), None);
    // Under the floor (1/s): 0.2 → 1.5 is no surge, 0.2 → 1.75 is one.
    assert_eq!(at_end(flat(0.2), 1.5), None);
    assert_eq!(at_end(flat(0.2), 1.75), Some(Direction::Surge));
    // A drop from under the floor is not news.
    assert_eq!(at_end(flat(0.5), 0.0), None);
    assert_eq!(at_end(flat(1.0), 0.0), Some(Direction::Drop));
}

/// An hour of readings swinging between `low` and `high`, one and the other.
fn swinging(low: f64, high: f64) -> History {
    let mut history = History::default();
    let mut flip = false;
    run(&mut history, 0.0, 3600.0, |_| {
        flip = !flip;
        if flip {
            low
        } else {
            high
        }
    });
    history
}

#[test]
fn a_change_inside_the_hours_noise_is_not_an_anomaly() {
    // Swings between 100 and 300 all hour: 400 is twice the median (200)
    // but within three spreads of it.
    let mut history = swinging(100.0, 300.0);
    for at in [3600.0, 3630.0, 3660.0] {
        history.record(at, 400.0);
    }
    let judged = history.judge(3660.0, &settings());
    assert_eq!(judged, None, "{history:?}");
    for at in [3690.0, 3720.0, 3750.0] {
        history.record(at, 900.0);
    }
    assert_eq!(
        history.judge(3750.0, &settings()).map(|a| a.direction),
        Some(Direction::Surge)
    );
}

#[test]
fn nothing_is_judged_before_half_an_hour_of_history() {
    let mut history = History::default();
    let found = run(&mut history, 0.0, 32.0 * 60.0, |at| {
        if at < 1500.0 {
            100.0
        } else {
            1000.0
        }
    });
    assert_eq!(found, []);
    // Then (33 minutes known, 30 in the baseline) it is.
    let found = run(&mut history, 32.0 * 60.0, 36.0 * 60.0, |_| 1000.0);
    assert!(!found.is_empty());
}

#[test]
fn history_is_bounded_and_survives_a_round_trip() {
    let mut history = History::default();
    run(&mut history, 0.0, 3.0 * DAY, |at| at % 1000.0);
    assert_eq!(history.minutes.len() as i64, MINUTES_KEPT - 1);
    assert_eq!(history.hours.len() as i64, HOURS_KEPT - 1);
    assert!(history.is_sane());
    let text = serde_json::to_string(&history).unwrap();
    assert!(text.len() < 4096, "{} bytes", text.len());
    let back: History = serde_json::from_str(&text).unwrap();
    assert_eq!(back, history);
}

#[test]
fn values_that_are_not_rates_are_skipped_and_insane_history_is_caught() {
    let mut history = History::default();
    history.record(0.0, f64::NAN);
    history.record(0.0, -1.0);
    history.record(0.0, f64::INFINITY);
    assert_eq!(history, History::default());
    let mut bad = History::default();
    bad.record(0.0, 1.0);
    bad.last[0] = -5.0;
    assert!(!bad.is_sane());
    let mut bad = History::default();
    bad.record(0.0, 1.0);
    bad.minute.as_mut().unwrap().index = i64::MAX;
    assert!(!bad.is_sane());
    let mut bad = History::default();
    bad.minutes.push_back((-3, 1.0, 0.0));
    assert!(!bad.is_sane());
}

#[test]
fn series_keep_what_a_round_missed_forget_what_is_gone_and_keep_the_busiest() {
    let mut series = Series::default();
    for minute in 0..40 {
        let at = minute as f64 * 60.0;
        series.record(
            at,
            [
                ("a".to_owned(), 10.0),
                ("b".to_owned(), 100.0),
                ("c".to_owned(), 50.0),
            ],
            2,
        );
    }
    let names: Vec<&String> = series.histories().keys().collect();
    assert_eq!(names, ["b", "c"], "the quietest goes");
    assert_eq!(series.judge(2400.0, &settings()), []);
    for at in [2400.0, 2430.0, 2460.0] {
        series.record(at, [("b".to_owned(), 400.0)], 2);
    }
    let judged = series.judge(2460.0, &settings());
    assert_eq!(judged.len(), 1);
    assert_eq!(
        (judged[0].0, judged[0].1.direction),
        ("b", Direction::Surge)
    );
    // c missed three rounds: kept, with its last sample's time.
    assert_eq!(series.histories().len(), 2);
    assert_eq!(series.histories()["c"].last_at(), Some(2340.0));
    assert_eq!(series.histories()["b"].last_at(), Some(2460.0));
    // Past the bound, a stale series goes before a quieter fresh one.
    series.record(2490.0, [("b".to_owned(), 400.0), ("d".to_owned(), 1.0)], 2);
    let names: Vec<&String> = series.histories().keys().collect();
    assert_eq!(names, ["b", "d"]);
    // An hour without a sample: forgotten.
    series.record(2490.0 + FORGET_AFTER_SECONDS, [("b".to_owned(), 1.0)], 2);
    let names: Vec<&String> = series.histories().keys().collect();
    assert_eq!(names, ["b"]);
    assert!(series.is_sane());
    let restored = Series::from_histories(series.histories().clone());
    assert_eq!(restored, series);
}

#[test]
fn the_median_is_the_middle_value_or_the_mean_of_the_middle_two() {
    assert_eq!(median(&mut []), None);
    assert_eq!(median(&mut [7.0]), Some(7.0));
    assert_eq!(median(&mut [5.0, 1.0, 3.0, 2.0, 4.0]), Some(3.0));
    assert_eq!(median(&mut [9.0, 1.0, 8.0, 2.0, 7.0, 3.0, 6.0]), Some(6.0));
    assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), Some(2.5));
    assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0, 6.0, 5.0]), Some(3.5));
}

/// A history with one reading of 100 in each of `minutes`, then three of
/// 1,000 in minute 69: judged there.
fn judged_at_minute_69(minutes: impl IntoIterator<Item = i64>) -> Option<Direction> {
    let mut history = History::default();
    for minute in minutes {
        history.record(minute as f64 * 60.0 + 1.0, 100.0);
    }
    for s in [1.0, 11.0, 21.0] {
        history.record(69.0 * 60.0 + s, 1000.0);
    }
    history
        .judge(69.0 * 60.0 + 21.0, &settings())
        .map(|a| a.direction)
}

#[test]
fn the_baseline_is_the_hour_before_the_last_three_minutes_and_needs_thirty_of_them() {
    // Minutes 6 to 65 are the baseline at minute 69: 30 of them are enough.
    assert_eq!(judged_at_minute_69(36..=65), Some(Direction::Surge));
    // 29 are not, whatever lies just outside: minute 66 (the last three
    // minutes hold the change) or minutes 1 to 5 (more than an hour ago).
    assert_eq!(judged_at_minute_69(37..=66), None);
    assert_eq!(judged_at_minute_69((1..=5).chain(38..=65)), None);
}

#[test]
fn a_fall_inside_the_hours_noise_is_not_a_drop() {
    // Readings alternate 20 and 180 all hour: the median is 100, and a
    // level of 30 is within three spreads of it.
    let mut history = swinging(20.0, 180.0);
    for at in [3600.0, 3630.0, 3660.0] {
        history.record(at, 30.0);
    }
    assert_eq!(history.judge(3660.0, &settings()), None, "{history:?}");
}

#[test]
fn a_nightly_lull_is_news_the_first_night_only() {
    // Traffic falls to a quarter.
    nightly_change_is_news_the_first_night_only(Noise(5), 0.05, 0.25, 3.0, Direction::Drop);
}

#[test]
fn a_minute_past_the_clocks_range_is_caught() {
    let latest_minute = (crate::clock::LATEST_UNIX_SECONDS / 60.0) as i64;
    let mut fine = History::default();
    fine.minutes.push_back((latest_minute, 1.0, 0.0));
    assert!(fine.is_sane());
    let mut bad = History::default();
    bad.minutes.push_back((latest_minute + 10, 1.0, 0.0));
    assert!(!bad.is_sane());
}
