use super::*;

const RUN: u64 = 0xfeed;

fn record(sequence: u64, sent: f64) -> ProbeRecord {
    ProbeRecord {
        run: RUN,
        sequence,
        sent_micros: (sent * 1e6) as u64,
    }
}

/// Sends `count` records to partition 0 (led by broker 1) a second apart,
/// each acknowledged 5 ms later; returns their sequences.
fn send_acknowledged(probe: &mut Probe, from: f64, count: u64) -> Vec<u64> {
    (0..count)
        .map(|i| {
            let at = from + i as f64;
            let sequence = probe.sent(0, 1, at);
            probe.delivered(0, sequence, Ok(()), at + 0.005);
            sequence
        })
        .collect()
}

#[test]
fn a_record_reads_back_as_written_and_anything_else_is_not_a_probe_record() {
    let written = record(42, 1_700_000_000.25);
    let value = written.encode(100);
    assert_eq!(value.len(), 100);
    assert_eq!(ProbeRecord::decode(&value), Some(written));
    // Magic, run, sequence and send time: 28 bytes, never fewer.
    assert_eq!(written.encode(3).len(), 28);
    let header_only = written.encode(HEADER_BYTES);
    assert_eq!(ProbeRecord::decode(&header_only), Some(written));
    assert_eq!(ProbeRecord::decode(&header_only[..27]), None);
    assert_eq!(ProbeRecord::decode(b"BWP1 too short"), None);
    let mut foreign = value.clone();
    foreign[0] = b'X';
    assert_eq!(ProbeRecord::decode(&foreign), None);
}

#[test]
fn records_received_in_order_count_their_latencies_and_nothing_lost() {
    let mut probe = Probe::new(RUN, 10.0, 60.0);
    for sequence in send_acknowledged(&mut probe, 100.0, 3) {
        probe.received(
            0,
            record(sequence, 100.0 + sequence as f64),
            100.02 + sequence as f64,
        );
    }
    probe.settle(200.0, 600.0);
    let totals = &probe.totals()[&1];
    assert_eq!(
        (totals.sent, totals.acknowledged, totals.received),
        (3, 3, 3)
    );
    assert_eq!(
        (totals.lost, totals.duplicated, totals.out_of_order),
        (0, 0, 0)
    );
    assert_eq!(totals.produce_latency.count, 3);
    // 5 ms each: in the 5 ms bucket, not the 2.5 ms one.
    assert_eq!(totals.produce_latency.buckets[1], 0);
    assert_eq!(totals.produce_latency.buckets[2], 3);
    assert!((totals.end_to_end_latency.sum - 0.06).abs() < 1e-6);
}

#[test]
fn an_acknowledged_record_overtaken_by_a_later_one_is_lost_after_the_grace() {
    let mut probe = Probe::new(RUN, 10.0, 60.0);
    let sent = send_acknowledged(&mut probe, 100.0, 4);
    probe.received(0, record(sent[0], 100.0), 100.1);
    // 1 and 2 never come; 3 does.
    probe.received(0, record(sent[3], 103.0), 103.1);
    probe.settle(113.0, 600.0);
    assert_eq!(probe.totals()[&1].lost, 0, "still within the grace");
    probe.settle(113.1, 600.0);
    assert_eq!(probe.totals()[&1].lost, 2);
    let window = &probe.windows(113.1)[&1];
    assert_eq!(window.lost, 2);
    assert_eq!(
        window.oldest_waiting, None,
        "the lost are no longer waited for"
    );
}

#[test]
fn a_late_record_within_the_grace_is_out_of_order_not_lost() {
    let mut probe = Probe::new(RUN, 10.0, 60.0);
    let sent = send_acknowledged(&mut probe, 100.0, 3);
    probe.received(0, record(sent[0], 100.0), 100.1);
    probe.received(0, record(sent[2], 102.0), 102.1);
    probe.received(0, record(sent[1], 101.0), 105.0);
    probe.settle(200.0, 600.0);
    let totals = &probe.totals()[&1];
    assert_eq!(
        (totals.lost, totals.out_of_order, totals.received),
        (0, 1, 3)
    );
}

#[test]
fn a_record_received_twice_is_a_duplicate_and_another_run_is_ignored() {
    let mut probe = Probe::new(RUN, 10.0, 60.0);
    let sent = send_acknowledged(&mut probe, 100.0, 2);
    probe.received(0, record(sent[0], 100.0), 100.1);
    probe.received(0, record(sent[0], 100.0), 100.2);
    let other = ProbeRecord {
        run: RUN + 1,
        ..record(sent[1], 101.0)
    };
    probe.received(0, other, 101.1);
    probe.settle(200.0, 600.0);
    let totals = &probe.totals()[&1];
    assert_eq!((totals.received, totals.duplicated), (1, 1));
    assert_eq!(probe.windows(200.0)[&1].duplicated_total, 1);
    assert_eq!(totals.lost, 0, "the other run's record overtakes nothing");
}

#[test]
fn an_acknowledgement_taken_after_the_record_came_back_still_counts() {
    let mut probe = Probe::new(RUN, 10.0, 60.0);
    let first = probe.sent(0, 1, 100.0);
    let second = probe.sent(0, 1, 101.0);
    probe.delivered(0, first, Ok(()), 100.01);
    // The consumer reads the second before the producer reports it.
    probe.received(0, record(first, 100.0), 101.5);
    probe.received(0, record(second, 101.0), 101.5);
    probe.delivered(0, second, Ok(()), 101.6);
    probe.settle(200.0, 600.0);
    let totals = &probe.totals()[&1];
    assert_eq!(
        (totals.acknowledged, totals.received, totals.lost),
        (2, 2, 0)
    );
    assert_eq!(totals.produce_latency.count, 2);
    assert!((totals.produce_latency.sum - 0.61).abs() < 1e-9);
    assert_eq!(probe.windows(200.0)[&1].oldest_waiting, None);
}

#[test]
fn failures_give_the_success_ratio_and_the_last_error_of_the_window() {
    let mut probe = Probe::new(RUN, 10.0, 60.0);
    for (i, ok) in [true, false, false, true].into_iter().enumerate() {
        let at = 100.0 + i as f64;
        let sequence = probe.sent(1, 2, at);
        let result = if ok {
            Ok(())
        } else {
            Err(format!("timed out {i}"))
        };
        probe.delivered(1, sequence, result, at + 0.5);
    }
    probe.settle(110.0, 600.0);
    let window = &probe.windows(110.0)[&2];
    assert_eq!((window.acknowledged, window.failed), (2, 2));
    assert_eq!(window.success_ratio(), Some(0.5));
    assert_eq!(window.last_error.as_deref(), Some("timed out 2"));
    assert_eq!(window.partitions, vec![1]);
    assert_eq!(probe.totals()[&2].failed, 2);
    // A minute later the failures have left the window, and so has their error.
    probe.settle(170.0, 600.0);
    let window = &probe.windows(170.0)[&2];
    assert_eq!(window.success_ratio(), None);
    assert_eq!(window.last_error, None);
}

#[test]
fn the_window_gives_the_p99_and_the_oldest_record_still_waited_for() {
    let mut probe = Probe::new(RUN, 10.0, 60.0);
    for i in 0..100u64 {
        let at = 100.0 + i as f64 * 0.1;
        let sequence = probe.sent(0, 1, at);
        probe.delivered(0, sequence, Ok(()), at);
        let latency = if i == 99 { 3.0 } else { 0.01 * (i + 1) as f64 };
        probe.received(0, record(sequence, at), at + latency);
    }
    let waiting = probe.sent(0, 1, 120.0);
    probe.delivered(0, waiting, Ok(()), 120.1);
    probe.settle(125.0, 600.0);
    let window = &probe.windows(125.0)[&1];
    assert_eq!(window.received, 100);
    let p99 = window.end_to_end_p99.unwrap();
    assert!((p99 - 0.99).abs() < 1e-6, "{p99}");
    assert_eq!(window.oldest_waiting, Some(5.0));
    // Forgotten after forget_after, without counting as lost.
    probe.settle(125.0, 4.0);
    assert_eq!(probe.windows(125.0)[&1].oldest_waiting, None);
    assert_eq!(probe.totals()[&1].lost, 0);
}

#[test]
fn p99_is_the_nearest_rank() {
    assert_eq!(p99(&mut []), None);
    assert_eq!(p99(&mut [2.0]), Some(2.0));
    assert_eq!(p99(&mut [3.0, 1.0, 2.0]), Some(3.0));
    let mut hundred: Vec<f64> = (1..=100).map(f64::from).collect();
    assert_eq!(p99(&mut hundred), Some(99.0));
    let mut two_hundred: Vec<f64> = (1..=200).map(f64::from).collect();
    assert_eq!(p99(&mut two_hundred), Some(198.0));
}

#[test]
fn an_ended_process_counts_add_to_the_next_ones() {
    let mut earlier = BrokerTotals {
        sent: 5,
        acknowledged: 4,
        failed: 1,
        received: 4,
        lost: 1,
        duplicated: 2,
        out_of_order: 3,
        ..BrokerTotals::default()
    };
    earlier.produce_latency.observe(0.004);
    earlier.end_to_end_latency.observe(0.3);
    let mut now = BrokerTotals {
        sent: 10,
        acknowledged: 10,
        received: 9,
        ..BrokerTotals::default()
    };
    now.produce_latency.observe(0.02);
    now.add(&earlier);
    assert_eq!(
        (
            now.sent,
            now.acknowledged,
            now.failed,
            now.received,
            now.lost,
            now.duplicated,
            now.out_of_order
        ),
        (15, 14, 1, 13, 1, 2, 3)
    );
    assert_eq!(now.produce_latency.count, 2);
    assert!((now.produce_latency.sum - 0.024).abs() < 1e-12);
    // 4 ms is in the 5 ms bucket and above; 20 ms from the 25 ms bucket on.
    assert_eq!(now.produce_latency.buckets[..6], [0, 0, 1, 1, 2, 2]);
    assert_eq!(now.end_to_end_latency.count, 1);
    assert_eq!(
        now.end_to_end_latency.buckets[7], 0,
        "0.3 s is above 0.25 s"
    );
    assert_eq!(now.end_to_end_latency.buckets[8], 1);
}
