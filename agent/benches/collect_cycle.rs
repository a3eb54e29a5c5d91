//! One full collection cycle of the agent: read and parse every host source,
//! compute the interval report, build the metric families, record them, and
//! encode the exposition a scrape would get.
//!
//! `live host` reads this machine's /proc and /sys; `fixture broker host`
//! reads a 16-CPU, 6-disk, 5-interface broker host from the test fixtures,
//! so that its figure does not depend on the machine's devices. `live host
//! and broker side` adds the broker process (this bench's own pid, through a
//! pid file), a log dir of 200 partitions (walked every minute, so mostly
//! cached), fetching and parsing a JMX exporter scrape over loopback HTTP as
//! each cycle does, reading the ebpf page-cache counters (when the probe
//! can be attached: root or CAP_BPF + CAP_PERFMON), and following a broker
//! log that a thread appends 20 lines to (2 of them errors) every
//! millisecond, about each cycle. Every case follows the kernel log
//! (/dev/kmsg, where the bench may read it).

use std::path::Path;
use std::time::Instant;

use brokerwatch_agent::config::{from_toml, Flags};
use brokerwatch_agent::host::Host;
use brokerwatch_agent::metrics::AgentMetrics;
use criterion::{criterion_group, criterion_main, Criterion};

#[path = "../tests/fixtures/host.rs"]
mod fixture_host;

#[path = "../tests/fixtures/endpoint.rs"]
mod endpoint;
use endpoint::serve;

fn host(config: &str) -> Host {
    Host::from_config(
        &from_toml(
            &format!("broker_id = 1\n{config}"),
            "bench",
            &Flags::default(),
        )
        .expect("bench config"),
    )
}

fn cycle(c: &mut Criterion, name: &str, mut host: Host) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let metrics = AgentMetrics::new(1, &host.names());
    host.collect(Instant::now());
    c.bench_function(name, |b| {
        b.iter(|| {
            runtime.block_on(host.fetch());
            let cycle = host.collect(Instant::now());
            let failed: Vec<&str> = cycle.errors.iter().map(|(s, _)| *s).collect();
            metrics.record_cycle(&host, 0.001, &failed);
            metrics.exposition().len()
        })
    });
}

const HOST_SIDE: &str = "[broker]\nenabled = false\n[page_cache]\nebpf = false\n";

fn benches(c: &mut Criterion) {
    cycle(c, "collection cycle + encode, live host", host(HOST_SIDE));
    let dir = tempfile::tempdir().expect("temp dir");
    let (proc, sys) = fixture_host::broker_host(dir.path());
    cycle(
        c,
        "collection cycle + encode, fixture broker host",
        host(&format!(
            "proc_path = {:?}\nsys_path = {:?}\n{HOST_SIDE}",
            proc.display().to_string(),
            sys.display().to_string()
        )),
    );

    let broker = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).expect("temp dir");
    let log_dir = broker.path().join("kafka-logs");
    for partition in 0..200 {
        let dir = log_dir.join(format!("orders-{partition}"));
        std::fs::create_dir_all(&dir).expect("partition dir");
        std::fs::write(dir.join("00000000000000000000.log"), b"x").expect("segment");
    }
    let pid_file = broker.path().join("kafka.pid");
    std::fs::write(&pid_file, std::process::id().to_string()).expect("pid file");
    let scrape = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/jmx_exporter_kafka2.txt"),
    )
    .expect("fixture");
    let server_log = broker.path().join("server.log");
    std::fs::write(&server_log, "").expect("server.log");
    let host = host(&format!(
        "[log_dirs]\ndirs = [{:?}]\n[broker]\npid_file = {:?}\njmx_exporter_url = {:?}\nlog_file = {:?}\n",
        log_dir.display().to_string(),
        pid_file.display().to_string(),
        serve(scrape),
        server_log.display().to_string()
    ));
    // A busy broker's log: 20 lines a millisecond, from a thread of its own.
    let writing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let writer = {
        let writing = writing.clone();
        let server_log = server_log.clone();
        std::thread::spawn(move || {
            use std::io::Write as _;
            let mut file = std::fs::OpenOptions::new()
                .append(true)
                .open(&server_log)
                .expect("log");
            while writing.load(std::sync::atomic::Ordering::Relaxed) {
                for i in 0..20 {
                    let level = if i % 10 == 0 { "ERROR" } else { "INFO" };
                    let _ = writeln!(file, "[2026-12-01 10:00:00,000] {level} [ReplicaFetcher replicaId=1, leaderId=3, fetcherId=0] line {i} (kafka.server.ReplicaFetcherThread)");
                }
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        })
    };
    eprintln!(
        "the ebpf page-cache probe is in this figure where it could be attached (the log says)"
    );
    cycle(
        c,
        "collection cycle + encode, live host and broker side",
        host,
    );
    writing.store(false, std::sync::atomic::Ordering::Relaxed);
    let _ = writer.join();
}

criterion_group!(agent, benches);
criterion_main!(agent);
