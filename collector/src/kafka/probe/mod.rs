//! The end-to-end probe, in a process of its own: its consumer is the one
//! librdkafka client that fetches records, and librdkafka 2.12 crashes the
//! whole process on some brokers' answers (a Fetch v12 answer with a
//! leader hint, as tansu gives after a restart: a NULL topic name in its
//! metadata cache). The daemon runs `run_child` as its own executable with
//! `BROKERWATCH_PROBE_CHILD` set, hands it its settings on stdin, reads
//! each round's findings as JSON lines from its stdout, and restarts it if
//! it dies; the collector goes on either way. The child ends when its stdin
//! closes (the daemon is gone).

mod expose;
mod prober;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::config::{KafkaConfig, ProbeConfig};
use crate::model::probe::{BrokerTotals, BrokerWindow, Histogram};

pub use expose::expose;

/// What the probe found, as of one round.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ProbeFindings {
    pub at: f64,
    /// Each broker's figures over the window, for the alerts.
    pub windows: BTreeMap<i32, BrokerWindow>,
    /// Each broker's counters and histograms since start, for the series.
    pub totals: BTreeMap<i32, BrokerTotals>,
    pub commit_latency: Histogram,
    pub commit_failures: u64,
    /// Brokers in the metadata that lead no probe partition.
    pub brokers_without_partition: Vec<i32>,
    /// Times the probe's process ended and was started again.
    #[serde(default)]
    pub restarts: u64,
}

/// The environment variable that makes a brokerwatch binary the probe's child.
pub const CHILD_VARIABLE: &str = "BROKERWATCH_PROBE_CHILD";

/// What the child is told on stdin.
#[derive(Serialize, Deserialize)]
struct Job {
    properties: BTreeMap<String, String>,
    kafka_timeout_ms: u64,
    topic: String,
    group: String,
    interval_ms: u64,
    record_bytes: usize,
    replication_factor: usize,
    timeout_ms: u64,
    window_ms: u64,
}

impl Job {
    fn new(kafka: &KafkaConfig, probe: &ProbeConfig) -> Job {
        let ms = |d: Duration| d.as_millis() as u64;
        Job {
            properties: kafka.properties.clone(),
            kafka_timeout_ms: ms(kafka.timeout),
            topic: probe.topic.clone(),
            group: probe.group.clone(),
            interval_ms: ms(probe.interval),
            record_bytes: probe.record_bytes,
            replication_factor: probe.replication_factor,
            timeout_ms: ms(probe.timeout),
            window_ms: ms(probe.window),
        }
    }

    fn configs(self) -> (KafkaConfig, ProbeConfig) {
        let ms = Duration::from_millis;
        let kafka = KafkaConfig {
            properties: self.properties,
            metadata_interval: ms(self.interval_ms),
            topic_config_interval: ms(self.interval_ms),
            timeout: ms(self.kafka_timeout_ms),
            expected_brokers: BTreeSet::new(),
        };
        let probe = ProbeConfig {
            enabled: true,
            topic: self.topic,
            group: self.group,
            interval: ms(self.interval_ms),
            record_bytes: self.record_bytes,
            replication_factor: self.replication_factor,
            timeout: ms(self.timeout_ms),
            window: ms(self.window_ms),
        };
        (kafka, probe)
    }
}

/// When this process was started as the probe's child: runs the probe until
/// its stdin closes and returns `true`; otherwise returns `false` at once.
/// Every brokerwatch binary that runs the collector calls this first.
pub fn run_child_if_asked() -> bool {
    if std::env::var_os(CHILD_VARIABLE).is_none() {
        return false;
    }
    // Logs to stderr, which is the daemon's; stdout carries the findings.
    brokerwatch_common::daemon::init_logging(tracing::Level::INFO);
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line).is_err() {
        return true;
    }
    let Ok(job) = serde_json::from_str::<Job>(&line) else {
        eprintln!("probe: the settings from the collector are not readable; the probe is off");
        return true;
    };
    // The daemon gone (stdin closed), the child goes too.
    std::thread::spawn(|| {
        let mut rest = String::new();
        while std::io::stdin()
            .lock()
            .read_line(&mut rest)
            .is_ok_and(|n| n > 0)
        {}
        std::process::exit(0);
    });
    let (kafka, probe) = job.configs();
    let mut out = std::io::stdout().lock();
    prober::run(&kafka, &probe, |findings| {
        let Ok(text) = serde_json::to_string(&findings) else {
            return;
        };
        if writeln!(out, "{text}").and_then(|()| out.flush()).is_err() {
            std::process::exit(0);
        }
    });
    // Off (said why): wait for the daemon to go.
    loop {
        std::thread::park();
    }
}

/// Adds the totals of a probe process that ended to what came before.
fn add_totals(base: &mut BTreeMap<i32, BrokerTotals>, ended: &BTreeMap<i32, BrokerTotals>) {
    for (broker, totals) in ended {
        base.entry(*broker).or_default().add(totals);
    }
}

/// Runs the probe's process, and again whenever it ends, publishing its
/// findings with the counters of earlier processes added in. Runs until
/// the collector ends.
pub fn supervise(
    kafka: KafkaConfig,
    probe: ProbeConfig,
    publish: &watch::Sender<Option<Arc<ProbeFindings>>>,
) {
    let job = match serde_json::to_string(&Job::new(&kafka, &probe)) {
        Ok(job) => job,
        Err(e) => return warn!("probe: cannot pass its settings on: {e}; the probe is off"),
    };
    let program = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            return warn!("probe: cannot find this program to run the probe: {e}; the probe is off")
        }
    };
    let mut base: BTreeMap<i32, BrokerTotals> = BTreeMap::new();
    let mut base_commit = Histogram::default();
    let mut base_commit_failures = 0;
    let mut restarts = 0;
    let mut backoff = Duration::from_secs(1);
    loop {
        let started = Instant::now();
        let spawned = Command::new(&program)
            .env(CHILD_VARIABLE, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) => {
                return warn!(
                    "probe: cannot start its process ({}): {e}; the probe is off",
                    program.display()
                )
            }
        };
        let mut stdin = child.stdin.take().expect("piped");
        if writeln!(stdin, "{job}").is_err() {
            warn!("probe: its process did not take its settings");
        }
        let mut last: Option<ProbeFindings> = None;
        for line in BufReader::new(child.stdout.take().expect("piped")).lines() {
            let Ok(line) = line else { break };
            let Ok(raw) = serde_json::from_str::<ProbeFindings>(&line) else {
                continue;
            };
            let mut shown = raw.clone();
            add_totals(&mut shown.totals, &base);
            shown.commit_latency.add(&base_commit);
            shown.commit_failures += base_commit_failures;
            shown.restarts = restarts;
            publish.send_replace(Some(Arc::new(shown)));
            last = Some(raw);
        }
        drop(stdin);
        let status = child
            .wait()
            .map_or_else(|e| e.to_string(), |s| s.to_string());
        if let Some(last) = last {
            add_totals(&mut base, &last.totals);
            base_commit.add(&last.commit_latency);
            base_commit_failures += last.commit_failures;
        }
        restarts += 1;
        // A process that ran a while is started again soon; one that keeps
        // dying, less and less often (up to a minute).
        backoff = if started.elapsed() > Duration::from_secs(60) {
            Duration::from_secs(1)
        } else {
            (backoff * 2).min(Duration::from_secs(60))
        };
        warn!("probe: its process ended ({status}); started again in {} (records in flight then are not counted)", humantime::format_duration(backoff));
        std::thread::sleep(backoff);
        info!("probe: starting its process again");
    }
}
