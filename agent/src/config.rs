//! The agent's configuration: a TOML file (every key is documented in
//! `brokerwatch-agent.example.toml`), overridden by command-line flags.
//! Every bad value is reported in one line naming the key and what to do.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use brokerwatch_common::web::WebConfig;
use brokerwatch_common::{parse_duration, Secret};
use serde::Deserialize;

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
    collector: Option<String>,
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
    pub collector: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub broker_id: i32,
    pub listen: SocketAddr,
    pub interval: Duration,
    pub collector: Option<String>,
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
    collector: Option<&str>,
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
        if collector.is_some_and(|url| url.starts_with("http://")) {
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

/// Validates a config text; `origin` names it in errors.
pub fn from_toml(text: &str, origin: &str, flags: &Flags) -> Result<Config, String> {
    let file: FileConfig = brokerwatch_common::from_toml(text, origin)?;
    let fail = |key: &str, problem: String| format!("{origin}: {key}: {problem}");
    let collector_tls = collector_tls(
        &file,
        flags.collector.as_deref().or(file.collector.as_deref()),
    )
    .map_err(|(key, problem)| fail(key, problem))?;

    let broker_id = flags.broker_id.or(file.broker_id).ok_or_else(|| {
        fail(
            "broker_id",
            "not set; pass --broker-id N or set broker_id to this host's Kafka broker.id".into(),
        )
    })?;
    let broker_id = i32::try_from(broker_id)
        .ok()
        .filter(|id| *id >= 0)
        .ok_or_else(|| {
            fail(
                "broker_id",
                format!("{broker_id} is not a Kafka broker id (0 to 2147483647)"),
            )
        })?;

    let listen_text = flags
        .listen
        .clone()
        .or(file.listen)
        .unwrap_or_else(|| DEFAULT_LISTEN.into());
    let listen: SocketAddr = listen_text.parse().map_err(|_| {
        fail(
            "listen",
            format!(
                "{listen_text:?} is not an address; write it like 0.0.0.0:9797 or 127.0.0.1:9797"
            ),
        )
    })?;

    let interval = match flags.interval.clone().or(file.interval) {
        None => DEFAULT_INTERVAL,
        Some(text) => parse_duration(&text).map_err(|e| fail("interval", e))?,
    };
    if !(MIN_INTERVAL..=MAX_INTERVAL).contains(&interval) {
        return Err(fail(
            "interval",
            format!(
                "{} is out of range; use 100ms to 1h",
                humantime::format_duration(interval)
            ),
        ));
    }

    let collector = flags
        .collector
        .clone()
        .or(file.collector)
        .filter(|url| !url.is_empty());
    if let Some(url) = &collector {
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"));
        if rest.is_none_or(|host| host.is_empty() || host.starts_with('/')) {
            return Err(fail(
                "collector",
                format!(
                    "{url:?} is not a collector URL; write it like http://collector.example:9798"
                ),
            ));
        }
    }

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
        match url.filter(|u| !u.is_empty()) {
            Some(url) if !(url.starts_with("http://") || url.starts_with("https://")) => Err(fail(
                key,
                format!("{url:?} is not a URL; write it like http://127.0.0.1:7071/metrics"),
            )),
            other => Ok(other),
        }
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

    Ok(Config {
        broker_id,
        listen,
        interval,
        collector,
        collector_token,
        collector_tls,
        web,
        report_buffer,
        paths,
        disk_filter,
        network_filter,
        log_dirs: LogDirLocations {
            server_properties: file.log_dirs.server_properties,
            log_dirs: file.log_dirs.dirs,
        },
        broker: broker_enabled
            .then(|| BrokerFinder::new(file.broker.pid_file, file.broker.command_pattern)),
        broker_metrics,
        broker_metrics_timeout,
        assumed_link_speed_bytes,
        page_cache_ebpf,
        log_level,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags_with_id() -> Flags {
        Flags {
            broker_id: Some(1),
            ..Flags::default()
        }
    }

    fn error(text: &str) -> String {
        from_toml(text, "config agent.toml", &Flags::default()).unwrap_err()
    }

    #[test]
    fn defaults_need_only_a_broker_id() {
        let config = from_toml("", "command line", &flags_with_id()).unwrap();
        assert_eq!(config.broker_id, 1);
        assert_eq!(config.listen, "0.0.0.0:9797".parse().unwrap());
        assert_eq!(config.interval, Duration::from_secs(10));
        assert_eq!(config.collector, None);
        assert_eq!(config.paths.proc, PathBuf::from("/proc"));
        assert!(!config.disk_filter.accepts("sda1") && config.disk_filter.accepts("sda"));
        assert!(config.network_filter.accepts("lo"));
        assert_eq!(config.page_cache_ebpf, Some(PageCacheScope::Broker));
        let off = from_toml("[page_cache]\nebpf = false", "f", &flags_with_id()).unwrap();
        assert_eq!(off.page_cache_ebpf, None);
        let no_broker = from_toml("[broker]\nenabled = false", "f", &flags_with_id()).unwrap();
        assert_eq!(no_broker.page_cache_ebpf, Some(PageCacheScope::Host));
    }

    #[test]
    fn the_example_file_documents_every_key_and_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("brokerwatch-agent.example.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let config = from_toml(&text, "example", &Flags::default()).unwrap();
        assert_eq!(config.broker_id, 1);
        assert_eq!(config.interval, Duration::from_secs(10));
        for key in [
            "broker_id",
            "listen",
            "interval",
            "collector",
            "proc_path",
            "sys_path",
            "log_level",
            "[disk]",
            "[network]",
            "include",
            "exclude",
            "[page_cache]",
            "ebpf",
            "count",
            "collector_token_file",
            "collector_ca_file",
            "collector_cert_file",
            "collector_key_file",
            "web_config_file",
        ] {
            assert!(
                text.contains(&format!("\n{key}")) || text.contains(&format!("\n# {key}")),
                "{key} undocumented"
            );
        }
    }

    #[test]
    fn collector_tls_files_are_checked_at_load_and_the_token_never_shown() {
        let dir = tempfile::tempdir().unwrap();
        let garbage = dir.path().join("ca.pem");
        std::fs::write(
            &garbage,
            "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "s3cret-token\n").unwrap();
        let at = |key: &str| format!("{key} = {:?}\n", garbage.display().to_string());
        let cases = [
            (
                format!(
                    "broker_id = 1\ncollector = \"https://c:9798\"\n{}",
                    at("collector_cert_file")
                ),
                "config f: collector_key_file: not set; a client certificate needs its key",
            ),
            (
                format!(
                    "broker_id = 1\ncollector = \"http://c:9798\"\n{}",
                    at("collector_ca_file")
                ),
                "config f: collector: is http:// but TLS files are set; write https://",
            ),
            (
                format!(
                    "broker_id = 1\ncollector = \"https://c:9798\"\n{}",
                    at("collector_ca_file")
                ),
                "config f: collector_ca_file: the CA, certificate or key is not usable PEM",
            ),
            (
                "broker_id = 1\ncollector_ca_file = \"/nonexistent/ca.pem\"\n".to_owned(),
                "config f: collector_ca_file: cannot read /nonexistent/ca.pem",
            ),
        ];
        for (text, expected) in cases {
            let error = from_toml(&text, "config f", &Flags::default()).unwrap_err();
            assert!(error.starts_with(expected), "{text}: {error}");
        }
        let config = from_toml(
            &format!(
                "broker_id = 1\ncollector = \"https://c:9798\"\ncollector_token_file = {:?}\n",
                token.display().to_string()
            ),
            "config f",
            &Flags::default(),
        )
        .unwrap();
        assert_eq!(
            config.collector_token.as_ref().map(Secret::expose),
            Some("s3cret-token")
        );
        assert!(!format!("{config:?}").contains("s3cret"));
    }

    #[test]
    fn flags_win_over_the_file() {
        let flags = Flags {
            broker_id: Some(4),
            listen: Some("127.0.0.1:0".into()),
            interval: Some("250ms".into()),
            collector: Some("https://collector:9798".into()),
        };
        let config = from_toml(
            "broker_id = 2\nlisten = \"0.0.0.0:1\"\ninterval = \"1m\"\n",
            "f",
            &flags,
        )
        .unwrap();
        assert_eq!(config.broker_id, 4);
        assert_eq!(config.listen.to_string(), "127.0.0.1:0");
        assert_eq!(config.interval, Duration::from_millis(250));
        assert_eq!(config.collector.as_deref(), Some("https://collector:9798"));
    }

    #[test]
    fn every_bad_value_gets_one_line_naming_the_key() {
        let cases = [
            (
                "",
                "config agent.toml: broker_id: not set; pass --broker-id N",
            ),
            (
                "broker_id = -3",
                "config agent.toml: broker_id: -3 is not a Kafka broker id",
            ),
            (
                "broker_id = 1\n[page_cache]\ncount = \"cluster\"",
                "config agent.toml: page_cache.count: \"cluster\" is neither \"broker\" nor \"host\"",
            ),
            (
                "broker_id = 1\n[broker]\nenabled = false\n[page_cache]\ncount = \"broker\"",
                "config agent.toml: page_cache.count: \"broker\" needs the broker process",
            ),
            (
                "broker_id = 1\nlisten = \"localhost\"",
                "config agent.toml: listen: \"localhost\" is not an address",
            ),
            (
                "broker_id = 1\ninterval = \"soon\"",
                "config agent.toml: interval: invalid duration \"soon\"",
            ),
            (
                "broker_id = 1\ninterval = \"5ms\"",
                "config agent.toml: interval: 5ms is out of range",
            ),
            (
                "broker_id = 1\ncollector = \"collector:9798\"",
                "config agent.toml: collector: \"collector:9798\" is not a collector URL",
            ),
            (
                "broker_id = 1\nlog_level = \"loud\"",
                "config agent.toml: log_level: \"loud\" is not one of",
            ),
            (
                "broker_id = 1\n[disk]\nexclude = \"(\"",
                "config agent.toml: disk.exclude: invalid regular expression \"(\"",
            ),
            (
                "broker_id = 1\n[network]\ninclude = \"[\"",
                "config agent.toml: network.include: invalid regular expression",
            ),
            (
                "broker_id = 1\nlisten_addr = \"x\"",
                "config agent.toml line 2: unknown field `listen_addr`",
            ),
            (
                "broker_id = \"one\"",
                "config agent.toml line 1: invalid type: string \"one\"",
            ),
            ("broker_id = 1\n[disk\n", "config agent.toml line 2: "),
        ];
        for (text, expected) in cases {
            let err = error(text);
            assert!(
                err.starts_with(expected),
                "for {text:?}:\n got {err:?}\nwant {expected:?}..."
            );
            assert!(
                !err.contains('\n'),
                "multi-line error for {text:?}: {err:?}"
            );
        }
    }

    #[test]
    fn an_unreadable_file_says_which_and_what_to_check() {
        let err = load(
            Some(Path::new("/nonexistent/agent.toml")),
            &Flags::default(),
        )
        .unwrap_err();
        assert!(
            err.starts_with("config /nonexistent/agent.toml: cannot read it ("),
            "{err}"
        );
        assert!(err.ends_with("check the --config path"), "{err}");
    }
}
