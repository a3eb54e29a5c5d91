//! The hosts, from the agents' reports: an agent that went silent, and
//! saturated disks and links, a cold page cache and iowait of brokers that
//! report (a silent broker's figures are unknown, not judged).

use crate::alerts::judge::{age, percent, timestamp, Judge};
use crate::catalogue::Alert;
use crate::config::Config;
use crate::model::load::Metric;
use crate::store::Series;

use super::Inputs;

pub(super) fn judge(j: &mut Judge, config: &Config, inputs: &Inputs) {
    let missing_after = config.broker_missing_after.as_secs_f64();
    for (broker, seen) in inputs.last_seen {
        let silent = inputs.now - seen;
        j.judge(
            Alert::KafkaAgentDown,
            &[&broker.to_string()],
            silent > missing_after,
            &[("silent", age(silent)), ("last", timestamp(*seen))],
        );
    }

    let store = inputs.store;
    for (&broker, _) in store
        .brokers()
        .filter(|(b, _)| store.is_fresh(**b, inputs.now, missing_after))
    {
        let broker_label = broker.to_string();
        for series in store.series_of(broker) {
            let Some(value) = store.robust(broker, series, inputs.now) else {
                continue;
            };
            let (alert, device, active) = match series {
                Series::Disk(device, Metric::IoUtil) => {
                    let limit = j.threshold(Alert::KafkaHostDiskSaturated);
                    (Alert::KafkaHostDiskSaturated, Some(device), value > limit)
                }
                Series::LinkUtilization(interface) => {
                    let limit = j.threshold(Alert::KafkaHostNetworkSaturated);
                    (
                        Alert::KafkaHostNetworkSaturated,
                        Some(interface),
                        value > limit,
                    )
                }
                Series::PageCacheHit => {
                    let limit = j.threshold(Alert::KafkaPageCacheHitRatioLow);
                    (Alert::KafkaPageCacheHitRatioLow, None, value < limit)
                }
                Series::Load(Metric::Iowait) => {
                    let limit = j.threshold(Alert::KafkaHostIowaitHigh);
                    (Alert::KafkaHostIowaitHigh, None, value > limit)
                }
                _ => continue,
            };
            let limit = percent(j.threshold(alert));
            // A saturated disk's latest await and queue, where to look next.
            let figures = match (alert, device) {
                (Alert::KafkaHostDiskSaturated, Some(device)) => store
                    .get(broker)
                    .and_then(|e| e.latest.host.disks.iter().find(|d| &d.device == device))
                    .map(|d| {
                        format!(
                            "; now r_await {:.1} ms, w_await {:.1} ms, queue {:.1}",
                            d.read_await_seconds * 1000.0,
                            d.write_await_seconds * 1000.0,
                            d.queue_length
                        )
                    })
                    .unwrap_or_default(),
                _ => String::new(),
            };
            let values = [
                ("value", percent(value)),
                ("limit", limit),
                ("figures", figures),
            ];
            match device {
                Some(device) => j.judge(alert, &[&broker_label, device], active, &values),
                None => j.judge(alert, &[&broker_label], active, &values),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{default_config, find, host_verdicts};
    use crate::store::tests::{disk, link, report};
    use crate::store::Store;
    use std::collections::BTreeMap;

    #[test]
    fn a_low_page_cache_hit_ratio_fires_preferring_the_ebpf_method() {
        let config = default_config();
        let mut store = Store::new(300.0);
        // Broker 1: ebpf says 55 %, the estimate 95 %: the exact method wins.
        let mut cold = report(1, 1.0);
        cold.host.page_cache_hit_ratio_ebpf = Some(0.55);
        cold.host.page_cache_hit_ratio_estimate = Some(0.95);
        // Broker 2: only the estimate, 97 %. Broker 3: neither: no verdict.
        let mut warm = report(2, 1.0);
        warm.host.page_cache_hit_ratio_estimate = Some(0.97);
        for r in [cold, warm, report(3, 1.0)] {
            store.insert(r, 1000.0);
        }
        let last_seen = BTreeMap::from([(1, 1000.0), (2, 1000.0), (3, 1000.0)]);
        let verdicts = host_verdicts(&config, &store, &last_seen, 1000.0);
        let low = find(&verdicts, "KafkaPageCacheHitRatioLow", &[("broker", "1")]);
        assert!(low.active);
        assert_eq!(
            low.annotations["summary"],
            "Broker 1 serves only 55.0% of its reads from the page cache"
        );
        assert!(!find(&verdicts, "KafkaPageCacheHitRatioLow", &[("broker", "2")]).active);
        assert!(verdicts
            .iter()
            .all(|v| !(v.labels["alertname"] == "KafkaPageCacheHitRatioLow"
                && v.labels["broker"] == "3")));
    }

    #[test]
    fn host_rules_judge_fresh_brokers_only_and_agent_down_says_since_when() {
        let config = default_config();
        let mut store = Store::new(300.0);
        let mut busy = report(1, 1.0);
        busy.host.disks = vec![disk("sdb", 0.0, 0.0, 0.97), disk("sdc", 0.0, 0.0, 0.20)];
        busy.host.interfaces = vec![link("ens1f0", 1.2e9, 0.0, Some(1.25e9))];
        store.insert(busy, 1000.0);
        store.insert(report(2, 1.0), 500.0);
        let last_seen = BTreeMap::from([(1, 1000.0), (2, 500.0)]);
        let verdicts = host_verdicts(&config, &store, &last_seen, 1000.0);
        let disk = find(
            &verdicts,
            "KafkaHostDiskSaturated",
            &[("broker", "1"), ("device", "sdb")],
        );
        assert!(disk.active);
        assert_eq!(
            disk.annotations["summary"],
            "Disk sdb of broker 1 is busy 97.0% of the time"
        );
        assert!(!find(&verdicts, "KafkaHostDiskSaturated", &[("device", "sdc")]).active);
        let link = find(
            &verdicts,
            "KafkaHostNetworkSaturated",
            &[("broker", "1"), ("device", "ens1f0")],
        );
        assert!(link.active && link.annotations["summary"].ends_with("runs at 96.0% of its speed"));
        assert!(
            disk.annotations["description"]
                .starts_with("Median %util over the window is 97.0% (limit 90.0%); now r_await 0.0 ms, w_await 0.0 ms, queue 0.0."),
            "{}",
            disk.annotations["description"]
        );
        // Without log dirs there is no model of the broker's disks: unknown, not guessed.
        assert!(verdicts
            .iter()
            .all(|v| v.labels["alertname"] != "KafkaBrokerDiskImbalance"));
        // Broker 2 is silent: no host verdicts (unknown), but agent down.
        assert!(verdicts
            .iter()
            .all(
                |v| !(v.labels.get("broker").map(String::as_str) == Some("2")
                    && v.labels["alertname"].starts_with("KafkaHost"))
            ));
        let down = find(&verdicts, "KafkaAgentDown", &[("broker", "2")]);
        assert!(down.active);
        assert_eq!(down.labels["severity"], "critical");
        assert_eq!(
            down.annotations["summary"],
            "No report from the agent of broker 2 for 8m 20s"
        );
        assert!(down.annotations["description"]
            .starts_with("Its last report came at 1970-01-01T00:08:20Z."));
        // A group of one fresh broker never alerts on load.
        assert!(!find(&verdicts, "KafkaBrokerLoadDeviation", &[("broker", "1")]).active);
    }
}
