//! What the benches share: the process's memory, and best and median times.

use std::time::{Duration, Instant};

/// The process's current RSS, in MiB.
// Each bench compiles this module on its own and uses what it needs.
#[allow(dead_code)]
pub fn rss_mib() -> f64 {
    status_mib("VmRSS:")
}

/// The process's peak RSS (VmHWM), in MiB.
pub fn peak_rss_mib() -> f64 {
    status_mib("VmHWM:")
}

fn status_mib(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

/// Runs `f` `runs` times; returns (best, median).
pub fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, Duration) {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let started = Instant::now();
            std::hint::black_box(f());
            started.elapsed()
        })
        .collect();
    times.sort();
    (times[0], times[runs / 2])
}
