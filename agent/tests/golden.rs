//! The agent's whole exposition on the fixture broker host over one fixed
//! 10-second interval is byte-for-byte the golden file
//! (`tests/golden/exposition.txt`), so that a change to how sources are
//! read, combined or exposed cannot change what Prometheus sees unnoticed.
//! `BLESS=1` rewrites the file from the code as it is.

use std::path::Path;
use std::time::{Duration, Instant};

use brokerwatch_agent::config::{from_toml, Flags};
use brokerwatch_agent::host::Host;
use brokerwatch_agent::metrics::AgentMetrics;

#[path = "fixtures/host.rs"]
mod fixture_host;

#[path = "fixtures/endpoint.rs"]
mod endpoint;
use endpoint::serve;

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

#[tokio::test(flavor = "current_thread")]
async fn exposition_matches_the_golden_file() {
    let dir = tempfile::tempdir().unwrap();
    let (proc, sys) = fixture_host::broker_host(dir.path());
    let jmx = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/jmx_exporter_kafka2.txt"),
    )
    .unwrap();
    let config = from_toml(
        &format!(
            "broker_id = 7\nproc_path = {:?}\nsys_path = {:?}\n[broker]\nenabled = false\njmx_exporter_url = {:?}\n[page_cache]\nebpf = false\n[kernel_log]\nenabled = false\n",
            proc.display().to_string(),
            sys.display().to_string(),
            serve(jmx)
        ),
        "golden",
        &Flags::default(),
    )
    .unwrap();
    let mut host = Host::from_config(&config);
    let start = Instant::now();
    host.fetch().await;
    let first = host.collect(start);
    assert!(first.errors.is_empty(), "{:?}", first.errors);
    advance(dir.path(), 1000);
    host.fetch().await;
    let second = host.collect(start + Duration::from_secs(10));
    assert!(second.errors.is_empty(), "{:?}", second.errors);
    let metrics = AgentMetrics::new(7, &host.names());
    // The push series exist per collector configured.
    let _push = metrics.push_counters("http://collector.example:9798");
    metrics.record_cycle(&host, 0.0042, &[]);
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
