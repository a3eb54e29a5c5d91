//! Which broker this host runs, when neither `--broker-id` nor the config
//! says: the running broker's id, as Kafka itself settles it. First an
//! `--override broker.id=N` (or `node.id`) on its command line, then
//! `broker.id` (ZooKeeper mode) or `node.id` (KRaft) in the
//! server.properties it was started with, then `meta.properties` in its log
//! dirs, which Kafka writes on first start and which holds the id even when
//! server.properties leaves it to be generated (`broker.id=-1`).

use std::path::{Path, PathBuf};

use crate::sources::logdirs::{parse_log_dirs, LogDirLocations};
use crate::sources::process::{as_seen_by, BrokerFinder, DEFAULT_PATTERN};

/// A broker id and where it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub id: i32,
    pub from: String,
}

/// The id a properties text gives: `node.id` or `broker.id`, whichever
/// comes last; `None` when absent or negative (left to be generated).
pub fn id_in_properties(text: &str) -> Option<i32> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && !l.starts_with('!'))
        .filter_map(|l| l.split_once(['=', ':']))
        .filter(|(key, _)| matches!(key.trim(), "node.id" | "broker.id"))
        .filter_map(|(_, value)| value.trim().parse::<i32>().ok())
        .next_back()
        .filter(|id| *id >= 0)
}

/// What a broker's command line says: the server.properties after the main
/// class, and any id given with `--override`.
#[derive(Debug, Default, PartialEq)]
pub struct CommandLine {
    pub server_properties: Option<PathBuf>,
    pub override_id: Option<i32>,
}

/// Reads a broker's command line (its arguments, which may hold spaces when
/// a wrapper rewrote them).
pub fn parse_command_line(args: &[String], pattern: &str) -> CommandLine {
    let tokens: Vec<&str> = args.iter().flat_map(|a| a.split_whitespace()).collect();
    let after_main = tokens
        .iter()
        .position(|t| t.contains(pattern))
        .map_or(0, |at| at + 1);
    let rest = &tokens[after_main.min(tokens.len())..];
    let server_properties = rest
        .iter()
        .find(|t| !t.starts_with('-') && t.ends_with(".properties"))
        .map(PathBuf::from);
    let override_id = rest
        .windows(2)
        .filter(|w| w[0] == "--override")
        .filter_map(|w| id_in_properties(w[1]))
        .next_back();
    CommandLine {
        server_properties,
        override_id,
    }
}

/// Reads `path` as the process `pid` sees it.
fn read_as_seen_by(proc: &Path, pid: Option<i32>, path: &Path) -> Option<String> {
    std::fs::read_to_string(as_seen_by(proc, pid, path)).ok()
}

/// The broker id of this host, or a one-line reason naming what was tried.
pub fn discover(
    proc: &Path,
    finder: Option<&BrokerFinder>,
    locations: &LogDirLocations,
) -> Result<Found, String> {
    let pid = finder.cloned().and_then(|mut f| f.find(proc));
    let command_line = pid
        .and_then(|pid| {
            procfs::process::Process::new_with_root(proc.join(pid.to_string()))
                .and_then(|p| p.cmdline())
                .ok()
        })
        .map(|args| parse_command_line(&args, DEFAULT_PATTERN))
        .unwrap_or_default();
    if let (Some(id), Some(pid)) = (command_line.override_id, pid) {
        return Ok(Found {
            id,
            from: format!("--override on the command line of broker process {pid}"),
        });
    }
    // A relative path is the broker's working directory's.
    let server_properties = locations.server_properties.clone().or_else(|| {
        let path = command_line.server_properties?;
        if path.is_absolute() {
            Some(path)
        } else {
            let cwd = std::fs::read_link(proc.join(pid?.to_string()).join("cwd")).ok()?;
            Some(cwd.join(path))
        }
    });
    let properties = server_properties
        .as_ref()
        .and_then(|path| read_as_seen_by(proc, pid, path).map(|text| (path, text)));
    if let Some((path, text)) = &properties {
        if let Some(id) = id_in_properties(text) {
            return Ok(Found {
                id,
                from: path.display().to_string(),
            });
        }
    }
    let log_dirs = if locations.log_dirs.is_empty() {
        properties
            .as_ref()
            .map(|(_, text)| parse_log_dirs(text))
            .unwrap_or_default()
    } else {
        locations.log_dirs.clone()
    };
    for dir in &log_dirs {
        let meta = dir.join("meta.properties");
        if let Some(id) = read_as_seen_by(proc, pid, &meta).and_then(|t| id_in_properties(&t)) {
            return Ok(Found {
                id,
                from: meta.display().to_string(),
            });
        }
    }
    Err(match (pid, &server_properties) {
        (None, None) if finder.is_none() => "not set, and with [broker] enabled = false there is no broker process to read it from; pass --broker-id N or set broker_id to this host's Kafka broker.id".to_owned(),
        (None, None) => format!("not set, and no running broker (a process with {DEFAULT_PATTERN} in its command line) to read it from; pass --broker-id N or set broker_id to this host's Kafka broker.id"),
        (_, None) => "not set, and the broker's command line names no server.properties; pass --broker-id N, set broker_id, or set log_dirs.server_properties".to_owned(),
        (_, Some(path)) => format!(
            "not set, and neither {} nor meta.properties in the log dirs ({}) gives broker.id or node.id; pass --broker-id N or set broker_id",
            path.display(),
            log_dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ")
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split(' ').map(str::to_owned).collect()
    }

    #[test]
    fn the_id_is_node_id_or_broker_id_and_a_generated_one_is_none() {
        assert_eq!(id_in_properties("broker.id=7\n"), Some(7));
        assert_eq!(id_in_properties("# node.id=1\nnode.id = 3\n"), Some(3));
        assert_eq!(
            id_in_properties("process.roles=broker\nnode.id: 12\n"),
            Some(12)
        );
        assert_eq!(id_in_properties("broker.id=-1\n"), None);
        assert_eq!(id_in_properties("log.dirs=/data\n"), None);
        assert_eq!(id_in_properties("broker.id=x\n"), None);
        // meta.properties as Kafka writes it.
        assert_eq!(
            id_in_properties(
                "#\n#Tue Dec 01 10:00:00 UTC 2026\ncluster.id=abc\nversion=1\nnode.id=4\n"
            ),
            Some(4)
        );
    }

    #[test]
    fn the_command_line_gives_the_properties_file_and_any_override() {
        let line = parse_command_line(
            &args("java -Xmx6g -Dlog4j.configuration=file:/etc/kafka/log4j.properties -cp /opt/kafka/libs/* kafka.Kafka /etc/kafka/server.properties --override broker.id=9"),
            DEFAULT_PATTERN,
        );
        assert_eq!(
            line,
            CommandLine {
                server_properties: Some(PathBuf::from("/etc/kafka/server.properties")),
                override_id: Some(9),
            }
        );
        // A wrapper that rewrote argv[0] into one string with spaces.
        let wrapped = parse_command_line(
            &[
                "java kafka.Kafka config/kraft/server.properties".to_owned(),
                "60".to_owned(),
            ],
            DEFAULT_PATTERN,
        );
        assert_eq!(
            wrapped.server_properties,
            Some(PathBuf::from("config/kraft/server.properties"))
        );
        assert_eq!(wrapped.override_id, None);
        assert_eq!(
            parse_command_line(&args("java -cp x Main"), DEFAULT_PATTERN),
            CommandLine::default()
        );
    }

    #[test]
    fn configured_properties_then_meta_properties_give_the_id_and_nothing_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let properties = dir.path().join("server.properties");
        std::fs::write(
            &properties,
            format!("broker.id=5\nlog.dirs={}\n", data.display()),
        )
        .unwrap();
        let locations = LogDirLocations {
            server_properties: Some(properties.clone()),
            log_dirs: Vec::new(),
        };
        let proc = dir.path().join("no-proc");
        assert_eq!(
            discover(&proc, None, &locations),
            Ok(Found {
                id: 5,
                from: properties.display().to_string()
            })
        );
        // Left to be generated: meta.properties in the log dir has it.
        std::fs::write(
            &properties,
            format!("broker.id=-1\nlog.dirs={}\n", data.display()),
        )
        .unwrap();
        let err = discover(&proc, None, &locations).unwrap_err();
        assert!(
            err.contains("neither") && err.contains(&data.display().to_string()),
            "{err}"
        );
        std::fs::write(data.join("meta.properties"), "version=0\nbroker.id=1001\n").unwrap();
        let found = discover(&proc, None, &locations).unwrap();
        assert_eq!(found.id, 1001);
        assert!(found.from.ends_with("data/meta.properties"), "{found:?}");

        let nothing = discover(&proc, None, &LogDirLocations::default()).unwrap_err();
        assert!(nothing.contains("[broker] enabled = false"), "{nothing}");
        assert!(!nothing.contains('\n'));
    }
}
