//! What the collector keeps across restarts, written atomically: the state
//! (`state.json`, every evaluation) and the traffic history (`traffic.json`,
//! every few minutes: it is larger and changes slowly).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::alerts::state::AlertBook;
use crate::model::anomaly::Series;
use crate::model::topics::TopicMemory;

/// The collector's state file (`STATE_DIR/state.json`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Persisted {
    pub alerts: AlertBook,
    /// When each broker's agent last reported (Unix seconds): an agent that
    /// went silent before a restart is still known, and still down, after it.
    #[serde(default)]
    pub last_report: BTreeMap<i32, f64>,
    /// Brokers seen in the cluster's metadata: one that disappears is down.
    #[serde(default)]
    pub kafka_brokers_seen: std::collections::BTreeSet<i32>,
}

/// The traffic history (`STATE_DIR/traffic.json`): what the no-traffic and
/// anomaly judgements need of the past.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrafficHistory {
    /// When each topic was first seen and last took a record.
    #[serde(default)]
    pub topics: BTreeMap<String, TopicMemory>,
    /// Records per second per topic.
    #[serde(default)]
    pub topic_rates: Series,
    /// Produce and fetch bytes per second per quota user.
    #[serde(default)]
    pub user_rates: Series,
}

/// Reads the state file; a missing file is a fresh start. A file that cannot
/// be read back is moved aside (kept for the operator) and the error says where.
pub fn load(path: &Path) -> Result<Persisted, String> {
    load_checked(path, check, "starting with no alerts")
}

/// Reads the traffic history, as [`load`] does the state.
pub fn load_traffic(path: &Path) -> Result<TrafficHistory, String> {
    load_checked(path, check_traffic, "starting with no traffic history")
}

fn check_traffic(history: &TrafficHistory) -> Result<(), String> {
    if let Some((topic, _)) = history.topics.iter().find(|(_, m)| {
        !sane_time(m.first_seen_at) || m.last_message_at.is_some_and(|t| !sane_time(t))
    }) {
        return Err(format!("out of range: topic {topic}'s times"));
    }
    if !(history.topic_rates.is_sane() && history.user_rates.is_sane()) {
        return Err(
            "out of range: a traffic history holds a time or a rate no clock or counter gives"
                .into(),
        );
    }
    Ok(())
}

fn load_checked<T: DeserializeOwned + Default>(
    path: &Path,
    check: fn(&T) -> Result<(), String>,
    starting: &str,
) -> Result<T, String> {
    let text = match std::fs::read(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(T::default()),
        Err(e) => {
            return Err(format!(
                "state {}: cannot read it ({e}); check the state_dir permissions",
                path.display()
            ))
        }
    };
    let state = serde_json::from_slice(&text)
        .map_err(|e| {
            format!(
                "cannot parse it ({})",
                brokerwatch_common::config::quote_limited(&e.to_string())
            )
        })
        .and_then(|state: T| check(&state).map(|()| state));
    state.map_err(|problem| {
        let (aside, moved) = set_aside(path);
        format!(
            "state {}: {problem}; {}, {starting}",
            path.display(),
            match moved {
                Ok(()) => format!("kept it as {}", aside.display()),
                Err(e) => format!("could not move it aside ({e})"),
            }
        )
    })
}

/// A time a state file can hold: from 1970 to the year 2200.
fn sane_time(seconds: f64) -> bool {
    (0.0..crate::clock::LATEST_UNIX_SECONDS).contains(&seconds)
}

/// Every time in the state is a time (a file edited by hand or damaged may
/// parse and still hold 1e308 or -40, which no clock can handle).
fn check(state: &Persisted) -> Result<(), String> {
    for (id, alert) in &state.alerts.alerts {
        let times = [
            Some(alert.active_since),
            alert.starts_at,
            alert.ends_at,
            Some(alert.last_judged),
        ];
        if let Some(bad) = times.into_iter().flatten().find(|t| !sane_time(*t)) {
            return Err(format!("out of range: alert {id} has the time {bad}"));
        }
    }
    if let Some((broker, at)) = state.last_report.iter().find(|(_, at)| !sane_time(**at)) {
        return Err(format!(
            "out of range: broker {broker}'s last report at {at}"
        ));
    }
    Ok(())
}

/// Moves an unreadable state file aside, next to any kept before.
fn set_aside(path: &Path) -> (std::path::PathBuf, std::io::Result<()>) {
    let first = path.with_extension("json.unreadable");
    let aside = std::iter::once(first.clone())
        .chain((1..100).map(|n| path.with_extension(format!("json.unreadable.{n}"))))
        .find(|p| !p.exists())
        .unwrap_or(first);
    let moved = std::fs::rename(path, &aside);
    (aside, moved)
}

/// Writes the state atomically: a temporary file, fsync, rename, fsync of
/// the directory. A crash leaves either the old state or the new one.
pub fn save(path: &Path, state: &Persisted) -> Result<(), String> {
    // Indented: operators read it.
    let json = serde_json::to_vec_pretty(state).expect("the state serialises");
    write_atomically(path, &json)
}

/// Writes the traffic history as [`save`] does the state (compact: it is
/// larger, and read by the collector only).
pub fn save_traffic(path: &Path, history: &TrafficHistory) -> Result<(), String> {
    let json = serde_json::to_vec(history).map_err(|e| {
        format!(
            "state {}: cannot serialise it ({e}); this is a bug, please report it",
            path.display()
        )
    })?;
    write_atomically(path, &json)
}

fn write_atomically(path: &Path, json: &[u8]) -> Result<(), String> {
    let fail = |what: &str, e: std::io::Error| {
        format!(
            "state {}: {what} failed ({e}); check the state_dir's free space and permissions",
            path.display()
        )
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| fail("creating the directory", e))?;
    let temporary = path.with_extension("json.tmp");
    let written = std::fs::File::create(&temporary)
        .map_err(|e| fail("creating the temporary file", e))
        .and_then(|mut file| {
            file.write_all(json).map_err(|e| fail("writing", e))?;
            file.sync_all().map_err(|e| fail("fsync", e))
        });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temporary);
        return Err(e);
    }
    std::fs::rename(&temporary, path).map_err(|e| fail("renaming the temporary file", e))?;
    if let Ok(dir) = std::fs::File::open(dir) {
        // Makes the rename itself durable; not every filesystem allows it.
        let _ = dir.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::state::{Retention, Verdict};

    fn firing_state() -> Persisted {
        let mut alerts = AlertBook::default();
        let verdict = Verdict {
            labels: [
                ("alertname".to_owned(), "KafkaAgentDown".to_owned()),
                ("broker".to_owned(), "2".to_owned()),
            ]
            .into(),
            annotations: BTreeMap::new(),
            active: true,
            for_seconds: 0.0,
        };
        alerts.apply(
            vec![verdict],
            7.5,
            Retention {
                unjudged_seconds: 60.0,
                resolved_seconds: 60.0,
                for_tolerance_seconds: 0.0,
            },
        );
        Persisted {
            alerts,
            last_report: [(2, 1.5)].into(),
            kafka_brokers_seen: [1, 2].into(),
        }
    }

    #[test]
    fn the_traffic_history_survives_a_save_and_an_absurd_one_is_kept_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("traffic.json");
        assert_eq!(load_traffic(&path).unwrap(), TrafficHistory::default());
        let mut history = TrafficHistory::default();
        history.topics.insert(
            "orders".into(),
            TopicMemory {
                first_seen_at: 10.0,
                last_message_at: Some(20.0),
            },
        );
        history
            .topic_rates
            .record(30.0, [("orders".to_owned(), 5.0)], 10);
        save_traffic(&path, &history).unwrap();
        assert_eq!(load_traffic(&path).unwrap(), history);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(
            &path,
            text.replace("\"first_seen_at\":10.0", "\"first_seen_at\":1e300"),
        )
        .unwrap();
        let err = load_traffic(&path).unwrap_err();
        assert!(err.contains("out of range: topic orders's times"), "{err}");
        assert!(err.ends_with("starting with no traffic history"), "{err}");
        assert!(path.with_extension("json.unreadable").exists());
    }

    #[test]
    fn state_survives_a_save_and_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/state.json");
        assert_eq!(load(&path).unwrap(), Persisted::default());
        let state = firing_state();
        save(&path, &state).unwrap();
        assert_eq!(load(&path).unwrap(), state);
        assert!(!path.with_extension("json.tmp").exists());
    }

    #[test]
    fn a_corrupt_file_is_kept_aside_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::fs::write(&path, "{\"alerts\": {\"x\": ").unwrap();
        let err = load(&path).unwrap_err();
        assert!(
            err.starts_with(&format!("state {}: cannot parse it (", path.display())),
            "{err}"
        );
        assert!(
            err.ends_with("state.json.unreadable, starting with no alerts"),
            "{err}"
        );
        assert_eq!(
            std::fs::read_to_string(path.with_extension("json.unreadable")).unwrap(),
            "{\"alerts\": {\"x\": "
        );
    }

    #[test]
    fn an_unwritable_place_is_an_error_and_the_old_state_stays() {
        let err = save(
            Path::new("/proc/brokerwatch/state.json"),
            &Persisted::default(),
        )
        .unwrap_err();
        assert!(
            err.starts_with("state /proc/brokerwatch/state.json: creating the directory failed"),
            "{err}"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        save(&path, &firing_state()).unwrap();
        // A directory where the temporary file should go makes the write fail.
        std::fs::create_dir(path.with_extension("json.tmp")).unwrap();
        assert!(save(&path, &Persisted::default()).is_err());
        assert_eq!(load(&path).unwrap(), firing_state());
    }

    #[test]
    fn an_absurd_but_parseable_state_is_kept_aside_and_each_copy_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let good = serde_json::to_string(&firing_state()).unwrap();
        for (i, absurd) in [
            good.replace("\"active_since\":7.5", "\"active_since\":1e308"),
            good.replace("\"2\":1.5", "\"2\":-40.0"),
        ]
        .iter()
        .enumerate()
        {
            assert_ne!(absurd, &good);
            std::fs::write(&path, absurd).unwrap();
            let err = load(&path).unwrap_err();
            assert!(err.contains("out of range"), "{err}");
            assert!(!err.contains('\n'));
            let kept = if i == 0 {
                path.with_extension("json.unreadable")
            } else {
                path.with_extension("json.unreadable.1")
            };
            assert_eq!(std::fs::read_to_string(&kept).unwrap(), *absurd, "{err}");
            assert!(err.contains(&kept.display().to_string()), "{err}");
        }
        assert!(!path.exists());
    }
}
