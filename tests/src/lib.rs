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
    /// Files the daemon needs (its config, its data dir) for as long as it runs.
    kept: Vec<Box<dyn std::any::Any>>,
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
            kept: Vec::new(),
        }
    }

    /// Keeps `thing` (a temporary file or directory) alive as long as the daemon.
    pub fn keep(&mut self, thing: impl std::any::Any) {
        self.kept.push(Box::new(thing));
    }

    /// SIGKILL: the daemon gets no chance to flush or say goodbye.
    pub fn kill_hard(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, as systemd stops it; returns how it exited, or `None` if it
    /// had not within `timeout` (it is then killed).
    pub fn terminate(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        // SAFETY: kill(2) on our own child's pid has no memory effects.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill_hard();
        None
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

/// Starts one of our daemons and returns it with the URL it logs once it
/// serves (`serving http://...` or `serving https://...`).
pub fn start_serving(program: &Path, args: &[&str]) -> (Daemon, String) {
    let mut daemon = Daemon::start(program, args);
    let line = daemon.wait_for_log("serving http", Duration::from_secs(20));
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://") || w.starts_with("https://"))
        .unwrap_or_else(|| panic!("no URL in the log line {line:?}"))
        .to_owned();
    (daemon, url)
}

/// Starts `brokerwatch-agent` (the binary at `program`) on a port of its own
/// choosing and returns it with its `/metrics` URL.
pub fn start_agent(program: &Path, args: &[&str]) -> (Daemon, String) {
    let mut all = vec!["--listen", "127.0.0.1:0"];
    all.extend_from_slice(args);
    start_serving(program, &all)
}

/// Starts the workspace's agent with this config text, written into `dir`
/// as agent.toml; `dir` (with anything else the config names in it) lives as
/// long as the agent.
pub fn start_agent_with_config(config: &str, dir: tempfile::TempDir) -> (Daemon, String) {
    let path = dir.path().join("agent.toml");
    std::fs::write(&path, config).expect("write the agent's config");
    let (mut daemon, url) = start_agent(
        &workspace_binary("brokerwatch-agent"),
        &["--config", path.to_str().expect("UTF-8 path")],
    );
    daemon.keep(dir);
    (daemon, url)
}

/// The start of a collector config for tests: `cluster`, a free port on
/// 127.0.0.1, `state_dir`, evaluation every 200 ms, reports accepted without
/// a token. Tests append the sections they need.
pub fn open_collector_config(cluster: &str, state_dir: &Path) -> String {
    format!(
        "cluster = \"{cluster}\"\nlisten = \"127.0.0.1:0\"\nstate_dir = {:?}\nevaluation_interval = \"200ms\"\n[ingest]\nallow_unauthenticated = true\n",
        state_dir.display().to_string()
    )
}

/// Starts `brokerwatch-collector` with this config text (written to a file
/// that lives as long as the daemon) and returns it with its base URL.
pub fn start_collector(config: &str) -> (Daemon, String) {
    let file = tempfile::NamedTempFile::new().expect("config file");
    std::fs::write(file.path(), config).expect("write config");
    let path = file.path().to_str().expect("UTF-8 path").to_owned();
    let (mut daemon, url) = start_serving(
        &workspace_binary("brokerwatch-collector"),
        &["--config", &path],
    );
    daemon.keep(file);
    (daemon, url)
}

/// tansu, a real Kafka-protocol broker (see DESIGN.md section 4): where the
/// test command put it (`target/tools/tansu`), or `$BROKERWATCH_TANSU`.
pub fn tansu_binary() -> PathBuf {
    let path = std::env::var_os("BROKERWATCH_TANSU").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/tools/tansu"),
        PathBuf::from,
    );
    assert!(
        path.is_file(),
        "{} not found: run scripts/test.sh, which fetches tansu",
        path.display()
    );
    path
}

/// tansu on 127.0.0.1:`port` with in-memory storage (a restart comes back
/// empty), once it accepts connections.
pub fn start_tansu(port: u16) -> Daemon {
    start_tansu_behind(port, port)
}

/// tansu listening on `port` and telling clients to come to `advertised`
/// (a proxy in front of it).
pub fn start_tansu_behind(port: u16, advertised: u16) -> Daemon {
    let url = format!("tcp://127.0.0.1:{port}");
    let advertised_url = format!("tcp://127.0.0.1:{advertised}");
    let daemon = Daemon::start(
        &tansu_binary(),
        &[
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &advertised_url,
            "--storage-engine",
            "memory://tansu/",
        ],
    );
    eventually("tansu to listen", Duration::from_secs(20), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    });
    daemon
}

/// The real Alertmanager on 127.0.0.1:`port`, with gossip off, routing
/// everything at once to a webhook that hears firing and resolved notices.
pub fn start_alertmanager(port: u16, webhook: &str) -> Daemon {
    start_alertmanager_with(port, webhook, &["--cluster.listen-address=".to_owned()])
}

/// Two Alertmanagers gossiping on loopback, as a production pair runs: a
/// notification goes out once, whichever of them got the alert. Returns
/// them with their HTTP ports.
pub fn start_alertmanager_pair(webhook: &str) -> [(Daemon, u16); 2] {
    let ports = [free_port(), free_port()];
    let gossip = [free_port(), free_port()];
    let start = |i: usize| {
        let flags = [
            format!("--cluster.listen-address=127.0.0.1:{}", gossip[i]),
            format!("--cluster.advertise-address=127.0.0.1:{}", gossip[i]),
            format!("--cluster.peer=127.0.0.1:{}", gossip[1 - i]),
            // The second waits this long for the first's notice to gossip
            // over before sending its own (15 s by default).
            "--cluster.peer-timeout=3s".to_owned(),
            "--cluster.settle-timeout=5s".to_owned(),
        ];
        (start_alertmanager_with(ports[i], webhook, &flags), ports[i])
    };
    [start(0), start(1)]
}

fn start_alertmanager_with(port: u16, webhook: &str, cluster: &[String]) -> Daemon {
    let dir = tempfile::tempdir().expect("alertmanager dir");
    let config = dir.path().join("alertmanager.yml");
    std::fs::write(
        &config,
        format!(
            "route:\n  receiver: webhook\n  group_by: ['...']\n  group_wait: 0s\n  group_interval: 1s\n  repeat_interval: 1h\n\
             receivers:\n  - name: webhook\n    webhook_configs:\n      - url: {webhook}\n        send_resolved: true\n"
        ),
    )
    .expect("write alertmanager config");
    let mut args = vec![
        format!("--config.file={}", config.display()),
        format!("--storage.path={}", dir.path().join("data").display()),
        format!("--web.listen-address=127.0.0.1:{port}"),
    ];
    args.extend_from_slice(cluster);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut daemon = Daemon::start(&system_binary("prometheus-alertmanager"), &args);
    get_when_ready(
        &format!("http://127.0.0.1:{port}/-/ready"),
        Duration::from_secs(20),
    );
    daemon.keep(dir);
    daemon
}

/// A webhook receiver on 127.0.0.1: every JSON body posted to it, in order.
pub struct WebhookSink {
    pub url: String,
    received: std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
}

impl WebhookSink {
    pub fn start() -> WebhookSink {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind webhook");
        let url = format!("http://{}/hook", listener.local_addr().expect("address"));
        let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = received.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream);
                let mut length = 0;
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                    if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = value.trim().parse().unwrap_or(0);
                    }
                    line.clear();
                }
                let mut body = vec![0; length];
                if reader.read_exact(&mut body).is_ok() {
                    if let Ok(json) = serde_json::from_slice(&body) {
                        sink.lock().expect("sink").push(json);
                    }
                }
                let _ = reader.get_mut().write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                );
            }
        });
        WebhookSink { url, received }
    }

    pub fn received(&self) -> Vec<serde_json::Value> {
        self.received.lock().expect("sink").clone()
    }
}

/// A JSON answer, or `null` when there is none (not up yet, or not JSON).
pub fn get_json(url: &str) -> serde_json::Value {
    http()
        .get(url)
        .send()
        .and_then(|r| r.json())
        .unwrap_or(serde_json::Value::Null)
}

/// A text answer; panics naming the URL when there is none.
pub fn get_text(url: &str) -> String {
    http()
        .get(url)
        .send()
        .and_then(|r| r.text())
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

/// Polls `check` until it returns `Some`, or panics with `what` after `timeout`.
pub fn eventually<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// GETs a URL, retrying until it answers 200 or the timeout passes.
/// One HTTP client for the whole test process: building one loads the
/// system's CA certificates (hundreds of small files), reads that would
/// otherwise show in what the page-cache tests count for this process.
pub fn http() -> &'static reqwest::blocking::Client {
    static CLIENT: std::sync::OnceLock<reqwest::blocking::Client> = std::sync::OnceLock::new();
    CLIENT.get_or_init(reqwest::blocking::Client::new)
}

pub fn get_when_ready(url: &str, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        match http()
            .get(url)
            .send()
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

/// Writes the file at `path` out and drops its pages from the page cache.
pub fn drop_from_page_cache(path: &Path) {
    use std::os::fd::AsRawFd;
    let file = std::fs::File::open(path).expect("open");
    file.sync_all().expect("fsync");
    // SAFETY: a valid fd, the whole file, advice only.
    let done = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    assert_eq!(done, 0, "posix_fadvise");
}

/// The smallest valid report an agent could push for `broker`, as JSON.
pub fn minimal_report(broker: i32) -> serde_json::Value {
    serde_json::json!({
        "schema_version": brokerwatch_common::SCHEMA_VERSION,
        "broker_id": broker,
        "agent_version": "e2e",
        "timestamp_ms": 0,
        "interval_seconds": 1.0,
        "host": {"disks": [], "interfaces": [],
                 "cpu": {"cpus": 4, "utilization_ratio": 0.2, "iowait_ratio": 0.01}}
    })
}

/// A report whose load is `weight` times a unit load on every metric (CPU,
/// one disk `sdb`, one link `eth0`).
pub fn weighted_report(broker: i32, weight: f64) -> brokerwatch_common::Report {
    use brokerwatch_common::{
        CpuReport, DiskReport, HostReport, InterfaceReport, Report, SCHEMA_VERSION,
    };
    Report {
        schema_version: SCHEMA_VERSION,
        broker_id: broker,
        agent_version: "e2e".into(),
        timestamp_ms: 0,
        interval_seconds: 0.2,
        host: HostReport {
            cpu: Some(CpuReport {
                cpus: 8,
                utilization_ratio: 0.05 * weight,
                iowait_ratio: 0.01 * weight,
            }),
            disks: vec![DiskReport {
                device: "sdb".into(),
                utilization_ratio: 0.05 * weight,
                reads_per_second: 10.0 * weight,
                writes_per_second: 20.0 * weight,
                read_bytes_per_second: 1e6 * weight,
                written_bytes_per_second: 2e6 * weight,
                read_await_seconds: 0.001,
                write_await_seconds: 0.002,
                queue_length: 0.1,
            }],
            interfaces: vec![InterfaceReport {
                interface: "eth0".into(),
                receive_bytes_per_second: 1e7 * weight,
                transmit_bytes_per_second: 2e7 * weight,
                receive_drops_per_second: 0.0,
                transmit_drops_per_second: 0.0,
                receive_errors_per_second: 0.0,
                transmit_errors_per_second: 0.0,
                speed_bytes_per_second: Some(1.25e10),
                receive_utilization_ratio: Some(1e7 * weight / 1.25e10),
                transmit_utilization_ratio: Some(2e7 * weight / 1.25e10),
            }],
            ..HostReport::default()
        },
    }
}

/// Pages of the file at `path` in the page cache now, from the kernel's
/// cachestat(2) (Linux 6.5+; syscall 451 on x86_64 and arm64).
pub fn resident_pages(path: &Path) -> u64 {
    use std::os::fd::AsRawFd;
    #[repr(C)]
    struct Range {
        offset: u64,
        length: u64,
    }
    #[repr(C)]
    #[derive(Default)]
    struct Stat {
        nr_cache: u64,
        nr_dirty: u64,
        nr_writeback: u64,
        nr_evicted: u64,
        nr_recently_evicted: u64,
    }
    let file = std::fs::File::open(path).expect("open");
    // Offset 0, length 0: the whole file.
    let range = Range {
        offset: 0,
        length: 0,
    };
    let mut stat = Stat::default();
    // SAFETY: both pointers are to live, correctly laid out structs.
    let done = unsafe {
        libc::syscall(
            451,
            file.as_raw_fd(),
            &range as *const Range,
            &mut stat as *mut Stat,
            0,
        )
    };
    assert_eq!(done, 0, "cachestat: {}", std::io::Error::last_os_error());
    stat.nr_cache
}

pub mod fuzz;
mod kafka;
mod pki;
pub mod scripted_kafka;

pub use kafka::{commit_as_group, create_topics};
pub use pki::TestPki;
