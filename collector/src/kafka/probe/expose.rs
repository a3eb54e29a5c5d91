//! The probe's series.

use brokerwatch_common::exposition::{Column, Families};

use super::ProbeFindings;
use crate::model::probe::{BrokerTotals, Histogram, LATENCY_BUCKETS};

/// The probe's series: counters and histograms per broker since start, the
/// window's success ratio, and the commit latency.
pub fn expose(found: &ProbeFindings, families: &mut Families, now: f64) {
    families
        .gauge(
            "brokerwatch_probe_age_seconds",
            "Age of the end-to-end probe's last round.",
        )
        .value(now - found.at);
    let counters: [Column<BrokerTotals>; 7] = [
        (
            "brokerwatch_probe_records_sent_total",
            "Probe records sent to the partition the broker leads.",
            |t| t.sent as f64,
        ),
        (
            "brokerwatch_probe_records_acknowledged_total",
            "Probe records the cluster acknowledged (acks=all).",
            |t| t.acknowledged as f64,
        ),
        (
            "brokerwatch_probe_records_failed_total",
            "Probe records the cluster refused or did not acknowledge in time.",
            |t| t.failed as f64,
        ),
        (
            "brokerwatch_probe_records_received_total",
            "Probe records read back.",
            |t| t.received as f64,
        ),
        (
            "brokerwatch_probe_records_lost_total",
            "Probe records acknowledged and never read back while later ones were.",
            |t| t.lost as f64,
        ),
        (
            "brokerwatch_probe_records_duplicated_total",
            "Probe records read back more than once.",
            |t| t.duplicated as f64,
        ),
        (
            "brokerwatch_probe_records_out_of_order_total",
            "Probe records read back after a later one of their partition.",
            |t| t.out_of_order as f64,
        ),
    ];
    for (name, help, value) in counters {
        let mut family = families.counter(name, help);
        for (broker, totals) in &found.totals {
            family.add(&[("broker", &broker.to_string())], value(totals));
        }
    }
    let histograms: [HistogramColumn; 2] = [
        (
            "brokerwatch_probe_produce_latency_seconds",
            "From a probe record's send to its acknowledgement (acks=all).",
            |t| &t.produce_latency,
        ),
        (
            "brokerwatch_probe_end_to_end_latency_seconds",
            "From a probe record's send to its read-back.",
            |t| &t.end_to_end_latency,
        ),
    ];
    for (name, help, histogram) in histograms {
        let mut family = families.histogram(name, help);
        for (broker, totals) in &found.totals {
            let h = histogram(totals);
            family.observations(
                &[("broker", &broker.to_string())],
                buckets(h),
                h.count,
                h.sum,
            );
        }
    }
    let commit = &found.commit_latency;
    families
        .histogram(
            "brokerwatch_probe_commit_latency_seconds",
            "How long the probe group's offset commit takes (one request to its coordinator).",
        )
        .observations(&[], buckets(commit), commit.count, commit.sum);
    families
        .counter(
            "brokerwatch_probe_commit_failures_total",
            "Offset commits of the probe group that failed.",
        )
        .value(found.commit_failures as f64);
    families
        .counter(
            "brokerwatch_probe_process_restarts_total",
            "Times the probe's own process ended (its Kafka client crashed) and was started again.",
        )
        .value(found.restarts as f64);
    let mut ratio = families.gauge(
        "brokerwatch_probe_produce_success_ratio",
        "Probe records acknowledged over those that ended, within [probe] window.",
    );
    for (broker, window) in &found.windows {
        if let Some(r) = window.success_ratio() {
            ratio.add(&[("broker", &broker.to_string())], r);
        }
    }
    let mut without = families.gauge(
        "brokerwatch_probe_broker_without_partition",
        "1 for a broker in the metadata that leads no probe partition (not probed).",
    );
    for broker in &found.brokers_without_partition {
        without.add(&[("broker", &broker.to_string())], 1.0);
    }
}

/// A histogram built from each broker's totals.
type HistogramColumn = (&'static str, &'static str, fn(&BrokerTotals) -> &Histogram);

fn buckets(h: &Histogram) -> impl Iterator<Item = (f64, u64)> + '_ {
    LATENCY_BUCKETS
        .iter()
        .copied()
        .zip(h.buckets.iter().copied())
}
