//! Property tests: every parser of what the collector is handed (an agent's
//! report, its config, the `load-report` table and flags, its own state
//! file) given real inputs mutated at random, and arbitrary text: it returns
//! a value or a one-line error, and never panics; a table that parses also
//! goes through the load model and both output formats. The case counts are
//! printed (`--nocapture`).

use std::path::Path;

use brokerwatch_collector::config::{from_toml_text, Flags};
use brokerwatch_collector::load_report;
use brokerwatch_collector::persist;
use brokerwatch_common::codec::decode;
use brokerwatch_tests::fuzz;

const CASES: u32 = 2000;

fn read(path: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn one_line(error: &str) {
    assert!(!error.contains('\n'), "a multi-line error: {error:?}");
}

/// A report as agents send it: the fixture broker host's, as JSON.
fn report_seed() -> String {
    serde_json::json!({
        "schema_version": brokerwatch_common::SCHEMA_VERSION,
        "broker_id": 3,
        "agent_version": "0.1.0",
        "timestamp_ms": 1_795_237_650_000u64,
        "interval_seconds": 10.0,
        "host": {
            "cpu": {"cpus": 16, "utilization_ratio": 0.41, "iowait_ratio": 0.03},
            "disks": [{"device": "sdb", "utilization_ratio": 0.62, "reads_per_second": 120.0,
                "writes_per_second": 800.0, "read_bytes_per_second": 5.2e7,
                "written_bytes_per_second": 2.1e8, "read_await_seconds": 0.004,
                "write_await_seconds": 0.002, "queue_length": 1.7}],
            "interfaces": [{"interface": "ens1f0", "receive_bytes_per_second": 3.1e8,
                "transmit_bytes_per_second": 6.0e8, "receive_drops_per_second": 0.0,
                "transmit_drops_per_second": 0.0, "receive_errors_per_second": 0.0,
                "transmit_errors_per_second": 0.0, "speed_bytes_per_second": 3.125e9,
                "receive_utilization_ratio": 0.099, "transmit_utilization_ratio": 0.192}],
            "page_cache_hit_ratio_ebpf": 0.97
        }
    })
    .to_string()
}

#[test]
fn reports_never_panic_and_refusals_are_one_line() {
    const MAX_DECODED_BYTES: usize = 1 << 20;
    fuzz::run("agent report (JSON)", &[report_seed()], CASES, |t| {
        if let Err(rejection) = decode(t.as_bytes(), None, MAX_DECODED_BYTES) {
            one_line(&rejection.message);
            assert!((400..500).contains(&rejection.status));
        }
    });
    // Bodies that claim gzip but are not, or are cut short.
    fuzz::run("agent report (gzip)", &[report_seed()], CASES / 4, |t| {
        use std::io::Write as _;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(t.as_bytes()).unwrap();
        let mut body = gz.finish().unwrap();
        let cut = t.len() % (body.len() + 1);
        body.truncate(cut.max(1));
        if let Err(rejection) = decode(&body, Some("gzip"), MAX_DECODED_BYTES) {
            one_line(&rejection.message);
        }
    });
}

#[test]
fn the_config_parser_never_panics() {
    let seeds = [
        read("brokerwatch-collector.example.toml"),
        "cluster = \"prod\"\n[ingest]\ntokens = [\"t\"]\n[kafka.properties]\n\"bootstrap.servers\" = \"k:9092\"\n".to_owned(),
    ];
    let flags = Flags::default();
    fuzz::run("collector config", &seeds, CASES, |t| {
        if let Err(e) = from_toml_text(t, "config fuzz.toml", &flags) {
            one_line(&e);
        }
    });
}

#[test]
fn load_report_inputs_never_panic() {
    let csv = read("tests/fixtures/worked_example.csv");
    let json = r#"[{"broker": 1, "group": "a", "network_in_bytes": 1.5e8, "disk_util": 0.4},
        {"broker": 2, "group": "a", "network_in_bytes": 1.1e8, "disk_util": 0.35}]"#
        .to_owned();
    let weights = load_report::parse_weights(None).unwrap();
    fuzz::run(
        "load-report table",
        &[csv, json],
        CASES,
        |t| match load_report::parse_table(t) {
            Ok(table) => {
                let groups = load_report::compute_table(&table, &weights, 0.1);
                load_report::to_table(&groups, 0.1);
                load_report::to_json(&groups);
            }
            Err(e) => one_line(&e),
        },
    );
    fuzz::run(
        "load-report --weights",
        &["network_in_bytes=2,disk_util=0.5".to_owned()],
        CASES,
        |t| {
            if let Err(e) = load_report::parse_weights(Some(t)) {
                one_line(&e);
            }
        },
    );
    fuzz::run("load-report --deviation", &["0.1".to_owned()], CASES, |t| {
        match load_report::parse_deviation(t) {
            Ok(r) => assert!(r.is_finite() && r > 0.0, "{r}"),
            Err(e) => one_line(&e),
        }
    });
}

#[test]
fn the_state_file_never_panics_on_load() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let seed = serde_json::to_string(&persist::Persisted::default()).unwrap();
    fuzz::run("state.json", &[seed], CASES / 2, |t| {
        std::fs::write(&path, t).unwrap();
        if let Err(e) = persist::load(&path) {
            one_line(&e);
        }
    });
}
