//! The broker's own metrics, from its JMX exporter or Jolokia agent
//! (parsed in `parse`), fetched each cycle with a timeout so that a hung
//! or missing endpoint costs one counted error, never a stalled cycle.

mod parse;

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use brokerwatch_common::exposition::Families;
use brokerwatch_common::{BrokerMetricsReport, HostReport};

use super::{Source, SourceError};

pub use parse::{jolokia_request, parse_jmx_exporter, parse_jolokia, Endpoint};

/// The broker-metrics source: fetches in [`Source::fetch`], hands the
/// result over in [`Source::collect`].
pub struct BrokerMetricsSource {
    endpoint: Option<Endpoint>,
    timeout: Duration,
    /// Built only when there is an endpoint to fetch: a client loads the
    /// system's CA certificates.
    client: Option<reqwest::Client>,
    fetched: Option<Result<BrokerMetricsReport, SourceError>>,
    last: Option<BrokerMetricsReport>,
}

impl BrokerMetricsSource {
    pub fn new(endpoint: Option<Endpoint>, timeout: Duration) -> Self {
        // Building a client cannot fail without TLS backends to load; if it
        // ever does, the default client is used.
        let client = endpoint
            .as_ref()
            .map(|_| reqwest::Client::builder().build().unwrap_or_default());
        BrokerMetricsSource {
            endpoint,
            timeout,
            client,
            fetched: None,
            last: None,
        }
    }
}

impl Source for BrokerMetricsSource {
    fn name(&self) -> &'static str {
        "broker_metrics"
    }

    fn fetch(&mut self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            if let (Some(endpoint), Some(client)) = (&self.endpoint, &self.client) {
                self.fetched = Some(fetch(client, endpoint, self.timeout).await);
            }
        })
    }

    fn collect(&mut self, _at: Instant, report: &mut HostReport) -> Result<(), SourceError> {
        self.last = None;
        let Some(fetched) = self.fetched.take() else {
            return Ok(());
        };
        // Told to the collector too: an endpoint that stops answering while
        // the process lives is how a hung broker shows.
        let metrics = fetched.inspect_err(|e| report.broker_metrics_error = Some(e.to_string()))?;
        report.broker_metrics = Some(metrics.clone());
        self.last = Some(metrics);
        Ok(())
    }

    fn expose(&self, f: &mut Families) {
        if let Some(m) = &self.last {
            expose_report(f, m);
        }
    }
}

/// The broker's JMX exporter, within `timeout`: a hung or missing endpoint
/// costs at most that, and is one counted error.
async fn fetch(
    client: &reqwest::Client,
    endpoint: &Endpoint,
    timeout: Duration,
) -> Result<BrokerMetricsReport, SourceError> {
    let url = endpoint.url();
    let failed = |reason: String| SourceError::Read {
        path: url.into(),
        reason,
    };
    let request = match endpoint {
        Endpoint::JmxExporter(_) => client.get(url),
        Endpoint::Jolokia(_) => client
            .post(url)
            .header("Content-Type", "application/json")
            .body(jolokia_request()),
    };
    let fetch = async { request.send().await?.error_for_status()?.text().await };
    let text = tokio::time::timeout(timeout, fetch)
        .await
        .map_err(|_| {
            failed(format!(
                "no answer within {}; is the JMX exporter up?",
                humantime::format_duration(timeout)
            ))
        })?
        .map_err(|e| failed(e.to_string()))?;
    endpoint
        .parse(&text)
        .map_err(|e| SourceError::parse(std::path::Path::new(url), e))
}

fn expose_report(f: &mut Families, m: &BrokerMetricsReport) {
    let ms = |v: Option<f64>| v.map(|ms| ms / 1000.0);
    let counters = [
        (
            "brokerwatch_kafka_bytes_in_total",
            "Bytes clients produced to the broker (BytesInPerSec count).",
            m.bytes_in_total,
        ),
        (
            "brokerwatch_kafka_bytes_out_total",
            "Bytes the broker served to consumers (BytesOutPerSec count).",
            m.bytes_out_total,
        ),
        (
            "brokerwatch_kafka_messages_in_total",
            "Messages produced to the broker.",
            m.messages_in_total,
        ),
        (
            "brokerwatch_kafka_replication_bytes_in_total",
            "Bytes fetched from leaders as a follower.",
            m.replication_bytes_in_total,
        ),
        (
            "brokerwatch_kafka_replication_bytes_out_total",
            "Bytes followers fetched from this broker.",
            m.replication_bytes_out_total,
        ),
        (
            "brokerwatch_kafka_isr_shrinks_total",
            "ISR shrinks on partitions this broker leads.",
            m.isr_shrinks_total,
        ),
        (
            "brokerwatch_kafka_isr_expands_total",
            "ISR expands on partitions this broker leads.",
            m.isr_expands_total,
        ),
    ];
    for (name, help, value) in counters {
        if let Some(value) = value {
            f.counter(name, help).value(value);
        }
    }
    let gauges = [
        (
            "brokerwatch_kafka_under_replicated_partitions",
            "Under-replicated partitions this broker leads, as the broker counts them.",
            m.under_replicated_partitions,
        ),
        (
            "brokerwatch_kafka_under_min_isr_partitions",
            "Partitions this broker leads with fewer in-sync replicas than min.insync.replicas.",
            m.under_min_isr_partitions,
        ),
        (
            "brokerwatch_kafka_offline_partitions",
            "Offline partitions (reported by the active controller).",
            m.offline_partitions,
        ),
        (
            "brokerwatch_kafka_active_controller",
            "1 on the active controller.",
            m.active_controller,
        ),
        (
            "brokerwatch_kafka_leader_count",
            "Partitions this broker leads.",
            m.leader_count,
        ),
        (
            "brokerwatch_kafka_partition_count",
            "Replicas this broker hosts.",
            m.partition_count,
        ),
        (
            "brokerwatch_kafka_request_handler_idle_ratio",
            "Share of time the request handler threads are idle.",
            m.request_handler_idle_ratio,
        ),
        (
            "brokerwatch_kafka_network_processor_idle_ratio",
            "Share of time the network processor threads are idle.",
            m.network_processor_idle_ratio,
        ),
        (
            "brokerwatch_kafka_request_queue_size",
            "Requests waiting in the request queue.",
            m.request_queue_size,
        ),
        (
            "brokerwatch_kafka_produce_total_time_p99_seconds",
            "99th percentile of a produce request's total time.",
            ms(m.produce_total_time_p99_ms),
        ),
        (
            "brokerwatch_kafka_fetch_consumer_total_time_p99_seconds",
            "99th percentile of a consumer fetch's total time.",
            ms(m.fetch_consumer_total_time_p99_ms),
        ),
        (
            "brokerwatch_kafka_offline_log_dirs",
            "Log dirs the broker has taken offline.",
            m.offline_log_dirs,
        ),
    ];
    for (name, help, value) in gauges {
        if let Some(value) = value {
            f.gauge(name, help).value(value);
        }
    }
    let gc = [
        (
            "young",
            m.gc_young_seconds_total,
            m.gc_young_collections_total,
        ),
        ("old", m.gc_old_seconds_total, m.gc_old_collections_total),
    ];
    let mut seconds = f.counter(
        "brokerwatch_kafka_gc_seconds_total",
        "Time the broker's JVM spent in garbage collection pauses: young (and concurrent collectors' pauses) or old (full collections).",
    );
    for (generation, value, _) in gc {
        if let Some(value) = value {
            seconds.add(&[("generation", generation)], value);
        }
    }
    let mut collections = f.counter(
        "brokerwatch_kafka_gc_collections_total",
        "Garbage collections of the broker's JVM, young or old (full).",
    );
    for (generation, _, value) in gc {
        if let Some(value) = value {
            collections.add(&[("generation", generation)], value);
        }
    }
    let mut offline = f.gauge(
        "brokerwatch_kafka_log_dir_offline",
        "1 for each log dir the broker has taken offline (LogDirectoryOffline).",
    );
    for dir in &m.offline_log_dir_names {
        offline.add(&[("log_dir", dir)], 1.0);
    }
    type Quota = fn(&brokerwatch_common::UserQuota) -> Option<f64>;
    let quotas: [(&str, &str, Quota); 4] = [
        (
            "brokerwatch_kafka_user_produce_bytes_per_second",
            "Produce byte rate of a quota user.",
            |q| q.produce_bytes_per_second,
        ),
        (
            "brokerwatch_kafka_user_fetch_bytes_per_second",
            "Fetch byte rate of a quota user.",
            |q| q.fetch_bytes_per_second,
        ),
        (
            "brokerwatch_kafka_user_produce_throttle_seconds",
            "Produce throttle time of a quota user.",
            |q| q.produce_throttle_ms.map(|ms| ms / 1000.0),
        ),
        (
            "brokerwatch_kafka_user_fetch_throttle_seconds",
            "Fetch throttle time of a quota user.",
            |q| q.fetch_throttle_ms.map(|ms| ms / 1000.0),
        ),
    ];
    for (name, help, field) in quotas {
        let mut family = f.gauge(name, help);
        for quota in &m.quotas {
            if let Some(value) = field(quota) {
                family.add(&[("user", &quota.user)], value);
            }
        }
    }
}
