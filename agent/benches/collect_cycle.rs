//! One full collection cycle of the agent: read and parse every host source,
//! compute the interval report, build the metric families, record them, and
//! encode the exposition a scrape would get.
//!
//! `live host` reads this machine's /proc and /sys; `fixture broker host`
//! reads a 16-CPU, 6-disk, 5-interface broker host from the test fixtures,
//! so that its figure does not depend on the machine's devices.

use brokerwatch_agent::host::HostSources;
use brokerwatch_agent::metrics::AgentMetrics;
use brokerwatch_agent::sources::{disk, HostPaths, NameFilter};
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
    let (proc, sys) = fixture_host::broker_host(dir.path());
    cycle(
        c,
        "collection cycle + encode, fixture broker host",
        HostPaths { proc, sys },
    );
}

criterion_group!(agent, benches);
criterion_main!(agent);
