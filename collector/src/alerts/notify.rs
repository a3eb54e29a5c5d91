//! Delivery to Alertmanager through its v2 API (`POST /api/v2/alerts`).
//!
//! Each Alertmanager (every member of an HA pair gets every alert) has its
//! own task that sends the latest alert set whenever it changes and every
//! `resend_interval`: firing alerts with an `endsAt` four resend intervals
//! ahead (so Alertmanager resolves them by itself if the collector dies),
//! resolved ones with `endsAt` = when they resolved, for as long as the
//! resolved retention keeps them. An Alertmanager that is down is retried
//! with backoff; evaluation only replaces the set and never waits on it.
//!
//! So what waits for an Alertmanager that is down is the latest set, bounded
//! by the alert book (one alert per rule and subject; resolved ones kept for
//! the resolved retention), not a queue of every change. An alert that this
//! Alertmanager saw firing and that left the book before its resolution
//! could be delivered is counted as dropped (Alertmanager still resolves it
//! by itself at its `endsAt`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use brokerwatch_common::daemon::Supervisor;
use prometheus::IntCounterVec;
use serde::Serialize;
use tokio::sync::watch;
use tracing::{info, warn};

use super::state::{Alert, AlertBook, Phase};

/// One alert as Alertmanager's v2 API takes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PostableAlert {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    #[serde(rename = "startsAt")]
    pub starts_at: String,
    #[serde(rename = "endsAt")]
    pub ends_at: String,
    #[serde(rename = "generatorURL")]
    pub generator_url: String,
}

pub fn rfc3339(seconds: f64) -> String {
    humantime::format_rfc3339_millis(crate::clock::system_time(seconds)).to_string()
}

/// The alerts to send at `now`: firing and resolved ones (pending ones are
/// not Alertmanager's business yet).
pub fn postable(
    alerts: &[Alert],
    now: f64,
    resend_seconds: f64,
    generator_url: &str,
) -> Vec<PostableAlert> {
    alerts
        .iter()
        .filter_map(|alert| {
            let starts_at = alert.starts_at?;
            let ends_at = match alert.phase {
                Phase::Pending => return None,
                Phase::Firing => now + 4.0 * resend_seconds,
                Phase::Resolved => alert.ends_at.unwrap_or(now),
            };
            Some(PostableAlert {
                labels: alert.labels.clone(),
                annotations: alert.annotations.clone(),
                starts_at: rfc3339(starts_at),
                ends_at: rfc3339(ends_at),
                generator_url: generator_url.to_owned(),
            })
        })
        .collect()
}

#[derive(Clone)]
pub struct Delivery {
    pub client: reqwest::Client,
    pub resend: Duration,
    pub generator_url: String,
    /// `brokerwatch_collector_alertmanager_posts_total{alertmanager,result}`.
    pub posts: IntCounterVec,
    /// `brokerwatch_collector_alertmanager_dropped_alerts_total{alertmanager}`.
    pub dropped: IntCounterVec,
}

/// One version of the set every Alertmanager should hold.
#[derive(Default)]
struct AlertSet {
    version: u64,
    alerts: Vec<Alert>,
}

/// Hands the current alert set to one delivery task per Alertmanager.
pub struct Notifier {
    current: watch::Sender<Arc<AlertSet>>,
    /// Per Alertmanager, the last version it took.
    delivered: Vec<watch::Receiver<u64>>,
}

impl Notifier {
    /// One delivery task per Alertmanager, watched by `supervisor`.
    pub fn start(urls: &[String], delivery: Delivery, supervisor: &Supervisor) -> Notifier {
        let (current, _) = watch::channel(Arc::new(AlertSet::default()));
        let mut delivered = Vec::new();
        for url in urls {
            let (took, receiver) = watch::channel(0);
            delivered.push(receiver);
            supervisor.spawn(
                "Alertmanager delivery",
                deliver_forever(url.clone(), current.subscribe(), took, delivery.clone()),
            );
        }
        Notifier { current, delivered }
    }

    /// Replaces the set every Alertmanager should hold; never blocks.
    pub fn publish(&self, book: &AlertBook) {
        let alerts: Vec<Alert> = book
            .alerts
            .values()
            .filter(|a| a.phase != Phase::Pending)
            .cloned()
            .collect();
        let version = self.current.borrow().version + 1;
        self.current
            .send_replace(Arc::new(AlertSet { version, alerts }));
    }

    /// Waits, up to `timeout`, until every Alertmanager took the latest set
    /// (on shutdown: in-flight deliveries finish). Returns how many did not.
    pub async fn flush(&self, timeout: Duration) -> usize {
        let target = self.current.borrow().version;
        let deadline = tokio::time::Instant::now() + timeout;
        let mut missed = 0;
        for delivered in &self.delivered {
            let mut delivered = delivered.clone();
            let took =
                tokio::time::timeout_at(deadline, delivered.wait_for(|v| *v >= target)).await;
            if !matches!(took, Ok(Ok(_))) {
                missed += 1;
            }
        }
        missed
    }
}

/// Counts (and forgets) the alerts this Alertmanager last took as firing
/// that are no longer in `body`: their resolution will never reach it.
fn count_lost(
    delivery: &Delivery,
    url: &str,
    seen_firing: &mut BTreeSet<BTreeMap<String, String>>,
    body: &[PostableAlert],
) {
    let now_in: BTreeSet<&BTreeMap<String, String>> = body.iter().map(|a| &a.labels).collect();
    let before = seen_firing.len();
    seen_firing.retain(|labels| now_in.contains(labels));
    let lost = before - seen_firing.len();
    if lost > 0 {
        warn!(alertmanager = %url, lost, "alerts left the book before their resolution reached this Alertmanager; it resolves them at their endsAt");
        delivery
            .dropped
            .with_label_values(&[url])
            .inc_by(lost as u64);
    }
}

async fn deliver_forever(
    url: String,
    mut current: watch::Receiver<Arc<AlertSet>>,
    took: watch::Sender<u64>,
    delivery: Delivery,
) {
    const FIRST_RETRY: Duration = Duration::from_millis(500);
    const LAST_RETRY: Duration = Duration::from_secs(30);
    let endpoint = format!("{url}/api/v2/alerts");
    // What logs and labels name: no credentials, no query.
    let url = brokerwatch_common::config::redact_url(&url);
    let mut retry = FIRST_RETRY;
    let mut failing = false;
    // Alerts this Alertmanager last took as firing, by labels.
    let mut seen_firing: BTreeSet<BTreeMap<String, String>> = BTreeSet::new();
    loop {
        let set = current.borrow_and_update().clone();
        let body = postable(
            &set.alerts,
            crate::clock::unix_now(),
            delivery.resend.as_secs_f64(),
            &delivery.generator_url,
        );
        if body.is_empty() {
            // Nothing to send: what this Alertmanager last saw firing left
            // the book without its resolution reaching it.
            count_lost(&delivery, &url, &mut seen_firing, &body);
            took.send_replace(set.version);
            if current.changed().await.is_err() {
                return; // the collector is shutting down
            }
            continue;
        }
        let sent = delivery
            .client
            .post(&endpoint)
            .json(&body)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status);
        match sent {
            Ok(_) => {
                delivery.posts.with_label_values(&[&url, "ok"]).inc();
                took.send_replace(set.version);
                count_lost(&delivery, &url, &mut seen_firing, &body);
                seen_firing = set
                    .alerts
                    .iter()
                    .filter(|a| a.phase == Phase::Firing)
                    .map(|a| a.labels.clone())
                    .collect();
                if failing {
                    info!(alertmanager = %url, alerts = body.len(), "Alertmanager reachable again; alerts delivered");
                }
                failing = false;
                retry = FIRST_RETRY;
                tokio::select! {
                    changed = current.changed() => if changed.is_err() { return },
                    _ = tokio::time::sleep(delivery.resend) => {}
                }
            }
            Err(e) => {
                delivery.posts.with_label_values(&[&url, "error"]).inc();
                if !failing {
                    warn!(alertmanager = %url, "cannot deliver alerts to {url}/api/v2/alerts: {}; retrying with backoff, alerts are kept meanwhile", e.without_url());
                }
                failing = true;
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(LAST_RETRY);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_time_out_of_any_range_is_still_formatted() {
        assert_eq!(rfc3339(1.5e9), "2017-07-14T02:40:00.000Z");
        assert!(rfc3339(1e308).starts_with("2201-"), "{}", rfc3339(1e308));
        assert_eq!(rfc3339(-40.0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(f64::NAN), "1970-01-01T00:00:00.000Z");
    }

    fn alert(phase: Phase, starts_at: Option<f64>, ends_at: Option<f64>) -> Alert {
        Alert {
            labels: [("alertname".to_owned(), "KafkaAgentDown".to_owned())].into(),
            annotations: [("summary".to_owned(), "s".to_owned())].into(),
            phase,
            active_since: 0.0,
            starts_at,
            ends_at,
            last_judged: 0.0,
        }
    }

    #[test]
    fn firing_alerts_end_four_resends_ahead_and_resolved_ones_when_they_resolved() {
        let alerts = [
            alert(Phase::Firing, Some(1_700_000_000.0), None),
            alert(
                Phase::Resolved,
                Some(1_700_000_000.0),
                Some(1_700_000_090.5),
            ),
            alert(Phase::Pending, None, None),
        ];
        let body = postable(
            &alerts,
            1_700_000_100.0,
            60.0,
            "http://collector:9798/api/v1/alerts",
        );
        assert_eq!(body.len(), 2, "pending alerts are not sent");
        assert_eq!(body[0].starts_at, "2023-11-14T22:13:20.000Z");
        assert_eq!(
            body[0].ends_at, "2023-11-14T22:19:00.000Z",
            "now + 4 x 60 s"
        );
        assert_eq!(body[1].ends_at, "2023-11-14T22:14:50.500Z");
        let json = serde_json::to_value(&body[0]).unwrap();
        assert_eq!(json["generatorURL"], "http://collector:9798/api/v1/alerts");
        assert_eq!(json["labels"]["alertname"], "KafkaAgentDown");
        assert!(json.get("startsAt").is_some() && json.get("endsAt").is_some());
    }
}
