//! Property tests: every parser of what the agent reads (the /proc and /sys
//! files, the broker's server.properties, /proc/self/mountinfo, the JMX
//! exporter's text, Jolokia's JSON, the config file) given its real fixtures
//! mutated at random, and arbitrary text: it returns a value or a one-line
//! error, and never panics. The case counts are printed (`--nocapture`).

use std::path::Path;

use brokerwatch_agent::config::{from_toml, Flags};
use brokerwatch_agent::sources::{
    broker_log, broker_metrics, cpu, disk, filefd, kmsg, logdirs, memory, netdev, process, tcp,
    NameFilter,
};
use brokerwatch_tests::fuzz;

const CASES: u32 = 2000;

fn fixtures(names: &[&str]) -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    names
        .iter()
        .map(|n| std::fs::read_to_string(dir.join(n)).unwrap_or_else(|e| panic!("{n}: {e}")))
        .collect()
}

/// A parser's error is one line, so that the log line it goes into stays one.
fn one_line<T>(result: Result<T, String>) {
    if let Err(e) = result {
        assert!(!e.contains('\n'), "a multi-line error: {e:?}");
    }
}

#[test]
fn proc_and_sys_parsers_never_panic() {
    let filter = NameFilter::default();
    let mut total = 0;
    total += fuzz::run(
        "/proc/stat",
        &fixtures(&["stat", "stat_broker"]),
        CASES,
        |t| {
            one_line(cpu::parse_stat(t, 100));
        },
    );
    total += fuzz::run(
        "/proc/diskstats",
        &fixtures(&[
            "diskstats_old",
            "diskstats_4.18",
            "diskstats_5.5",
            "diskstats_garbled",
        ]),
        CASES,
        |t| {
            let parsed = disk::parse_diskstats(t, &filter);
            for garbled in parsed.garbled {
                assert!(!garbled.contains('\n'), "{garbled:?}");
            }
        },
    );
    total += fuzz::run(
        "/proc/net/dev",
        &fixtures(&["net_dev", "net_dev_broker"]),
        CASES,
        |t| {
            one_line(netdev::parse_net_dev(t, &filter));
        },
    );
    total += fuzz::run(
        "/sys/class/net/*/speed",
        &["25000\n".to_owned(), "-1\n".to_owned()],
        CASES,
        |t| {
            if let Some(speed) = netdev::parse_speed(t) {
                assert!(speed.is_finite() && speed > 0.0, "{speed}");
            }
        },
    );
    total += fuzz::run(
        "/proc/net/snmp",
        &fixtures(&["net_snmp", "net_snmp_broker"]),
        CASES,
        |t| {
            one_line(tcp::parse_snmp(t));
        },
    );
    total += fuzz::run(
        "/proc/net/sockstat",
        &fixtures(&["net_sockstat", "net_sockstat_broker"]),
        CASES,
        |t| one_line(tcp::parse_sockstat(t)),
    );
    total += fuzz::run(
        "/proc/meminfo",
        &fixtures(&["meminfo", "meminfo_broker"]),
        CASES,
        |t| {
            one_line(memory::parse_meminfo(t));
        },
    );
    total += fuzz::run(
        "/proc/sys/fs/file-nr",
        &fixtures(&["file-nr"]),
        CASES,
        |t| {
            one_line(filefd::parse_file_nr(t));
        },
    );
    assert_eq!(total, 8 * CASES);
}

#[test]
fn process_files_never_panic() {
    // The broker's /proc/PID/stat, status and io, garbled, under a fake /proc.
    let proc = tempfile::tempdir().unwrap();
    let pid_dir = proc.path().join("4242");
    std::fs::create_dir_all(pid_dir.join("fd")).unwrap();
    let me = Path::new("/proc/self");
    let seeds: Vec<String> = ["stat", "status", "io"]
        .iter()
        .map(|f| std::fs::read_to_string(me.join(f)).unwrap_or_default())
        .collect();
    for (file, seed) in ["stat", "status", "io"].iter().zip(&seeds) {
        for (other, other_seed) in ["stat", "status", "io"].iter().zip(&seeds) {
            std::fs::write(pid_dir.join(other), other_seed).unwrap();
        }
        fuzz::run(
            &format!("/proc/PID/{file}"),
            std::slice::from_ref(seed),
            CASES / 4,
            |t| {
                std::fs::write(pid_dir.join(file), t).unwrap();
                if let Err(e) = process::read_process(proc.path(), 4242, 100, 4096) {
                    assert!(!e.to_string().contains('\n'), "{e}");
                }
            },
        );
    }
}

#[test]
fn log_dir_sources_never_panic() {
    let properties = vec![
        "broker.id=1\nlog.dirs=/data/kafka-1,/data/kafka-2\nnum.partitions=12\n".to_owned(),
        "log.dir = /var/lib/kafka\\\n  \n# log.dirs=/old\n".to_owned(),
    ];
    fuzz::run("server.properties", &properties, CASES, |t| {
        for dir in logdirs::parse_log_dirs(t) {
            assert!(!dir.as_os_str().is_empty());
        }
    });
    let mountinfo = vec![std::fs::read_to_string("/proc/self/mountinfo").unwrap()];
    fuzz::run("/proc/self/mountinfo", &mountinfo, CASES, |t| {
        logdirs::parse_mountinfo(t);
    });
}

#[test]
fn broker_metrics_parsers_never_panic() {
    fuzz::run(
        "JMX exporter text",
        &fixtures(&["jmx_exporter_kafka2.txt", "jmx_exporter_kraft3.txt"]),
        CASES,
        |t| one_line(broker_metrics::parse_jmx_exporter(t)),
    );
    fuzz::run(
        "Jolokia JSON",
        &fixtures(&["jolokia_kafka3.json"]),
        CASES,
        |t| {
            one_line(broker_metrics::parse_jolokia(t));
        },
    );
}

#[test]
fn log_followers_never_panic() {
    let kernel: Vec<String> = fixtures(&["kmsg_events"])[0]
        .lines()
        .filter_map(|l| l.split_once(" | "))
        .enumerate()
        .map(|(i, (_, message))| format!("3,{i},{i}000,-;{message}\n SUBSYSTEM=block\n"))
        .collect();
    fuzz::run("/dev/kmsg records", &[kernel.concat()], CASES, |t| {
        let mut counts = kmsg::Counts::default();
        counts.add_records(t);
    });
    fuzz::run("server.log", &fixtures(&["server.log"]), CASES, |t| {
        let mut counts = broker_log::Counts::default();
        counts.add_lines(t);
        let args: Vec<String> = t.split('\n').map(str::to_owned).collect();
        broker_log::log_file_from_command_line(&args, |_| Some(t.to_owned()));
    });
}

#[test]
fn the_config_parser_never_panics() {
    let example = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("brokerwatch-agent.example.toml"),
    )
    .unwrap();
    let flags = Flags::default();
    fuzz::run("agent config", &[example], CASES, |t| {
        one_line(from_toml(t, "config fuzz.toml", &flags).map(|_| ()));
    });
}
