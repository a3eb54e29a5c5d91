//! The end-to-end probe's bookkeeping: what was sent to each partition,
//! acknowledged, received back, and what that says of each broker. Records
//! carry the probe's run (a number drawn at start: another collector of an
//! active-active pair, or this one before a restart, writes other runs) and
//! a sequence per partition. The producer keeps one request in flight per
//! connection, so a partition's records arrive in the order sent: an
//! acknowledged record that a later one overtook, and that has not come by
//! a grace time later, was lost.

pub mod layout;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

/// The record's fixed part: magic, run, sequence, send time.
pub const HEADER_BYTES: usize = 4 + 8 + 8 + 8;
const MAGIC: &[u8; 4] = b"BWP1";

/// Upper bounds of the latency histograms, in seconds.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// Received sequences remembered per partition, to tell a duplicate.
const REMEMBERED: usize = 4096;

/// What a probe record says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeRecord {
    pub run: u64,
    pub sequence: u64,
    /// When it was sent, in microseconds of the collector's clock.
    pub sent_micros: u64,
}

impl ProbeRecord {
    /// The record's value, padded with zeros to `size` bytes.
    pub fn encode(&self, size: usize) -> Vec<u8> {
        let mut value = Vec::with_capacity(size.max(HEADER_BYTES));
        value.extend_from_slice(MAGIC);
        value.extend_from_slice(&self.run.to_be_bytes());
        value.extend_from_slice(&self.sequence.to_be_bytes());
        value.extend_from_slice(&self.sent_micros.to_be_bytes());
        value.resize(size.max(HEADER_BYTES), 0);
        value
    }

    /// `None` for anything that is not a probe record (someone else's
    /// writes to the topic are ignored, never counted).
    pub fn decode(value: &[u8]) -> Option<ProbeRecord> {
        if value.len() < HEADER_BYTES || &value[..4] != MAGIC {
            return None;
        }
        let word = |at: usize| u64::from_be_bytes(value[at..at + 8].try_into().expect("8 bytes"));
        Some(ProbeRecord {
            run: word(4),
            sequence: word(12),
            sent_micros: word(20),
        })
    }
}

/// A cumulative histogram with fixed buckets, as Prometheus exposes it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// Observations at or below each of [`LATENCY_BUCKETS`].
    pub buckets: [u64; LATENCY_BUCKETS.len()],
    pub count: u64,
    pub sum: f64,
}

impl Histogram {
    pub fn observe(&mut self, seconds: f64) {
        let seconds = seconds.max(0.0);
        for (bound, count) in LATENCY_BUCKETS.iter().zip(self.buckets.iter_mut()) {
            if seconds <= *bound {
                *count += 1;
            }
        }
        self.count += 1;
        self.sum += seconds;
    }

    /// Adds another histogram's observations (of an earlier process).
    pub fn add(&mut self, other: &Histogram) {
        for (mine, theirs) in self.buckets.iter_mut().zip(other.buckets) {
            *mine += theirs;
        }
        self.count += other.count;
        self.sum += other.sum;
    }
}

impl BrokerTotals {
    /// Adds another process's totals.
    pub fn add(&mut self, other: &BrokerTotals) {
        self.sent += other.sent;
        self.acknowledged += other.acknowledged;
        self.failed += other.failed;
        self.received += other.received;
        self.lost += other.lost;
        self.duplicated += other.duplicated;
        self.out_of_order += other.out_of_order;
        self.produce_latency.add(&other.produce_latency);
        self.end_to_end_latency.add(&other.end_to_end_latency);
    }
}

/// Counters and histograms of one broker since the collector started.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BrokerTotals {
    pub sent: u64,
    pub acknowledged: u64,
    pub failed: u64,
    pub received: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub out_of_order: u64,
    pub produce_latency: Histogram,
    pub end_to_end_latency: Histogram,
}

/// What happened lately, for the alerts' window.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Event {
    Acknowledged,
    Failed,
    /// Received back, after this many seconds.
    Received(f64),
    Lost,
}

#[derive(Debug, Clone)]
struct Pending {
    broker: i32,
    sent_at: f64,
    acknowledged_at: Option<f64>,
    /// When a later record of the partition arrived first.
    overtaken_at: Option<f64>,
    /// Read back before its acknowledgement was taken (the producer's
    /// report can come after the consumer's read): kept for the report.
    received: bool,
}

#[derive(Debug, Default)]
struct PartitionTrack {
    next_sequence: u64,
    pending: BTreeMap<u64, Pending>,
    /// The broker that led it at the last send.
    broker: i32,
    highest_received: Option<u64>,
    received: BTreeSet<u64>,
}

/// One broker's figures over the window, for its alerts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BrokerWindow {
    /// The partition it leads (the last one sent to).
    pub partitions: Vec<i32>,
    pub acknowledged: u64,
    pub failed: u64,
    /// The newest failure's reason.
    pub last_error: Option<String>,
    /// 99th percentile of the end-to-end latencies received back.
    pub end_to_end_p99: Option<f64>,
    pub received: u64,
    /// How long the oldest acknowledged record not yet received has waited.
    pub oldest_waiting: Option<f64>,
    pub lost: u64,
    pub duplicated_total: u64,
}

impl BrokerWindow {
    /// Acknowledged attempts out of those that ended (`None` with none).
    pub fn success_ratio(&self) -> Option<f64> {
        let ended = self.acknowledged + self.failed;
        (ended > 0).then(|| self.acknowledged as f64 / ended as f64)
    }
}

/// The probe's state: every partition's records, every broker's figures.
#[derive(Debug)]
pub struct Probe {
    run: u64,
    /// How long an overtaken record may still come before it counts lost.
    grace: f64,
    /// How long the alerts look back.
    window: f64,
    partitions: BTreeMap<i32, PartitionTrack>,
    totals: BTreeMap<i32, BrokerTotals>,
    recent: BTreeMap<i32, VecDeque<(f64, Event)>>,
    last_error: BTreeMap<i32, String>,
    pub commit_latency: Histogram,
    pub commit_failures: u64,
}

impl Probe {
    pub fn new(run: u64, grace: f64, window: f64) -> Probe {
        Probe {
            run,
            grace,
            window,
            partitions: BTreeMap::new(),
            totals: BTreeMap::new(),
            recent: BTreeMap::new(),
            last_error: BTreeMap::new(),
            commit_latency: Histogram::default(),
            commit_failures: 0,
        }
    }

    pub fn run(&self) -> u64 {
        self.run
    }

    fn note(&mut self, broker: i32, at: f64, event: Event) {
        self.recent
            .entry(broker)
            .or_default()
            .push_back((at, event));
    }

    /// A record about to be sent to `partition`, led by `broker`: its sequence.
    pub fn sent(&mut self, partition: i32, broker: i32, now: f64) -> u64 {
        let track = self.partitions.entry(partition).or_default();
        let sequence = track.next_sequence;
        track.next_sequence += 1;
        track.broker = broker;
        track.pending.insert(
            sequence,
            Pending {
                broker,
                sent_at: now,
                acknowledged_at: None,
                overtaken_at: None,
                received: false,
            },
        );
        self.totals.entry(broker).or_default().sent += 1;
        sequence
    }

    /// The cluster acknowledged (`Ok`) or refused the record.
    pub fn delivered(
        &mut self,
        partition: i32,
        sequence: u64,
        result: Result<(), String>,
        now: f64,
    ) {
        let Some(track) = self.partitions.get_mut(&partition) else {
            return;
        };
        let Some(pending) = track.pending.get_mut(&sequence) else {
            return; // forgotten
        };
        let broker = pending.broker;
        let totals = self.totals.entry(broker).or_default();
        match result {
            Ok(()) => {
                pending.acknowledged_at = Some(now);
                totals.acknowledged += 1;
                totals.produce_latency.observe(now - pending.sent_at);
                if pending.received {
                    track.pending.remove(&sequence);
                }
                self.note(broker, now, Event::Acknowledged);
            }
            Err(e) => {
                track.pending.remove(&sequence);
                totals.failed += 1;
                self.last_error.insert(broker, e);
                self.note(broker, now, Event::Failed);
            }
        }
    }

    /// A record read back from `partition`.
    pub fn received(&mut self, partition: i32, record: ProbeRecord, now: f64) {
        if record.run != self.run {
            return;
        }
        let track = self.partitions.entry(partition).or_default();
        let latency = now - record.sent_micros as f64 / 1e6;
        let broker = track
            .pending
            .get(&record.sequence)
            .map_or(track.broker, |p| p.broker);
        let totals = self.totals.entry(broker).or_default();
        if track.received.contains(&record.sequence) {
            totals.duplicated += 1;
            return;
        }
        totals.received += 1;
        totals.end_to_end_latency.observe(latency);
        if track
            .highest_received
            .is_some_and(|highest| record.sequence < highest)
        {
            totals.out_of_order += 1;
        }
        track.received.insert(record.sequence);
        if track.received.len() > REMEMBERED {
            track.received.pop_first();
        }
        track.highest_received = track.highest_received.max(Some(record.sequence));
        match track.pending.get_mut(&record.sequence) {
            Some(pending) if pending.acknowledged_at.is_none() => pending.received = true,
            _ => {
                track.pending.remove(&record.sequence);
            }
        }
        // Every acknowledged record before this one should have come first.
        for (_, pending) in track.pending.range_mut(..record.sequence) {
            if pending.acknowledged_at.is_some() && pending.overtaken_at.is_none() {
                pending.overtaken_at = Some(now);
            }
        }
        self.note(broker, now, Event::Received(latency));
    }

    /// Counts the overtaken records past their grace as lost, forgets
    /// records older than `forget_after` and events older than the window.
    pub fn settle(&mut self, now: f64, forget_after: f64) {
        let mut lost: Vec<i32> = Vec::new();
        for track in self.partitions.values_mut() {
            track.pending.retain(|_, p| {
                if p.overtaken_at.is_some_and(|at| now - at >= self.grace) {
                    lost.push(p.broker);
                    return false;
                }
                now - p.sent_at < forget_after
            });
        }
        for broker in lost {
            self.totals.entry(broker).or_default().lost += 1;
            self.note(broker, now, Event::Lost);
        }
        for events in self.recent.values_mut() {
            while events.front().is_some_and(|(at, _)| now - at > self.window) {
                events.pop_front();
            }
        }
    }

    /// Totals since start, per broker.
    pub fn totals(&self) -> &BTreeMap<i32, BrokerTotals> {
        &self.totals
    }

    /// Each broker's figures over the window (call [`Probe::settle`] first).
    pub fn windows(&self, now: f64) -> BTreeMap<i32, BrokerWindow> {
        let mut out: BTreeMap<i32, BrokerWindow> = BTreeMap::new();
        for (partition, track) in &self.partitions {
            let window = out.entry(track.broker).or_default();
            window.partitions.push(*partition);
            window.oldest_waiting = track
                .pending
                .values()
                .filter(|p| p.acknowledged_at.is_some())
                .map(|p| now - p.sent_at)
                .chain(window.oldest_waiting)
                .reduce(f64::max);
        }
        for (broker, events) in &self.recent {
            let window = out.entry(*broker).or_default();
            let mut latencies: Vec<f64> = Vec::new();
            for (_, event) in events {
                match event {
                    Event::Acknowledged => window.acknowledged += 1,
                    Event::Failed => window.failed += 1,
                    Event::Received(latency) => latencies.push(*latency),
                    Event::Lost => window.lost += 1,
                }
            }
            window.received = latencies.len() as u64;
            window.end_to_end_p99 = p99(&mut latencies);
            if window.failed > 0 {
                window.last_error = self.last_error.get(broker).cloned();
            }
        }
        for (broker, totals) in &self.totals {
            out.entry(*broker).or_default().duplicated_total = totals.duplicated;
        }
        out
    }
}

/// The 99th percentile, nearest rank.
fn p99(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let rank = (0.99 * values.len() as f64).ceil() as usize;
    Some(values[rank.clamp(1, values.len()) - 1])
}

#[cfg(test)]
mod tests;
