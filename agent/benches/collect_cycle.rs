//! One full collection cycle of the agent: read and parse every host source,
//! compute the interval report, build the metric families, record them, and
//! encode the exposition a scrape would get.
//!
//! `live host` reads this machine's /proc and /sys; `fixture broker host`
//! reads a 16-CPU, 6-disk, 5-interface broker host from the test fixtures,
//! so that its figure does not depend on the machine's devices. `live host
//! and broker side` adds the broker process (this bench's own pid, through a
//! pid file), a log dir of 200 partitions (walked every minute, so mostly
//! cached), parsing a JMX exporter scrape as each cycle does, and reading
//! the ebpf page-cache counters (when the probe can be attached: root or
//! CAP_BPF + CAP_PERFMON; the bench says which).

use brokerwatch_agent::config::PageCacheScope;
use brokerwatch_agent::host::HostSources;
use brokerwatch_agent::metrics::AgentMetrics;
use brokerwatch_agent::sources::pagecache_ebpf::PageCacheProbe;
use std::path::Path;

use brokerwatch_agent::sources::broker_metrics::parse_jmx_exporter;
use brokerwatch_agent::sources::logdirs::LogDirSource;
use brokerwatch_agent::sources::process::BrokerFinder;
use brokerwatch_agent::sources::{disk, HostPaths, NameFilter, SourceError};
use criterion::{criterion_group, criterion_main, Criterion};

#[path = "../tests/fixtures/host.rs"]
mod fixture_host;

fn sources(paths: HostPaths) -> HostSources {
    HostSources::new(
        paths,
        NameFilter::new(None, Some(disk::DEFAULT_EXCLUDE), "disk").expect("default filter"),
        NameFilter::default(),
    )
}

fn cycle(c: &mut Criterion, name: &str, mut host: HostSources, jmx_scrape: Option<&str>) {
    let metrics = AgentMetrics::new(1);
    host.collect();
    c.bench_function(name, |b| {
        b.iter(|| {
            if let Some(text) = jmx_scrape {
                host.set_broker_metrics(
                    parse_jmx_exporter(text).map_err(|e| SourceError::parse(Path::new("jmx"), e)),
                );
            }
            let cycle = host.collect();
            metrics.record_cycle(cycle.reading, &cycle.report, 0.001, &[]);
            metrics.exposition().len()
        })
    });
}

fn benches(c: &mut Criterion) {
    cycle(
        c,
        "collection cycle + encode, live host",
        sources(HostPaths::default()),
        None,
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let (proc, sys) = fixture_host::broker_host(dir.path());
    cycle(
        c,
        "collection cycle + encode, fixture broker host",
        sources(HostPaths { proc, sys }),
        None,
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
    let host = sources(HostPaths::default())
        .with_log_dirs(LogDirSource {
            server_properties: None,
            log_dirs: vec![log_dir],
        })
        .with_broker(BrokerFinder::new(Some(pid_file), None));
    let probe = PageCacheProbe::attach();
    match &probe {
        Ok(_) => eprintln!("ebpf page-cache probe attached: its counters are read each cycle"),
        Err(e) => eprintln!("ebpf page-cache probe not in this figure: {e}"),
    }
    let host = host.with_page_cache_probe(probe, PageCacheScope::Broker);
    let scrape = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/jmx_exporter_kafka2.txt"),
    )
    .expect("fixture");
    cycle(
        c,
        "collection cycle + encode, live host and broker side",
        host,
        Some(&scrape),
    );
}

criterion_group!(agent, benches);
criterion_main!(agent);
