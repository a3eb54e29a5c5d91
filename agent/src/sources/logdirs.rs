//! The broker's log dirs and the disks under them: `log.dirs` from
//! server.properties, each dir's mount from /proc/self/mountinfo, and the
//! mount's block device resolved through /sys to the disks that really hold
//! the data (a partition to its disk, device-mapper/LVM and md RAID to their
//! members), so that the collector can compare the disks inside one broker.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use brokerwatch_common::exposition::Families;
use brokerwatch_common::{HostReport, LogDirReport};
use procfs::process::MountInfo;

use super::{HostPaths, Source, SourceError};

pub mod partitions;

/// The log dirs a `server.properties` names: `log.dirs`, else `log.dir`,
/// else Kafka's default.
pub fn parse_log_dirs(server_properties: &str) -> Vec<PathBuf> {
    let mut dirs = None;
    let mut dir = None;
    for line in server_properties.lines().map(str::trim) {
        if line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let Some((key, value)) = line.split_once(['=', ':']) else {
            continue;
        };
        match key.trim() {
            "log.dirs" => dirs = Some(value.trim().to_owned()),
            "log.dir" => dir = Some(value.trim().to_owned()),
            _ => {}
        }
    }
    dirs.or(dir)
        .unwrap_or_else(|| "/tmp/kafka-logs".to_owned())
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .collect()
}

/// Parses /proc/self/mountinfo, skipping lines it cannot read.
pub fn parse_mountinfo(text: &str) -> Vec<MountInfo> {
    text.lines()
        .filter_map(|line| MountInfo::from_line(line).ok())
        .collect()
}

/// The mount a path lives on: the longest mount point that is a prefix of it.
pub fn mount_of<'a>(path: &Path, mounts: &'a [MountInfo]) -> Option<&'a MountInfo> {
    mounts
        .iter()
        .filter(|m| path.starts_with(&m.mount_point))
        .max_by_key(|m| m.mount_point.as_os_str().len())
}

/// The kernel name of a block device, from its `major:minor`.
pub fn device_name(sys: &Path, majmin: &str) -> Option<String> {
    let target = std::fs::canonicalize(sys.join("dev/block").join(majmin)).ok()?;
    Some(target.file_name()?.to_string_lossy().into_owned())
}

/// The disks that hold a block device's data: a partition resolves to its
/// disk, a device-mapper or md device to its members (recursively), a disk to itself.
pub fn underlying_disks(sys: &Path, name: &str) -> Vec<String> {
    let mut disks = Vec::new();
    collect_disks(sys, name, &mut disks, 0);
    disks.sort();
    disks.dedup();
    disks
}

fn collect_disks(sys: &Path, name: &str, disks: &mut Vec<String>, depth: usize) {
    // Stacks are shallow (LVM on md on partitions): a loop in a broken /sys stops here.
    if depth > 8 {
        return;
    }
    let Ok(dir) = std::fs::canonicalize(sys.join("class/block").join(name)) else {
        disks.push(name.to_owned());
        return;
    };
    if dir.join("partition").exists() {
        match dir.parent().and_then(Path::file_name) {
            Some(parent) => collect_disks(sys, &parent.to_string_lossy(), disks, depth + 1),
            None => disks.push(name.to_owned()),
        }
        return;
    }
    let mut slaves: Vec<String> = std::fs::read_dir(dir.join("slaves"))
        .map(|entries| {
            entries
                .filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().into_owned()))
                .collect()
        })
        .unwrap_or_default();
    if slaves.is_empty() {
        disks.push(name.to_owned());
    } else {
        slaves.sort();
        for slave in slaves {
            collect_disks(sys, &slave, disks, depth + 1);
        }
    }
}

/// A log dir and where its data sits.
#[derive(Debug, Clone, PartialEq)]
pub struct LogDirPlacement {
    pub log_dir: PathBuf,
    pub mount_point: PathBuf,
    /// The mounted block device (`dm-0`, `md0`, `sda1`); `None` for a
    /// filesystem without one (tmpfs, overlay, NFS).
    pub device: Option<String>,
    /// The disks under it.
    pub disks: Vec<String>,
}

pub fn place(log_dir: &Path, mounts: &[MountInfo], sys: &Path) -> Option<LogDirPlacement> {
    let mount = mount_of(log_dir, mounts)?;
    // Major 0 is an anonymous device: tmpfs, overlay, NFS, btrfs subvolumes.
    let device = if mount.majmin.starts_with("0:") {
        None
    } else {
        device_name(sys, &mount.majmin)
    };
    let disks = device
        .as_deref()
        .map(|d| underlying_disks(sys, d))
        .unwrap_or_default();
    Some(LogDirPlacement {
        log_dir: log_dir.to_path_buf(),
        mount_point: mount.mount_point.clone(),
        device,
        disks,
    })
}

/// Used and free bytes of the filesystem a path is on (free as an
/// unprivileged writer sees it, as `df` does).
pub fn filesystem_usage(path: &Path) -> std::io::Result<(u64, u64)> {
    let stats = rustix::fs::statvfs(path)?;
    let block = stats.f_frsize;
    Ok((
        (stats.f_blocks - stats.f_bfree) * block,
        stats.f_bavail * block,
    ))
}

/// Where the log dirs come from: the broker's server.properties, or a list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogDirLocations {
    pub server_properties: Option<PathBuf>,
    pub log_dirs: Vec<PathBuf>,
}

impl LogDirLocations {
    pub fn is_configured(&self) -> bool {
        self.server_properties.is_some() || !self.log_dirs.is_empty()
    }
}

/// Reads every log dir's placement, usage, partitions and bytes.
pub fn read_log_dirs(
    source: &LogDirLocations,
    proc: &Path,
    sys: &Path,
) -> Result<Vec<brokerwatch_common::LogDirReport>, super::SourceError> {
    read_log_dirs_written(source, proc, sys, &mut partitions::Written::default(), 0.0)
}

/// [`read_log_dirs`], with each partition's written rate from `written`'s
/// earlier scans (`at`: seconds on any steady clock).
pub fn read_log_dirs_written(
    source: &LogDirLocations,
    proc: &Path,
    sys: &Path,
    written: &mut partitions::Written,
    at: f64,
) -> Result<Vec<brokerwatch_common::LogDirReport>, super::SourceError> {
    let dirs = match &source.server_properties {
        Some(path) if source.log_dirs.is_empty() => {
            parse_log_dirs(&std::fs::read_to_string(path).map_err(|e| {
                super::SourceError::Read {
                    path: path.clone(),
                    reason: format!(
                        "{e} (the broker's server.properties, from log_dirs.server_properties)"
                    ),
                }
            })?)
        }
        _ => source.log_dirs.clone(),
    };
    let mountinfo_path = proc.join("self/mountinfo");
    let mounts = parse_mountinfo(&std::fs::read_to_string(&mountinfo_path).map_err(|e| {
        super::SourceError::Read {
            path: mountinfo_path.clone(),
            reason: e.to_string(),
        }
    })?);
    dirs.iter()
        .map(|dir| {
            let placement = place(dir, &mounts, sys).ok_or_else(|| {
                super::SourceError::parse(
                    &mountinfo_path,
                    format!("no mount holds {}", dir.display()),
                )
            })?;
            let (used_bytes, free_bytes) =
                filesystem_usage(dir).map_err(|e| super::SourceError::Read {
                    path: dir.clone(),
                    reason: format!("{e}; is the log dir there and readable by the agent?"),
                })?;
            let scan = partitions::scan(dir);
            let log_dir = dir.display().to_string();
            let rates = written.update(&log_dir, &scan, at);
            let (topics, largest_partitions) = partitions::summarize(&scan, &rates);
            Ok(brokerwatch_common::LogDirReport {
                log_dir,
                mount_point: placement.mount_point.display().to_string(),
                device: placement.device,
                disks: placement.disks,
                used_bytes,
                free_bytes,
                partitions: scan.len() as u64,
                size_bytes: scan.iter().map(|p| p.bytes).sum(),
                topics,
                largest_partitions,
            })
        })
        .collect()
}

/// Log dirs are walked this often, not every cycle: a broker holds thousands
/// of partition directories, and their sizes move slowly.
pub const LOG_DIR_REFRESH: Duration = Duration::from_secs(60);

/// The log-dir source: the broker's log dirs mapped to their disks, with
/// their usage, every [`LOG_DIR_REFRESH`]. A failed read keeps the last good
/// one (and is counted) rather than reporting nothing.
pub struct LogDirsSource {
    locations: LogDirLocations,
    paths: HostPaths,
    last: Option<(Instant, Vec<LogDirReport>)>,
    /// Each partition's growth from scan to scan, and the clock it is timed on.
    written: partitions::Written,
    started: Instant,
}

impl LogDirsSource {
    pub fn new(paths: &HostPaths, locations: LogDirLocations) -> Self {
        LogDirsSource {
            locations,
            paths: paths.clone(),
            last: None,
            written: partitions::Written::default(),
            started: Instant::now(),
        }
    }
}

impl Source for LogDirsSource {
    fn name(&self) -> &'static str {
        "logdirs"
    }

    fn collect(&mut self, _at: Instant, report: &mut HostReport) -> Result<(), SourceError> {
        if !self.locations.is_configured() {
            return Ok(());
        }
        let fresh = self
            .last
            .as_ref()
            .is_some_and(|(at, _)| at.elapsed() < LOG_DIR_REFRESH);
        let mut result = Ok(());
        if !fresh {
            match read_log_dirs_written(
                &self.locations,
                &self.paths.proc,
                &self.paths.sys,
                &mut self.written,
                self.started.elapsed().as_secs_f64(),
            ) {
                Ok(reports) => self.last = Some((Instant::now(), reports)),
                Err(e) => result = Err(e),
            }
        }
        report.log_dirs = self
            .last
            .as_ref()
            .map(|(_, reports)| reports.clone())
            .unwrap_or_default();
        result
    }

    fn expose(&self, f: &mut Families) {
        if !self.locations.is_configured() {
            return;
        }
        let log_dirs = self.last.as_ref().map_or(&[][..], |(_, d)| d.as_slice());
        type Level = fn(&brokerwatch_common::LogDirReport) -> u64;
        let levels: [(&str, &str, Level); 4] = [
            (
                "brokerwatch_logdir_used_bytes",
                "Bytes used on the log dir's filesystem.",
                |d| d.used_bytes,
            ),
            (
                "brokerwatch_logdir_free_bytes",
                "Bytes free on the log dir's filesystem.",
                |d| d.free_bytes,
            ),
            (
                "brokerwatch_logdir_partitions",
                "Partition directories in the log dir.",
                |d| d.partitions,
            ),
            (
                "brokerwatch_logdir_size_bytes",
                "Bytes the log dir's partitions hold.",
                |d| d.size_bytes,
            ),
        ];
        for (name, help, level) in levels {
            let mut family = f.gauge(name, help);
            for d in log_dirs {
                family.add(
                    &[
                        ("log_dir", &d.log_dir),
                        ("device", d.device.as_deref().unwrap_or("none")),
                    ],
                    level(d) as f64,
                );
            }
        }
        let mut disks = f.gauge(
            "brokerwatch_logdir_disk_info",
            "1 for each disk under a log dir (partitions, LVM and md resolved).",
        );
        for d in log_dirs {
            for disk in &d.disks {
                disks.add(&[("log_dir", &d.log_dir), ("disk", disk)], 1.0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn log_dirs_come_from_server_properties() {
        let text = "# broker\nbroker.id=3\nlog.dir=/ignored\nlog.dirs=/data/kafka-1, /data/kafka-2,/data/kafka-3\nnum.partitions = 8\n";
        assert_eq!(
            parse_log_dirs(text),
            [
                PathBuf::from("/data/kafka-1"),
                "/data/kafka-2".into(),
                "/data/kafka-3".into()
            ]
        );
        assert_eq!(
            parse_log_dirs("log.dir = /var/kafka\n"),
            [PathBuf::from("/var/kafka")]
        );
        assert_eq!(
            parse_log_dirs("#log.dirs=/nope\n"),
            [PathBuf::from("/tmp/kafka-logs")]
        );
    }

    const MOUNTINFO: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 8:2 / / rw,relatime - ext4 /dev/sda2 rw
40 27 8:17 / /data/plain rw,noatime - xfs /dev/sdb1 rw
41 27 8:32 / /data/whole rw,noatime - xfs /dev/sdc rw
42 27 253:0 / /data/lvm rw,noatime - xfs /dev/mapper/vg-kafka rw
43 27 9:0 / /data/raid rw,noatime - ext4 /dev/md0 rw
44 27 0:45 / /data/tmp rw - tmpfs tmpfs rw
garbage line
";

    /// A /sys with: sda (partitions sda1, sda2), sdb (partition sdb1), sdc
    /// whole, LVM dm-0 on sdd and sde, md0 (RAID1) on sdf1 and sdg1.
    fn fixture_sys(root: &Path) -> PathBuf {
        let sys = root.join("sys");
        let devices = sys.join("devices/pci/block");
        let add = |name: &str, parent: Option<&str>, majmin: &str, slaves: &[&str]| {
            let dir = match parent {
                Some(p) => devices.join(p).join(name),
                None => devices.join(name),
            };
            std::fs::create_dir_all(&dir).unwrap();
            if parent.is_some() {
                std::fs::write(dir.join("partition"), "1\n").unwrap();
            }
            if !slaves.is_empty() {
                std::fs::create_dir_all(dir.join("slaves")).unwrap();
                for s in slaves {
                    std::fs::write(dir.join("slaves").join(s), "").unwrap();
                }
            }
            for link in [
                sys.join("class/block").join(name),
                sys.join("dev/block").join(majmin),
            ] {
                std::fs::create_dir_all(link.parent().unwrap()).unwrap();
                symlink(&dir, link).unwrap();
            }
        };
        add("sda", None, "8:0", &[]);
        add("sda2", Some("sda"), "8:2", &[]);
        add("sdb", None, "8:16", &[]);
        add("sdb1", Some("sdb"), "8:17", &[]);
        add("sdc", None, "8:32", &[]);
        add("sdd", None, "8:48", &[]);
        add("sde", None, "8:64", &[]);
        add("dm-0", None, "253:0", &["sdd", "sde"]);
        add("sdf", None, "8:80", &[]);
        add("sdf1", Some("sdf"), "8:81", &[]);
        add("sdg", None, "8:96", &[]);
        add("sdg1", Some("sdg"), "8:97", &[]);
        add("md0", None, "9:0", &["sdf1", "sdg1"]);
        sys
    }

    #[test]
    fn log_dirs_map_to_their_disks_through_partitions_lvm_and_md() {
        let dir = tempfile::tempdir().unwrap();
        let sys = fixture_sys(dir.path());
        let mounts = parse_mountinfo(MOUNTINFO);
        assert_eq!(mounts.len(), 7, "the garbled line is skipped");
        let placed = |path: &str| place(Path::new(path), &mounts, &sys).unwrap();

        let plain = placed("/data/plain/kafka");
        assert_eq!(plain.mount_point, PathBuf::from("/data/plain"));
        assert_eq!(plain.device.as_deref(), Some("sdb1"));
        assert_eq!(plain.disks, ["sdb"], "a partition resolves to its disk");
        assert_eq!(placed("/data/whole/kafka").disks, ["sdc"]);
        let lvm = placed("/data/lvm/kafka");
        assert_eq!(lvm.device.as_deref(), Some("dm-0"));
        assert_eq!(lvm.disks, ["sdd", "sde"], "LVM over two disks");
        let raid = placed("/data/raid/kafka");
        assert_eq!(raid.device.as_deref(), Some("md0"));
        assert_eq!(
            raid.disks,
            ["sdf", "sdg"],
            "RAID1 members, partitions resolved"
        );
        let root = placed("/var/lib/kafka");
        assert_eq!(
            (root.mount_point, root.disks),
            (PathBuf::from("/"), vec!["sda".to_owned()])
        );
        let tmp = placed("/data/tmp/kafka");
        assert_eq!(
            (tmp.device, tmp.disks),
            (None, Vec::<String>::new()),
            "tmpfs has no block device"
        );
    }

    #[test]
    fn this_machines_root_filesystem_maps_to_a_real_disk() {
        let mounts = parse_mountinfo(&std::fs::read_to_string("/proc/self/mountinfo").unwrap());
        let root = place(Path::new("/"), &mounts, Path::new("/sys")).unwrap();
        assert_eq!(root.mount_point, PathBuf::from("/"));
        let device = root.device.expect("the root filesystem has a block device");
        assert!(
            Path::new("/sys/class/block").join(&device).exists(),
            "{device}"
        );
        assert!(!root.disks.is_empty());
        for disk in &root.disks {
            assert!(
                !Path::new("/sys/class/block")
                    .join(disk)
                    .join("partition")
                    .exists(),
                "{disk} is a whole disk"
            );
            let diskstats = std::fs::read_to_string("/proc/diskstats").unwrap();
            assert!(
                diskstats.split_whitespace().any(|w| w == disk),
                "{disk} is in /proc/diskstats"
            );
        }
    }

    #[test]
    fn a_configured_log_dir_on_this_machine_is_read_in_full() {
        let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        std::fs::create_dir(dir.path().join("orders-0")).unwrap();
        std::fs::write(
            dir.path().join("orders-0/00000000000000000000.log"),
            vec![1u8; 4096],
        )
        .unwrap();
        let properties = dir.path().join("server.properties");
        std::fs::write(&properties, format!("log.dirs={}\n", dir.path().display())).unwrap();
        let source = LogDirLocations {
            server_properties: Some(properties),
            log_dirs: Vec::new(),
        };
        let reports = read_log_dirs(&source, Path::new("/proc"), Path::new("/sys")).unwrap();
        assert_eq!(reports.len(), 1);
        let report = &reports[0];
        assert_eq!((report.partitions, report.size_bytes), (1, 4096));
        assert!(report.used_bytes > 0 && report.free_bytes > 0);
        assert!(!report.disks.is_empty(), "{report:?}");
        let missing = LogDirLocations {
            server_properties: Some("/nonexistent/server.properties".into()),
            log_dirs: Vec::new(),
        };
        let err = read_log_dirs(&missing, Path::new("/proc"), Path::new("/sys"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("cannot read /nonexistent/server.properties: "),
            "{err}"
        );
    }
}
