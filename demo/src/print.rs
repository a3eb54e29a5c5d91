//! What the demo prints every few seconds, read from the collector's API:
//! the load table (the renderer `load-report` uses), replication, lag, and
//! the alerts that changed since the last print.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use brokerwatch_collector::alerts::state::{identity, Phase};
use brokerwatch_collector::daemon::views::{AlertView, ReplicationView};
use brokerwatch_collector::load_report::render_table;
use brokerwatch_collector::model::lag::GroupLag;
use brokerwatch_collector::model::LoadView;

/// One print; `seen` remembers each alert's last printed state, and
/// `deviation` is the collector's r.
pub fn render(
    load: &LoadView,
    replication: Option<&ReplicationView>,
    groups: &[GroupLag],
    alerts: &[AlertView],
    deviation: f64,
    seen: &mut BTreeMap<String, Phase>,
) -> String {
    let mut out = render_table(&load.groups, deviation);
    if let Some(ReplicationView::Analysis(r)) = replication {
        let under_min_isr = r
            .under_min_isr
            .map_or_else(|| "unknown".to_owned(), |n| n.to_string());
        let _ = writeln!(
            out,
            "replication: {} partitions, {} under-replicated, {} offline, {under_min_isr} under min ISR, brokers down {:?}",
            r.partitions, r.under_replicated, r.offline, r.brokers_down
        );
    }
    for group in groups {
        let seconds = group
            .lag_seconds
            .map_or_else(|| "-".to_owned(), |s| format!("{s:.0}s"));
        let _ = writeln!(
            out,
            "lag: {:<10} {:<6} {:>8} messages {:>6} behind",
            group.group,
            group.status.as_str(),
            group.lag_messages,
            seconds
        );
    }
    for alert in alerts {
        let id = identity(&alert.labels);
        if alert.state != Phase::Pending && seen.get(&id) != Some(&alert.state) {
            let state = match alert.state {
                Phase::Firing => "FIRING",
                Phase::Resolved => "RESOLVED",
                Phase::Pending => "PENDING",
            };
            let summary = alert.annotations.get("summary").map_or("", String::as_str);
            let _ = writeln!(out, "ALERT {state} {id}: {summary}");
            seen.insert(id, alert.state);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use brokerwatch_collector::model::lag::Status;

    fn alert(state: Phase) -> AlertView {
        AlertView {
            labels: [
                ("alertname".to_owned(), "KafkaConsumerGroupLag".to_owned()),
                ("consumergroup".to_owned(), "audit".to_owned()),
            ]
            .into(),
            annotations: [(
                "summary".to_owned(),
                "Consumer group audit is STOP".to_owned(),
            )]
            .into(),
            state,
            active_since: String::new(),
            starts_at: None,
            ends_at: None,
        }
    }

    #[test]
    fn alerts_print_once_per_change_and_groups_print_their_lag() {
        let mut seen = BTreeMap::new();
        let groups = [GroupLag {
            group: "audit".into(),
            status: Status::Stop,
            lag_messages: 17400,
            lag_seconds: Some(32.4),
            topics: vec![],
        }];
        let load = LoadView { groups: vec![] };
        let firing = [alert(Phase::Firing)];
        let text = render(&load, None, &groups, &firing, 0.1, &mut seen);
        assert!(
            text.contains("lag: audit      STOP      17400 messages    32s behind"),
            "{text}"
        );
        assert!(text.contains("ALERT FIRING KafkaConsumerGroupLag{consumergroup=\"audit\"}: Consumer group audit is STOP"), "{text}");
        let again = render(&load, None, &groups, &firing, 0.1, &mut seen);
        assert!(!again.contains("ALERT"), "printed once: {again}");
        let resolved = render(&load, None, &[], &[alert(Phase::Resolved)], 0.1, &mut seen);
        assert!(resolved.contains("ALERT RESOLVED"), "{resolved}");
        assert!(render(
            &load,
            None,
            &[],
            &[alert(Phase::Pending)],
            0.1,
            &mut BTreeMap::new()
        )
        .is_empty());
    }
}
