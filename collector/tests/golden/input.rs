//! The fixed input of the golden test: agents' reports, one
//! cluster snapshot and consumer-group offsets, as plain data, so that the
//! same bytes go into whatever shape the collector's code takes.

use brokerwatch_common::{
    CpuReport, DiskReport, FileDescriptorReport, HostReport, InterfaceReport, LogDirReport,
    MemoryReport, Report, SCHEMA_VERSION,
};

/// The collector's config, keeping its state in `state_dir`.
pub fn config(state_dir: &std::path::Path) -> String {
    format!(
        "cluster = \"golden\"\nlisten = \"127.0.0.1:0\"\nstate_dir = {:?}\n{CONFIG}",
        state_dir.display().to_string()
    )
}

const CONFIG: &str = r#"evaluation_interval = "10s"
[ingest]
allow_unauthenticated = true
[kafka]
expected_brokers = [1, 2, 3, 4, 5]
[kafka.properties]
"bootstrap.servers" = "127.0.0.1:1"
[consumer_groups]
groups = ["billing", "audit"]
[consumer_groups.limits.billing]
max_lag_messages = 100
[rules.KafkaClusterLoadImbalance]
for = "5m"
"#;

/// Evaluations run every minute from `START` to `END`.
pub const START: f64 = 1_700_000_000.0;
pub const END: f64 = START + 1200.0;
/// When the metadata was taken, before each evaluation.
pub const METADATA_AGE: f64 = 5.0;

fn disk(device: &str, read: f64, write: f64, util: f64) -> DiskReport {
    DiskReport {
        device: device.to_owned(),
        utilization_ratio: util,
        reads_per_second: read / 4096.0,
        writes_per_second: write / 4096.0,
        read_bytes_per_second: read,
        written_bytes_per_second: write,
        read_await_seconds: 0.002,
        write_await_seconds: 0.004,
        queue_length: util * 2.0,
    }
}

fn log_dir(path: &str, disk: &str) -> LogDirReport {
    LogDirReport {
        log_dir: path.to_owned(),
        mount_point: path.to_owned(),
        device: Some(disk.to_owned()),
        disks: vec![disk.to_owned()],
        used_bytes: 1 << 40,
        free_bytes: 1 << 40,
        partitions: 100,
        size_bytes: 1 << 39,
        topics: Vec::new(),
        largest_partitions: Vec::new(),
    }
}

fn link(name: &str, rx: f64, tx: f64, speed: Option<f64>) -> InterfaceReport {
    InterfaceReport {
        interface: name.to_owned(),
        receive_bytes_per_second: rx,
        transmit_bytes_per_second: tx,
        receive_drops_per_second: 0.0,
        transmit_drops_per_second: 0.0,
        receive_errors_per_second: 0.0,
        transmit_errors_per_second: 0.0,
        speed_bytes_per_second: speed,
        receive_utilization_ratio: speed.map(|s| rx / s),
        transmit_utilization_ratio: speed.map(|s| tx / s),
    }
}

/// Broker `broker`'s report at evaluation `step` (0, 1, ...): broker 3
/// carries twice the load of 1, 2 and 4, broker 1 has a saturated disk
/// beside an idle one and a saturated link, broker 2 a cold page cache,
/// broker 4 high iowait; every figure wobbles a little with the step.
pub fn report(broker: i32, step: u32) -> Report {
    let weight = if broker == 3 { 2.0 } else { 1.0 };
    let wobble = 1.0 + f64::from(step % 3) * 0.01;
    let w = weight * wobble;
    let mut disks = vec![disk("sdb", 2e6 * w, 4e6 * w, 0.3 * w)];
    let mut interfaces = vec![
        link("eth0", 1e7 * w, 2e7 * w, Some(1.25e9)),
        link("lo", 5e9, 5e9, None),
    ];
    let mut host = HostReport {
        cpu: Some(CpuReport {
            cpus: 8,
            utilization_ratio: 0.05 * w,
            // Broker 4's disks recover at step 14: its alert resolves.
            iowait_ratio: if broker == 4 && step < 14 {
                0.4
            } else {
                0.01 * w
            },
        }),
        memory: Some(MemoryReport {
            total_bytes: 64 << 30,
            available_bytes: (64u64 << 30) - ((8 << 30) as f64 * w) as u64,
            page_cache_bytes: 40 << 30,
            dirty_bytes: 1 << 20,
            writeback_bytes: 0,
            swap_used_bytes: 0,
        }),
        file_descriptors: Some(FileDescriptorReport {
            allocated: (3000.0 * w) as u64,
            maximum: 1_000_000,
        }),
        page_cache_hit_ratio_estimate: Some(0.97),
        ..HostReport::default()
    };
    match broker {
        1 => {
            // sda is the OS disk; the log dirs are on sdb and sdc.
            disks = vec![
                disk("sda", 1e3, 5e4, 0.01),
                disk("sdb", 9e6 * wobble, 1.2e7 * wobble, 0.97),
                disk("sdc", 1e6 * wobble, 2e6 * wobble, 0.2),
            ];
            host.log_dirs = vec![log_dir("/data/1", "sdb"), log_dir("/data/2", "sdc")];
            interfaces.push(link("ens1f0", 1.2e9, 1e8, Some(1.25e9)));
        }
        2 => host.page_cache_hit_ratio_ebpf = Some(0.55),
        _ => {}
    }
    host.disks = disks;
    host.interfaces = interfaces;
    Report {
        schema_version: SCHEMA_VERSION,
        broker_id: broker,
        agent_version: "golden".into(),
        timestamp_ms: 0,
        interval_seconds: 10.0,
        host,
    }
}

/// Which brokers report at evaluation `step`: broker 5 reports once, then
/// falls silent.
pub fn reporting(step: u32) -> Vec<i32> {
    if step == 0 {
        vec![1, 2, 3, 4, 5]
    } else {
        vec![1, 2, 3, 4]
    }
}

/// One partition: (id, leader, replicas, isr).
pub type Partition = (i32, i32, Vec<i32>, Vec<i32>);
/// One topic: (name, min.insync.replicas, partitions).
pub type Topic = (String, Option<u32>, Vec<Partition>);

/// The metadata: brokers 1-4 alive (5 expected and gone); topic `orders`
/// with broker 3 missing from most ISRs, one partition offline, one below
/// min.insync.replicas, broker 2 not leading what it prefers; topic `events`
/// mid-reassignment (an extra replica catching up).
pub fn snapshot() -> (Vec<i32>, Vec<Topic>) {
    let p = |id: i32, leader: i32, replicas: &[i32], isr: &[i32]| {
        (id, leader, replicas.to_vec(), isr.to_vec())
    };
    (
        vec![1, 2, 3, 4],
        vec![
            (
                "orders".into(),
                Some(2),
                vec![
                    p(0, 1, &[1, 2, 3], &[1, 2]),
                    p(1, 1, &[2, 3, 4], &[2, 4]),
                    p(2, 4, &[4, 3, 1], &[4]),
                    p(3, -1, &[3, 5, 1], &[3]),
                    p(4, 1, &[2, 1, 4], &[2, 1, 4]),
                    p(5, 4, &[1, 4, 2], &[1, 4, 2]),
                ],
            ),
            (
                "events".into(),
                None,
                vec![
                    p(0, 2, &[2, 4], &[2, 4]),
                    p(1, 4, &[4, 1], &[4, 1]),
                    p(2, 2, &[2, 1, 4], &[2, 1]),
                ],
            ),
        ],
    )
}

/// Offsets fetched every 30 s from `START - 600`: (group, topic, partition)
/// with samples (at, committed, end). `billing` keeps up but is 150 behind
/// (over its limit); `audit` stops at `START - 300` while 10 msg/s arrive.
#[allow(clippy::type_complexity)]
pub fn offsets() -> Vec<((String, String, i32), Vec<(f64, i64, i64)>)> {
    let mut out = Vec::new();
    for partition in 0..2 {
        let mut billing = Vec::new();
        let mut audit = Vec::new();
        let mut t = START - 600.0;
        while t <= END {
            let end = (10.0 * (t - (START - 600.0))) as i64 + 1000;
            billing.push((t, end - 150, end));
            let stopped = (10.0 * 300.0) as i64 + 1000;
            audit.push((t, end.min(stopped), end));
            t += 30.0;
        }
        out.push((("audit".into(), "orders".into(), partition), audit));
        out.push((("billing".into(), "orders".into(), partition), billing));
    }
    out
}
