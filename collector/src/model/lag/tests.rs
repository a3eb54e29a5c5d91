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
