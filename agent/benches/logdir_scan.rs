//! The log-dir source's scan of a broker's partition directories, as it
//! runs once a minute: 4,000 partition directories (100 topics of 40) of
//! four files each (segment, offset index, time index, leader-epoch
//! checkpoint), each partition's bytes, per-topic sums, and the largest and
//! fastest-written partitions. Prints the wall time and the CPU time of one
//! scan (best and median of 15, the directory entries cached as on a broker
//! whose log dirs are in use), and so its cost per minute.

use std::path::Path;
use std::time::{Duration, Instant};

use brokerwatch_agent::sources::logdirs::partitions::Written;
use brokerwatch_agent::sources::logdirs::{read_log_dirs_written, LogDirLocations};

/// The CPU time this process has used so far.
fn cpu_time() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

fn main() {
    let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).expect("a temporary log dir");
    for topic in 0..100 {
        for partition in 0..40 {
            let partition_dir = dir.path().join(format!("topic-{topic:03}-{partition}"));
            std::fs::create_dir(&partition_dir).unwrap();
            for (file, bytes) in [
                ("00000000000000000000.log", 4096 * (1 + partition)),
                ("00000000000000000000.index", 1024),
                ("00000000000000000000.timeindex", 1536),
                ("leader-epoch-checkpoint", 12),
            ] {
                std::fs::write(partition_dir.join(file), vec![0u8; bytes as usize]).unwrap();
            }
        }
    }
    let locations = LogDirLocations {
        server_properties: None,
        log_dirs: vec![dir.path().to_path_buf()],
    };
    let mut written = Written::default();
    let mut runs: Vec<(Duration, Duration)> = (0..15)
        .map(|run| {
            let (wall, cpu) = (Instant::now(), cpu_time());
            let reports = read_log_dirs_written(
                &locations,
                Path::new("/proc"),
                Path::new("/sys"),
                &mut written,
                60.0 * f64::from(run),
            )
            .expect("the log dir is read");
            assert_eq!(reports[0].partitions, 4000);
            (wall.elapsed(), cpu_time() - cpu)
        })
        .collect();
    runs.sort();
    let (best, median) = (runs[0], runs[runs.len() / 2]);
    println!(
        "scan of 4,000 partition directories (16,000 files): wall best {:.1?}, median {:.1?}; CPU best {:.1?}, median {:.1?}",
        best.0, median.0, best.1, median.1
    );
    println!(
        "once a minute: {:.3} % of one CPU (median CPU time over 60 s)",
        median.1.as_secs_f64() / 60.0 * 100.0
    );
}
