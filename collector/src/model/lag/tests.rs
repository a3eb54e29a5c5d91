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

#[test]
fn a_consumer_starting_up_is_not_warn_on_its_first_commits() {
    // A consumer starts at t = 0 behind a topic written at 100 msg/s and
    // catches up over its first minute; the collector samples every 10 s.
    // Its first three commit points show the lag growing (as it warms up):
    // that is not yet a trend.
    let commits = [(0.0, 0), (10.0, 400), (20.0, 1000)];
    let mut h = PartitionHistory::default();
    for (at, committed) in commits {
        h.record(
            Sample {
                at,
                committed,
                end: 500 + (100.0 * at) as i64,
            },
            &RULES,
        );
    }
    assert_eq!(h.evaluate(&RULES).unwrap().lag_messages, 1500);
    assert_eq!(status(&h), Status::Ok, "three commits in 20 s are no trend");
}

#[test]
fn partitions_and_groups_the_cluster_stops_reporting_are_dropped_after_three_rounds() {
    let key = |group: &str, partition: i32| (group.to_owned(), "orders".to_owned(), partition);
    let sample = |at: f64| Sample {
        at,
        committed: 100,
        end: 150,
    };
    let mut histories = Histories::new();
    let mut misses = Misses::new();
    // Round 1: billing has partitions 0 and 1, audit partition 0.
    let everything = |at| {
        vec![
            (key("audit", 0), sample(at)),
            (key("billing", 0), sample(at)),
            (key("billing", 1), sample(at)),
        ]
    };
    assert!(record_round(&mut histories, &mut misses, everything(10.0), &RULES).is_empty());
    assert_eq!(histories.len(), 3);
    // The topic shrinks to one partition and audit's offsets expire:
    // one, two missed rounds keep them (a rebalance, a leader moving)...
    for at in [20.0, 30.0] {
        let gone = record_round(
            &mut histories,
            &mut misses,
            vec![(key("billing", 0), sample(at))],
            &RULES,
        );
        assert!(gone.is_empty());
        assert_eq!(histories.len(), 3);
    }
    // ... the third drops them, and audit is gone.
    let gone = record_round(
        &mut histories,
        &mut misses,
        vec![(key("billing", 0), sample(40.0))],
        &RULES,
    );
    assert_eq!(gone, ["audit"]);
    assert_eq!(
        histories.keys().cloned().collect::<Vec<_>>(),
        [key("billing", 0)]
    );
    let groups = evaluate_groups(&histories, &RULES);
    assert_eq!(groups.len(), 1);
    assert_eq!(
        groups[0].lag_messages, 50,
        "the dropped partition no longer counts"
    );
    // A partition reported again starts over; a miss then counts from zero.
    record_round(&mut histories, &mut misses, everything(50.0), &RULES);
    assert_eq!(histories.len(), 3);
    record_round(
        &mut histories,
        &mut misses,
        vec![(key("billing", 0), sample(60.0))],
        &RULES,
    );
    record_round(&mut histories, &mut misses, everything(70.0), &RULES);
    for at in [80.0, 90.0] {
        record_round(
            &mut histories,
            &mut misses,
            vec![(key("billing", 0), sample(at))],
            &RULES,
        );
    }
    assert_eq!(
        histories.len(),
        3,
        "two misses after a report are not three"
    );
}

/// A history of explicit samples: (at, committed, end).
fn from(samples: &[(f64, i64, i64)]) -> PartitionHistory {
    let mut h = PartitionHistory::default();
    for &(at, committed, end) in samples {
        h.record(Sample { at, committed, end }, &RULES);
    }
    h
}

/// A history whose committed offset changes after each of `intervals`.
fn commits_every(intervals: &[f64]) -> PartitionHistory {
    let mut samples = vec![(0.0, 0, 1_000_000)];
    let mut at = 0.0;
    for (i, interval) in intervals.iter().enumerate() {
        at += interval;
        samples.push((at, 10 * (i as i64 + 1), 1_000_000));
    }
    from(&samples)
}

#[test]
fn the_usual_commit_interval_is_the_median_of_the_last_eight() {
    assert_eq!(from(&[(0.0, 5, 10)]).usual_commit_interval(), None);
    assert_eq!(
        from(&[(0.0, 5, 10), (10.0, 5, 20), (20.0, 5, 30)]).usual_commit_interval(),
        None,
        "a consumer that never moved has no usual interval"
    );
    // The first change sets the clock; intervals count from it.
    assert_eq!(commits_every(&[10.0]).usual_commit_interval(), None);
    assert_eq!(
        commits_every(&[10.0, 30.0]).usual_commit_interval(),
        Some(30.0)
    );
    assert_eq!(
        commits_every(&[10.0, 10.0, 30.0]).usual_commit_interval(),
        Some(30.0)
    );
    assert_eq!(
        commits_every(&[5.0, 10.0, 30.0, 20.0]).usual_commit_interval(),
        Some(20.0),
        "the median of 10, 30, 20"
    );
    assert_eq!(
        commits_every(&[5.0, 10.0, 30.0, 20.0, 40.0]).usual_commit_interval(),
        Some(30.0),
        "the upper median of 10, 20, 30, 40"
    );
    // Nine intervals after the first change: the oldest is dropped, eight
    // kept: 100, 1, 1, 1, 1, 100, 100, 100 has the median 100 (seven would give 1).
    let intervals = [5.0, 7.0, 100.0, 1.0, 1.0, 1.0, 1.0, 100.0, 100.0, 100.0];
    assert_eq!(
        commits_every(&intervals).usual_commit_interval(),
        Some(100.0)
    );
}

#[test]
fn a_rare_committer_is_not_stop_before_three_of_its_intervals() {
    // Commits every 90 s and keeps up, then stops at t = 720 with messages
    // arriving. stop_after is 60 s, but three of its intervals are 270 s.
    let mut samples = Vec::new();
    let mut t: f64 = 0.0;
    while t <= 1000.0 {
        let end = (100.0 * t) as i64;
        let committed = (100.0 * (t.min(720.0) / 90.0).floor() * 90.0) as i64;
        samples.push((t, committed, end));
        t += 10.0;
    }
    let at = |until: f64| {
        from(
            &samples
                .iter()
                .copied()
                .filter(|s| s.0 <= until)
                .collect::<Vec<_>>(),
        )
    };
    assert_eq!(at(710.0).usual_commit_interval(), Some(90.0));
    assert_ne!(
        status(&at(900.0)),
        Status::Stop,
        "180 s frozen: 2 intervals"
    );
    assert_ne!(status(&at(980.0)), Status::Stop, "260 s frozen");
    assert_eq!(
        status(&at(990.0)),
        Status::Stop,
        "270 s frozen: 3 intervals"
    );
}

#[test]
fn stop_needs_stop_after_even_for_a_fast_committer() {
    // Commits every 10 s, stops at t = 200: three intervals are 30 s, but
    // stop_after (60 s) is the floor.
    let samples: Vec<(f64, i64, i64)> = (0..=30)
        .map(|i| {
            let t = 10.0 * i as f64;
            (t, (100.0 * t.min(200.0)) as i64, (100.0 * t) as i64)
        })
        .collect();
    let until = |t: f64| {
        from(
            &samples
                .iter()
                .copied()
                .filter(|s| s.0 <= t)
                .collect::<Vec<_>>(),
        )
    };
    assert_eq!(until(250.0).evaluate(&RULES).unwrap().lag_messages, 5000);
    assert_ne!(status(&until(250.0)), Status::Stop, "50 s frozen");
    assert_eq!(status(&until(260.0)), Status::Stop, "60 s frozen");
}

#[test]
fn stall_is_a_frozen_consumer_with_nothing_new_to_read() {
    // Frozen at 9000 of 10000 from t = 90; production stopped at t = 100.
    let samples: Vec<(f64, i64, i64)> = (0..=30)
        .map(|i| {
            let t = 10.0 * i as f64;
            (
                (t),
                (100.0 * t.min(90.0)) as i64,
                (100.0 * t.min(100.0)) as i64,
            )
        })
        .collect();
    // 60 s after the freeze (t = 150): the end moved in the last 60 s? It
    // stopped at 100, before the last 60 s: STALL.
    let until = |t: f64| {
        from(
            &samples
                .iter()
                .copied()
                .filter(|s| s.0 <= t)
                .collect::<Vec<_>>(),
        )
    };
    assert_eq!(
        status(&until(150.0)),
        Status::Stop,
        "the end moved at 100, within 60 s of 150"
    );
    assert_eq!(status(&until(170.0)), Status::Stall);
}

#[test]
fn err_is_growing_lag_older_than_err_lag_and_no_sooner() {
    // Produced at 100 msg/s, consumed at 50: the lag in seconds is half the
    // time elapsed. err_lag is 120 s: WARN up to 240 s, ERR after.
    let samples: Vec<(f64, i64, i64)> = (0..=40)
        .map(|i| {
            let t = 10.0 * i as f64;
            (t, (50.0 * t) as i64, (100.0 * t) as i64)
        })
        .collect();
    let until = |t: f64| {
        from(
            &samples
                .iter()
                .copied()
                .filter(|s| s.0 <= t)
                .collect::<Vec<_>>(),
        )
    };
    let at_240 = until(240.0).evaluate(&RULES).unwrap();
    assert!((at_240.lag_seconds.unwrap() - 120.0).abs() < 1e-9);
    assert_eq!(
        at_240.status,
        Status::Warn,
        "exactly err_lag is not older than it"
    );
    assert_eq!(status(&until(250.0)), Status::Err);
}

#[test]
fn rewind_lasts_while_the_step_back_is_in_the_window() {
    let mut samples: Vec<(f64, i64, i64)> = (0..=10)
        .map(|i| (10.0 * i as f64, 100 * i, 100 * i + 50))
        .collect();
    samples.push((110.0, 20, 1150)); // back from 1000 to 20
    let h = from(&samples);
    assert_eq!(status(&h), Status::Rewind);
    // A step forward after it is still in the window: still REWIND.
    samples.push((120.0, 1100, 1250));
    assert_eq!(status(&from(&samples)), Status::Rewind);
    // Once the sample before the step back (t = 100) leaves the window (600 s).
    let mut t = 130.0;
    let mut committed = 1100;
    while t <= 710.0 {
        committed += 100;
        samples.push((t, committed, committed + 50));
        t += 10.0;
    }
    assert_eq!(status(&from(&samples)), Status::Ok);
    // A committed offset that only moves forward never rewinds.
    assert_eq!(
        status(&from(&[(0.0, 10, 20), (10.0, 10, 30), (20.0, 30, 30)])),
        Status::Ok
    );
}

#[test]
fn caught_up_is_ok_whatever_came_before() {
    // Lag grew steadily, then the consumer caught up at the last sample.
    let mut samples: Vec<(f64, i64, i64)> = (0..30)
        .map(|i| (10.0 * i as f64, 50 * i, 100 * i))
        .collect();
    samples.push((300.0, 3000, 3000));
    let lag = from(&samples).evaluate(&RULES).unwrap();
    assert_eq!(
        (lag.status, lag.lag_messages, lag.lag_seconds),
        (Status::Ok, 0, Some(0.0))
    );
    // A committed offset beyond the end (end read before the commit) is 0, not negative.
    let lag = from(&[(0.0, 120, 100)]).evaluate(&RULES).unwrap();
    assert_eq!((lag.lag_messages, lag.lag_seconds), (0, Some(0.0)));
}

#[test]
fn lag_in_seconds_interpolates_between_samples_and_extrapolates_beyond() {
    // End offsets 1000, 2000, 4000 at t = 0, 10, 20.
    let base = [(0.0, 0, 1000), (10.0, 0, 2000), (20.0, 0, 4000)];
    let with = |committed: i64| {
        let mut samples = base.to_vec();
        samples.push((30.0, committed, 4000));
        from(&samples).lag_seconds(committed)
    };
    // The end was 3000 halfway between t = 10 and t = 20: 15 s before t = 30.
    assert_eq!(with(3000), Some(15.0));
    // Exactly a sample's end: that sample's time.
    assert_eq!(with(2000), Some(20.0));
    assert_eq!(with(1000), Some(30.0));
    // Caught up.
    assert_eq!(with(4000), Some(0.0));
    assert_eq!(with(5000), Some(0.0));
    // 3999 is within the last pair that moved (10 -> 20).
    assert!((with(3999).unwrap() - (30.0 - 19.995)).abs() < 1e-9);
    // Before the history: 3000 produced over 30 s, 100 msg/s; offset 500 was
    // 5 s before t = 0.
    assert_eq!(with(500), Some(35.0));
    // Nothing produced over the history: unknown, not infinite.
    let flat = from(&[(0.0, 0, 1000), (10.0, 0, 1000)]);
    assert_eq!(flat.lag_seconds(0), None);
    // One sample: no rate to extrapolate at.
    assert_eq!(from(&[(0.0, 0, 1000)]).lag_seconds(0), None);
}

#[test]
fn recording_ignores_a_clock_step_back_and_keeps_one_sample_before_the_window() {
    let mut h = from(&[(0.0, 0, 100), (10.0, 10, 200)]);
    h.record(
        Sample {
            at: 5.0,
            committed: 0,
            end: 50,
        },
        &RULES,
    );
    h.record(
        Sample {
            at: 10.0,
            committed: 0,
            end: 50,
        },
        &RULES,
    );
    assert_eq!(
        h.samples.len(),
        2,
        "samples at or before the latest are ignored"
    );
    assert_eq!(h.rewound_from, None, "nor are they a rewind");
    // Samples every 100 s up to 1000 s: the window (600 s) reaches back to
    // 400; one older sample (300) is kept for interpolation.
    let samples: Vec<(f64, i64, i64)> = (0..=10).map(|i| (100.0 * i as f64, i, 10 * i)).collect();
    let h = from(&samples);
    assert_eq!(h.samples.first().map(|s| s.at), Some(300.0));
    assert_eq!(h.samples.len(), 8);
    // Exactly on the window's edge (t = 400) is inside it.
    let h = from(&[(0.0, 0, 0), (400.0, 1, 10), (1000.0, 2, 20)]);
    assert_eq!(h.samples.len(), 3);
    let h = from(&[(0.0, 0, 0), (399.0, 1, 10), (1000.0, 2, 20)]);
    assert_eq!(h.samples.first().map(|s| s.at), Some(399.0));
}

/// Points (t, lag) over `span` seconds, `lags` evenly spread.
fn points(lags: &[f64], span: f64) -> Vec<(f64, f64)> {
    let step = span / (lags.len() - 1) as f64;
    lags.iter()
        .enumerate()
        .map(|(i, lag)| (i as f64 * step, *lag))
        .collect()
}

#[test]
fn growing_needs_five_points_over_the_span_a_rising_slope_most_steps_up_and_ten_percent() {
    let grows = |lags: &[f64], span: f64| growing(points(lags, span).into_iter(), 150.0);
    let steady = [100.0, 110.0, 120.0, 130.0, 140.0];
    assert!(grows(&steady, 150.0), "five points over exactly the span");
    assert!(!grows(&steady, 149.0), "over a little less than the span");
    assert!(!grows(&steady[..4], 150.0), "four points");
    assert!(grows(&[100.0, 110.0, 120.0, 130.0, 140.0, 150.0], 200.0));
    // Three steps of five up (with the slope and the growth): growing.
    assert!(grows(&[100.0, 130.0, 120.0, 140.0, 130.0, 150.0], 200.0));
    // Two of five: not.
    assert!(!grows(&[100.0, 130.0, 120.0, 110.0, 130.0, 125.0], 200.0));
    // +10 % overall: growing; a little less: not.
    assert!(grows(&[100.0, 102.0, 104.0, 106.0, 110.0], 150.0));
    assert!(!grows(&[100.0, 102.0, 104.0, 106.0, 109.0], 150.0));
    // At least one message more, however small the lag.
    assert!(grows(&[5.0, 5.2, 5.4, 5.6, 6.0], 150.0));
    assert!(!grows(&[5.0, 5.2, 5.4, 5.6, 5.9], 150.0));
    // A last point higher than the first and most steps up, but a falling
    // slope (a big early spike): not growing.
    assert!(!grows(&[100.0, 200.0, 10.0, 20.0, 30.0, 111.0], 200.0));
    // Flat and falling lag.
    assert!(!grows(&[100.0; 6], 200.0));
    assert!(!grows(&[150.0, 140.0, 130.0, 120.0, 110.0], 150.0));
    assert!(!growing(std::iter::empty(), 0.0));
}

#[test]
fn groups_sum_their_partitions_and_take_the_worst() {
    let mut histories = Histories::new();
    let key = |group: &str, topic: &str, p: i32| (group.to_owned(), topic.to_owned(), p);
    // billing: orders/0 caught up, orders/1 100 behind and stopped (90 s,
    // with stop_after 60); refunds/0 7 behind. audit: one partition.
    // Samples every 10 s for 90 s: (committed, end) as functions of t.
    let every_10_s = |f: &dyn Fn(i64) -> (i64, i64)| -> Vec<(f64, i64, i64)> {
        (0..=9)
            .map(|i| {
                let (committed, end) = f(10 * i);
                (10.0 * i as f64, committed, end)
            })
            .collect()
    };
    for (k, samples) in [
        (key("billing", "orders", 0), every_10_s(&|t| (t, t))),
        (key("billing", "orders", 1), every_10_s(&|t| (0, 10 + t))),
        (key("billing", "refunds", 0), every_10_s(&|t| (t, t + 7))),
        (key("audit", "orders", 0), every_10_s(&|t| (t, t + 1))),
    ] {
        histories.insert(k, from(&samples));
    }
    let groups = evaluate_groups(&histories, &RULES);
    let names: Vec<&str> = groups.iter().map(|g| g.group.as_str()).collect();
    assert_eq!(names, ["audit", "billing"]);
    let billing = &groups[1];
    assert_eq!(billing.status, Status::Stop);
    assert_eq!(billing.lag_messages, 107);
    assert_eq!(billing.topics.len(), 2);
    assert_eq!(billing.topics[0].topic, "orders");
    assert_eq!(billing.topics[0].lag_messages, 100);
    assert_eq!(
        billing.topics[0].partitions_by_status,
        [(Status::Ok, 1), (Status::Stop, 1)]
    );
    assert_eq!(billing.topics[1].status, Status::Ok);
    assert_eq!(groups[0].lag_messages, 1);
    // The group's lag in seconds is its worst partition's.
    let worst = billing
        .topics
        .iter()
        .filter_map(|t| t.lag_seconds)
        .fold(0.0, f64::max);
    assert_eq!(billing.lag_seconds, Some(worst));
    assert!(evaluate_groups(&Histories::new(), &RULES).is_empty());
}

/// A consumer whose lag grows by 10 messages at each of `times` (it commits
/// each time), from a lag of 100.
fn falling_behind_at(times: &[f64]) -> PartitionHistory {
    let samples: Vec<(f64, i64, i64)> = times
        .iter()
        .enumerate()
        .map(|(i, at)| {
            let end = 1000 + 100 * i as i64;
            (*at, end - (100 + 10 * i as i64), end)
        })
        .collect();
    from(&samples)
}

#[test]
fn the_trend_spans_from_the_first_sample_in_the_window() {
    // Six points over exactly a quarter of the window: a trend.
    let h = falling_behind_at(&[1000.0, 1030.0, 1060.0, 1090.0, 1120.0, 1150.0]);
    assert_eq!(status(&h), Status::Warn);
    // A sample exactly at the window's start is in the window.
    let h = falling_behind_at(&[0.0, 475.0, 500.0, 525.0, 550.0, 600.0]);
    assert_eq!(status(&h), Status::Warn);
    // Growth over a minute of a 10-minute window: not yet a trend.
    let h = falling_behind_at(&[1000.0, 1012.0, 1024.0, 1036.0, 1048.0, 1060.0]);
    assert_eq!(status(&h), Status::Ok);
}

#[test]
fn a_step_back_before_the_window_is_no_longer_a_rewind() {
    // Commits keep up every 10 s; at t = 100 the group steps back once.
    let mut samples: Vec<(f64, i64, i64)> = (0..=9)
        .map(|i| (10.0 * i as f64, 100 * i, 100 * i))
        .collect();
    samples.push((100.0, 20, 1000));
    let mut committed = 20;
    let mut t = 105.0;
    while t <= 705.0 {
        committed += 100;
        samples.push((t, committed, committed));
        t += 10.0;
    }
    // At 705 the window starts at 105: the step back (100) is the one
    // sample kept from before it, not in it.
    assert_eq!(status(&from(&samples)), Status::Ok);
}

#[test]
fn growing_counts_rises_only_and_a_level_slope_is_no_trend() {
    let grows = |lags: &[f64], span: f64| growing(points(lags, span).into_iter(), 150.0);
    // Flat, then one step: one rise in four.
    assert!(!grows(&[100.0, 100.0, 100.0, 100.0, 111.0], 150.0));
    // Three rises in four and 15 % more, but a level least-squares slope.
    assert!(!grows(&[100.0, 120.0, 80.0, 90.0, 115.0], 150.0));
    // Times as Unix seconds: the span is the last less the first.
    let late = |span: f64| {
        points(&[100.0, 110.0, 120.0, 130.0, 140.0], span)
            .into_iter()
            .map(|(t, lag)| (t + 1.7e9, lag))
    };
    assert!(growing(late(150.0), 150.0));
    assert!(!growing(late(149.0), 150.0));
}
