//! Helpers for the end-to-end tests: start real programs on 127.0.0.1 with
//! ports chosen at run time, scrape them, and stop them (by pid) when done.

use std::collections::HashMap;
use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A workspace binary, built by `cargo build --workspace --bins` (the test
/// command does it before the tests run).
pub fn workspace_binary(name: &str) -> PathBuf {
    // Test executables live in target/<profile>/deps/.
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable sits in target/<profile>/deps");
    let path = profile_dir.join(name);
    assert!(
        path.exists(),
        "{} not found: run `cargo build --workspace --bins` first (scripts/test.sh does)",
        path.display()
    );
    path
}

/// A Debian program the test command installs, e.g. `prometheus-node-exporter`.
pub fn system_binary(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|p| p.is_file());
    path.unwrap_or_else(|| {
        panic!("{name} is not installed: run scripts/test.sh, which installs it with apt-get")
    })
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// A child process whose standard error goes to a file, stopped with
/// SIGTERM (then SIGKILL) when dropped.
pub struct Daemon {
    pub name: String,
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Daemon {
    pub fn start(program: &Path, args: &[&str]) -> Daemon {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("stderr.log");
        let name = program
            .file_name()
            .map_or_else(|| "daemon".into(), |n| n.to_string_lossy().into_owned());
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log).expect("log file"))
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", program.display()));
        Daemon {
            name,
            child,
            log,
            _dir: dir,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for a log line containing `needle` and returns that line.
    pub fn wait_for_log(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self.log().lines().find(|l| l.contains(needle)) {
                return line.to_owned();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{} exited ({status}) before logging {needle:?}:\n{}",
                    self.name,
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{} did not log {needle:?} in {timeout:?}:\n{}",
                self.name,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child's pid has no memory effects.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `brokerwatch-agent` (the binary at `program`) on a port of its own
/// choosing and returns it with its `/metrics` URL, read from its log.
pub fn start_agent(program: &Path, args: &[&str]) -> (Daemon, String) {
    let mut all = vec!["--listen", "127.0.0.1:0"];
    all.extend_from_slice(args);
    let mut agent = Daemon::start(program, &all);
    let line = agent.wait_for_log("serving http://", Duration::from_secs(10));
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in the agent's log line {line:?}"))
        .to_owned();
    (agent, url)
}

/// GETs a URL, retrying until it answers 200 or the timeout passes.
pub fn get_when_ready(url: &str, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        match reqwest::blocking::get(url)
            .and_then(|r| r.error_for_status())
            .and_then(|r| r.text())
        {
            Ok(body) => return body,
            Err(e) if Instant::now() >= deadline => panic!("GET {url} failed for {timeout:?}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// One scrape: every sample keyed by name and sorted labels.
#[derive(Debug, Clone)]
pub struct Scrape(pub Vec<prometheus_parse::Sample>);

impl Scrape {
    pub fn fetch(url: &str) -> Scrape {
        let body = get_when_ready(url, Duration::from_secs(10));
        let lines = body.lines().map(|l| Ok(l.to_owned()));
        let parsed = prometheus_parse::Scrape::parse(lines)
            .unwrap_or_else(|e| panic!("parse scrape of {url}: {e}"));
        Scrape(parsed.samples)
    }

    fn value(sample: &prometheus_parse::Sample) -> f64 {
        match sample.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => f64::NAN,
        }
    }

    /// Sum of the samples of `metric` whose labels include all of `labels`.
    pub fn sum(&self, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let matching: Vec<f64> = self
            .0
            .iter()
            .filter(|s| {
                s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v))
            })
            .map(Self::value)
            .collect();
        (!matching.is_empty()).then(|| matching.iter().sum())
    }

    /// Values of `metric` by the value of `label`.
    pub fn by_label(&self, metric: &str, label: &str) -> HashMap<String, f64> {
        self.0
            .iter()
            .filter(|s| s.metric == metric)
            .filter_map(|s| Some((s.labels.get(label)?.to_owned(), Self::value(s))))
            .collect()
    }
}
