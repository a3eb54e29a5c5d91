//! The agent's sources, one module each (node_exporter's
//! one-collector-per-file): the kernel's file families, the broker's process,
//! log dirs and metrics, and the page cache. Each module has a pure
//! `parse_*` taking the text it reads, an interval function turning two
//! readings into the report's rates and ratios, and a [`Source`] that reads,
//! writes its part of the report and exposes its series. `host::registry`
//! lists them in the order a cycle runs them; adding a source is its file
//! here and its line there.

pub mod broker_log;
pub mod broker_metrics;
pub mod cpu;
pub mod disk;
pub mod filefd;
pub mod kmsg;
pub mod logdirs;
pub mod memory;
pub mod netdev;
pub mod pagecache;
pub mod pagecache_ebpf;
pub mod process;
pub mod tcp;

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Instant;

use brokerwatch_common::exposition::Families;
use brokerwatch_common::HostReport;

/// One source of the agent.
pub trait Source: Send {
    /// Its `source` label in the agent's own series.
    fn name(&self) -> &'static str;

    /// Fetches over the network what [`Source::collect`] then reads (the
    /// broker's metrics endpoint), within its own timeout. Most sources
    /// have nothing to fetch.
    fn fetch(&mut self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(std::future::ready(()))
    }

    /// Reads at `at`, computes the interval figures against its own
    /// previous reading, and writes its part of `report`, which holds the
    /// parts of the sources before it. An error means it failed in whole or
    /// in part: what it could read is in the report all the same.
    fn collect(&mut self, at: Instant, report: &mut HostReport) -> Result<(), SourceError>;

    /// Its series as of the last [`Source::collect`]: the kernel's counters
    /// with their own values, and the interval figures as gauges.
    fn expose(&self, families: &mut Families);
}

/// Seconds from `previous` to `now`.
pub fn elapsed(previous: Instant, now: Instant) -> f64 {
    now.saturating_duration_since(previous).as_secs_f64()
}

/// Runs one of procfs's parsers on kernel text. procfs 0.18 panics on some
/// garbled input (a cut-short line, a multi-byte character where it slices;
/// found by tests/parsers_fuzz.rs): kernel files of these formats are ASCII,
/// so other text is refused before, and a panic left is turned into an error
/// rather than taking the agent down. `ascii_only` is false for files that
/// hold names (devices, interfaces), which may not be ASCII.
pub fn with_procfs<T>(
    text: &str,
    ascii_only: bool,
    parse: impl FnOnce(&str) -> Result<T, procfs::ProcError>,
) -> Result<T, String> {
    if ascii_only && !text.is_ascii() {
        return Err("garbled: holds bytes that are not ASCII".into());
    }
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| parse(text))) {
        Ok(parsed) => parsed.map_err(|e| brokerwatch_common::one_line(&e.to_string())),
        Err(_) => Err("garbled: procfs could not parse it".into()),
    }
}

/// Where the kernel's files are: `/proc` and `/sys` on a host, or their
/// bind-mounts (e.g. `/host/proc`) when the agent runs in a container.
#[derive(Debug, Clone)]
pub struct HostPaths {
    pub proc: PathBuf,
    pub sys: PathBuf,
}

impl Default for HostPaths {
    fn default() -> Self {
        HostPaths {
            proc: PathBuf::from("/proc"),
            sys: PathBuf::from("/sys"),
        }
    }
}

impl HostPaths {
    pub fn proc_file(&self, relative: &str) -> PathBuf {
        self.proc.join(relative)
    }

    pub fn sys_file(&self, relative: &str) -> PathBuf {
        self.sys.join(relative)
    }
}

/// Which devices or interfaces a source reports: those the include pattern
/// matches (all when unset) and the exclude pattern does not.
#[derive(Debug, Clone, Default)]
pub struct NameFilter {
    include: Option<regex_lite::Regex>,
    exclude: Option<regex_lite::Regex>,
}

impl NameFilter {
    /// Builds a filter from optional patterns; an empty pattern means unset.
    /// `what` names the config key in the error, e.g. `disk.exclude`.
    pub fn new(include: Option<&str>, exclude: Option<&str>, what: &str) -> Result<Self, String> {
        let compile =
            |pattern: Option<&str>, key: &str| -> Result<Option<regex_lite::Regex>, String> {
                match pattern.filter(|p| !p.is_empty()) {
                    None => Ok(None),
                    Some(p) => regex_lite::Regex::new(p).map(Some).map_err(|e| {
                        format!(
                            "{what}.{key}: invalid regular expression {p:?}: {}",
                            brokerwatch_common::one_line(&e.to_string())
                        )
                    }),
                }
            };
        Ok(NameFilter {
            include: compile(include, "include")?,
            exclude: compile(exclude, "exclude")?,
        })
    }

    pub fn accepts(&self, name: &str) -> bool {
        self.include.as_ref().is_none_or(|r| r.is_match(name))
            && !self.exclude.as_ref().is_some_and(|r| r.is_match(name))
    }
}

/// Why a source produced nothing (or less than usual) this cycle.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SourceError {
    #[error("cannot read {path}: {reason}; check that proc_path/sys_path point at a mounted procfs/sysfs")]
    Read { path: PathBuf, reason: String },
    #[error("cannot parse {path}: {reason}")]
    Parse { path: PathBuf, reason: String },
    #[error(transparent)]
    Probe(#[from] pagecache_ebpf::ProbeError),
}

impl SourceError {
    pub fn parse(path: &Path, reason: impl std::fmt::Display) -> Self {
        SourceError::Parse {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        }
    }
}

/// A kernel file kept open across cycles and re-read from offset 0 each
/// time: procfs and sysfs regenerate the content on a read at offset 0, and
/// skipping the path walk of open(2) is a large share of a cycle's cost.
/// On any error the file is reopened once, so a file that went away and
/// came back (an interface re-created, a remount) is picked up again.
#[derive(Debug)]
pub struct KernelFile {
    path: PathBuf,
    file: Option<std::fs::File>,
    /// Length of the last read, to size the next read request: sysctl files
    /// make the kernel allocate and zero a buffer as large as the request.
    last_length: usize,
}

impl KernelFile {
    pub fn new(path: PathBuf) -> Self {
        KernelFile {
            path,
            file: None,
            last_length: 0,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's current content, read into `buffer` (grown as needed, kept
    /// across calls so that a cycle allocates nothing here).
    pub fn read<'a>(&mut self, buffer: &'a mut Vec<u8>) -> Result<&'a str, SourceError> {
        // A page more than last time: one read(2) gets it all unless it grew a lot.
        let request = (self.last_length / 4096 + 2) * 4096;
        let cached = self
            .file
            .as_ref()
            .and_then(|file| read_all_at(file, buffer, request).ok());
        let length = match cached {
            Some(length) => length,
            None => {
                self.file = None;
                let failed = |e: io::Error| SourceError::Read {
                    path: self.path.clone(),
                    reason: e.to_string(),
                };
                let file = std::fs::File::open(&self.path).map_err(failed)?;
                let length = read_all_at(&file, buffer, request).map_err(failed)?;
                self.file = Some(file);
                length
            }
        };
        self.last_length = length;
        std::str::from_utf8(&buffer[..length]).map_err(|e| SourceError::parse(&self.path, e))
    }
}

impl KernelFile {
    /// Reads the file and parses it with `parse`, naming the file on failure.
    pub fn read_parsed<T>(
        &mut self,
        buffer: &mut Vec<u8>,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, SourceError> {
        let text = self.read(buffer)?;
        parse(text).map_err(|e| SourceError::parse(&self.path, e))
    }
}

/// Reads from offset 0 to the end into `buffer`, `request` bytes at a time
/// at most. The buffer's length is its usable size: it stays initialised, so
/// no cycle pays for zeroing it again.
fn read_all_at(file: &std::fs::File, buffer: &mut Vec<u8>, request: usize) -> io::Result<usize> {
    use std::os::unix::fs::FileExt;
    let mut filled = 0;
    loop {
        if buffer.len() < filled + request {
            buffer.resize(filled + request, 0);
        }
        let n = file.read_at(&mut buffer[filled..filled + request], filled as u64)?;
        filled += n;
        // procfs, sysctl and sysfs files return all they have up to the
        // request, so a short read is the end: no extra read(2) to see 0.
        if n < request {
            return Ok(filled);
        }
    }
}

/// Per-second rate of a kernel counter between two readings; a counter that
/// went backwards (device re-added, wrap) yields 0 rather than a huge rate.
pub fn rate(previous: u64, current: u64, elapsed_seconds: f64) -> f64 {
    if elapsed_seconds <= 0.0 {
        return 0.0;
    }
    current.saturating_sub(previous) as f64 / elapsed_seconds
}

/// Clamps a computed ratio into 0..1 (kernel counters sampled a few
/// microseconds apart can overshoot slightly).
pub fn clamp_ratio(value: f64) -> f64 {
    if value.is_nan() {
        0.0
    } else {
        value.clamp(0.0, 1.0)
    }
}

#[cfg(test)]
pub(crate) fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_of_a_reset_counter_is_zero() {
        assert_eq!(rate(100, 300, 2.0), 100.0);
        assert_eq!(rate(300, 100, 2.0), 0.0);
        assert_eq!(rate(100, 300, 0.0), 0.0);
    }

    #[test]
    fn ratios_are_clamped() {
        assert_eq!(clamp_ratio(1.0004), 1.0);
        assert_eq!(clamp_ratio(-0.1), 0.0);
        assert_eq!(clamp_ratio(f64::NAN), 0.0);
        assert_eq!(clamp_ratio(0.5), 0.5);
    }

    #[test]
    fn a_kernel_file_is_reread_fresh_and_reopened_after_it_went_away() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("speed");
        std::fs::write(&path, "1000\n").unwrap();
        let mut file = KernelFile::new(path.clone());
        let mut buffer = Vec::new();
        assert_eq!(file.read(&mut buffer).unwrap(), "1000\n");
        std::fs::write(&path, "25000\n").unwrap();
        assert_eq!(file.read(&mut buffer).unwrap(), "25000\n");
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, "-1\n").unwrap();
        // A regular file replaced under an open handle keeps its old content
        // (sysfs files of a removed device fail instead, which reopens).
        assert_eq!(file.read(&mut buffer).unwrap(), "25000\n");
        std::fs::remove_file(&path).unwrap();
        assert!(KernelFile::new(path.clone()).read(&mut buffer).is_err());
    }

    #[test]
    fn a_real_proc_file_changes_between_reads_of_one_handle() {
        let mut file = KernelFile::new(PathBuf::from("/proc/self/stat"));
        let mut buffer = Vec::new();
        let first = file.read(&mut buffer).unwrap().to_owned();
        let _burn: u64 = (0..5_000_000u64).map(std::hint::black_box).sum();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let second = file.read(&mut buffer).unwrap().to_owned();
        assert!(first.starts_with(&format!("{} (", std::process::id())));
        assert_ne!(
            first, second,
            "a re-read at offset 0 must regenerate the content"
        );
    }

    #[test]
    fn a_missing_file_names_the_path_and_what_to_check() {
        let err = KernelFile::new(PathBuf::from("/nonexistent/proc/stat"))
            .read(&mut Vec::new())
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("cannot read /nonexistent/proc/stat: "),
            "{text}"
        );
        assert!(text.contains("proc_path"), "{text}");
    }
}
