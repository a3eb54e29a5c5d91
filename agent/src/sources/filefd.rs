//! System-wide file handles from /proc/sys/fs/file-nr. A broker holds an open
//! file per log segment and index plus a socket per client, so running out
//! of handles is a classic way for a broker to fall over.

use std::time::Instant;

use brokerwatch_common::exposition::Families;
use brokerwatch_common::FileDescriptorReport;
use brokerwatch_common::HostReport;

use super::{HostPaths, KernelFile, Source, SourceError};

/// Parses file-nr: `allocated  free  maximum` (free is always 0 since 2.6).
pub fn parse_file_nr(text: &str) -> Result<FileDescriptorReport, String> {
    let fields: Vec<&str> = text.split_whitespace().collect();
    let [allocated, _free, maximum] = fields[..] else {
        return Err(format!("expected 3 numbers, found {} fields", fields.len()));
    };
    let number = |name: &str, value: &str| {
        value
            .parse::<u64>()
            .map_err(|_| format!("{name} {value:?} is not a count"))
    };
    Ok(FileDescriptorReport {
        allocated: number("allocated", allocated)?,
        maximum: number("maximum", maximum)?,
    })
}

/// The file-handle source: /proc/sys/fs/file-nr every cycle.
pub struct FileFdSource {
    file_nr: KernelFile,
    buffer: Vec<u8>,
    last: Option<FileDescriptorReport>,
}

impl FileFdSource {
    pub fn new(paths: &HostPaths) -> Self {
        FileFdSource {
            file_nr: KernelFile::new(paths.proc_file("sys/fs/file-nr")),
            buffer: Vec::new(),
            last: None,
        }
    }
}

impl Source for FileFdSource {
    fn name(&self) -> &'static str {
        "filefd"
    }

    fn collect(&mut self, _at: Instant, report: &mut HostReport) -> Result<(), SourceError> {
        self.last = None;
        let fd = self.file_nr.read_parsed(&mut self.buffer, parse_file_nr)?;
        report.file_descriptors = Some(fd.clone());
        self.last = Some(fd);
        Ok(())
    }

    fn expose(&self, f: &mut Families) {
        let Some(fd) = &self.last else { return };
        f.gauge(
            "brokerwatch_filefd_allocated",
            "File handles allocated system-wide (/proc/sys/fs/file-nr).",
        )
        .value(fd.allocated as f64);
        f.gauge(
            "brokerwatch_filefd_maximum",
            "System-wide limit on file handles (fs.file-max).",
        )
        .value(fd.maximum as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::fixture;

    #[test]
    fn parses_a_real_file_nr() {
        let fd = parse_file_nr(&fixture("file-nr")).unwrap();
        assert_eq!(
            fd,
            FileDescriptorReport {
                allocated: 310,
                maximum: 2_466_170
            }
        );
    }

    #[test]
    fn parses_an_unlimited_maximum() {
        let fd = parse_file_nr("812312\t0\t9223372036854775807\n").unwrap();
        assert_eq!(fd.maximum, 9_223_372_036_854_775_807);
    }

    #[test]
    fn garbled_file_nr_is_an_error() {
        assert_eq!(
            parse_file_nr("1 0\n").unwrap_err(),
            "expected 3 numbers, found 2 fields"
        );
        assert_eq!(
            parse_file_nr("1 0 x\n").unwrap_err(),
            "maximum \"x\" is not a count"
        );
    }
}
