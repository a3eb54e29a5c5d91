//! The agent's whole exposition on the fixture broker host over one fixed
//! 10-second interval is byte-for-byte the golden file
//! (`tests/golden/exposition.txt`), so that a change to how sources are
//! read, combined or exposed cannot change what Prometheus sees unnoticed.
//! `BLESS=1` rewrites the file from the code as it is.

use std::path::Path;
use std::time::Duration;

use brokerwatch_agent::host::{interval, HostSources};
use brokerwatch_agent::metrics::AgentMetrics;
use brokerwatch_agent::sources::broker_metrics::parse_jmx_exporter;
use brokerwatch_agent::sources::{disk, HostPaths, NameFilter};

#[path = "fixtures/host.rs"]
mod fixture_host;

/// The host ten seconds on: every counter-like number of the kernel files
/// a cycle reads grows by the same amount (tokens that are whole numbers).
fn advance(dir: &Path, by: u64) {
    for file in [
        "proc/stat",
        "proc/diskstats",
        "proc/net/dev",
        "proc/net/snmp",
        "proc/net/sockstat",
        "proc/meminfo",
        "proc/sys/fs/file-nr",
    ] {
        let path = dir.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        let advanced: Vec<String> = text
            .lines()
            .map(|line| {
                line.split(' ')
                    .map(|token| match token.parse::<u64>() {
                        Ok(n) => (n + by).to_string(),
                        Err(_) => token.to_owned(),
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        std::fs::write(&path, advanced.join("\n") + "\n").unwrap();
    }
}

#[test]
fn exposition_matches_the_golden_file() {
    let dir = tempfile::tempdir().unwrap();
    let (proc, sys) = fixture_host::broker_host(dir.path());
    let jmx = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/jmx_exporter_kafka2.txt"),
    )
    .unwrap();
    let mut host = HostSources::new(
        HostPaths { proc, sys },
        NameFilter::new(None, Some(disk::DEFAULT_EXCLUDE), "disk").unwrap(),
        NameFilter::default(),
    );
    host.set_broker_metrics(Ok(parse_jmx_exporter(&jmx).unwrap()));
    let first = host.collect().reading.clone();
    advance(dir.path(), 1000);
    host.set_broker_metrics(Ok(parse_jmx_exporter(&jmx).unwrap()));
    let mut second = host.collect().reading.clone();
    second.at = first.at + Duration::from_secs(10);
    let report = interval(&first, &second);
    let metrics = AgentMetrics::new(7);
    metrics.record_cycle(&second, &report, 0.0042, &[]);
    let actual = String::from_utf8(metrics.exposition().to_vec()).unwrap();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/exposition.txt");
    if std::env::var_os("BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        actual, expected,
        "the exposition differs from the golden file"
    );
}
