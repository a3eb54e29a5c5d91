//! How a rule turns its condition into a verdict: the alert's spec from the
//! catalogue, the operator's settings for it (`[rules.NAME]`), its subject's
//! labels, and its wording filled in from the figures the rule gives.

use std::collections::BTreeMap;
use std::time::Duration;

use super::state::Verdict;
use crate::catalogue::{render, Alert};
use crate::config::Rules;

pub struct Judge<'a> {
    rules: &'a Rules,
    cluster: &'a str,
    pub verdicts: Vec<Verdict>,
}

impl<'a> Judge<'a> {
    pub fn new(rules: &'a Rules, cluster: &'a str) -> Self {
        Judge {
            rules,
            cluster,
            verdicts: Vec::new(),
        }
    }

    pub fn cluster(&self) -> &'a str {
        self.cluster
    }

    /// The rule's threshold (configured, else the catalogue's default).
    pub fn threshold(&self, alert: Alert) -> f64 {
        self.rules[&alert]
            .threshold
            .or(alert.spec().threshold.map(|t| t.default))
            .unwrap_or(f64::NAN)
    }

    /// One subject's verdict: `subject` gives the values of the spec's
    /// subject labels in order; `values` fill the annotation templates.
    pub fn judge(
        &mut self,
        alert: Alert,
        subject: &[&str],
        active: bool,
        values: &[(&str, String)],
    ) {
        let rule = &self.rules[&alert];
        if !rule.enabled {
            return;
        }
        let spec = alert.spec();
        let labels = self.labels(alert, subject);
        let mut fill: Vec<(&str, &str)> = vec![("cluster", self.cluster)];
        fill.extend(spec.subject.iter().copied().zip(subject.iter().copied()));
        fill.extend(values.iter().map(|(k, v)| (*k, v.as_str())));
        self.verdicts.push(Verdict {
            labels,
            annotations: [
                ("summary".to_owned(), render(spec.summary, &fill)),
                ("description".to_owned(), render(spec.description, &fill)),
            ]
            .into(),
            active,
            for_seconds: rule.for_duration.as_secs_f64(),
        });
    }
}

impl Judge<'_> {
    /// The verdict's labels: the alert, the cluster, the severity, the subject.
    fn labels(&self, alert: Alert, subject: &[&str]) -> BTreeMap<String, String> {
        let spec = alert.spec();
        debug_assert_eq!(spec.subject.len(), subject.len(), "{}", spec.name);
        let mut labels: BTreeMap<String, String> = [
            ("alertname".to_owned(), spec.name.to_owned()),
            ("cluster".to_owned(), self.cluster.to_owned()),
            (
                "severity".to_owned(),
                self.rules[&alert].severity.as_str().to_owned(),
            ),
        ]
        .into();
        for (label, value) in spec.subject.iter().zip(subject) {
            labels.insert((*label).to_owned(), (*value).to_owned());
        }
        labels
    }

    /// An inactive verdict without wording, for rules over many subjects (a
    /// hundred thousand topics): the alert book never shows an inactive
    /// verdict's wording (a resolved alert keeps the wording it fired with).
    pub fn clear(&mut self, alert: Alert, subject: &[&str]) {
        let rule = &self.rules[&alert];
        if !rule.enabled {
            return;
        }
        self.verdicts.push(Verdict {
            labels: self.labels(alert, subject),
            annotations: BTreeMap::new(),
            active: false,
            for_seconds: rule.for_duration.as_secs_f64(),
        });
    }
}

pub fn percent(ratio: f64) -> String {
    format!("{:.1}%", ratio * 100.0)
}

pub fn signed_percent(ratio: f64) -> String {
    format!("{:+.1}%", ratio * 100.0)
}

/// `2m 30s` rather than `150.2s`.
pub fn age(seconds: f64) -> String {
    humantime::format_duration(Duration::from_secs(seconds.max(0.0) as u64)).to_string()
}

/// An instant as operators read it in an annotation.
pub fn timestamp(seconds: f64) -> String {
    humantime::format_rfc3339_seconds(crate::clock::system_time(seconds)).to_string()
}
