//! The agent's host counters against node_exporter's, read from the same
//! kernel over the same window while this test drives real disk and
//! loopback traffic.
//!
//! Tolerance, and why: node_exporter reads the kernel when it is scraped, the
//! agent when its interval ticks, so the two never read at the same instant.
//! Each agent scrape is therefore bracketed by two node_exporter scrapes, with
//! at least five agent intervals between the first of them and the agent
//! scrape, so the agent's reading was taken between the two. For a counter
//! that only grows, the agent's value must then lie between node_exporter's
//! two values, and the agent's increase between node_exporter's smallest and
//! largest possible increase. That bracket is the whole tolerance for bytes
//! and io time. CPU iowait gets one more allowance: the agent reads the
//! kernel's all-CPU `cpu` line, node_exporter sums the per-CPU lines, and the
//! kernel rounds each line to whole ticks separately, so the two sums may
//! differ by up to one tick (10 ms) per CPU at each end of the window.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;

use brokerwatch_tests::{free_port, start_agent, system_binary, workspace_binary, Daemon, Scrape};

const AGENT_INTERVAL: Duration = Duration::from_millis(200);
const DISK_BYTES: usize = 64 << 20;
const LOOPBACK_BYTES: usize = 32 << 20;
const CHUNK: usize = 1 << 20;
const ALIGN: usize = 4096;

struct Bracket {
    node_before: Scrape,
    agent: Scrape,
    node_after: Scrape,
}

fn bracket(node_url: &str, agent_url: &str) -> Bracket {
    let node_before = Scrape::fetch(node_url);
    std::thread::sleep(AGENT_INTERVAL * 5);
    let agent = Scrape::fetch(agent_url);
    let node_after = Scrape::fetch(node_url);
    Bracket {
        node_before,
        agent,
        node_after,
    }
}

/// One counter compared across the two brackets.
struct Comparison<'a> {
    what: &'a str,
    agent: (&'a str, &'a [(&'a str, &'a str)]),
    node: (&'a str, &'a [(&'a str, &'a str)]),
    /// Allowance beyond the bracket, in the counter's unit (see the module doc).
    slack: f64,
}

impl Comparison<'_> {
    /// Asserts the agent's increase lies within node_exporter's bracket and
    /// returns (agent increase, node_exporter's increase over the outer window).
    fn check(&self, start: &Bracket, end: &Bracket) -> (f64, f64) {
        let agent = |s: &Scrape| {
            s.sum(self.agent.0, self.agent.1)
                .unwrap_or_else(|| panic!("agent has no {} {:?}", self.agent.0, self.agent.1))
        };
        let node = |s: &Scrape| {
            s.sum(self.node.0, self.node.1)
                .unwrap_or_else(|| panic!("node_exporter has no {} {:?}", self.node.0, self.node.1))
        };
        let agent_increase = agent(&end.agent) - agent(&start.agent);
        let node_least = node(&end.node_before) - node(&start.node_after);
        let node_most = node(&end.node_after) - node(&start.node_before);
        // Float rounding of the unit conversions (ms to s, sectors to bytes).
        let rounding = 1e-9 * node_most.abs().max(1.0);
        let slack = self.slack + rounding;
        eprintln!(
            "{:<28} agent +{agent_increase:.3}  node_exporter +{node_least:.3}..+{node_most:.3}  slack {slack:.3}",
            self.what
        );
        assert!(
            node_least - slack <= agent_increase && agent_increase <= node_most + slack,
            "{}: the agent's increase {agent_increase} is outside node_exporter's {node_least}..{node_most} (slack {slack})",
            self.what
        );
        (agent_increase, node_most)
    }
}

/// Writes `DISK_BYTES` with O_DIRECT and fsync, then reads it back with
/// O_DIRECT, so every byte crosses the block device rather than the page cache.
fn disk_workload(dir: &Path) {
    let mut buffer = vec![0u8; CHUNK + ALIGN];
    let offset = buffer.as_ptr().align_offset(ALIGN);
    let chunk = &mut buffer[offset..offset + CHUNK];
    for (i, byte) in chunk.iter_mut().enumerate() {
        *byte = (i % 251) as u8;
    }
    let path = dir.join("direct-io.bin");
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_DIRECT)
        .open(&path)
        .unwrap_or_else(|e| panic!("open {} with O_DIRECT: {e}", path.display()));
    for _ in 0..DISK_BYTES / CHUNK {
        file.write_all(chunk).expect("O_DIRECT write");
    }
    file.sync_all().expect("fsync");
    drop(file);
    let mut file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(&path)
        .expect("reopen with O_DIRECT");
    for _ in 0..DISK_BYTES / CHUNK {
        file.read_exact(chunk).expect("O_DIRECT read");
    }
    assert_eq!(chunk[1000], (1000 % 251) as u8);
}

fn loopback_workload() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let address = listener.local_addr().expect("local address");
    let sink = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        let mut received = Vec::new();
        stream.read_to_end(&mut received).expect("read");
        received.len()
    });
    let mut stream = TcpStream::connect(address).expect("connect");
    let block = vec![7u8; CHUNK];
    for _ in 0..LOOPBACK_BYTES / CHUNK {
        stream.write_all(&block).expect("send");
    }
    drop(stream);
    assert_eq!(sink.join().expect("sink thread"), LOOPBACK_BYTES);
}

#[test]
fn agent_counters_move_like_node_exporters_under_disk_and_network_load() {
    let node_port = free_port();
    let node_listen = format!("--web.listen-address=127.0.0.1:{node_port}");
    let _node = Daemon::start(
        &system_binary("prometheus-node-exporter"),
        &[
            &node_listen,
            "--collector.disable-defaults",
            "--collector.cpu",
            "--collector.diskstats",
            "--collector.netdev",
            // Debian's default excludes lo; this test compares lo.
            "--collector.netdev.device-exclude=^$",
        ],
    );
    let interval = format!("{}ms", AGENT_INTERVAL.as_millis());
    let (agent, agent_url) = start_agent(
        &workspace_binary("brokerwatch-agent"),
        &["--broker-id", "0", "--interval", &interval],
    );
    let node_url = format!("http://127.0.0.1:{node_port}/metrics");
    brokerwatch_tests::get_when_ready(&node_url, Duration::from_secs(10));

    let start = bracket(&node_url, &agent_url);
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir on a real disk");
    disk_workload(dir.path());
    loopback_workload();
    let end = bracket(&node_url, &agent_url);

    // The disk the workload went to: the one node_exporter saw write the most.
    let written = |s: &Scrape| s.by_label("node_disk_written_bytes_total", "device");
    let (before, after) = (written(&start.node_before), written(&end.node_after));
    let device = after
        .iter()
        .map(|(d, v)| (d.clone(), v - before.get(d).copied().unwrap_or(*v)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(d, _)| d)
        .expect("node_exporter reports disks");
    let device_label = [("device", device.as_str())];
    let cpus = end
        .agent
        .sum("brokerwatch_cpu_count", &[])
        .expect("agent reports its CPUs");

    let comparisons = [
        Comparison {
            what: "disk written bytes",
            agent: ("brokerwatch_disk_written_bytes_total", &device_label),
            node: ("node_disk_written_bytes_total", &device_label),
            slack: 0.0,
        },
        Comparison {
            what: "disk read bytes",
            agent: ("brokerwatch_disk_read_bytes_total", &device_label),
            node: ("node_disk_read_bytes_total", &device_label),
            slack: 0.0,
        },
        Comparison {
            what: "disk io time seconds",
            agent: ("brokerwatch_disk_io_time_seconds_total", &device_label),
            node: ("node_disk_io_time_seconds_total", &device_label),
            slack: 0.0,
        },
        Comparison {
            what: "cpu iowait seconds",
            agent: ("brokerwatch_cpu_seconds_total", &[("mode", "iowait")]),
            node: ("node_cpu_seconds_total", &[("mode", "iowait")]),
            slack: 2.0 * cpus * 0.01,
        },
        Comparison {
            what: "lo receive bytes",
            agent: (
                "brokerwatch_network_receive_bytes_total",
                &[("interface", "lo")],
            ),
            node: ("node_network_receive_bytes_total", &[("device", "lo")]),
            slack: 0.0,
        },
    ];
    let increases: Vec<(f64, f64)> = comparisons.iter().map(|c| c.check(&start, &end)).collect();

    // The window really held the workload, so the comparison compared something.
    assert!(
        increases[0].0 >= DISK_BYTES as f64,
        "{device}: wrote {} bytes",
        increases[0].0
    );
    assert!(
        increases[1].0 >= DISK_BYTES as f64,
        "{device}: read {} bytes",
        increases[1].0
    );
    assert!(increases[2].0 > 0.0, "{device}: no io time");
    assert!(
        increases[4].0 >= LOOPBACK_BYTES as f64,
        "lo: received {} bytes",
        increases[4].0
    );
    eprintln!("device {device}, {cpus} CPUs; agent log:\n{}", agent.log());
}
