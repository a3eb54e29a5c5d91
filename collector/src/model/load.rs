//! The normalized load model of ../shared/DESIGN.md section 2, as a pure
//! function of a table of members (brokers, or the disks of one broker) by
//! load metrics:
//!
//! ```text
//! D_x(n) = M_x(n) / Σ_i M_x(i)              (a metric whose Σ is 0 is skipped)
//! B_n    = Σ_x P_x · D_x(n)
//! D_b(n) = B_n / Σ_i B_i                    (mean share 1/N)
//! r_n    = (D_b(n) − 1/N) / (1/N)
//! σ      = sqrt( (1/N) · Σ_n (D_b(n) − 1/N)² ),   σ_max = r / N
//! ```

use std::borrow::Borrow;
use std::collections::BTreeMap;

/// A load metric of DESIGN.md section 2. Declared in the order of the
/// names, so that a map keyed by metrics iterates (and the model sums) in
/// name order, and a metric can be looked up by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Metric {
    CpuUsed,
    Fd,
    /// Bytes read and written: the one measure of the disks inside a broker.
    IoBytes,
    IoRead,
    IoUtil,
    IoWrite,
    Iowait,
    Leaders,
    MemUsed,
    NwBytesIn,
    NwBytesOut,
    Partitions,
}

impl Metric {
    /// The load metrics, in the order tables show them.
    pub const ALL: [Metric; 11] = [
        Metric::Partitions,
        Metric::Leaders,
        Metric::CpuUsed,
        Metric::NwBytesIn,
        Metric::NwBytesOut,
        Metric::IoRead,
        Metric::IoWrite,
        Metric::Iowait,
        Metric::IoUtil,
        Metric::MemUsed,
        Metric::Fd,
    ];

    /// The metric of the model across the disks inside one broker: one
    /// measure, bytes, so that %util (how a disk copes) is not mixed in.
    pub const DISK: [Metric; 1] = [Metric::IoBytes];

    pub fn name(self) -> &'static str {
        match self {
            Metric::Partitions => "partitions",
            Metric::Leaders => "leaders",
            Metric::CpuUsed => "cpu_used",
            Metric::NwBytesIn => "nw_bytes_in",
            Metric::NwBytesOut => "nw_bytes_out",
            Metric::IoRead => "io_read",
            Metric::IoWrite => "io_write",
            Metric::Iowait => "iowait",
            Metric::IoUtil => "io_util",
            Metric::MemUsed => "mem_used",
            Metric::Fd => "fd",
            Metric::IoBytes => "io_bytes",
        }
    }

    /// A load metric by its name (the disks' `io_bytes` is not one).
    pub fn from_name(name: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Every name, for error messages.
    pub fn names() -> String {
        Metric::ALL.map(Metric::name).join(", ")
    }
}

impl std::fmt::Display for Metric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Sound because metrics order as their names do (a test checks it).
impl Borrow<str> for Metric {
    fn borrow(&self) -> &str {
        self.name()
    }
}

impl PartialEq<&str> for Metric {
    fn eq(&self, other: &&str) -> bool {
        self.name() == *other
    }
}

/// Weight per metric; a metric absent here has weight 0 (not used).
pub type Weights = BTreeMap<Metric, f64>;

/// Every metric of `metrics` with weight 1.
pub fn default_weights(metrics: &[Metric]) -> Weights {
    metrics.iter().map(|m| (*m, 1.0)).collect()
}

/// The load's default weights (DESIGN.md section 2): 1 for what a broker
/// carries, 0 for iowait and io_util, which measure how it copes: a slow
/// disk is reported as a slow disk, not as load to move away.
pub fn load_weights() -> Weights {
    let mut weights = default_weights(&Metric::ALL);
    weights.insert(Metric::Iowait, 0.0);
    weights.insert(Metric::IoUtil, 0.0);
    weights
}

/// One member's row: its id and its value per metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Row<K> {
    pub member: K,
    pub values: BTreeMap<Metric, f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MemberLoad<K> {
    pub member: K,
    /// D_b(n): this member's share of the whole load.
    pub share: f64,
    /// r_n as a fraction, signed: +0.5 is 50 % above the mean share.
    pub deviation: f64,
    /// D_x(n) per metric used.
    pub metric_shares: BTreeMap<Metric, f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GroupLoad<K> {
    pub group: String,
    pub members: Vec<MemberLoad<K>>,
    pub stddev: f64,
    pub stddev_limit: f64,
    pub balanced: bool,
    /// Metrics that entered the load (weight > 0, present for every member, Σ > 0).
    pub metrics: Vec<Metric>,
    /// Metrics left out, with why.
    pub skipped_metrics: BTreeMap<Metric, String>,
}

impl<K> GroupLoad<K> {
    /// A group can only be out of balance with two members or more and
    /// something to compare them on.
    pub fn can_alert(&self) -> bool {
        self.members.len() >= 2 && !self.metrics.is_empty()
    }

    /// Whether a member's |r_n| exceeds `deviation_limit` in a group that can alert.
    pub fn deviates(&self, member: &MemberLoad<K>, deviation_limit: f64) -> bool {
        self.can_alert() && member.deviation.abs() > deviation_limit
    }

    /// Members whose |r_n| exceeds `deviation_limit`.
    pub fn deviating(&self, deviation_limit: f64) -> impl Iterator<Item = &MemberLoad<K>> {
        self.members
            .iter()
            .filter(move |m| self.deviates(m, deviation_limit))
    }
}

/// Computes the model for one group. `deviation_limit` is r (0.10 = 10 %).
pub fn compute<K: Clone>(
    group: &str,
    rows: &[Row<K>],
    weights: &Weights,
    deviation_limit: f64,
) -> GroupLoad<K> {
    let n = rows.len();
    let mut skipped = BTreeMap::new();
    let mut used: Vec<(Metric, f64, f64)> = Vec::new(); // (metric, weight, Σ)
    for (&metric, &weight) in weights {
        if weight <= 0.0 {
            continue;
        }
        if rows.iter().any(|r| !r.values.contains_key(&metric)) {
            if rows.iter().any(|r| r.values.contains_key(&metric)) {
                skipped.insert(metric, "not known for every member".to_owned());
            }
            continue;
        }
        let sum: f64 = rows.iter().map(|r| r.values[&metric]).sum();
        if !(sum > 0.0 && sum.is_finite()) {
            skipped.insert(metric, "sums to 0".to_owned());
            continue;
        }
        used.push((metric, weight, sum));
    }

    let weighted: Vec<f64> = rows
        .iter()
        .map(|r| used.iter().map(|(m, w, sum)| w * r.values[m] / sum).sum())
        .collect();
    let total: f64 = weighted.iter().sum();
    let mean = if n == 0 { 0.0 } else { 1.0 / n as f64 };
    let members: Vec<MemberLoad<K>> = rows
        .iter()
        .zip(&weighted)
        .map(|(row, b)| {
            let share = if total > 0.0 { b / total } else { mean };
            MemberLoad {
                member: row.member.clone(),
                share,
                deviation: if n == 0 { 0.0 } else { (share - mean) / mean },
                metric_shares: used
                    .iter()
                    .map(|(m, _, sum)| (*m, row.values[m] / sum))
                    .collect(),
            }
        })
        .collect();
    let stddev = if n == 0 {
        0.0
    } else {
        (members
            .iter()
            .map(|m| (m.share - mean).powi(2))
            .sum::<f64>()
            / n as f64)
            .sqrt()
    };
    let stddev_limit = if n == 0 {
        0.0
    } else {
        deviation_limit / n as f64
    };
    let mut load = GroupLoad {
        group: group.to_owned(),
        members,
        stddev,
        stddev_limit,
        balanced: true,
        metrics: used.iter().map(|(m, _, _)| *m).collect(),
        skipped_metrics: skipped,
    };
    load.balanced = !load.can_alert() || load.stddev <= load.stddev_limit;
    load
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn row(member: i32, values: &[(&str, f64)]) -> Row<i32> {
        Row {
            member,
            values: values
                .iter()
                .map(|(m, v)| (Metric::from_name(m).unwrap(), *v))
                .collect(),
        }
    }

    #[test]
    fn metrics_are_named_and_compared_by_name() {
        let names = Metric::names();
        assert!(names.starts_with("partitions, leaders, "), "{names}");
        for metric in Metric::ALL {
            assert!(names.contains(metric.name()), "{names}");
            assert!(metric == metric.name());
        }
        assert!(Metric::CpuUsed != "fd");
        assert_eq!(Metric::from_name("leaders"), Some(Metric::Leaders));
    }

    #[test]
    fn metrics_order_as_their_names_do() {
        let mut by_name = [Metric::ALL.as_slice(), &Metric::DISK].concat();
        by_name.sort_by_key(|m| m.name());
        let mut by_metric = by_name.clone();
        by_metric.sort();
        assert_eq!(by_name, by_metric, "Borrow<str> relies on it");
        for m in Metric::ALL {
            assert_eq!(Metric::from_name(m.name()), Some(m));
        }
    }

    /// The table of DESIGN.md section 2.
    pub(crate) fn worked_example() -> Vec<Row<i32>> {
        let table = [
            (1, [100.0, 50.0, 0.40, 100.0, 200.0]),
            (2, [100.0, 50.0, 0.42, 110.0, 210.0]),
            (3, [110.0, 55.0, 0.38, 95.0, 190.0]),
            (4, [90.0, 45.0, 0.40, 105.0, 200.0]),
        ];
        let names = [
            "partitions",
            "leaders",
            "cpu_used",
            "nw_bytes_in",
            "nw_bytes_out",
        ];
        table
            .iter()
            .map(|(broker, values)| {
                row(
                    *broker,
                    &names
                        .iter()
                        .copied()
                        .zip(values.iter().copied())
                        .collect::<Vec<_>>(),
                )
            })
            .collect()
    }

    fn close(actual: f64, expected: f64) {
        assert!(
            (actual - expected).abs() < 1e-6,
            "{actual} is not {expected} to 1e-6"
        );
    }

    #[test]
    fn reproduces_the_worked_example_to_1e_6() {
        let load = compute(
            "default",
            &worked_example(),
            &default_weights(&Metric::ALL),
            0.10,
        );
        let shares: Vec<f64> = load.members.iter().map(|m| m.share).collect();
        for (actual, expected) in shares.iter().zip([0.248780, 0.258659, 0.251341, 0.241220]) {
            close(*actual, expected);
        }
        let deviations: Vec<f64> = load.members.iter().map(|m| m.deviation).collect();
        for (actual, expected) in deviations
            .iter()
            .zip([-0.004878, 0.034634, 0.005366, -0.035122])
        {
            close(*actual, expected);
        }
        close(load.stddev, 0.006232);
        close(load.stddev_limit, 0.025);
        assert!(load.balanced);
        assert_eq!(
            load.metrics,
            [
                "cpu_used",
                "leaders",
                "nw_bytes_in",
                "nw_bytes_out",
                "partitions"
            ]
        );
        // Metrics with weight but no column are simply absent, not "skipped".
        assert!(load.skipped_metrics.is_empty());
        close(load.members[0].metric_shares["partitions"], 0.25);
        close(load.members[2].metric_shares["partitions"], 110.0 / 400.0);
        assert_eq!(load.deviating(0.10).count(), 0);
    }

    #[test]
    fn weights_change_the_shares() {
        // Only nw_bytes_out, weight 3: B_n is 3 · D_out(n), so D_b(n) = D_out(n).
        let weights: Weights = [(Metric::NwBytesOut, 3.0), (Metric::Partitions, 0.0)].into();
        let load = compute("default", &worked_example(), &weights, 0.10);
        close(load.members[1].share, 210.0 / 800.0);
        assert_eq!(load.metrics, ["nw_bytes_out"]);
        // partitions 2 and nw_bytes_out 1: broker 3's share leans to partitions.
        let weights: Weights = [(Metric::Partitions, 2.0), (Metric::NwBytesOut, 1.0)].into();
        let load = compute("default", &worked_example(), &weights, 0.10);
        let expected = (2.0 * 110.0 / 400.0 + 190.0 / 800.0) / 3.0;
        close(load.members[2].share, expected);
    }

    #[test]
    fn a_zero_sum_metric_is_skipped() {
        let rows = vec![
            row(1, &[("partitions", 10.0), ("iowait", 0.0)]),
            row(2, &[("partitions", 30.0), ("iowait", 0.0)]),
        ];
        let load = compute("default", &rows, &default_weights(&Metric::ALL), 0.10);
        assert_eq!(load.metrics, ["partitions"]);
        assert_eq!(load.skipped_metrics["iowait"], "sums to 0");
        close(load.members[0].share, 0.25);
        close(load.members[1].deviation, 0.5);
        // σ = sqrt(((0.25-0.5)² + (0.75-0.5)²)/2) = 0.25, limit 0.1/2.
        close(load.stddev, 0.25);
        close(load.stddev_limit, 0.05);
        assert!(!load.balanced);
        assert_eq!(
            load.deviating(0.10).map(|m| m.member).collect::<Vec<_>>(),
            [1, 2]
        );
    }

    #[test]
    fn a_metric_missing_for_one_member_is_skipped_not_zeroed() {
        let rows = vec![
            row(1, &[("partitions", 10.0), ("cpu_used", 0.5)]),
            row(2, &[("partitions", 10.0)]),
        ];
        let load = compute("default", &rows, &default_weights(&Metric::ALL), 0.10);
        assert_eq!(load.metrics, ["partitions"]);
        assert_eq!(
            load.skipped_metrics["cpu_used"],
            "not known for every member"
        );
        close(load.members[0].share, 0.5);
        assert!(load.balanced);
    }

    #[test]
    fn a_group_of_one_is_reported_but_never_alerts() {
        let rows = vec![row(7, &[("partitions", 10.0)])];
        let load = compute("solo", &rows, &default_weights(&Metric::ALL), 0.10);
        assert_eq!(load.members.len(), 1);
        close(load.members[0].share, 1.0);
        close(load.members[0].deviation, 0.0);
        assert!(load.balanced && !load.can_alert());
        assert_eq!(load.deviating(0.0).count(), 0);
    }

    #[test]
    fn nothing_to_compare_is_balanced() {
        let rows = vec![row(1, &[("iowait", 0.0)]), row(2, &[("iowait", 0.0)])];
        let load = compute("default", &rows, &default_weights(&Metric::ALL), 0.10);
        assert!(load.metrics.is_empty() && load.balanced);
        close(load.members[0].share, 0.5);
        let empty = compute::<i32>("empty", &[], &default_weights(&Metric::ALL), 0.10);
        assert!(empty.members.is_empty() && empty.balanced);
    }

    #[test]
    fn the_disks_of_one_broker_use_the_same_model() {
        let disk = |device: &str, bytes: f64| Row {
            member: device.to_owned(),
            values: [(Metric::IoBytes, bytes)].into(),
        };
        let rows = vec![
            disk("sdb", 500.0),
            disk("sdc", 500.0),
            disk("sdd", 500.0),
            disk("sde", 1500.0),
        ];
        let load = compute("broker 1", &rows, &default_weights(&Metric::DISK), 0.10);
        // sde carries half of the bytes.
        close(load.members[3].share, 0.5);
        close(load.members[3].deviation, 1.0);
        close(load.members[0].deviation, -1.0 / 3.0);
        assert!(!load.balanced);
        assert_eq!(load.members[3].member, "sde");
    }

    #[test]
    fn exactly_at_the_limit_is_not_beyond_it() {
        // Shares 3/8, 1/8, 2/8, 2/8: deviations +50 %, -50 %, 0, 0 exactly.
        let rows = vec![
            row(1, &[("partitions", 3.0)]),
            row(2, &[("partitions", 1.0)]),
            row(3, &[("partitions", 2.0)]),
            row(4, &[("partitions", 2.0)]),
        ];
        let load = compute("default", &rows, &default_weights(&Metric::ALL), 0.5);
        close(load.members[0].deviation, 0.5);
        assert_eq!(load.deviating(0.5).count(), 0, "+50 % is not beyond ±50 %");
        assert_eq!(
            load.deviating(0.49).map(|m| m.member).collect::<Vec<_>>(),
            [1, 2]
        );
        // σ = sqrt((1/8² + 1/8²) / 4) = 0.0884 against r/N = 0.5/4 = 0.125.
        close(load.stddev, (1.0f64 / 128.0).sqrt());
        close(load.stddev_limit, 0.125);
        assert!(load.balanced);
        let tight = compute("default", &rows, &default_weights(&Metric::ALL), 0.25);
        close(tight.stddev_limit, 0.0625);
        assert!(!tight.balanced, "σ 0.0884 over 0.25 / 4");
    }
}
