//! Host sources, one module per kernel file family (node_exporter's
//! one-collector-per-file). Each module has a pure `parse_*` taking the file's
//! text and returning counters, and an interval function turning two readings
//! into the report's rates and ratios. File access is only in [`HostPaths`].

pub mod cpu;
pub mod disk;
pub mod filefd;
pub mod memory;
pub mod netdev;
pub mod tcp;

use std::io;
use std::path::{Path, PathBuf};

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
                            one_line(&e.to_string())
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

/// Folds a multi-line message (regex and TOML errors draw carets) into one line.
pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Why a source produced nothing (or less than usual) this cycle.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SourceError {
    #[error("cannot read {path}: {reason}; check that proc_path/sys_path point at a mounted procfs/sysfs")]
    Read { path: PathBuf, reason: String },
    #[error("cannot parse {path}: {reason}")]
    Parse { path: PathBuf, reason: String },
}

impl SourceError {
    pub fn parse(path: &Path, reason: impl std::fmt::Display) -> Self {
        SourceError::Parse {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        }
    }
}

/// Reads a whole kernel file. These files are small and regenerated on each
/// open, so one read per cycle is the cheapest way to a consistent view.
pub fn read_text(path: &Path) -> Result<String, SourceError> {
    std::fs::read_to_string(path).map_err(|e: io::Error| SourceError::Read {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
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
    fn a_missing_file_names_the_path_and_what_to_check() {
        let err = read_text(Path::new("/nonexistent/proc/stat")).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("cannot read /nonexistent/proc/stat: "),
            "{text}"
        );
        assert!(text.contains("proc_path"), "{text}");
    }
}
