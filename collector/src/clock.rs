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

/// The latest time the collector deals in: the year 2200. A time past it
/// (or before 1970) comes from a damaged file or a clock gone wrong.
pub const LATEST_UNIX_SECONDS: f64 = 7.3e9;

/// Unix seconds as a `SystemTime`, held to 1970..2200: formatting a time
/// must never fail, whatever number a file or a peer supplied.
pub fn system_time(seconds: f64) -> SystemTime {
    let seconds = if seconds.is_nan() {
        0.0
    } else {
        seconds.clamp(0.0, LATEST_UNIX_SECONDS)
    };
    UNIX_EPOCH + std::time::Duration::from_secs_f64(seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_number_is_a_time_within_range() {
        let seconds = |t: SystemTime| t.duration_since(UNIX_EPOCH).unwrap().as_secs_f64();
        assert_eq!(seconds(system_time(1.5e9)), 1.5e9);
        assert_eq!(seconds(system_time(1e308)), LATEST_UNIX_SECONDS);
        assert_eq!(seconds(system_time(f64::INFINITY)), LATEST_UNIX_SECONDS);
        assert_eq!(seconds(system_time(-40.0)), 0.0);
        assert_eq!(seconds(system_time(f64::NAN)), 0.0);
    }
}
