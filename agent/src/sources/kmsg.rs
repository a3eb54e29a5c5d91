//! What the kernel log says went wrong on the host: the agent follows
//! /dev/kmsg from its end (what was logged before it started is history,
//! not news), classifies each line it recognises as a disk I/O or medium
//! error, a filesystem error, a hung task, a soft lockup, an OOM kill, a
//! link going down or a machine-check error, and counts them by kind and by
//! the device the line names. Records the kernel overwrote before they were
//! read (a burst larger than its ring buffer) are counted as lost, from the
//! gaps in their sequence numbers, and reading goes on.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::time::Instant;

use brokerwatch_common::exposition::Families;
use brokerwatch_common::{HostReport, KernelEvents};

use super::{Source, SourceError};

/// At most this many records a cycle, so that a flood costs a bounded cycle;
/// the rest wait for the next one (or are lost, and counted, if the kernel
/// overwrites them first).
const MOST_RECORDS: usize = 20_000;

/// A kind of kernel event, as the `kind` label gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    IoError,
    MediumError,
    FilesystemError,
    HungTask,
    SoftLockup,
    OomKill,
    LinkDown,
    MachineCheck,
}

impl Kind {
    pub const ALL: [Kind; 8] = [
        Kind::IoError,
        Kind::MediumError,
        Kind::FilesystemError,
        Kind::HungTask,
        Kind::SoftLockup,
        Kind::OomKill,
        Kind::LinkDown,
        Kind::MachineCheck,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Kind::IoError => "io_error",
            Kind::MediumError => "medium_error",
            Kind::FilesystemError => "filesystem_error",
            Kind::HungTask => "hung_task",
            Kind::SoftLockup => "soft_lockup",
            Kind::OomKill => "oom_kill",
            Kind::LinkDown => "link_down",
            Kind::MachineCheck => "machine_check",
        }
    }
}

/// The word after `marker` up to one of `ends`: `dev sdb, sector` -> `sdb`.
fn word_after<'a>(text: &'a str, marker: &str, ends: &[char]) -> Option<&'a str> {
    let start = text.find(marker)? + marker.len();
    let rest = &text[start..];
    let word = &rest[..rest.find(ends).unwrap_or(rest.len())];
    (!word.is_empty()).then_some(word)
}

/// The word before `marker`: `... ens1f0: NIC Link is Down` -> `ens1f0`.
fn word_before<'a>(text: &'a str, marker: &str) -> Option<&'a str> {
    let before = &text[..text.find(marker)?];
    let word = before.rsplit([' ', '(']).next()?.trim_end_matches(':');
    (!word.is_empty()).then_some(word)
}

/// The kind of event a kernel log message reports, and the device it names
/// (a disk, a filesystem's device, a network interface), if any.
pub fn classify(message: &str) -> Option<(Kind, Option<String>)> {
    let found = |kind, device: Option<&str>| Some((kind, device.map(str::to_owned)));
    let m = message;
    // Disks: the SCSI layer's sense data and the block layer's errors.
    if m.contains("Medium Error")
        || m.contains("Unrecovered read error")
        || m.contains("critical medium error")
    {
        let device = word_after(m, "dev ", &[',', ' '])
            .or_else(|| word_after(m, "[", &[']']).filter(|d| !d.contains(':')));
        return found(Kind::MediumError, device);
    }
    if m.contains("I/O error") && m.contains("dev ") {
        return found(Kind::IoError, word_after(m, "dev ", &[',', ' ']));
    }
    if m.starts_with("nvme") && m.contains("I/O Error") {
        return found(Kind::IoError, m.split(':').next());
    }
    // Filesystems: ext4, XFS, btrfs.
    if m.starts_with("EXT4-fs error") || m.starts_with("BTRFS error") {
        return found(Kind::FilesystemError, word_after(m, "(device ", &[')']));
    }
    if m.starts_with("EXT4-fs (") && m.contains("read-only") {
        return found(Kind::FilesystemError, word_after(m, "EXT4-fs (", &[')']));
    }
    if m.starts_with("XFS (")
        && (m.contains("Corruption") || m.contains("I/O error") || m.contains("shut down"))
    {
        return found(Kind::FilesystemError, word_after(m, "XFS (", &[')']));
    }
    if m.starts_with("INFO: task ") && m.contains("blocked for more than") {
        return found(Kind::HungTask, None);
    }
    if m.contains("soft lockup") || m.contains("hard LOCKUP") {
        return found(Kind::SoftLockup, None);
    }
    if m.starts_with("Out of memory: Kill") || m.starts_with("Memory cgroup out of memory: Kill") {
        return found(Kind::OomKill, None);
    }
    if m.contains("NIC Link is Down") {
        return found(Kind::LinkDown, word_before(m, ": NIC Link is Down"));
    }
    if m.ends_with(": Link down") || m.ends_with(": Link is Down") {
        return found(
            Kind::LinkDown,
            word_before(m, ": Link down").or_else(|| word_before(m, ": Link is Down")),
        );
    }
    if m.contains("link status definitely down") {
        return found(Kind::LinkDown, word_after(m, "(slave ", &[')']));
    }
    if m.starts_with("mce: [Hardware Error]") || (m.starts_with("EDAC ") && m.contains(" UE ")) {
        return found(Kind::MachineCheck, None);
    }
    None
}

/// One /dev/kmsg record: `PRIORITY,SEQUENCE,MICROSECONDS,FLAGS;MESSAGE`,
/// its sequence number and message. Continuation lines (` KEY=VALUE`) are
/// not records.
pub fn parse_record(line: &str) -> Option<(u64, &str)> {
    let (prefix, message) = line.split_once(';')?;
    let mut fields = prefix.split(',');
    let _priority: u32 = fields.next()?.parse().ok()?;
    let sequence = fields.next()?.parse().ok()?;
    Some((sequence, message))
}

/// The counts so far.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Counts {
    pub events: BTreeMap<(Kind, Option<String>), u64>,
    /// Records the kernel overwrote before they were read.
    pub lost: u64,
    next_sequence: Option<u64>,
}

impl Counts {
    /// Counts the records in `text` (whole lines).
    pub fn add_records(&mut self, text: &str) {
        for (sequence, message) in text.lines().filter_map(parse_record) {
            if let Some(next) = self.next_sequence {
                self.lost = self.lost.saturating_add(sequence.saturating_sub(next));
            }
            self.next_sequence = Some(sequence.saturating_add(1));
            if let Some(event) = classify(message) {
                *self.events.entry(event).or_default() += 1;
            }
        }
    }
}

/// The kernel-log source.
pub struct KernelLogSource {
    /// `None`: not followed (`[kernel_log] enabled = false`).
    path: Option<PathBuf>,
    file: Option<File>,
    /// A record cut at the end of the last read (a regular file: tests).
    partial: String,
    counts: Counts,
    read_ok: bool,
}

impl KernelLogSource {
    pub fn new(path: Option<PathBuf>) -> Self {
        KernelLogSource {
            path,
            file: None,
            partial: String::new(),
            counts: Counts::default(),
            read_ok: false,
        }
    }

    fn failed(&self, reason: String) -> SourceError {
        SourceError::Read {
            path: self.path.clone().unwrap_or_default(),
            reason,
        }
    }

    /// Opens the log at its end: only what happens from now on is counted.
    fn open(&mut self) -> Result<(), SourceError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .map_err(|e| {
                self.failed(format!(
                    "{e}; the agent needs CAP_SYSLOG (the shipped unit grants it), or set [kernel_log] enabled = false"
                ))
            })?;
        file.seek(SeekFrom::End(0))
            .map_err(|e| self.failed(e.to_string()))?;
        self.file = Some(file);
        Ok(())
    }

    /// Reads what came since the last cycle.
    fn read_new(&mut self) -> Result<(), SourceError> {
        let Some(file) = &mut self.file else {
            return Ok(());
        };
        // /dev/kmsg gives one record per read, a regular file as much as fits.
        let mut buffer = vec![0u8; 16 * 1024];
        for _ in 0..MOST_RECORDS {
            match file.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => {
                    self.partial
                        .push_str(&String::from_utf8_lossy(&buffer[..n]));
                    if let Some(end) = self.partial.rfind('\n') {
                        let whole: String = self.partial.drain(..=end).collect();
                        self.counts.add_records(&whole);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                // The kernel overwrote records not yet read: the sequence
                // gap counts them, and the next read goes on from the oldest.
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.file = None;
                    return Err(self.failed(e.to_string()));
                }
            }
        }
        Ok(())
    }
}

impl Source for KernelLogSource {
    fn name(&self) -> &'static str {
        "kernel_log"
    }

    fn collect(&mut self, _at: Instant, report: &mut HostReport) -> Result<(), SourceError> {
        self.read_ok = false;
        if self.path.is_none() {
            return Ok(());
        }
        if self.file.is_none() {
            self.open()?;
        } else {
            self.read_new()?;
        }
        self.read_ok = true;
        report.kernel_events = self
            .counts
            .events
            .iter()
            .map(|((kind, device), total)| KernelEvents {
                kind: kind.label().to_owned(),
                device: device.clone(),
                total: *total,
            })
            .collect();
        Ok(())
    }

    fn expose(&self, f: &mut Families) {
        if !self.read_ok {
            return;
        }
        let mut events = f.counter(
            "brokerwatch_kernel_events_total",
            "Kernel log lines reporting a problem since the agent started, by kind and device (empty when the line names none).",
        );
        // Every kind from the start (at 0, naming no device), so that a
        // first event is an increase, not a new series.
        for kind in Kind::ALL {
            if !self.counts.events.keys().any(|(k, _)| *k == kind) {
                events.add(&[("kind", kind.label()), ("device", "")], 0.0);
            }
        }
        for ((kind, device), total) in &self.counts.events {
            events.add(
                &[
                    ("kind", kind.label()),
                    ("device", device.as_deref().unwrap_or("")),
                ],
                *total as f64,
            );
        }
        f.counter(
            "brokerwatch_kernel_log_lost_records_total",
            "Kernel log records overwritten before the agent read them.",
        )
        .value(self.counts.lost as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::fixture;

    #[test]
    fn real_kernel_lines_are_classified_with_their_device() {
        let text = fixture("kmsg_events");
        let mut seen = Vec::new();
        for line in text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let (expected, message) = line.split_once(" | ").unwrap();
            let got = classify(message)
                .map(|(k, d)| format!("{} {}", k.label(), d.unwrap_or_default()))
                .unwrap_or_else(|| "none".into());
            assert_eq!(got.trim_end(), expected, "{message}");
            seen.push(got);
        }
        assert!(seen.len() >= 25, "{} lines", seen.len());
    }

    #[test]
    fn records_are_counted_and_gaps_in_their_sequence_are_lost_records() {
        let mut counts = Counts::default();
        counts.add_records(
            "3,100,5000,-;EXT4-fs error (device sdb1): ext4_lookup:1808: inode #2: comm java: deleted inode referenced: 12\n SUBSYSTEM=block\n DEVICE=b8:17\n6,101,5001,-;systemd[1]: Started session.\n3,105,5002,-;EXT4-fs error (device sdb1): ext4_find_entry:1455: inode #2: comm java: reading directory lblock 0\n",
        );
        assert_eq!(
            counts.events,
            BTreeMap::from([((Kind::FilesystemError, Some("sdb1".into())), 2)])
        );
        assert_eq!(counts.lost, 3, "102 to 104 were overwritten");
        assert_eq!(parse_record(" DEVICE=b8:17"), None);
        assert_eq!(parse_record("6,7,8,-;hello"), Some((7, "hello")));
    }

    #[test]
    fn the_log_is_followed_from_its_end_across_cut_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kmsg");
        std::fs::write(&path, "3,1,1,-;Out of memory: Killed process 9 (java)\n").unwrap();
        let mut source = KernelLogSource::new(Some(path.clone()));
        let mut report = HostReport::default();
        source.collect(Instant::now(), &mut report).unwrap();
        assert!(report.kernel_events.is_empty(), "history is not news");
        let append = |text: &str| {
            use std::io::Write;
            let mut file = std::fs::OpenOptions::new()
                .append(true)
                .open(&path)
                .unwrap();
            file.write_all(text.as_bytes()).unwrap();
        };
        append("3,2,2,-;Out of memory: Killed process 10 (java) total-vm:1kB\n3,3,3,-;INFO: task java:77 blocked for ");
        source.collect(Instant::now(), &mut report).unwrap();
        assert_eq!(report.kernel_events.len(), 1);
        append("more than 120 seconds.\n");
        source.collect(Instant::now(), &mut report).unwrap();
        let totals: Vec<(String, u64)> = report
            .kernel_events
            .iter()
            .map(|e| (e.kind.clone(), e.total))
            .collect();
        assert_eq!(totals, [("hung_task".into(), 1), ("oom_kill".into(), 1)]);
        let mut families = Families::new(&[("broker_id", "1")]);
        source.expose(&mut families);
        let mut text = String::new();
        prometheus::TextEncoder::new()
            .encode_utf8(&families.into_vec(), &mut text)
            .unwrap();
        assert!(
            text.contains(
                "brokerwatch_kernel_events_total{kind=\"oom_kill\",device=\"\",broker_id=\"1\"} 1"
            ),
            "{text}"
        );
    }

    #[test]
    fn without_access_the_error_says_what_to_do() {
        let mut source = KernelLogSource::new(Some(PathBuf::from("/nonexistent/kmsg")));
        let err = source
            .collect(Instant::now(), &mut HostReport::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("CAP_SYSLOG") && !err.contains('\n'), "{err}");
    }
}
