//! Metric families built fresh for one exposition, the way node_exporter's
//! const metrics are: a series whose device, topic or group is gone simply
//! is not built again. Both daemons build what changes once per cycle (the
//! agent's host, the collector's evaluation) this way and hand it to their
//! registry whole, so a scrape never sees half of a cycle.

use prometheus::proto::{self, MetricFamily, MetricType};

/// A series built from each item of a list: its name, its help, and its
/// value for an item.
pub type Column<T> = (&'static str, &'static str, fn(&T) -> f64);

/// Builds metric families for one exposition, with `common` labels (the
/// agent's `broker_id`) on every series.
pub struct Families {
    families: Vec<MetricFamily>,
    common: Vec<proto::LabelPair>,
}

pub struct Family<'a> {
    family: &'a mut MetricFamily,
    common: &'a [proto::LabelPair],
}

fn label_pair(name: &str, value: &str) -> proto::LabelPair {
    let mut pair = proto::LabelPair::default();
    pair.set_name(name.to_owned());
    pair.set_value(value.to_owned());
    pair
}

impl Families {
    pub fn new(common: &[(&str, &str)]) -> Self {
        Families {
            families: Vec::with_capacity(64),
            common: common
                .iter()
                .map(|(name, value)| label_pair(name, value))
                .collect(),
        }
    }

    pub fn counter(&mut self, name: &str, help: &str) -> Family<'_> {
        self.family(name, help, MetricType::COUNTER)
    }

    pub fn gauge(&mut self, name: &str, help: &str) -> Family<'_> {
        self.family(name, help, MetricType::GAUGE)
    }

    pub fn histogram(&mut self, name: &str, help: &str) -> Family<'_> {
        self.family(name, help, MetricType::HISTOGRAM)
    }

    fn family(&mut self, name: &str, help: &str, kind: MetricType) -> Family<'_> {
        let mut family = MetricFamily::default();
        family.set_name(name.to_owned());
        family.set_help(help.to_owned());
        family.set_field_type(kind);
        self.families.push(family);
        Family {
            family: self.families.last_mut().expect("just pushed"),
            common: &self.common,
        }
    }

    /// The families that have a series (a family whose devices are all
    /// gone has none, and the text format has no place for it).
    pub fn into_vec(self) -> Vec<MetricFamily> {
        let mut families = self.families;
        families.retain(|f| !f.get_metric().is_empty());
        families
    }
}

impl Family<'_> {
    pub fn add(&mut self, labels: &[(&str, &str)], value: f64) -> &mut Self {
        let mut metric = proto::Metric::default();
        let mut pairs = Vec::with_capacity(labels.len() + self.common.len());
        pairs.extend(labels.iter().map(|(name, value)| label_pair(name, value)));
        pairs.extend_from_slice(self.common);
        metric.set_label(pairs);
        if self.family.get_field_type() == MetricType::COUNTER {
            let mut counter = proto::Counter::default();
            counter.set_value(value);
            metric.set_counter(counter);
        } else {
            let mut gauge = proto::Gauge::default();
            gauge.set_value(value);
            metric.set_gauge(gauge);
        }
        self.family.mut_metric().push(metric);
        self
    }

    /// A histogram's series: `buckets` are (upper bound, observations at
    /// or below it), cumulative, as Prometheus keeps them.
    pub fn observations(
        &mut self,
        labels: &[(&str, &str)],
        buckets: impl IntoIterator<Item = (f64, u64)>,
        count: u64,
        sum: f64,
    ) -> &mut Self {
        let mut metric = proto::Metric::default();
        let mut pairs = Vec::with_capacity(labels.len() + self.common.len());
        pairs.extend(labels.iter().map(|(name, value)| label_pair(name, value)));
        pairs.extend_from_slice(self.common);
        metric.set_label(pairs);
        let mut histogram = proto::Histogram::default();
        histogram.set_sample_count(count);
        histogram.set_sample_sum(sum);
        histogram.set_bucket(
            buckets
                .into_iter()
                .map(|(bound, cumulative)| {
                    let mut bucket = proto::Bucket::default();
                    bucket.set_upper_bound(bound);
                    bucket.set_cumulative_count(cumulative);
                    bucket
                })
                .collect(),
        );
        metric.set_histogram(histogram);
        self.family.mut_metric().push(metric);
        self
    }

    pub fn value(&mut self, value: f64) -> &mut Self {
        self.add(&[], value)
    }
}
