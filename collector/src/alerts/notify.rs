//! Delivery to Alertmanager through its v2 API (`POST /api/v2/alerts`).
//!
//! Each Alertmanager (every member of an HA pair gets every alert) has its
//! own task that sends the latest alert set whenever it changes and every
//! `resend_interval`: firing alerts with an `endsAt` four resend intervals
//! ahead (so Alertmanager resolves them by itself if the collector dies),
//! resolved ones with `endsAt` = when they resolved, for as long as the
//! resolved retention keeps them. An Alertmanager that is down is retried
//! with backoff; evaluation only replaces the set and never waits on it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

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
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_secs_f64(seconds.max(0.0)))
        .to_string()
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
}

/// Hands the current alert set to one delivery task per Alertmanager.
pub struct Notifier {
    current: watch::Sender<Arc<Vec<Alert>>>,
}

impl Notifier {
    pub fn start(urls: &[String], delivery: Delivery) -> Notifier {
        let (current, _) = watch::channel(Arc::new(Vec::new()));
        for url in urls {
            tokio::spawn(deliver_forever(
                url.clone(),
                current.subscribe(),
                delivery.clone(),
            ));
        }
        Notifier { current }
    }

    /// Replaces the set every Alertmanager should hold; never blocks.
    pub fn publish(&self, book: &AlertBook) {
        let alerts: Vec<Alert> = book
            .alerts
            .values()
            .filter(|a| a.phase != Phase::Pending)
            .cloned()
            .collect();
        self.current.send_replace(Arc::new(alerts));
    }
}

async fn deliver_forever(
    url: String,
    mut current: watch::Receiver<Arc<Vec<Alert>>>,
    delivery: Delivery,
) {
    const FIRST_RETRY: Duration = Duration::from_millis(500);
    const LAST_RETRY: Duration = Duration::from_secs(30);
    let endpoint = format!("{url}/api/v2/alerts");
    let mut retry = FIRST_RETRY;
    let mut failing = false;
    loop {
        let alerts = current.borrow_and_update().clone();
        let body = postable(
            &alerts,
            crate::server::unix_now(),
            delivery.resend.as_secs_f64(),
            &delivery.generator_url,
        );
        if body.is_empty() {
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
                    warn!(alertmanager = %url, "cannot deliver alerts to {endpoint}: {e}; retrying with backoff, alerts are kept meanwhile");
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
