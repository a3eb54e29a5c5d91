//! The page-cache hit rate, `ebpf` method: the program in `pagecache.bpf.c`
//! counts in the kernel, at the filemap and writeback tracepoints, the pages
//! reads asked for, the pages added to the page cache and the pages dirtied;
//! [`super::pagecache::ebpf_hit_ratio`] turns two readings into a ratio.
//! This module only loads the program and reads its counters.
//!
//! On kernels without those tracepoints but with kprobes, it attaches the
//! same object's kprobe programs to cachestat's functions instead.

use std::os::fd::OwnedFd;

use aya::maps::{Array, Map, MapData, PerCpuArray};
use aya::programs::{KProbe, TracePoint};
use aya::Ebpf;
use serde::{Deserialize, Serialize};

mod apart;

/// The tracepoints the program needs, as (program, category, event).
const TRACEPOINTS: [(&str, &str, &str); 3] = [
    ("requested", "filemap", "mm_filemap_get_pages"),
    ("added", "filemap", "mm_filemap_add_to_page_cache"),
    ("dirtied", "writeback", "writeback_dirty_folio"),
];

/// cachestat's kernel functions, as (program, candidates newest first):
/// the names changed with folios (5.16+).
const KPROBES: [(&str, &[&str]); 4] = [
    (
        "kprobe_accessed",
        &["folio_mark_accessed", "mark_page_accessed"],
    ),
    (
        "kprobe_added",
        &["filemap_add_folio", "add_to_page_cache_lru"],
    ),
    (
        "kprobe_dirtied",
        &[
            "folio_account_dirtied",
            "account_page_dirtied",
            "__folio_mark_dirty",
        ],
    ),
    ("kprobe_buffer_dirtied", &["mark_buffer_dirty"]),
];

/// The `ebpf` method's counters, pages since the program was attached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PageCounts {
    /// Pages that reads asked for (each read counted once).
    pub requested: u64,
    /// Pages added to the page cache (a folio counts its pages).
    pub added: u64,
    /// Pages dirtied by writes.
    pub dirtied: u64,
    /// Buffers dirtied (kprobe method only, as cachestat counts them): the
    /// accesses they cause are not reads, so they come off `requested`.
    pub buffers_dirtied: u64,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Serialize, Deserialize)]
pub enum ProbeError {
    #[error("this agent was built without the ebpf page-cache method (clang was missing when it was built); rebuild it with clang installed")]
    NotBuilt,
    #[error("the kernel refused the page-cache eBPF program ({0}); run the agent as root or with CAP_BPF and CAP_PERFMON")]
    Refused(String),
    #[error("cannot attach to tracepoint {tracepoint} ({reason}), nor to kprobes ({kprobes}); it needs Linux 6.x's filemap/writeback tracepoints and tracefs mounted at /sys/kernel/tracing (mount -t tracefs nodev /sys/kernel/tracing), or kprobes")]
    Attach {
        tracepoint: String,
        reason: String,
        kprobes: String,
    },
    #[error("cannot read the page-cache eBPF counters: {0}")]
    Read(String),
}

/// The loaded, attached program; dropping it detaches it.
pub struct PageCacheProbe {
    counters: PerCpuArray<MapData, u64>,
    target: Array<MapData, u32>,
    target_pid: u32,
    // Holds the programs and their links: detached when the probe is dropped.
    _attached: Attached,
}

/// What keeps the program attached.
enum Attached {
    /// Loaded in this process.
    Here { _ebpf: Ebpf },
    /// Loaded by a helper process that handed over its descriptors.
    Handed { _descriptors: Vec<OwnedFd> },
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

/// An error with its causes, on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text = format!("{text}: {cause_text}");
        }
        source = cause.source();
    }
    brokerwatch_common::one_line(&text)
}

/// An error from loading: the kernel refused (most often for lack of
/// privilege), told apart from a kernel that lacks the attach points.
fn refused(e: impl std::error::Error) -> ProbeError {
    ProbeError::Refused(chain(&e))
}

/// Loads the object without the kernel's BTF: the program has no CO-RE
/// relocations, and parsing vmlinux's BTF would cost the agent 35 MiB.
fn load(object: &[u8]) -> Result<Ebpf, aya::EbpfError> {
    aya::EbpfLoader::new().btf(None).load(object)
}

fn program_mut<'a, T>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut T, ProbeError>
where
    &'a mut T: TryFrom<&'a mut aya::programs::Program, Error = aya::programs::ProgramError>,
{
    ebpf.program_mut(name)
        .ok_or_else(|| ProbeError::Refused(format!("program {name} missing from the object")))?
        .try_into()
        .map_err(refused)
}

/// Loads and attaches the tracepoint programs: `Ok(Err((tracepoint, why)))`
/// when one of the tracepoints cannot be attached to (the kernel lacks it,
/// or tracefs is not mounted), `Err` when the kernel refuses the programs.
fn attach_tracepoints(
    ebpf: &mut Ebpf,
    tracepoints: &[(&str, &str, &str)],
) -> Result<Result<(), (String, String)>, ProbeError> {
    for (name, category, event) in tracepoints {
        let program: &mut TracePoint = program_mut(ebpf, name)?;
        program.load().map_err(refused)?;
        if let Err(e) = program.attach(category, event) {
            return Ok(Err((format!("{category}:{event}"), chain(&e))));
        }
    }
    Ok(Ok(()))
}

/// Loads the kprobe programs and attaches each to the first of its
/// candidate functions the kernel has: `Ok(Err(why))` when kprobes cannot
/// be attached to, `Err` when the kernel refuses the programs.
fn attach_kprobes(ebpf: &mut Ebpf) -> Result<Result<(), String>, ProbeError> {
    let symbols = std::fs::read_to_string("/proc/kallsyms").unwrap_or_default();
    let has = |function: &str| {
        symbols
            .lines()
            .any(|line| line.split_whitespace().nth(2) == Some(function))
    };
    for (name, candidates) in KPROBES {
        let program: &mut KProbe = program_mut(ebpf, name)?;
        program.load().map_err(refused)?;
        let Some(function) = candidates.iter().find(|f| has(f)) else {
            return Ok(Err(format!("none of {candidates:?} in /proc/kallsyms")));
        };
        if let Err(e) = program.attach(function, 0) {
            return Ok(Err(format!("{function}: {}", chain(&e))));
        }
    }
    Ok(Ok(()))
}

impl PageCacheProbe {
    /// Loads the program and attaches it to its three tracepoints, counting
    /// every process until [`PageCacheProbe::count_only`] narrows it.
    pub fn attach() -> Result<Self, ProbeError> {
        Self::attach_to(&TRACEPOINTS)
    }

    /// [`PageCacheProbe::attach`] with the tracepoints given, so that a test
    /// can name one the kernel lacks, as an older kernel would.
    fn attach_to(tracepoints: &[(&str, &str, &str)]) -> Result<Self, ProbeError> {
        let mut ebpf = load(program()?).map_err(refused)?;
        if let Err((tracepoint, reason)) = attach_tracepoints(&mut ebpf, tracepoints)? {
            // Tracepoint programs loaded so far are dropped with this object.
            let mut ebpf = load(program()?).map_err(refused)?;
            if let Err(kprobes) = attach_kprobes(&mut ebpf)? {
                return Err(ProbeError::Attach {
                    tracepoint,
                    reason,
                    kprobes,
                });
            }
            return Self::with_maps(ebpf);
        }
        Self::with_maps(ebpf)
    }

    fn with_maps(mut ebpf: Ebpf) -> Result<Self, ProbeError> {
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
            _attached: Attached::Here { _ebpf: ebpf },
        })
    }

    /// The probe from descriptors a helper process handed over: its two
    /// maps (told apart by name), and whatever keeps the programs attached.
    fn from_descriptors(descriptors: Vec<OwnedFd>) -> Result<Self, ProbeError> {
        let mut counters = None;
        let mut target = None;
        let mut attached = Vec::new();
        for fd in descriptors {
            let link = std::fs::read_link(format!(
                "/proc/self/fd/{}",
                std::os::fd::AsRawFd::as_raw_fd(&fd)
            ))
            .unwrap_or_default();
            if link.as_os_str() != "anon_inode:bpf-map" {
                attached.push(fd);
                continue;
            }
            let map = MapData::from_fd(fd).map_err(refused)?;
            let name = map
                .info()
                .map_err(refused)?
                .name_as_str()
                .map(str::to_owned);
            match name.as_deref() {
                Some("counters") => {
                    counters = Some(PerCpuArray::try_from(Map::PerCpuArray(map)).map_err(refused)?)
                }
                Some("target") => target = Some(Array::try_from(Map::Array(map)).map_err(refused)?),
                _ => {}
            }
        }
        let missing = |name: &str| ProbeError::Refused(format!("map {name} not handed over"));
        Ok(PageCacheProbe {
            counters: counters.ok_or_else(|| missing("counters"))?,
            target: target.ok_or_else(|| missing("target"))?,
            target_pid: 0,
            _attached: Attached::Handed {
                _descriptors: attached,
            },
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
            buffers_dirtied: sum(3)?,
        })
    }
}

#[cfg(all(test, brokerwatch_ebpf))]
mod tests {
    use super::*;

    /// On a kernel without one of the tracepoints the probe turns to
    /// kprobes. The test machines have no kprobes, so there it must fail
    /// saying both why the tracepoint and why the kprobes could not be had,
    /// after the kernel's verifier accepted the kprobe programs; where
    /// kprobes exist it must run.
    #[test]
    fn without_the_tracepoints_it_turns_to_cachestats_kprobes() {
        let tracepoints = [
            ("requested", "filemap", "mm_filemap_no_such_event"),
            ("added", "filemap", "mm_filemap_add_to_page_cache"),
            ("dirtied", "writeback", "writeback_dirty_folio"),
        ];
        let kprobes_here = std::path::Path::new("/sys/bus/event_source/devices/kprobe").exists();
        match PageCacheProbe::attach_to(&tracepoints) {
            Ok(probe) => {
                assert!(kprobes_here, "attached without tracepoint or kprobes");
                probe.read().expect("counters");
            }
            Err(ProbeError::Attach {
                tracepoint,
                kprobes,
                ..
            }) => {
                assert!(!kprobes_here, "kprobes exist but failed: {kprobes}");
                assert_eq!(tracepoint, "filemap:mm_filemap_no_such_event");
                // The kprobe programs loaded (verifier passed); attaching failed.
                assert!(
                    kprobes.starts_with("folio_mark_accessed")
                        || kprobes.starts_with("mark_page_accessed"),
                    "{kprobes}"
                );
            }
            Err(other) => panic!("{other}"),
        }
    }
}
