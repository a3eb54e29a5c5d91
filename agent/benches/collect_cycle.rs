//! One full collection cycle of the agent: read and parse every host source,
//! compute the interval report, build the metric families, record them, and
//! encode the exposition a scrape would get.
//!
//! `live host` reads this machine's /proc and /sys; `fixture broker host`
//! reads a 16-CPU, 6-disk, 5-interface broker host from the test fixtures,
//! so that its figure does not depend on the machine's devices.

use std::path::Path;

use brokerwatch_agent::host::HostSources;
use brokerwatch_agent::metrics::AgentMetrics;
use brokerwatch_agent::sources::{disk, HostPaths, NameFilter};
use criterion::{criterion_group, criterion_main, Criterion};

fn sources(paths: HostPaths) -> HostSources {
    HostSources::new(
        paths,
        NameFilter::new(None, Some(disk::DEFAULT_EXCLUDE), "disk").expect("default filter"),
        NameFilter::default(),
    )
}

fn fixture_host(dir: &Path) -> HostPaths {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for (from, to) in [
        ("stat_broker", "proc/stat"),
        ("diskstats_5.5", "proc/diskstats"),
        ("net_dev_broker", "proc/net/dev"),
        ("net_snmp_broker", "proc/net/snmp"),
        ("net_sockstat_broker", "proc/net/sockstat"),
        ("meminfo_broker", "proc/meminfo"),
        ("file-nr", "proc/sys/fs/file-nr"),
    ] {
        let target = dir.join(to);
        std::fs::create_dir_all(target.parent().expect("has a parent")).expect("fixture dir");
        std::fs::copy(fixtures.join(from), target).expect("copy fixture");
    }
    HostPaths {
        proc: dir.join("proc"),
        sys: dir.join("sys"),
    }
}

fn cycle(c: &mut Criterion, name: &str, paths: HostPaths) {
    let mut host = sources(paths);
    let metrics = AgentMetrics::new(1);
    host.collect();
    c.bench_function(name, |b| {
        b.iter(|| {
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
        HostPaths::default(),
    );
    let dir = tempfile::tempdir().expect("temp dir");
    cycle(
        c,
        "collection cycle + encode, fixture broker host",
        fixture_host(dir.path()),
    );
}

criterion_group!(agent, benches);
criterion_main!(agent);
