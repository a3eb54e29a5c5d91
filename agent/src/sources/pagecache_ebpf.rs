//! The page-cache hit rate, `ebpf` method: the program in `pagecache.bpf.c`
//! counts in the kernel, at the filemap and writeback tracepoints, the pages
//! reads asked for, the pages added to the page cache and the pages dirtied;
//! [`super::pagecache::ebpf_hit_ratio`] turns two readings into a ratio.
//! This module only loads the program and reads its counters.

use aya::maps::{Array, MapData, PerCpuArray};
use aya::programs::TracePoint;
use aya::Ebpf;

use super::pagecache::PageCounts;

/// The tracepoints the program needs, as (program, category, event).
const TRACEPOINTS: [(&str, &str, &str); 3] = [
    ("requested", "filemap", "mm_filemap_get_pages"),
    ("added", "filemap", "mm_filemap_add_to_page_cache"),
    ("dirtied", "writeback", "writeback_dirty_folio"),
];

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ProbeError {
    #[error("this agent was built without the ebpf page-cache method (clang was missing when it was built); rebuild it with clang installed")]
    NotBuilt,
    #[error("the kernel refused the page-cache eBPF program ({0}); run the agent as root or with CAP_BPF and CAP_PERFMON")]
    Refused(String),
    #[error("cannot attach to tracepoint {0} ({1}); it needs Linux 6.x's filemap/writeback tracepoints and tracefs mounted at /sys/kernel/tracing (mount -t tracefs nodev /sys/kernel/tracing)")]
    Tracepoint(String, String),
    #[error("cannot read the page-cache eBPF counters: {0}")]
    Read(String),
}

/// The loaded, attached program; dropping it detaches it.
pub struct PageCacheProbe {
    counters: PerCpuArray<MapData, u64>,
    target: Array<MapData, u32>,
    target_pid: u32,
    // Holds the programs and their links: detached when the probe is dropped.
    _ebpf: Ebpf,
}

impl std::fmt::Debug for PageCacheProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PageCacheProbe")
            .field("target_pid", &self.target_pid)
            .finish_non_exhaustive()
    }
}

#[cfg(brokerwatch_ebpf)]
fn program() -> Result<&'static [u8], ProbeError> {
    static PROGRAM: &[u8] =
        aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/pagecache.bpf.o"));
    Ok(PROGRAM)
}

#[cfg(not(brokerwatch_ebpf))]
fn program() -> Result<&'static [u8], ProbeError> {
    Err(ProbeError::NotBuilt)
}

/// An error from loading: a refusal for lack of privilege is told apart,
/// since its remedy (capabilities) differs from a kernel that lacks support.
fn refused(e: impl std::error::Error) -> ProbeError {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text = format!("{text}: {cause_text}");
        }
        source = cause.source();
    }
    ProbeError::Refused(brokerwatch_common::one_line(&text))
}

impl PageCacheProbe {
    /// Loads the program and attaches it to its three tracepoints, counting
    /// every process until [`PageCacheProbe::count_only`] narrows it.
    pub fn attach() -> Result<Self, ProbeError> {
        let mut ebpf = Ebpf::load(program()?).map_err(refused)?;
        for (name, category, event) in TRACEPOINTS {
            let program: &mut TracePoint = ebpf
                .program_mut(name)
                .ok_or_else(|| {
                    ProbeError::Refused(format!("program {name} missing from the object"))
                })?
                .try_into()
                .map_err(refused)?;
            program.load().map_err(refused)?;
            program.attach(category, event).map_err(|e| {
                ProbeError::Tracepoint(format!("{category}:{event}"), e.to_string())
            })?;
        }
        let mut map = |name: &str| {
            ebpf.take_map(name)
                .ok_or_else(|| ProbeError::Refused(format!("map {name} missing from the object")))
        };
        let counters = PerCpuArray::try_from(map("counters")?).map_err(refused)?;
        let target = Array::try_from(map("target")?).map_err(refused)?;
        Ok(PageCacheProbe {
            counters,
            target,
            target_pid: 0,
            _ebpf: ebpf,
        })
    }

    /// Counts only the pages of process `pid` (the broker), or of every
    /// process with `None`. Counts taken before and after a change are not
    /// comparable; the caller starts a new interval.
    pub fn count_only(&mut self, pid: Option<u32>) -> Result<(), ProbeError> {
        let pid = pid.unwrap_or(0);
        if pid != self.target_pid {
            self.target
                .set(0, pid, 0)
                .map_err(|e| ProbeError::Read(e.to_string()))?;
            self.target_pid = pid;
        }
        Ok(())
    }

    /// The process counted for, `None` for every process.
    pub fn counting_for(&self) -> Option<u32> {
        (self.target_pid != 0).then_some(self.target_pid)
    }

    /// The counters so far, summed over CPUs.
    pub fn read(&self) -> Result<PageCounts, ProbeError> {
        let sum = |index: u32| -> Result<u64, ProbeError> {
            let per_cpu = self
                .counters
                .get(&index, 0)
                .map_err(|e| ProbeError::Read(e.to_string()))?;
            Ok(per_cpu.iter().copied().fold(0u64, u64::wrapping_add))
        };
        Ok(PageCounts {
            requested: sum(0)?,
            added: sum(1)?,
            dirtied: sum(2)?,
        })
    }
}
