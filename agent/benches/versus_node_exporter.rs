//! The agent against node_exporter on the same ground, side by side in one
//! run: node_exporter limited to the collectors that cover what the agent's
//! host side reads (cpu, diskstats, netdev, netstat, sockstat, meminfo,
//! filefd, and without its own Go/HTTP metrics), both scraped the same number
//! of times at the same pace, round-robin. The agent collects on its own
//! interval rather than per scrape, so it runs with an interval equal to the
//! scrape period: one collection per scrape, the same work node_exporter does.
//!
//! The agent is measured twice: on the same ground (the host side alone: no
//! broker process search, no eBPF page-cache probe), which the target is
//! about, and with its defaults (both on), for the figures an operator gets.
//!
//! Each target is scraped over one kept-alive connection, as Prometheus does.
//! Prints whole-process CPU time (utime + stime from /proc/PID/stat, all
//! threads) per scrape and peak RSS (VmHWM). Scrapes and pace can be set with
//! BENCH_SCRAPES (default 600) and BENCH_PERIOD_MS (default 100, the
//! agent's shortest interval).

use std::time::{Duration, Instant};

use brokerwatch_tests::{free_port, get_when_ready, start_agent, system_binary, Daemon};

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// CPU seconds used so far by a process (all threads).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("process stat");
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th fields.
    let after_name = &stat[stat.rfind(')').expect("stat has a command name") + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    ticks as f64 / procfs::ticks_per_second() as f64
}

/// A line of /proc/PID/status in KiB, e.g. VmHWM (peak RSS).
fn status_kib(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("process status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("status line")
}

struct Measured {
    name: &'static str,
    pid: u32,
    url: String,
    cpu_start: f64,
    bytes: usize,
}

fn main() {
    // criterion-style filters passed by `cargo bench` are not used here.
    let scrapes = env_number("BENCH_SCRAPES", 600);
    let period = Duration::from_millis(env_number("BENCH_PERIOD_MS", 100));

    let node_port = free_port();
    let node = Daemon::start(
        &system_binary("prometheus-node-exporter"),
        &[
            &format!("--web.listen-address=127.0.0.1:{node_port}"),
            "--web.disable-exporter-metrics",
            "--collector.disable-defaults",
            "--collector.cpu",
            "--collector.diskstats",
            "--collector.netdev",
            "--collector.netstat",
            "--collector.sockstat",
            "--collector.meminfo",
            "--collector.filefd",
        ],
    );
    let agent_binary = std::path::Path::new(env!("CARGO_BIN_EXE_brokerwatch-agent"));
    let interval = format!("{}ms", period.as_millis());
    // The same ground as node_exporter's collectors: the host side alone.
    let config = tempfile::NamedTempFile::new().expect("config");
    std::fs::write(
        config.path(),
        "[broker]\nenabled = false\n[page_cache]\nebpf = false\n",
    )
    .expect("config");
    let (agent, agent_url) = start_agent(
        agent_binary,
        &[
            "--config",
            config.path().to_str().expect("UTF-8 path"),
            "--broker-id",
            "1",
            "--interval",
            &interval,
        ],
    );
    // And as installed: looking for the broker process, and the ebpf
    // page-cache probe attached (when the bench may load it).
    let (full, full_url) =
        start_agent(agent_binary, &["--broker-id", "2", "--interval", &interval]);
    let node_url = format!("http://127.0.0.1:{node_port}/metrics");

    let mut measured = [
        Measured {
            name: "agent, host side",
            pid: agent.pid(),
            url: agent_url,
            cpu_start: 0.0,
            bytes: 0,
        },
        Measured {
            name: "node_exporter",
            pid: node.pid(),
            url: node_url,
            cpu_start: 0.0,
            bytes: 0,
        },
        Measured {
            name: "agent, defaults",
            pid: full.pid(),
            url: full_url,
            cpu_start: 0.0,
            bytes: 0,
        },
    ];
    // Warm up: start-up allocations and first reads are not per-scrape cost.
    for _ in 0..20 {
        for m in &measured {
            get_when_ready(&m.url, Duration::from_secs(10));
        }
        std::thread::sleep(period);
    }
    for m in &mut measured {
        m.cpu_start = cpu_seconds(m.pid);
    }
    let client = reqwest::blocking::Client::new();
    let started = Instant::now();
    for round in 0..scrapes {
        for m in &mut measured {
            m.bytes = client
                .get(&m.url)
                .send()
                .and_then(|r| r.error_for_status())
                .and_then(|r| r.text())
                .unwrap_or_else(|e| panic!("scrape {}: {e}", m.url))
                .len();
        }
        let next = started + period * (round as u32 + 1);
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    let elapsed = started.elapsed().as_secs_f64();

    println!(
        "versus_node_exporter: {scrapes} scrapes each, one every {} ms, {elapsed:.1} s",
        period.as_millis()
    );
    println!(
        "{:<18} {:>14} {:>16} {:>13} {:>12} {:>12}",
        "process", "cpu total s", "cpu per scrape", "peak RSS MiB", "RSS MiB", "scrape bytes"
    );
    let mut per_scrape = Vec::new();
    for m in &measured {
        let cpu = cpu_seconds(m.pid) - m.cpu_start;
        per_scrape.push(cpu / scrapes as f64);
        println!(
            "{:<18} {:>14.2} {:>13.3} ms {:>13.1} {:>12.1} {:>12}",
            m.name,
            cpu,
            cpu / scrapes as f64 * 1000.0,
            status_kib(m.pid, "VmHWM") as f64 / 1024.0,
            status_kib(m.pid, "VmRSS") as f64 / 1024.0,
            m.bytes
        );
    }
    println!(
        "agent (host side) CPU per scrape / node_exporter's: {:.3} (target at most 0.25); agent peak RSS target under 10 MiB",
        per_scrape[0] / per_scrape[1]
    );
}
