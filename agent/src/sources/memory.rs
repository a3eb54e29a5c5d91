//! Memory from /proc/meminfo. For Kafka the page cache is the interesting
//! part: it is what serves consumers without touching the disks.

use std::time::Instant;

use brokerwatch_common::exposition::Families;
use brokerwatch_common::HostReport;
use brokerwatch_common::MemoryReport;
use procfs::{FromRead, Meminfo};

use super::{HostPaths, KernelFile, Source, SourceError};

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

/// The memory source: /proc/meminfo every cycle, levels only.
pub struct MemorySource {
    meminfo: KernelFile,
    buffer: Vec<u8>,
    last: Option<MemoryReport>,
}

impl MemorySource {
    pub fn new(paths: &HostPaths) -> Self {
        MemorySource {
            meminfo: KernelFile::new(paths.proc_file("meminfo")),
            buffer: Vec::new(),
            last: None,
        }
    }
}

impl Source for MemorySource {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn collect(&mut self, _at: Instant, report: &mut HostReport) -> Result<(), SourceError> {
        self.last = None;
        let memory = self.meminfo.read_parsed(&mut self.buffer, parse_meminfo)?;
        report.memory = Some(memory.clone());
        self.last = Some(memory);
        Ok(())
    }

    fn expose(&self, f: &mut Families) {
        let Some(m) = &self.last else { return };
        let levels = [
            (
                "brokerwatch_memory_total_bytes",
                "Usable RAM (MemTotal).",
                m.total_bytes,
            ),
            (
                "brokerwatch_memory_available_bytes",
                "Memory available for new work without swapping (MemAvailable).",
                m.available_bytes,
            ),
            (
                "brokerwatch_memory_page_cache_bytes",
                "Page cache (Cached): what serves Kafka consumers from memory.",
                m.page_cache_bytes,
            ),
            (
                "brokerwatch_memory_dirty_bytes",
                "Page cache waiting to be written to disk (Dirty).",
                m.dirty_bytes,
            ),
            (
                "brokerwatch_memory_writeback_bytes",
                "Page cache being written to disk now (Writeback).",
                m.writeback_bytes,
            ),
            (
                "brokerwatch_memory_swap_used_bytes",
                "Swap in use (SwapTotal - SwapFree).",
                m.swap_used_bytes,
            ),
        ];
        for (name, help, value) in levels {
            f.gauge(name, help).value(value as f64);
        }
    }
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
