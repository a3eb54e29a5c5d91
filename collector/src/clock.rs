//! The collector's one clock.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Unix seconds, read off the monotonic clock from the wall time at start:
/// a step of the system clock (NTP stepping after a VM resumes, someone's
/// `date -s`) must not make every agent look silent or fresh at once, nor
/// age the cluster's metadata by an hour. Within a run, durations are
/// monotonic; the wall time is taken again at the next start.
pub fn unix_now() -> f64 {
    static ANCHOR: std::sync::OnceLock<(Instant, f64)> = std::sync::OnceLock::new();
    let (at, wall) = ANCHOR.get_or_init(|| {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        (Instant::now(), wall)
    });
    wall + at.elapsed().as_secs_f64()
}
