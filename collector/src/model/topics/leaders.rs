//! Leader changes per partition, counted between metadata snapshots: a new
//! leader (a broker, not "none") different from the one seen before is one
//! change. A leader lost and won back by the same broker is one change too.

use std::collections::{BTreeMap, HashMap, VecDeque};

use crate::model::replication::Snapshot;

/// Changes older than this no longer count as flapping.
pub const FLAP_WINDOW_SECONDS: f64 = 3600.0;

/// Leader changes as the topics' facts show them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LeaderSummary {
    /// Changes since the collector started, per topic that had any.
    pub totals: BTreeMap<String, u64>,
    /// Per topic, its partitions with changes in the last
    /// [`FLAP_WINDOW_SECONDS`] and how many, most first.
    pub recent: HashMap<String, Vec<(i32, usize)>>,
}

#[derive(Debug, Clone, Default)]
pub struct LeaderChanges {
    /// Each topic's leaders by partition id at the last snapshot (-1: none).
    last: HashMap<String, Vec<i32>>,
    /// The last broker that led each partition (kept through "none").
    last_led_by: HashMap<String, Vec<i32>>,
    /// Changes since the collector started, per topic.
    totals: BTreeMap<String, u64>,
    /// When each topic's partitions' recent changes happened.
    recent: HashMap<String, BTreeMap<i32, VecDeque<f64>>>,
}

impl LeaderChanges {
    pub fn observe(&mut self, snapshot: &Snapshot, now: f64) {
        let mut seen = HashMap::with_capacity(snapshot.topics.len());
        for topic in &snapshot.topics {
            let count = topic.partitions.iter().map(|p| p.id + 1).max().unwrap_or(0);
            let mut leaders = vec![-1; count.max(0) as usize];
            for p in &topic.partitions {
                if let Some(slot) = usize::try_from(p.id).ok().and_then(|i| leaders.get_mut(i)) {
                    *slot = p.leader;
                }
            }
            let previous = self.last.get(&topic.name);
            let led_by = self
                .last_led_by
                .entry(topic.name.clone())
                .or_insert_with(|| leaders.clone());
            led_by.resize(leaders.len(), -1);
            for (partition, (&leader, before)) in leaders.iter().zip(led_by.iter_mut()).enumerate()
            {
                if leader < 0 {
                    continue;
                }
                if *before >= 0 && *before != leader
                    || *before == leader
                        && previous
                            .and_then(|l| l.get(partition))
                            .is_some_and(|l| *l < 0)
                {
                    *self.totals.entry(topic.name.clone()).or_default() += 1;
                    self.recent
                        .entry(topic.name.clone())
                        .or_default()
                        .entry(partition as i32)
                        .or_default()
                        .push_back(now);
                }
                *before = leader;
            }
            seen.insert(topic.name.clone(), leaders);
        }
        // Deleted topics are forgotten (their totals stay: a counter does not go back).
        self.last_led_by.retain(|t, _| seen.contains_key(t));
        self.last = seen;
        self.recent.retain(|_, partitions| {
            partitions.retain(|_, times| {
                while times
                    .front()
                    .is_some_and(|t| *t <= now - FLAP_WINDOW_SECONDS)
                {
                    times.pop_front();
                }
                !times.is_empty()
            });
            !partitions.is_empty()
        });
    }

    /// What the topics' facts need of it at `now`.
    pub fn summary(&self, now: f64) -> LeaderSummary {
        LeaderSummary {
            totals: self.totals.clone(),
            recent: self
                .recent
                .keys()
                .map(|topic| (topic.clone(), self.recent(topic, now)))
                .filter(|(_, partitions)| !partitions.is_empty())
                .collect(),
        }
    }

    /// The topic's leader changes since the collector started.
    pub fn total(&self, topic: &str) -> u64 {
        self.totals.get(topic).copied().unwrap_or(0)
    }

    /// Every topic that had a leader change, with its total.
    pub fn totals(&self) -> &BTreeMap<String, u64> {
        &self.totals
    }

    /// The topic's partitions with changes in the window before `now`, and
    /// how many, most first.
    pub fn recent(&self, topic: &str, now: f64) -> Vec<(i32, usize)> {
        let Some(partitions) = self.recent.get(topic) else {
            return Vec::new();
        };
        let mut found: Vec<(i32, usize)> = partitions
            .iter()
            .map(|(p, times)| {
                (
                    *p,
                    times
                        .iter()
                        .filter(|t| **t > now - FLAP_WINDOW_SECONDS)
                        .count(),
                )
            })
            .filter(|(_, n)| *n > 0)
            .collect();
        found.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        found
    }
}
