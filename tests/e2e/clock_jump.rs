//! A step of the system clock (NTP stepping after a VM resumes, someone's
//! `date -s`) while an agent reports to the collector: ten minutes forward,
//! then ten minutes back (far beyond the 3 s after which an agent counts
//! as silent, and small enough to trouble nothing else on the machine). No agent may look silent (KafkaAgentDown) or be
//! reported from the future, and reports keep flowing. The test steps the
//! real clock (it runs as root, in a test binary of its own so that nothing
//! else runs meanwhile) and puts it back, even if it fails.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use brokerwatch_tests::{
    eventually, http, open_collector_config, start_agent_with_config, start_collector, Scrape,
};
use serde_json::Value;

/// Puts the wall clock back where it would be without the steps when dropped.
struct ClockGuard {
    wall: Duration,
    at: Instant,
}

impl ClockGuard {
    fn new() -> ClockGuard {
        ClockGuard {
            wall: SystemTime::now().duration_since(UNIX_EPOCH).unwrap(),
            at: Instant::now(),
        }
    }

    fn set(&self, offset_seconds: i64) {
        let target = self.wall + self.at.elapsed();
        let seconds = target.as_secs() as i64 + offset_seconds;
        let time = libc::timespec {
            tv_sec: seconds as libc::time_t,
            tv_nsec: target.subsec_nanos() as libc::c_long,
        };
        // SAFETY: a valid timespec; CLOCK_REALTIME needs CAP_SYS_TIME (root).
        let done = unsafe { libc::clock_settime(libc::CLOCK_REALTIME, &time) };
        assert_eq!(
            done,
            0,
            "clock_settime: {}",
            std::io::Error::last_os_error()
        );
    }
}

impl Drop for ClockGuard {
    fn drop(&mut self) {
        self.set(0);
    }
}

fn alerts(url: &str) -> Vec<Value> {
    http()
        .get(format!("{url}/api/v1/alerts"))
        .send()
        .and_then(|r| r.json::<Vec<Value>>())
        .unwrap_or_default()
}

fn received(url: &str) -> f64 {
    Scrape::fetch(&format!("{url}/metrics"))
        .sum("brokerwatch_collector_reports_received_total", &[])
        .unwrap_or(0.0)
}

#[test]
fn a_step_of_the_wall_clock_neither_silences_agents_nor_stops_reports() {
    let state = tempfile::tempdir().unwrap();
    let (collector, url) = start_collector(&format!(
        r#"{header}[store]
broker_missing_after = "3s"
[rules.KafkaAgentDown]
for = "0s"
"#,
        header = open_collector_config("clock", state.path())
    ));
    let (agent, _) = start_agent_with_config(
        &format!(
            "broker_id = 6\ninterval = \"200ms\"\ncollector = \"{url}\"\n[broker]\nenabled = false\n[page_cache]\nebpf = false\n"
        ),
        tempfile::tempdir().unwrap(),
    );
    eventually("the agent's reports", Duration::from_secs(10), || {
        (received(&url) >= 3.0).then_some(())
    });

    let clock = ClockGuard::new();
    for offset in [600, -600] {
        clock.set(offset);
        let before = received(&url);
        // Longer than broker_missing_after: a collector that measured
        // silence on the wall clock would call the agent down by now.
        std::thread::sleep(Duration::from_secs(4));
        let after = received(&url);
        assert!(
            after >= before + 10.0,
            "reports stopped after a step of {offset} s: {before} -> {after}"
        );
        let raised: Vec<Value> = alerts(&url)
            .into_iter()
            .filter(|a| a["labels"]["alertname"] == "KafkaAgentDown")
            .collect();
        assert!(raised.is_empty(), "a step of {offset} s: {raised:?}");
        clock.set(0);
    }
    drop(clock);
    for daemon in [collector.log(), agent.log()] {
        assert!(!daemon.contains("internal error"), "{daemon}");
    }
}
