//! The agent started with no broker id on a host with a broker: it reads the
//! id the way Kafka settles it, from the running broker's server.properties
//! (found through its command line), else from meta.properties in its log
//! dirs, and every series carries it.

use std::process::{Child, Command};
use std::time::Duration;

use brokerwatch_tests::{eventually, http, start_agent, workspace_binary};

/// A stand-in broker: `sleep` whose command line reads like a broker's.
struct FakeBroker(Child);

impl FakeBroker {
    fn start(server_properties: &std::path::Path) -> FakeBroker {
        let child = Command::new("bash")
            .args([
                "-c",
                &format!(
                    "exec -a 'java -Xmx1g kafka.Kafka {}' sleep 600",
                    server_properties.display()
                ),
            ])
            .spawn()
            .expect("spawn a stand-in broker");
        std::thread::sleep(Duration::from_millis(200));
        FakeBroker(child)
    }
}

impl Drop for FakeBroker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn broker_id_in_metrics(url: &str) -> String {
    eventually("the agent's series", Duration::from_secs(10), || {
        let text = http().get(url).send().ok()?.text().ok()?;
        let at = text.find("broker_id=\"")? + "broker_id=\"".len();
        Some(text[at..at + text[at..].find('"')?].to_owned())
    })
}

#[test]
fn with_no_broker_id_the_agent_reads_the_running_brokers() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let properties = dir.path().join("server.properties");
    let agent = workspace_binary("brokerwatch-agent");

    // KRaft: node.id in server.properties.
    std::fs::write(
        &properties,
        format!(
            "process.roles=broker\nnode.id=42\nlog.dirs={}\n",
            data.display()
        ),
    )
    .unwrap();
    {
        let _broker = FakeBroker::start(&properties);
        let (mut daemon, url) = start_agent(&agent, &[]);
        let line = daemon.wait_for_log("serving", Duration::from_secs(10));
        assert!(line.contains("broker_id=42"), "{line}");
        assert!(line.contains(&properties.display().to_string()), "{line}");
        assert_eq!(broker_id_in_metrics(&url), "42");
    }

    // An id left to be generated: meta.properties in the log dir has it.
    std::fs::write(
        &properties,
        format!("broker.id=-1\nlog.dirs={}\n", data.display()),
    )
    .unwrap();
    std::fs::write(
        data.join("meta.properties"),
        "#\n#Tue Dec 01 10:00:00 UTC 2026\nbroker.id=1043\nversion=0\ncluster.id=x\n",
    )
    .unwrap();
    {
        let _broker = FakeBroker::start(&properties);
        let (_daemon, url) = start_agent(&agent, &[]);
        assert_eq!(broker_id_in_metrics(&url), "1043");
        // The flag still wins.
        let (_flagged, flagged_url) = start_agent(&agent, &["--broker-id", "7"]);
        assert_eq!(broker_id_in_metrics(&flagged_url), "7");
    }
}
