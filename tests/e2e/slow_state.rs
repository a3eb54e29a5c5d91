//! A slow state disk delays the state file and nothing else: with every
//! fsync of the running collector made to take 3 s (strace injects the
//! delay into the real process), reports are still taken and the API still
//! answers within a fraction of that, and the state file is written all the
//! same. A collector that wrote its state while holding what intake and the
//! API need would keep them waiting for each fsync.
//!
//! And an alert reaches Alertmanager only once its state is on disk (on a
//! disk that writes within a second): killed the moment Alertmanager has
//! it, the collector finds it firing in its state file.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use brokerwatch_tests::{
    eventually, free_port, http, minimal_report, open_collector_config, start_alertmanager,
    start_collector, system_binary, WebhookSink,
};

const FSYNC_DELAY: &str = "3s";

/// strace attached to `pid`, holding each fsync of every thread for
/// `delay`; detaches when dropped.
struct SlowDisk(Child);

impl SlowDisk {
    fn attach(pid: u32, delay: &str) -> SlowDisk {
        let child = Command::new(system_binary("strace"))
            .args([
                "-f",
                "-qq",
                "-o",
                "/dev/null",
                "-e",
                "trace=fsync,fdatasync",
                "-e",
                &format!("inject=fsync,fdatasync:delay_enter={delay}"),
                "-p",
                &pid.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start strace");
        SlowDisk(child)
    }
}

impl Drop for SlowDisk {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child's pid has no memory effects.
        unsafe {
            libc::kill(self.0.id() as libc::pid_t, libc::SIGTERM);
        }
        let _ = self.0.wait();
    }
}

#[test]
fn a_slow_state_disk_never_holds_up_intake_or_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let (collector, url) = start_collector(&open_collector_config("slow", dir.path()));
    let state = dir.path().join("state.json");
    eventually("the first state file", Duration::from_secs(10), || {
        state.exists().then_some(())
    });
    let _slow = SlowDisk::attach(collector.pid(), FSYNC_DELAY);
    // Wait until the delay bites: a state write now takes the whole delay.
    std::thread::sleep(Duration::from_secs(1));

    let mut slowest = Duration::ZERO;
    let mut posted = 0;
    let until = Instant::now() + Duration::from_secs(8);
    while Instant::now() < until {
        let started = Instant::now();
        let response = http()
            .post(format!("{url}/api/v1/reports"))
            .json(&minimal_report(1 + posted % 4))
            .send()
            .expect("post a report");
        assert_eq!(response.status().as_u16(), 202);
        let alerts = http()
            .get(format!("{url}/api/v1/alerts"))
            .send()
            .expect("get the alerts");
        assert!(alerts.status().is_success());
        slowest = slowest.max(started.elapsed());
        posted += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("{posted} reports and alert reads while each fsync took {FSYNC_DELAY}: the slowest took {slowest:?}");
    assert!(
        slowest < Duration::from_secs(1),
        "a report or an API call waited {slowest:?} on the state file"
    );
    // The state is still written, late but whole.
    eventually(
        "the state file with the brokers that reported",
        Duration::from_secs(20),
        || {
            let text = std::fs::read_to_string(&state).ok()?;
            let json: serde_json::Value = serde_json::from_str(&text).ok()?;
            (json["last_report"].as_object()?.len() == 4).then_some(())
        },
    );
}

#[test]
fn an_alert_reaches_alertmanager_only_once_its_state_is_on_disk() {
    let webhook = WebhookSink::start();
    let am_port = free_port();
    let _alertmanager = start_alertmanager(am_port, &webhook.url);
    let dir = tempfile::tempdir().unwrap();
    let (mut collector, url) = start_collector(&format!(
        "{}[store]\nbroker_missing_after = \"1s\"\n[rules.KafkaAgentDown]\nfor = \"0s\"\n[alertmanager]\nurls = [\"http://127.0.0.1:{am_port}\"]\n",
        open_collector_config("slow", dir.path())
    ));
    let state = dir.path().join("state.json");
    let response = http()
        .post(format!("{url}/api/v1/reports"))
        .json(&minimal_report(1))
        .send()
        .expect("post a report");
    assert_eq!(response.status().as_u16(), 202);
    eventually("the first state file", Duration::from_secs(10), || {
        state.exists().then_some(())
    });
    // Each write now takes 600 ms; broker 1 falls silent and its alert fires.
    let _slow = SlowDisk::attach(collector.pid(), "600ms");
    eventually(
        "KafkaAgentDown in Alertmanager",
        Duration::from_secs(20),
        || {
            let alerts: serde_json::Value = http()
                .get(format!("http://127.0.0.1:{am_port}/api/v2/alerts"))
                .send()
                .ok()?
                .json()
                .ok()?;
            alerts
                .as_array()?
                .iter()
                .any(|a| a["labels"]["alertname"] == "KafkaAgentDown")
                .then_some(())
        },
    );
    collector.kill_hard();
    let text = std::fs::read_to_string(&state).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let firing = json["alerts"]["alerts"]
        .as_object()
        .unwrap()
        .values()
        .any(|a| a["labels"]["alertname"] == "KafkaAgentDown" && a["phase"] == "firing");
    assert!(
        firing,
        "Alertmanager has an alert the state file lacks:\n{text}"
    );
}
