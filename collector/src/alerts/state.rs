//! Alert state: each evaluation's verdicts move alerts through
//! pending → firing → resolved, with a `for` duration per rule. The state is
//! written to disk atomically after every change, so that a restarted
//! collector neither loses a firing alert (nor gives it a new `startsAt`)
//! nor forgets to resolve it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One rule's judgement of one subject in this evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// `alertname`, `cluster`, `severity` and the subject (`broker`, `device`, `group`).
    pub labels: BTreeMap<String, String>,
    /// `summary` and `description`: what, how much, where to look.
    pub annotations: BTreeMap<String, String>,
    /// Whether the condition holds now.
    pub active: bool,
    /// How long it must hold before the alert fires.
    pub for_seconds: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Pending,
    Firing,
    Resolved,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub phase: Phase,
    /// When the condition started to hold (Unix seconds).
    pub active_since: f64,
    /// When the alert fired: Alertmanager's `startsAt`.
    pub starts_at: Option<f64>,
    /// When it resolved: Alertmanager's `endsAt`.
    pub ends_at: Option<f64>,
    /// When a rule last judged this subject.
    pub last_judged: f64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    Pending(String),
    Fired(String),
    Resolved(String),
}

impl Transition {
    /// The alert's identity.
    pub fn id(&self) -> &str {
        match self {
            Transition::Pending(id) | Transition::Fired(id) | Transition::Resolved(id) => id,
        }
    }

    /// What happened, as the log says it.
    pub fn what(&self) -> &'static str {
        match self {
            Transition::Pending(_) => "pending",
            Transition::Fired(_) => "firing",
            Transition::Resolved(_) => "resolved",
        }
    }
}

/// The alerts by identity (`alertname{label="value",...}`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AlertBook {
    pub alerts: BTreeMap<String, Alert>,
}

/// An alert's identity, as Prometheus writes a series.
pub fn identity(labels: &BTreeMap<String, String>) -> String {
    let name = labels.get("alertname").map_or("", String::as_str);
    let rest: Vec<String> = labels
        .iter()
        .filter(|(k, _)| *k != "alertname")
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect();
    format!("{name}{{{}}}", rest.join(","))
}

/// How long unjudged or resolved alerts are kept.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// A firing alert no rule has judged for this long (its broker or disk
    /// is gone) is resolved; a pending one is dropped.
    pub unjudged_seconds: f64,
    /// A resolved alert is kept (and re-sent) this long, then forgotten.
    pub resolved_seconds: f64,
    /// How early a `for` may be taken as served: half an evaluation
    /// interval, so that an evaluation a few ms early does not put off
    /// firing by a whole interval.
    pub for_tolerance_seconds: f64,
}

impl AlertBook {
    /// Applies one evaluation's verdicts at `now`; returns what changed.
    /// A subject without a verdict keeps its state (after a restart, before
    /// the first reports, nothing is known): see [`Retention`].
    pub fn apply(
        &mut self,
        verdicts: Vec<Verdict>,
        now: f64,
        retention: Retention,
    ) -> Vec<Transition> {
        let mut transitions = Vec::new();
        for verdict in verdicts {
            let id = identity(&verdict.labels);
            match (self.alerts.get_mut(&id), verdict.active) {
                (None, false) => {}
                (Some(alert), true) if alert.phase != Phase::Resolved => {
                    alert.last_judged = now;
                    alert.annotations = verdict.annotations;
                    if alert.phase == Phase::Pending
                        && now - alert.active_since + retention.for_tolerance_seconds
                            >= verdict.for_seconds
                    {
                        alert.phase = Phase::Firing;
                        alert.starts_at = Some(now);
                        transitions.push(Transition::Fired(id));
                    }
                }
                (_, true) => {
                    // New, or back after it resolved: a new incident.
                    let fires_now = verdict.for_seconds <= 0.0;
                    self.alerts.insert(
                        id.clone(),
                        Alert {
                            labels: verdict.labels,
                            annotations: verdict.annotations,
                            phase: if fires_now {
                                Phase::Firing
                            } else {
                                Phase::Pending
                            },
                            active_since: now,
                            starts_at: fires_now.then_some(now),
                            ends_at: None,
                            last_judged: now,
                        },
                    );
                    transitions.push(if fires_now {
                        Transition::Fired(id)
                    } else {
                        Transition::Pending(id)
                    });
                }
                (Some(alert), false) => {
                    alert.last_judged = now;
                    match alert.phase {
                        Phase::Pending => {
                            self.alerts.remove(&id);
                        }
                        Phase::Firing => {
                            // The wording it fired with stays (as Prometheus
                            // does): today's figures would read as the problem.
                            alert.phase = Phase::Resolved;
                            alert.ends_at = Some(now);
                            transitions.push(Transition::Resolved(id));
                        }
                        Phase::Resolved => {}
                    }
                }
            }
        }
        self.alerts.retain(|id, alert| match alert.phase {
            Phase::Pending => now - alert.last_judged <= retention.unjudged_seconds,
            Phase::Firing => {
                if now - alert.last_judged > retention.unjudged_seconds {
                    alert.phase = Phase::Resolved;
                    alert.ends_at = Some(now);
                    transitions.push(Transition::Resolved(id.clone()));
                }
                true
            }
            Phase::Resolved => alert
                .ends_at
                .is_some_and(|end| now - end <= retention.resolved_seconds),
        });
        transitions
    }

    pub fn firing(&self) -> impl Iterator<Item = &Alert> {
        self.alerts.values().filter(|a| a.phase == Phase::Firing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RETENTION: Retention = Retention {
        unjudged_seconds: 300.0,
        resolved_seconds: 900.0,
        for_tolerance_seconds: 0.0,
    };

    fn verdict(broker: &str, active: bool, for_seconds: f64) -> Verdict {
        Verdict {
            labels: [
                ("alertname", "KafkaBrokerLoadDeviation"),
                ("cluster", "c"),
                ("broker", broker),
            ]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
            annotations: [(
                "summary".to_owned(),
                format!("broker {broker} active={active}"),
            )]
            .into(),
            active,
            for_seconds,
        }
    }

    const ID: &str = "KafkaBrokerLoadDeviation{broker=\"3\",cluster=\"c\"}";

    #[test]
    fn pending_then_firing_after_for_then_resolved() {
        let mut book = AlertBook::default();
        assert_eq!(
            book.apply(vec![verdict("3", true, 60.0)], 0.0, RETENTION),
            [Transition::Pending(ID.into())]
        );
        assert_eq!(
            book.apply(vec![verdict("3", true, 60.0)], 30.0, RETENTION),
            []
        );
        assert_eq!(
            book.apply(vec![verdict("3", true, 60.0)], 60.0, RETENTION),
            [Transition::Fired(ID.into())]
        );
        let alert = &book.alerts[ID];
        assert_eq!(
            (alert.phase, alert.active_since, alert.starts_at),
            (Phase::Firing, 0.0, Some(60.0))
        );
        assert_eq!(
            book.apply(vec![verdict("3", true, 60.0)], 90.0, RETENTION),
            []
        );
        assert_eq!(
            book.alerts[ID].starts_at,
            Some(60.0),
            "startsAt does not move while firing"
        );
        assert_eq!(
            book.apply(vec![verdict("3", false, 60.0)], 120.0, RETENTION),
            [Transition::Resolved(ID.into())]
        );
        let alert = &book.alerts[ID];
        assert_eq!((alert.phase, alert.ends_at), (Phase::Resolved, Some(120.0)));
        assert_eq!(
            alert.annotations["summary"], "broker 3 active=true",
            "a resolved alert keeps the wording it fired with (a resolved notice must not state how things are now as if they were the problem)"
        );
        assert_eq!(book.firing().count(), 0);
    }

    #[test]
    fn for_fires_on_the_evaluation_nearest_its_end_whatever_the_jitter() {
        // Evaluations every 10 s, each a few ms early or late, `for` 20 s:
        // the alert fires at the evaluation 20 s in, not one interval later.
        let retention = Retention {
            for_tolerance_seconds: 5.0,
            ..RETENTION
        };
        let mut book = AlertBook::default();
        let times = [0.004, 10.001, 19.998, 30.003];
        let mut fired_at = None;
        for now in times {
            let transitions = book.apply(vec![verdict("3", true, 20.0)], now, retention);
            if transitions == [Transition::Fired(ID.into())] {
                fired_at = Some(now);
            }
        }
        assert_eq!(fired_at, Some(19.998));
        // Half an interval is the limit: 14.9 s into a 20 s `for` is too early.
        let mut book = AlertBook::default();
        book.apply(vec![verdict("3", true, 20.0)], 0.0, retention);
        assert_eq!(
            book.apply(vec![verdict("3", true, 20.0)], 14.9, retention),
            []
        );
        assert_eq!(
            book.apply(vec![verdict("3", true, 20.0)], 15.0, retention),
            [Transition::Fired(ID.into())]
        );
    }

    #[test]
    fn a_condition_that_clears_before_for_never_fires() {
        let mut book = AlertBook::default();
        book.apply(vec![verdict("3", true, 60.0)], 0.0, RETENTION);
        assert_eq!(
            book.apply(vec![verdict("3", false, 60.0)], 30.0, RETENTION),
            []
        );
        assert!(book.alerts.is_empty());
        assert_eq!(
            book.apply(vec![verdict("3", false, 60.0)], 40.0, RETENTION),
            []
        );
    }

    #[test]
    fn for_zero_fires_at_once_and_a_recurrence_is_a_new_incident() {
        let mut book = AlertBook::default();
        assert_eq!(
            book.apply(vec![verdict("3", true, 0.0)], 5.0, RETENTION),
            [Transition::Fired(ID.into())]
        );
        book.apply(vec![verdict("3", false, 0.0)], 10.0, RETENTION);
        assert_eq!(
            book.apply(vec![verdict("3", true, 0.0)], 20.0, RETENTION),
            [Transition::Fired(ID.into())]
        );
        assert_eq!(book.alerts[ID].starts_at, Some(20.0));
        assert_eq!(book.alerts[ID].ends_at, None);
    }

    #[test]
    fn no_verdict_keeps_state_until_the_subject_is_gone_for_good() {
        let mut book = AlertBook::default();
        book.apply(vec![verdict("3", true, 0.0)], 0.0, RETENTION);
        // Nothing known (a restart before the first reports): still firing.
        assert_eq!(book.apply(vec![], 200.0, RETENTION), []);
        assert_eq!(book.alerts[ID].phase, Phase::Firing);
        // Unjudged past the retention: resolved, then forgotten after the resolved retention.
        assert_eq!(
            book.apply(vec![], 301.0, RETENTION),
            [Transition::Resolved(ID.into())]
        );
        assert_eq!(book.alerts[ID].ends_at, Some(301.0));
        book.apply(vec![], 1000.0, RETENTION);
        assert!(book.alerts.contains_key(ID));
        book.apply(vec![], 1202.0, RETENTION);
        assert!(book.alerts.is_empty());
    }
}
