//! The partition directories of a log dir: each one's bytes, summed per
//! topic, and how fast each is written to, from its growth scan after scan
//! (a scan every minute; a segment deleted by retention shrinks a partition,
//! and that scan's growth is left out rather than counted as negative).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use brokerwatch_common::{PartitionSize, TopicSize};

/// Partitions reported per log dir: the largest, and the fastest written.
pub const LARGEST_REPORTED: usize = 20;
/// Written rates are smoothed over about an hour.
const SMOOTHING_SECONDS: f64 = 3600.0;

/// One partition directory (`topic-N`) and the bytes its files hold.
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionDir {
    pub topic: String,
    pub partition: i32,
    pub bytes: u64,
}

/// The partition directories of `log_dir` (an unreadable dir has none).
pub fn scan(log_dir: &Path) -> Vec<PartitionDir> {
    let Ok(entries) = std::fs::read_dir(log_dir) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some((topic, partition)) = name
            .rsplit_once('-')
            .filter(|(topic, n)| {
                !topic.is_empty() && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())
            })
            .and_then(|(topic, n)| Some((topic.to_owned(), n.parse::<i32>().ok()?)))
        else {
            continue;
        };
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let bytes = std::fs::read_dir(entry.path())
            .map(|files| {
                files
                    .flatten()
                    .filter_map(|f| f.metadata().ok())
                    .filter(|m| m.is_file())
                    .map(|m| m.len())
                    .sum::<u64>()
            })
            .unwrap_or(0);
        found.push(PartitionDir {
            topic,
            partition,
            bytes,
        });
    }
    found
}

#[derive(Debug, Clone, Copy)]
struct Track {
    bytes: u64,
    at: f64,
    /// Bytes written per second, smoothed.
    rate: Option<f64>,
}

/// Each partition's written rate, from scan to scan.
#[derive(Debug, Default)]
pub struct Written {
    tracks: HashMap<(String, String, i32), Track>,
}

impl Written {
    /// Takes one scan of `log_dir` at `at` (seconds); returns each
    /// partition's bytes written per day where known, in scan order.
    pub fn update(&mut self, log_dir: &str, scan: &[PartitionDir], at: f64) -> Vec<Option<f64>> {
        let mut seen = HashMap::with_capacity(scan.len());
        let rates = scan
            .iter()
            .map(|p| {
                let key = (log_dir.to_owned(), p.topic.clone(), p.partition);
                let track = match self.tracks.get(&key) {
                    Some(last) if at > last.at => {
                        let elapsed = at - last.at;
                        let grown = p.bytes.saturating_sub(last.bytes) as f64 / elapsed;
                        let alpha = 1.0 - (-elapsed / SMOOTHING_SECONDS).exp();
                        Track {
                            bytes: p.bytes,
                            at,
                            rate: Some(last.rate.map_or(grown, |r| r + alpha * (grown - r))),
                        }
                    }
                    Some(last) => *last,
                    None => Track {
                        bytes: p.bytes,
                        at,
                        rate: None,
                    },
                };
                seen.insert(key, track);
                track.rate.map(|r| r * 86_400.0)
            })
            .collect();
        // Partitions moved away or deleted are forgotten; other dirs' stay.
        self.tracks.retain(|(dir, _, _), _| dir != log_dir);
        self.tracks.extend(seen);
        rates
    }
}

/// Per topic, its partitions and bytes; and the largest partitions and the
/// fastest written ([`LARGEST_REPORTED`] of each).
pub fn summarize(
    scan: &[PartitionDir],
    written: &[Option<f64>],
) -> (Vec<TopicSize>, Vec<PartitionSize>) {
    let mut topics: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for p in scan {
        let entry = topics.entry(&p.topic).or_default();
        entry.0 += 1;
        entry.1 += p.bytes;
    }
    let topics = topics
        .into_iter()
        .map(|(topic, (partitions, size_bytes))| TopicSize {
            topic: topic.to_owned(),
            partitions,
            size_bytes,
        })
        .collect();
    let mut by_size: Vec<usize> = (0..scan.len()).collect();
    by_size.sort_by(|a, b| scan[*b].bytes.cmp(&scan[*a].bytes));
    let mut by_written: Vec<usize> = (0..scan.len()).filter(|i| written[*i].is_some()).collect();
    by_written.sort_by(|a, b| {
        written[*b]
            .unwrap_or(0.0)
            .total_cmp(&written[*a].unwrap_or(0.0))
    });
    let mut chosen: Vec<usize> = by_size
        .into_iter()
        .take(LARGEST_REPORTED)
        .chain(by_written.into_iter().take(LARGEST_REPORTED))
        .collect();
    chosen.sort_unstable();
    chosen.dedup();
    let largest = chosen
        .into_iter()
        .map(|i| PartitionSize {
            topic: scan[i].topic.clone(),
            partition: scan[i].partition,
            size_bytes: scan[i].bytes,
            written_bytes_per_day: written[i],
        })
        .collect();
    (topics, largest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partition(dir: &Path, name: &str, bytes: usize) {
        std::fs::create_dir_all(dir.join(name)).unwrap();
        std::fs::write(
            dir.join(name).join("00000000000000000000.log"),
            vec![0u8; bytes],
        )
        .unwrap();
    }

    #[test]
    fn a_scan_finds_partition_dirs_and_their_bytes() {
        let dir = tempfile::tempdir().unwrap();
        partition(dir.path(), "orders-0", 1000);
        partition(dir.path(), "orders-1", 500);
        partition(dir.path(), "payments.v2-12", 1);
        std::fs::write(dir.path().join("recovery-point-offset-checkpoint"), "0\n").unwrap();
        std::fs::create_dir(dir.path().join("orders-0.abc-delete")).unwrap();
        std::fs::create_dir(dir.path().join("huge-99999999999")).unwrap();
        let mut found = scan(dir.path());
        found.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        let found: Vec<(&str, i32, u64)> = found
            .iter()
            .map(|p| (p.topic.as_str(), p.partition, p.bytes))
            .collect();
        assert_eq!(
            found,
            [
                ("orders", 0, 1000),
                ("orders", 1, 500),
                ("payments.v2", 12, 1)
            ]
        );
        assert_eq!(scan(Path::new("/nonexistent")), []);
    }

    #[test]
    fn written_rates_come_from_growth_and_leave_deletions_out() {
        let p = |bytes| PartitionDir {
            topic: "orders".into(),
            partition: 0,
            bytes,
        };
        let mut written = Written::default();
        assert_eq!(written.update("/a", &[p(1000)], 0.0), [None]);
        // 6,000 bytes in 60 s: 100 B/s, 8,640,000 a day.
        assert_eq!(written.update("/a", &[p(7000)], 60.0), [Some(8_640_000.0)]);
        // A segment deleted: no growth this minute, the rate decays a little.
        let after = written.update("/a", &[p(2000)], 120.0)[0].unwrap();
        let alpha = 1.0 - (-60.0f64 / 3600.0).exp();
        assert!(
            (after - 8_640_000.0 * (1.0 - alpha)).abs() < 1e-6,
            "{after}"
        );
        // Another dir's partition of the same name is its own.
        assert_eq!(written.update("/b", &[p(5)], 120.0), [None]);
        assert_eq!(written.tracks.len(), 2);
        // Gone from /a: forgotten.
        assert_eq!(written.update("/a", &[], 180.0), Vec::<Option<f64>>::new());
        assert_eq!(written.tracks.len(), 1);
    }

    #[test]
    fn summaries_sum_topics_and_keep_the_largest_and_the_fastest() {
        let scan: Vec<PartitionDir> = (0..30)
            .map(|i| PartitionDir {
                topic: if i < 25 { "big".into() } else { "fast".into() },
                partition: i,
                bytes: if i < 25 { 1_000_000 + i as u64 } else { 10 },
            })
            .collect();
        let written: Vec<Option<f64>> = (0..30)
            .map(|i| Some(if i < 25 { 0.0 } else { 1e12 }))
            .collect();
        let (topics, largest) = summarize(&scan, &written);
        assert_eq!(
            topics,
            [
                TopicSize {
                    topic: "big".into(),
                    partitions: 25,
                    size_bytes: 25_000_300
                },
                TopicSize {
                    topic: "fast".into(),
                    partitions: 5,
                    size_bytes: 50
                },
            ]
        );
        // The 20 largest (big 5..25) and the 20 fastest (fast 25..30, then big ones).
        assert!(largest
            .iter()
            .any(|p| p.partition == 24 && p.size_bytes == 1_000_024));
        assert!(largest.iter().filter(|p| p.topic == "fast").count() == 5);
        assert!(largest.len() <= 2 * LARGEST_REPORTED);
        assert!(largest.iter().all(|p| p.written_bytes_per_day.is_some()));
    }
}
