//! The broker process on this host: found through a pid file or by its
//! command line (`kafka.Kafka`), followed across restarts, and read from
//! /proc/PID: CPU seconds, resident memory, threads, open file descriptors
//! against the limit, and bytes read and written. A host whose broker is down
//! still reports, with the broker marked down: a state of its own.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use brokerwatch_common::exposition::Families;
use brokerwatch_common::BrokerProcessReport;
use brokerwatch_common::HostReport;
use procfs::process::{LimitValue, Process};

use super::{HostPaths, Source, SourceError};

/// The part of a Kafka broker's command line that names it.
pub const DEFAULT_PATTERN: &str = "kafka.Kafka";

/// While no broker is found, /proc is searched at most this often (a search
/// opens every process's cmdline).
const SEARCH_EVERY: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct BrokerFinder {
    pid_file: Option<PathBuf>,
    pattern: String,
    current: Option<i32>,
    last_search: Option<Instant>,
}

impl BrokerFinder {
    pub fn new(pid_file: Option<PathBuf>, pattern: Option<String>) -> Self {
        BrokerFinder {
            pid_file,
            pattern: pattern
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| DEFAULT_PATTERN.to_owned()),
            current: None,
            last_search: None,
        }
    }

    fn matches(&self, proc: &Path, pid: i32) -> bool {
        Process::new_with_root(proc.join(pid.to_string()))
            .and_then(|p| p.cmdline())
            .is_ok_and(|args| args.join(" ").contains(&self.pattern))
    }

    /// The broker's pid now: the one already known while it still runs the
    /// broker, else the pid file's, else a search of /proc by command line.
    pub fn find(&mut self, proc: &Path) -> Option<i32> {
        if let Some(pid) = self
            .current
            .filter(|pid| self.pid_file.is_some() || self.matches(proc, *pid))
        {
            if proc.join(pid.to_string()).exists() {
                return Some(pid);
            }
        }
        self.current = match &self.pid_file {
            Some(file) => std::fs::read_to_string(file)
                .ok()
                .and_then(|text| text.trim().parse().ok())
                .filter(|pid: &i32| proc.join(pid.to_string()).exists()),
            None => {
                if self
                    .last_search
                    .is_some_and(|at| at.elapsed() < SEARCH_EVERY)
                {
                    return None;
                }
                self.last_search = Some(Instant::now());
                let me = std::process::id() as i32;
                let mut found: Vec<i32> = procfs::process::all_processes_with_root(proc)
                    .map(|all| {
                        all.filter_map(|p| p.ok())
                            .map(|p| p.pid)
                            .filter(|pid| *pid != me && self.matches(proc, *pid))
                            .collect()
                    })
                    .unwrap_or_default();
                // Wrappers (a shell that execs java) come first by pid; the broker is the newest.
                found.sort_unstable();
                found.last().copied()
            }
        };
        self.current
    }
}

/// `path` as process `pid` sees it: through `/proc/PID/root` (a broker in a
/// container sees its own root) when that resolves, else as it is.
pub fn as_seen_by(proc: &Path, pid: Option<i32>, path: &Path) -> PathBuf {
    let relative = path.strip_prefix("/").unwrap_or(path);
    pid.map(|pid| proc.join(pid.to_string()).join("root").join(relative))
        .filter(|seen| seen.exists())
        .unwrap_or_else(|| path.to_owned())
}

/// Reads the broker process's figures.
pub fn read_process(
    proc: &Path,
    pid: i32,
    ticks_per_second: u64,
    page_size: u64,
) -> Result<BrokerProcessReport, SourceError> {
    let dir = proc.join(pid.to_string());
    // procfs 0.18 panics on some garbled /proc/PID files (a cut-short stat
    // line, a multi-byte character in io; found by tests/parsers_fuzz.rs):
    // such a file is an error here, not a crash of the agent.
    std::panic::catch_unwind(|| read_process_files(&dir, pid, ticks_per_second, page_size))
        .unwrap_or_else(|_| {
            Err(SourceError::Parse {
                path: dir.clone(),
                reason: "garbled: procfs could not parse the process's files".into(),
            })
        })
}

fn read_process_files(
    dir: &Path,
    pid: i32,
    ticks_per_second: u64,
    page_size: u64,
) -> Result<BrokerProcessReport, SourceError> {
    let failed = |what: &str, e: procfs::ProcError| SourceError::Read {
        path: dir.join(what),
        reason: brokerwatch_common::one_line(&e.to_string()),
    };
    let process = Process::new_with_root(dir.to_path_buf()).map_err(|e| failed("", e))?;
    let stat = process.stat().map_err(|e| failed("stat", e))?;
    let max_fds = process
        .limits()
        .ok()
        .and_then(|l| match l.max_open_files.soft_limit {
            LimitValue::Value(v) => Some(v),
            LimitValue::Unlimited => None,
        });
    // /proc/PID/io needs the broker's user or CAP_SYS_PTRACE: without it, no I/O figures.
    let io = process.io().ok();
    Ok(BrokerProcessReport {
        pid,
        cpu_seconds: (stat.utime as f64 + stat.stime as f64) / ticks_per_second as f64,
        resident_memory_bytes: stat.rss.saturating_mul(page_size),
        threads: stat.num_threads.max(0) as u64,
        open_fds: process.fd_count().map_err(|e| failed("fd", e))? as u64,
        max_fds,
        read_bytes: io.as_ref().map(|io| io.read_bytes),
        written_bytes: io.as_ref().map(|io| io.write_bytes),
        start_time_ticks: stat.starttime,
    })
}

/// The broker-process source: finds the broker and reads /proc/PID every
/// cycle; with no finder (`[broker] enabled = false`) it does nothing.
pub struct BrokerProcessSource {
    finder: Option<BrokerFinder>,
    proc: PathBuf,
    ticks_per_second: u64,
    page_size: u64,
    /// Whether the broker runs (`None`: not looked for), and its figures.
    last: (Option<bool>, Option<BrokerProcessReport>),
}

impl BrokerProcessSource {
    pub fn new(paths: &HostPaths, finder: Option<BrokerFinder>) -> Self {
        BrokerProcessSource {
            finder,
            proc: paths.proc.clone(),
            ticks_per_second: procfs::ticks_per_second(),
            page_size: procfs::page_size(),
            last: (None, None),
        }
    }
}

impl Source for BrokerProcessSource {
    fn name(&self) -> &'static str {
        "broker"
    }

    fn collect(&mut self, _at: Instant, report: &mut HostReport) -> Result<(), SourceError> {
        let Some(finder) = self.finder.as_mut() else {
            return Ok(());
        };
        let mut result = Ok(());
        self.last = match finder.find(&self.proc) {
            None => (Some(false), None),
            Some(pid) => match read_process(&self.proc, pid, self.ticks_per_second, self.page_size)
            {
                Ok(process) => (Some(true), Some(process)),
                Err(e) => {
                    result = Err(e);
                    (Some(true), None)
                }
            },
        };
        (report.broker_up, report.broker_process) = self.last.clone();
        result
    }

    fn expose(&self, f: &mut Families) {
        if let Some(up) = self.last.0 {
            f.gauge("brokerwatch_broker_up", "1 when the broker process runs on this host, 0 when the host reports but the broker does not run.")
                .value(f64::from(u8::from(up)));
        }
        let Some(p) = &self.last.1 else { return };
        f.counter(
            "brokerwatch_broker_process_cpu_seconds_total",
            "User and system CPU time of the broker process.",
        )
        .value(p.cpu_seconds);
        f.gauge(
            "brokerwatch_broker_process_resident_memory_bytes",
            "Resident memory of the broker process.",
        )
        .value(p.resident_memory_bytes as f64);
        f.gauge(
            "brokerwatch_broker_process_threads",
            "Threads of the broker process.",
        )
        .value(p.threads as f64);
        f.gauge(
            "brokerwatch_broker_process_open_fds",
            "File descriptors the broker process holds open.",
        )
        .value(p.open_fds as f64);
        if let Some(max) = p.max_fds {
            f.gauge(
                "brokerwatch_broker_process_max_fds",
                "The broker process's limit on open files.",
            )
            .value(max as f64);
        }
        if let Some(read) = p.read_bytes {
            f.counter(
                "brokerwatch_broker_process_read_bytes_total",
                "Bytes the broker process read from storage.",
            )
            .value(read as f64);
        }
        if let Some(written) = p.written_bytes {
            f.counter(
                "brokerwatch_broker_process_written_bytes_total",
                "Bytes the broker process wrote to storage.",
            )
            .value(written as f64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Child, Command};

    /// A stand-in broker: `sleep` whose command line reads like a broker's.
    fn fake_broker() -> Child {
        Command::new("bash")
            .args([
                "-c",
                "exec -a 'java -Xmx1g kafka.Kafka /etc/kafka/server.properties' sleep 60",
            ])
            .spawn()
            .expect("spawn a stand-in broker")
    }

    fn stop(mut child: Child) {
        let _ = child.kill();
        let _ = child.wait();
    }

    #[test]
    fn finds_the_broker_by_command_line_and_follows_it_across_a_restart() {
        let proc = Path::new("/proc");
        let first = fake_broker();
        std::thread::sleep(Duration::from_millis(200));
        let mut finder = BrokerFinder::new(None, None);
        assert_eq!(finder.find(proc), Some(first.id() as i32));
        let report = read_process(
            proc,
            first.id() as i32,
            procfs::ticks_per_second(),
            procfs::page_size(),
        )
        .unwrap();
        assert!(
            report.threads >= 1 && report.open_fds >= 1 && report.resident_memory_bytes > 0,
            "{report:?}"
        );
        stop(first);

        let second = fake_broker();
        std::thread::sleep(Duration::from_millis(200));
        // The old pid is gone; the next search (not rate-limited: the finder had a broker) finds the new one.
        finder.last_search = None;
        let found = finder.find(proc);
        assert_eq!(found, Some(second.id() as i32));
        stop(second);
        finder.last_search = None;
        assert_eq!(finder.find(proc), None, "no broker: down");
    }

    #[test]
    fn a_pid_file_wins_and_a_stale_one_means_down() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("kafka.pid");
        let broker = fake_broker();
        std::fs::write(&pid_file, format!("{}\n", broker.id())).unwrap();
        let mut finder = BrokerFinder::new(Some(pid_file.clone()), None);
        assert_eq!(finder.find(Path::new("/proc")), Some(broker.id() as i32));
        stop(broker);
        assert_eq!(finder.find(Path::new("/proc")), None);
        std::fs::write(&pid_file, "not a pid\n").unwrap();
        assert_eq!(finder.find(Path::new("/proc")), None);
    }

    #[test]
    fn a_process_that_is_gone_is_a_read_error_naming_it() {
        let err = read_process(Path::new("/proc"), i32::MAX, 100, 4096)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&format!("cannot read /proc/{}", i32::MAX)),
            "{err}"
        );
    }
}
