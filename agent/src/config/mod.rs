//! The agent's configuration: a TOML file (every key is documented in
//! `brokerwatch-agent.example.toml`), overridden by command-line flags.
//! Every bad value is reported in one line naming the key and what to do.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use brokerwatch_common::config::{bounded_duration, http_url, listen_address, redact_url};
use brokerwatch_common::web::WebConfig;
use brokerwatch_common::{parse_duration, Secret};
use serde::Deserialize;

use crate::identity::{self, Found};
use crate::sources::broker_metrics::Endpoint;
use crate::sources::logdirs::LogDirLocations;
pub use crate::sources::pagecache::PageCacheScope;
use crate::sources::process::BrokerFinder;
use crate::sources::{disk, HostPaths, NameFilter};

pub const DEFAULT_LISTEN: &str = "0.0.0.0:9797";
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);
const MIN_INTERVAL: Duration = Duration::from_millis(100);
const MAX_INTERVAL: Duration = Duration::from_secs(3600);

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    broker_id: Option<i64>,
    listen: Option<String>,
    interval: Option<String>,
    collector: Option<Collectors>,
    collector_token_file: Option<PathBuf>,
    collector_ca_file: Option<PathBuf>,
    collector_cert_file: Option<PathBuf>,
    collector_key_file: Option<PathBuf>,
    web_config_file: Option<PathBuf>,
    report_buffer: Option<usize>,
    proc_path: Option<PathBuf>,
    sys_path: Option<PathBuf>,
    log_level: Option<String>,
    #[serde(default)]
    disk: FilterSection,
    #[serde(default)]
    network: NetworkSection,
    #[serde(default)]
    log_dirs: LogDirsSection,
    #[serde(default)]
    broker: BrokerSection,
    #[serde(default)]
    page_cache: PageCacheSection,
    #[serde(default)]
    kernel_log: KernelLogSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct KernelLogSection {
    enabled: Option<bool>,
    path: Option<PathBuf>,
}

/// `collector = "https://a:9798"`, or a list for an active-active pair.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Collectors {
    One(String),
    Many(Vec<String>),
}

impl Collectors {
    fn into_vec(self) -> Vec<String> {
        match self {
            Collectors::One(url) => vec![url],
            Collectors::Many(urls) => urls,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PageCacheSection {
    ebpf: Option<bool>,
    count: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct BrokerSection {
    enabled: Option<bool>,
    pid_file: Option<PathBuf>,
    command_pattern: Option<String>,
    jmx_exporter_url: Option<String>,
    jolokia_url: Option<String>,
    metrics_timeout: Option<String>,
    log_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LogDirsSection {
    server_properties: Option<PathBuf>,
    #[serde(default)]
    dirs: Vec<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NetworkSection {
    include: Option<String>,
    exclude: Option<String>,
    assumed_speed_mbits: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FilterSection {
    include: Option<String>,
    exclude: Option<String>,
}

/// Values given on the command line; each wins over the file's.
#[derive(Debug, Default, Clone)]
pub struct Flags {
    pub broker_id: Option<i64>,
    pub listen: Option<String>,
    pub interval: Option<String>,
    /// `--collector`, repeated for an active-active pair.
    pub collector: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub broker_id: i32,
    /// Where the broker id came from: a flag, the config, or the running
    /// broker's files.
    pub broker_id_from: String,
    pub listen: SocketAddr,
    pub interval: Duration,
    /// Where reports go: each collector of an active-active pair gets every
    /// report, from a buffer of its own.
    pub collectors: Vec<String>,
    /// The bearer token for the collector, from `collector_token_file` or
    /// the environment variable BROKERWATCH_COLLECTOR_TOKEN.
    pub collector_token: Option<Secret>,
    /// TLS towards an https:// collector: a CA to trust beyond the system's,
    /// and a client certificate for mTLS.
    pub collector_tls: CollectorTls,
    /// TLS and basic auth on the agent's own listener.
    pub web: WebConfig,
    /// How many reports to keep while the collector cannot be reached.
    pub report_buffer: usize,
    pub paths: HostPaths,
    pub disk_filter: NameFilter,
    pub network_filter: NameFilter,
    /// Where the broker's log dirs are listed.
    pub log_dirs: LogDirLocations,
    /// How to find the broker process; `None` when `[broker] enabled = false`.
    pub broker: Option<BrokerFinder>,
    /// Whether to follow the broker's log, and the file when configured
    /// (else found through the broker's command line).
    pub broker_log: Option<Option<PathBuf>>,
    /// The kernel log to follow (`None`: `[kernel_log] enabled = false`).
    pub kernel_log: Option<PathBuf>,
    /// The broker's JMX exporter or Jolokia agent, and how long a fetch may take.
    pub broker_metrics: Option<Endpoint>,
    pub broker_metrics_timeout: Duration,
    /// Link speed to assume where the kernel reports none (virtual NICs).
    pub assumed_link_speed_bytes: Option<f64>,
    /// Whose reads the `ebpf` page-cache method counts; `None` when it is off.
    pub page_cache_ebpf: Option<PageCacheScope>,
    pub log_level: tracing::Level,
}

/// Reads and validates the config file (if any) with the flags on top.
pub fn load(path: Option<&Path>, flags: &Flags) -> Result<Config, String> {
    match path {
        None => from_toml("", "command line", flags),
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                format!(
                    "config {}: cannot read it ({e}); check the --config path",
                    path.display()
                )
            })?;
            from_toml(&text, &format!("config {}", path.display()), flags)
        }
    }
}

/// TLS settings for pushing to the collector, as PEM checked at load.
#[derive(Debug, Clone, Default)]
pub struct CollectorTls {
    pub ca_pem: Option<Vec<u8>>,
    /// Certificate chain and private key, concatenated (reqwest's identity).
    pub identity_pem: Option<Vec<u8>>,
}

impl CollectorTls {
    /// An HTTP client trusting the configured CA and presenting the client
    /// certificate, with `timeout` per request.
    pub fn client(&self, timeout: Duration) -> Result<reqwest::Client, String> {
        let mut builder = reqwest::Client::builder().use_rustls_tls().timeout(timeout);
        if let Some(pem) = &self.ca_pem {
            builder = builder.add_root_certificate(
                reqwest::Certificate::from_pem(pem).map_err(|e| e.to_string())?,
            );
        }
        if let Some(pem) = &self.identity_pem {
            builder =
                builder.identity(reqwest::Identity::from_pem(pem).map_err(|e| e.to_string())?);
        }
        builder.build().map_err(|e| e.to_string())
    }
}

fn collector_tls(
    file: &FileConfig,
    collectors: &[String],
) -> Result<CollectorTls, (&'static str, String)> {
    let read = |key: &'static str, path: &PathBuf| {
        std::fs::read(path).map_err(|e| (key, format!("cannot read {} ({e})", path.display())))
    };
    let ca_pem = file
        .collector_ca_file
        .as_ref()
        .map(|path| read("collector_ca_file", path))
        .transpose()?;
    let identity_pem = match (&file.collector_cert_file, &file.collector_key_file) {
        (None, None) => None,
        (Some(cert), Some(key)) => {
            let mut pem = read("collector_cert_file", cert)?;
            pem.push(b'\n');
            pem.extend(read("collector_key_file", key)?);
            Some(pem)
        }
        (Some(_), None) => {
            return Err((
                "collector_key_file",
                "not set; a client certificate needs its key".into(),
            ))
        }
        (None, Some(_)) => {
            return Err((
                "collector_cert_file",
                "not set; a client key needs its certificate".into(),
            ))
        }
    };
    let tls = CollectorTls {
        ca_pem,
        identity_pem,
    };
    if tls.ca_pem.is_some() || tls.identity_pem.is_some() {
        if collectors.iter().any(|url| url.starts_with("http://")) {
            return Err((
                "collector",
                "is http:// but TLS files are set; write https://".into(),
            ));
        }
        // Checks the PEM now rather than at the first push.
        tls.client(Duration::from_secs(1)).map_err(|e| {
            (
                "collector_ca_file",
                format!(
                    "the CA, certificate or key is not usable PEM ({})",
                    brokerwatch_common::one_line(&e)
                ),
            )
        })?;
    }
    Ok(tls)
}

/// The collectors to push to: the flags' if any, else the file's; each a
/// URL, none twice.
fn collectors(flags: &[String], file: Option<Collectors>) -> Result<Vec<String>, String> {
    let listed = if flags.is_empty() {
        file.map(Collectors::into_vec).unwrap_or_default()
    } else {
        flags.to_vec()
    };
    let mut urls: Vec<String> = Vec::new();
    for url in listed.iter().filter(|url| !url.is_empty()) {
        let url = http_url(url, "collector URL", "http://collector.example:9798")?;
        if urls.contains(&url) {
            return Err(format!(
                "{} is listed twice; list each collector of a pair once",
                redact_url(&url)
            ));
        }
        urls.push(url);
    }
    Ok(urls)
}

/// Validates a config text; `origin` names it in errors.
pub fn from_toml(text: &str, origin: &str, flags: &Flags) -> Result<Config, String> {
    let mut file: FileConfig = brokerwatch_common::from_toml(text, origin)?;
    let fail = |key: &str, problem: String| format!("{origin}: {key}: {problem}");
    let collectors =
        collectors(&flags.collector, file.collector.take()).map_err(|e| fail("collector", e))?;
    let collector_tls =
        collector_tls(&file, &collectors).map_err(|(key, problem)| fail(key, problem))?;

    let given_id = flags
        .broker_id
        .map(|id| (id, "--broker-id"))
        .or(file.broker_id.map(|id| (id, "broker_id in the config")))
        .map(|(id, from)| {
            i32::try_from(id)
                .ok()
                .filter(|id| *id >= 0)
                .map(|id| Found {
                    id,
                    from: from.to_owned(),
                })
                .ok_or_else(|| {
                    fail(
                        "broker_id",
                        format!("{id} is not a Kafka broker id (0 to 2147483647)"),
                    )
                })
        })
        .transpose()?;

    let listen_text = flags
        .listen
        .clone()
        .or(file.listen)
        .unwrap_or_else(|| DEFAULT_LISTEN.into());
    let listen = listen_address(&listen_text, DEFAULT_LISTEN).map_err(|e| fail("listen", e))?;

    let interval = match flags.interval.clone().or(file.interval) {
        None => DEFAULT_INTERVAL,
        Some(text) => {
            bounded_duration(&text, MIN_INTERVAL, MAX_INTERVAL).map_err(|e| fail("interval", e))?
        }
    };

    let collector_token = match &file.collector_token_file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                fail(
                    "collector_token_file",
                    format!("cannot read {} ({e})", path.display()),
                )
            })?;
            Some(text.trim().to_owned())
                .filter(|t| !t.is_empty())
                .ok_or_else(|| {
                    fail(
                        "collector_token_file",
                        format!("{} is empty", path.display()),
                    )
                })?
                .into()
        }
        None => std::env::var("BROKERWATCH_COLLECTOR_TOKEN")
            .ok()
            .filter(|t| !t.is_empty()),
    }
    .map(Secret::new);
    let web = WebConfig::load_configured(file.web_config_file.as_deref(), origin)?;
    let report_buffer = file.report_buffer.unwrap_or(360);
    if report_buffer == 0 {
        return Err(fail("report_buffer", "must be 1 or more".into()));
    }

    let endpoint_url = |key: &str, url: Option<String>| -> Result<Option<String>, String> {
        url.filter(|u| !u.is_empty())
            .map(|url| {
                http_url(&url, "URL", "http://127.0.0.1:7071/metrics").map_err(|e| fail(key, e))
            })
            .transpose()
    };
    let broker_metrics = match (
        endpoint_url(
            "broker.jmx_exporter_url",
            file.broker.jmx_exporter_url.clone(),
        )?,
        endpoint_url("broker.jolokia_url", file.broker.jolokia_url.clone())?,
    ) {
        (Some(_), Some(_)) => {
            return Err(fail(
                "broker",
                "set jmx_exporter_url or jolokia_url, not both".into(),
            ))
        }
        (Some(url), None) => Some(Endpoint::JmxExporter(url)),
        (None, Some(url)) => Some(Endpoint::Jolokia(url)),
        (None, None) => None,
    };
    let broker_metrics_timeout = match file.broker.metrics_timeout.clone() {
        None => (interval / 2).min(Duration::from_secs(5)),
        Some(text) => parse_duration(&text).map_err(|e| fail("broker.metrics_timeout", e))?,
    };
    if broker_metrics_timeout >= interval {
        return Err(fail(
            "broker.metrics_timeout",
            format!(
                "{} must be shorter than the interval",
                humantime::format_duration(broker_metrics_timeout)
            ),
        ));
    }

    let assumed_link_speed_bytes = match file.network.assumed_speed_mbits {
        Some(0) => {
            return Err(fail(
                "network.assumed_speed_mbits",
                "must be more than 0 (megabits per second)".into(),
            ))
        }
        other => other.map(|mbits| mbits as f64 * 1_000_000.0 / 8.0),
    };

    let log_level = match file.log_level.as_deref().unwrap_or("info") {
        level @ ("error" | "warn" | "info" | "debug" | "trace") => {
            level.parse().expect("known level")
        }
        other => {
            return Err(fail(
                "log_level",
                format!("{other:?} is not one of error, warn, info, debug, trace"),
            ))
        }
    };

    let defaults = HostPaths::default();
    let paths = HostPaths {
        proc: file.proc_path.unwrap_or(defaults.proc),
        sys: file.sys_path.unwrap_or(defaults.sys),
    };
    let disk_exclude = file
        .disk
        .exclude
        .as_deref()
        .unwrap_or(disk::DEFAULT_EXCLUDE);
    let disk_filter = NameFilter::new(file.disk.include.as_deref(), Some(disk_exclude), "disk")
        .map_err(|e| format!("{origin}: {e}"))?;
    let network_filter = NameFilter::new(
        file.network.include.as_deref(),
        file.network.exclude.as_deref(),
        "network",
    )
    .map_err(|e| format!("{origin}: {e}"))?;

    let page_cache_scope = match file.page_cache.count.as_deref() {
        None | Some("broker") => PageCacheScope::Broker,
        Some("host") => PageCacheScope::Host,
        Some(other) => {
            return Err(fail(
                "page_cache.count",
                format!("{other:?} is neither \"broker\" nor \"host\""),
            ))
        }
    };
    let broker_enabled = file.broker.enabled.unwrap_or(true);
    if page_cache_scope == PageCacheScope::Broker
        && file.page_cache.count.is_some()
        && !broker_enabled
    {
        return Err(fail(
            "page_cache.count",
            "\"broker\" needs the broker process, but [broker] enabled = false; count \"host\" instead".to_owned(),
        ));
    }
    let page_cache_ebpf = file
        .page_cache
        .ebpf
        .unwrap_or(true)
        .then_some(if broker_enabled {
            page_cache_scope
        } else {
            PageCacheScope::Host
        });

    let log_dirs = LogDirLocations {
        server_properties: file.log_dirs.server_properties,
        log_dirs: file.log_dirs.dirs,
    };
    let broker = broker_enabled
        .then(|| BrokerFinder::new(file.broker.pid_file, file.broker.command_pattern));
    let broker_id = match given_id {
        Some(given) => given,
        None => identity::discover(&paths.proc, broker.as_ref(), &log_dirs)
            .map_err(|e| fail("broker_id", e))?,
    };

    let broker_log =
        (broker_enabled || file.broker.log_file.is_some()).then(|| file.broker.log_file.clone());
    let kernel_log = file.kernel_log.enabled.unwrap_or(true).then(|| {
        file.kernel_log
            .path
            .clone()
            .unwrap_or_else(|| PathBuf::from("/dev/kmsg"))
    });

    Ok(Config {
        broker_id: broker_id.id,
        broker_id_from: broker_id.from,
        listen,
        interval,
        collectors,
        collector_token,
        collector_tls,
        web,
        report_buffer,
        paths,
        disk_filter,
        network_filter,
        log_dirs,
        broker,
        broker_log,
        kernel_log,
        broker_metrics,
        broker_metrics_timeout,
        assumed_link_speed_bytes,
        page_cache_ebpf,
        log_level,
    })
}

#[cfg(test)]
mod tests;
