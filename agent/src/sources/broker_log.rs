//! What the broker's own log says went wrong: the agent follows its
//! server.log (the file configured, or the one its log4j settings name,
//! found through its command line), from the end at start, across rotation
//! (a new file at the path) and truncation (copytruncate), and counts ERROR
//! and FATAL lines per logger, the class Kafka's layout puts in parentheses
//! at the end of each line.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use brokerwatch_common::codec::MAX_ITEMS;
use brokerwatch_common::exposition::Families;
use brokerwatch_common::{BrokerLogReport, HostReport, LoggerErrors};

use super::{Source, SourceError};

/// Read at most this much a cycle: a flood is caught up over cycles.
const MOST_BYTES: u64 = 16 * 1024 * 1024;
/// Loggers counted by name; the rest go under `other`.
const MOST_LOGGERS: usize = MAX_ITEMS - 1;

/// The level and logger of a log4j line in Kafka's layout
/// (`[%d] %p %m (%c)%n`): `[2026-12-01 10:00:00,123] ERROR [ReplicaFetcher
/// ...] Error for partition ... (kafka.server.ReplicaFetcherThread)`.
/// Continuation lines (a stack trace) have none.
pub fn parse_line(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix('[')?;
    let (_, rest) = rest.split_once("] ")?;
    let (level, rest) = rest.split_once(' ')?;
    let logger = rest
        .trim_end()
        .strip_suffix(')')
        .and_then(|r| r.rsplit_once('('))
        .map_or("unknown", |(_, logger)| logger);
    Some((level, logger))
}

/// Where the broker logs, from its command line: log4j 1's
/// `kafkaAppender.File` in the `-Dlog4j.configuration` file, with
/// `${kafka.logs.dir}` filled in, else `kafka.logs.dir/server.log` (what
/// Kafka's own log4j and log4j2 configs write).
pub fn log_file_from_command_line(
    args: &[String],
    read: impl Fn(&Path) -> Option<String>,
) -> Option<PathBuf> {
    let property = |name: &str| {
        args.iter()
            .flat_map(|a| a.split_whitespace())
            .find_map(|t| t.strip_prefix(&format!("-D{name}=")).map(str::to_owned))
    };
    let logs_dir = property("kafka.logs.dir");
    let from_log4j = property("log4j.configuration")
        .and_then(|config| read(Path::new(config.trim_start_matches("file:"))))
        .and_then(|text| {
            text.lines().find_map(|line| {
                let (key, value) = line.split_once('=')?;
                (key.trim() == "log4j.appender.kafkaAppender.File").then(|| value.trim().to_owned())
            })
        })
        .map(|file| match &logs_dir {
            Some(dir) => file.replace("${kafka.logs.dir}", dir),
            None => file,
        })
        .filter(|file| !file.contains("${"));
    from_log4j
        .map(PathBuf::from)
        .or_else(|| logs_dir.map(|dir| Path::new(&dir).join("server.log")))
}

/// ERROR and FATAL lines per logger.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Counts {
    by_logger: BTreeMap<String, (u64, u64)>,
}

impl Counts {
    pub fn add_lines(&mut self, text: &str) {
        for (level, logger) in text.lines().filter_map(parse_line) {
            let fatal = match level {
                "ERROR" => false,
                "FATAL" => true,
                _ => continue,
            };
            let key = if self.by_logger.contains_key(logger) || self.by_logger.len() < MOST_LOGGERS
            {
                logger
            } else {
                "other"
            };
            let (errors, fatals) = self.by_logger.entry(key.to_owned()).or_default();
            *if fatal { fatals } else { errors } += 1;
        }
    }

    pub fn loggers(&self) -> Vec<LoggerErrors> {
        self.by_logger
            .iter()
            .map(|(logger, (errors, fatals))| LoggerErrors {
                logger: logger.clone(),
                errors_total: *errors,
                fatals_total: *fatals,
            })
            .collect()
    }
}

/// A file followed across rotation.
#[derive(Debug)]
struct Followed {
    path: PathBuf,
    file: File,
    inode: u64,
    position: u64,
    partial: String,
}

impl Followed {
    /// Opens `path` at its end.
    fn open_at_end(path: &Path) -> std::io::Result<Followed> {
        let mut file = File::open(path)?;
        let position = file.seek(SeekFrom::End(0))?;
        let inode = file.metadata()?.ino();
        Ok(Followed {
            path: path.to_owned(),
            file,
            inode,
            position,
            partial: String::new(),
        })
    }

    /// The whole lines written since the last call, at most `MOST_BYTES`.
    fn read_new(&mut self) -> std::io::Result<String> {
        let mut text = self.read_rest()?;
        // Rotated: a new file at the path. The old one was read to its end
        // above; the new one is read from its start.
        match std::fs::metadata(&self.path) {
            Ok(meta) if meta.ino() != self.inode => {
                self.file = File::open(&self.path)?;
                self.inode = self.file.metadata()?.ino();
                self.position = 0;
                self.partial.clear();
                text.push_str(&self.read_rest()?);
            }
            Ok(meta) if meta.len() < self.position => {
                // Truncated in place (copytruncate): from the start again.
                self.position = 0;
                self.partial.clear();
                text.push_str(&self.read_rest()?);
            }
            _ => {}
        }
        Ok(text)
    }

    fn read_rest(&mut self) -> std::io::Result<String> {
        self.file.seek(SeekFrom::Start(self.position))?;
        let mut bytes = Vec::new();
        let read = (&mut self.file).take(MOST_BYTES).read_to_end(&mut bytes)?;
        self.position += read as u64;
        self.partial.push_str(&String::from_utf8_lossy(&bytes));
        Ok(match self.partial.rfind('\n') {
            Some(end) => self.partial.drain(..=end).collect(),
            None => String::new(),
        })
    }
}

/// The broker-log source: after the process source, whose pid it reads
/// from the report to find the file when none is configured.
pub struct BrokerLogSource {
    enabled: bool,
    configured: Option<PathBuf>,
    proc: PathBuf,
    followed: Option<Followed>,
    counts: Counts,
    read_ok: bool,
}

impl BrokerLogSource {
    /// `None`: not followed; `Some(None)`: the file the broker's command
    /// line names; `Some(Some(path))`: that file.
    pub fn new(setting: Option<Option<PathBuf>>, proc: &Path) -> Self {
        BrokerLogSource {
            enabled: setting.is_some(),
            configured: setting.flatten(),
            proc: proc.to_owned(),
            followed: None,
            counts: Counts::default(),
            read_ok: false,
        }
    }

    /// The log file: configured, or from the running broker's command line
    /// (read as the broker sees its files).
    fn locate(&self, pid: Option<i32>) -> Option<PathBuf> {
        if let Some(path) = &self.configured {
            return Some(path.clone());
        }
        let pid = pid?;
        let args = procfs::process::Process::new_with_root(self.proc.join(pid.to_string()))
            .and_then(|p| p.cmdline())
            .ok()?;
        let seen = |path: &Path| super::process::as_seen_by(&self.proc, Some(pid), path);
        log_file_from_command_line(&args, |path| std::fs::read_to_string(seen(path)).ok())
            .map(|path| seen(&path))
    }
}

impl Source for BrokerLogSource {
    fn name(&self) -> &'static str {
        "broker_log"
    }

    fn collect(&mut self, _at: Instant, report: &mut HostReport) -> Result<(), SourceError> {
        self.read_ok = false;
        if !self.enabled {
            return Ok(());
        }
        if self.followed.is_none() {
            let pid = report.broker_process.as_ref().map(|p| p.pid);
            let Some(path) = self.locate(pid) else {
                // No broker to read it from yet, and none configured: nothing to follow.
                return Ok(());
            };
            self.followed = Some(Followed::open_at_end(&path).map_err(|e| SourceError::Read {
                path: path.clone(),
                reason: format!("{e}; set [broker] log_file, or give the agent the broker's group (SupplementaryGroups in the unit)"),
            })?);
        } else if let Some(followed) = &mut self.followed {
            match followed.read_new() {
                Ok(text) => self.counts.add_lines(&text),
                Err(e) => {
                    let path = followed.path.clone();
                    // Opened afresh (at its end) next cycle.
                    self.followed = None;
                    return Err(SourceError::Read {
                        path,
                        reason: e.to_string(),
                    });
                }
            }
        }
        self.read_ok = true;
        report.broker_log = self.followed.as_ref().map(|f| BrokerLogReport {
            file: f.path.display().to_string(),
            errors: self.counts.loggers(),
        });
        Ok(())
    }

    fn expose(&self, f: &mut Families) {
        if !self.read_ok || self.followed.is_none() {
            return;
        }
        let mut lines = f.counter(
            "brokerwatch_broker_log_lines_total",
            "ERROR and FATAL lines in the broker's log since the agent started, by level and logger.",
        );
        for (logger, (errors, fatals)) in &self.counts.by_logger {
            lines.add(&[("level", "ERROR"), ("logger", logger)], *errors as f64);
            if *fatals > 0 {
                lines.add(&[("level", "FATAL"), ("logger", logger)], *fatals as f64);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::fixture;
    use std::io::Write;

    #[test]
    fn kafka_lines_give_their_level_and_logger() {
        let text = fixture("server.log");
        let mut counts = Counts::default();
        counts.add_lines(&text);
        let loggers = counts.loggers();
        let by_name: BTreeMap<&str, (u64, u64)> = loggers
            .iter()
            .map(|l| (l.logger.as_str(), (l.errors_total, l.fatals_total)))
            .collect();
        assert_eq!(
            by_name,
            BTreeMap::from([
                ("kafka.server.ReplicaFetcherThread", (2, 0)),
                ("kafka.server.LogDirFailureChannel", (1, 0)),
                ("kafka.server.KafkaServer", (0, 1)),
                ("unknown", (1, 0)),
            ])
        );
        assert_eq!(
            parse_line("[2026-12-01 10:00:00,123] INFO [KafkaServer id=1] started (kafka.server.KafkaServer)"),
            Some(("INFO", "kafka.server.KafkaServer"))
        );
        assert_eq!(
            parse_line("\tat kafka.log.Log.append(Log.scala:1042)"),
            None
        );
    }

    #[test]
    fn the_file_is_found_as_kafkas_scripts_start_the_broker() {
        let args: Vec<String> = "java -Xmx6g -Dkafka.logs.dir=/var/log/kafka -Dlog4j.configuration=file:/etc/kafka/log4j.properties -cp /opt/kafka/libs/* kafka.Kafka /etc/kafka/server.properties"
            .split(' ')
            .map(str::to_owned)
            .collect();
        let log4j = |file: &str| {
            let file = file.to_owned();
            move |path: &Path| {
                (path == Path::new("/etc/kafka/log4j.properties")).then(|| file.clone())
            }
        };
        assert_eq!(
            log_file_from_command_line(&args, log4j("log4j.appender.kafkaAppender=org.apache.log4j.DailyRollingFileAppender\nlog4j.appender.kafkaAppender.File=${kafka.logs.dir}/broker-main.log\n")),
            Some(PathBuf::from("/var/log/kafka/broker-main.log"))
        );
        assert_eq!(
            log_file_from_command_line(&args, |_| None),
            Some(PathBuf::from("/var/log/kafka/server.log"))
        );
        assert_eq!(
            log_file_from_command_line(&["java".into(), "kafka.Kafka".into()], |_| None),
            None
        );
    }

    #[test]
    fn the_log_is_followed_across_rotation_truncation_and_cut_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.log");
        let error = |n: u32| {
            format!("[2026-12-01 10:00:{n:02},000] ERROR boom {n} (kafka.log.LogManager)\n")
        };
        std::fs::write(&path, error(0)).unwrap();
        let mut source = BrokerLogSource::new(Some(Some(path.clone())), Path::new("/proc"));
        let mut report = HostReport::default();
        let errors = |source: &mut BrokerLogSource, report: &mut HostReport| {
            source.collect(Instant::now(), report).unwrap();
            report
                .broker_log
                .as_ref()
                .map_or(0, |l| l.errors.iter().map(|e| e.errors_total).sum::<u64>())
        };
        assert_eq!(errors(&mut source, &mut report), 0, "history is not news");
        let append = |text: &str| {
            let mut file = std::fs::OpenOptions::new()
                .append(true)
                .open(&path)
                .unwrap();
            file.write_all(text.as_bytes()).unwrap();
        };
        append(&error(1));
        append("[2026-12-01 10:00:02,000] ERROR half a li");
        assert_eq!(errors(&mut source, &mut report), 1);
        append("ne (kafka.log.LogManager)\n");
        assert_eq!(errors(&mut source, &mut report), 2);
        // Rotated: renamed away, a line more in the old file, a new file.
        std::fs::rename(&path, dir.path().join("server.log.1")).unwrap();
        {
            let mut old = std::fs::OpenOptions::new()
                .append(true)
                .open(dir.path().join("server.log.1"))
                .unwrap();
            old.write_all(error(3).as_bytes()).unwrap();
        }
        std::fs::write(&path, error(4)).unwrap();
        assert_eq!(
            errors(&mut source, &mut report),
            4,
            "the old file's last line and the new file's"
        );
        // Truncated in place (shorter than what was read of it).
        std::fs::write(&path, "[2026-12-01 10:00:05,000] ERROR y (k.L)\n").unwrap();
        assert_eq!(errors(&mut source, &mut report), 5);
    }
}
