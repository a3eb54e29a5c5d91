//! The load picture of the whole cluster at one instant: each resource group
//! over its brokers with fresh figures (the others listed as missing), and
//! the disks inside each broker. Pure: the rows come from the store.

use std::collections::{BTreeMap, BTreeSet};

use super::load::{compute, default_weights, GroupLoad, Metric, Row, Weights};
use super::GroupView;

/// The model's settings: weights, r for brokers and r for the disks of one broker.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadParams {
    pub weights: Weights,
    pub deviation: f64,
    pub disk_deviation: f64,
}

/// Resource groups by name; brokers in none of them form `default`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResourceGroups(pub BTreeMap<String, BTreeSet<i32>>);

impl std::ops::Deref for ResourceGroups {
    type Target = BTreeMap<String, BTreeSet<i32>>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl ResourceGroups {
    pub const DEFAULT: &'static str = "default";

    /// The resource group of a broker: its configured group, or `default`.
    pub fn group_of(&self, broker: i32) -> &str {
        self.0
            .iter()
            .find(|(_, brokers)| brokers.contains(&broker))
            .map_or(Self::DEFAULT, |(name, _)| name)
    }

    pub fn brokers(&self) -> impl Iterator<Item = i32> + '_ {
        self.0.values().flatten().copied()
    }
}

/// One group's input: its brokers with fresh figures, and those without.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupRows {
    pub fresh: Vec<Row<i32>>,
    pub missing: Vec<i32>,
}

/// The model's input for a whole cluster: each group's rows, and each
/// broker's disks (by device).
pub type LoadRows = (BTreeMap<String, GroupRows>, BTreeMap<i32, Vec<Row<String>>>);

#[derive(Debug, Clone)]
pub struct ClusterLoad {
    /// Per group: its load over the brokers with fresh reports, and the
    /// brokers it should have but that are missing.
    pub groups: Vec<(GroupLoad<i32>, Vec<i32>)>,
    /// Per broker with two disks or more: the model across its disks.
    pub disks: BTreeMap<i32, GroupLoad<String>>,
}

impl ClusterLoad {
    pub fn views(&self) -> Vec<GroupView> {
        self.groups
            .iter()
            .map(|(load, missing)| GroupView::new(load, missing.clone()))
            .collect()
    }
}

/// The model over every group, and over the disks of each broker that has
/// two or more (`disks`: each broker's disks, by device).
pub fn cluster_load(
    params: &LoadParams,
    groups: BTreeMap<String, GroupRows>,
    disks: BTreeMap<i32, Vec<Row<String>>>,
) -> ClusterLoad {
    let groups = groups
        .into_iter()
        .map(|(group, rows)| {
            (
                compute(&group, &rows.fresh, &params.weights, params.deviation),
                rows.missing,
            )
        })
        .collect::<Vec<_>>();
    let disk_weights = default_weights(&Metric::DISK);
    let disks = disks
        .into_iter()
        .filter(|(_, rows)| rows.len() >= 2)
        .map(|(broker, rows)| {
            let load = compute(
                &format!("broker {broker}"),
                &rows,
                &disk_weights,
                params.disk_deviation,
            );
            (broker, load)
        })
        .collect();
    ClusterLoad { groups, disks }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brokers_fall_into_their_configured_group_or_default() {
        let groups = ResourceGroups([("payments".to_owned(), BTreeSet::from([1, 2]))].into());
        assert_eq!(groups.group_of(2), "payments");
        assert_eq!(groups.group_of(4), "default");
        assert_eq!(groups.brokers().collect::<Vec<_>>(), [1, 2]);
    }
}
