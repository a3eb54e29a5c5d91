//! `[probe]`: the end-to-end probe, which writes a record to a partition led
//! by each broker and reads it back. On wherever `[kafka]` is configured.

use std::time::Duration;

use serde::Deserialize;

use super::Keys;

#[derive(Debug, Clone, PartialEq)]
pub struct ProbeConfig {
    pub enabled: bool,
    /// The probe's own topic: one partition led by each broker.
    pub topic: String,
    /// The consumer group the probe reads and commits in.
    pub group: String,
    /// A record to every partition this often.
    pub interval: Duration,
    /// Bytes of each record's value (its sequence and time included).
    pub record_bytes: usize,
    /// Replicas of each probe partition (capped by the brokers there are).
    pub replication_factor: usize,
    /// A record not acknowledged in this time failed.
    pub timeout: Duration,
    /// The attempts and receipts the alerts judge: the last this long.
    pub window: Duration,
}

impl ProbeConfig {
    /// Findings older than this are stale (the probe stopped).
    pub fn stale_after(&self) -> f64 {
        3.0 * self.interval.as_secs_f64() + self.timeout.as_secs_f64()
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ProbeSection {
    enabled: Option<bool>,
    topic: Option<String>,
    group: Option<String>,
    interval: Option<String>,
    record_bytes: Option<usize>,
    replication_factor: Option<usize>,
    timeout: Option<String>,
    window: Option<String>,
}

/// What a topic or group name may hold (Kafka's own rule).
fn legal_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 249
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

impl ProbeSection {
    pub fn check(self, keys: &Keys) -> Result<ProbeConfig, String> {
        let name = |k: &str, value: Option<String>| {
            let value = value.unwrap_or_else(|| "brokerwatch-probe".into());
            if legal_name(&value) {
                Ok(value)
            } else {
                Err(keys.fail(
                    &format!("probe.{k}"),
                    format!("{value:?} is not a legal Kafka name; use letters, digits, '.', '_' and '-'"),
                ))
            }
        };
        let interval = keys.bounded(
            "probe.interval",
            self.interval,
            Duration::from_secs(5),
            (Duration::from_millis(100), Duration::from_secs(600)),
        )?;
        let timeout = keys.bounded(
            "probe.timeout",
            self.timeout,
            Duration::from_secs(10),
            (Duration::from_millis(500), Duration::from_secs(300)),
        )?;
        let window = keys.bounded(
            "probe.window",
            self.window,
            Duration::from_secs(60),
            (Duration::from_secs(1), Duration::from_secs(3600)),
        )?;
        if window < interval {
            return Err(keys.fail(
                "probe.window",
                "is shorter than probe.interval; the alerts would judge no attempt",
            ));
        }
        Ok(ProbeConfig {
            enabled: self.enabled.unwrap_or(true),
            topic: name("topic", self.topic)?,
            group: name("group", self.group)?,
            interval,
            record_bytes: keys.bytes(
                "probe.record_bytes",
                self.record_bytes,
                100,
                (crate::model::probe::HEADER_BYTES, 1_000_000),
            )?,
            replication_factor: keys.bytes(
                "probe.replication_factor",
                self.replication_factor,
                3,
                (1, 16),
            )?,
            timeout,
            window,
        })
    }
}
