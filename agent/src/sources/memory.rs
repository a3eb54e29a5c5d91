//! Memory from /proc/meminfo. For Kafka the page cache is the interesting
//! part: it is what serves consumers without touching the disks.

use brokerwatch_common::MemoryReport;
use procfs::{FromRead, Meminfo};

/// Parses /proc/meminfo (the kernel's kB are KiB; values come out in bytes).
pub fn parse_meminfo(text: &str) -> Result<MemoryReport, String> {
    let m = super::with_procfs(text, true, |t| Meminfo::from_read(t.as_bytes()))?;
    Ok(MemoryReport {
        total_bytes: m.mem_total,
        // Kernels before 3.14 lack MemAvailable; free + page cache is the
        // estimate `free` used before it existed.
        available_bytes: m.mem_available.unwrap_or(m.mem_free + m.cached + m.buffers),
        page_cache_bytes: m.cached,
        dirty_bytes: m.dirty,
        writeback_bytes: m.writeback,
        swap_used_bytes: m.swap_total.saturating_sub(m.swap_free),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::fixture;

    #[test]
    fn parses_a_real_meminfo_to_bytes() {
        let m = parse_meminfo(&fixture("meminfo")).unwrap();
        assert_eq!(m.total_bytes, 24_684_084 * 1024);
        assert_eq!(m.available_bytes, 24_440_104 * 1024);
        assert_eq!(m.page_cache_bytes, 17_320 * 1024);
        assert_eq!(m.swap_used_bytes, 0);
    }

    #[test]
    fn parses_a_broker_hosts_meminfo() {
        let m = parse_meminfo(&fixture("meminfo_broker")).unwrap();
        assert_eq!(m.total_bytes, 263_873_112 * 1024);
        assert_eq!(m.available_bytes, 221_387_612 * 1024);
        assert_eq!(m.page_cache_bytes, 209_123_876 * 1024);
        assert_eq!(m.dirty_bytes, 1_812_312 * 1024);
        assert_eq!(m.writeback_bytes, 12_312 * 1024);
        assert_eq!(m.swap_used_bytes, (8_388_604 - 8_112_300) * 1024);
    }

    #[test]
    fn meminfo_without_memtotal_is_an_error() {
        let text: String = fixture("meminfo")
            .lines()
            .filter(|l| !l.starts_with("MemTotal"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert!(parse_meminfo(&text).is_err());
        assert!(parse_meminfo("MemTotal: lots kB\n").is_err());
    }
}
