//! The systemd units in deploy/systemd/ pass `systemd-analyze verify`
//! (pointed at this build's binaries): no unknown directive, no bad value.

use std::path::Path;
use std::process::Command;

use brokerwatch_tests::{system_binary, workspace_binary};

#[test]
fn both_units_verify_cleanly_with_their_hardening() {
    let units = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/systemd");
    let dir = tempfile::tempdir().unwrap();
    for daemon in ["brokerwatch-agent", "brokerwatch-collector"] {
        let text = std::fs::read_to_string(units.join(format!("{daemon}.service"))).unwrap();
        for directive in [
            "NoNewPrivileges=yes",
            "ProtectSystem=strict",
            "DynamicUser=yes",
            "SystemCallFilter=@system-service",
            "LimitNOFILE=65536",
        ] {
            assert!(
                text.lines().any(|l| l == directive),
                "{daemon}: no {directive}"
            );
        }
        let binary = workspace_binary(daemon);
        let unit = dir.path().join(format!("{daemon}.service"));
        std::fs::write(
            &unit,
            text.replace(
                &format!("/usr/local/bin/{daemon}"),
                binary.to_str().unwrap(),
            ),
        )
        .unwrap();
        let output = Command::new(system_binary("systemd-analyze"))
            .args(["verify", "--man=no"])
            .arg(&unit)
            .output()
            .unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            output.status.success() && said.trim().is_empty(),
            "{daemon}: systemd-analyze verify said:\n{said}"
        );
    }
    // The agent keeps only the capabilities reading another user's /proc/PID,
    // the page-cache probe and the kernel log need.
    let agent = std::fs::read_to_string(units.join("brokerwatch-agent.service")).unwrap();
    assert!(agent.lines().any(
        |l| l == "CapabilityBoundingSet=CAP_DAC_READ_SEARCH CAP_SYS_PTRACE CAP_BPF CAP_PERFMON CAP_SYSLOG"
    ));
    let collector = std::fs::read_to_string(units.join("brokerwatch-collector.service")).unwrap();
    assert!(
        collector.lines().any(|l| l == "CapabilityBoundingSet="),
        "the collector needs no capability"
    );
}

/// The capabilities the agent's unit grants, as setpriv spells them (`+bpf,...`).
fn unit_capabilities() -> Vec<String> {
    let units = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/systemd");
    let agent = std::fs::read_to_string(units.join("brokerwatch-agent.service")).unwrap();
    let line = agent
        .lines()
        .find_map(|l| l.strip_prefix("AmbientCapabilities="))
        .expect("the agent's unit grants capabilities");
    line.split_whitespace()
        .map(|cap| cap.trim_start_matches("CAP_").to_lowercase())
        .collect()
}

/// The agent run as an unprivileged user holding only `caps` (as systemd's
/// DynamicUser with AmbientCapabilities would), with its /metrics URL.
fn agent_as_nobody_with(caps: &[String]) -> (brokerwatch_tests::Daemon, String) {
    let caps = caps
        .iter()
        .map(|c| format!("+{c}"))
        .collect::<Vec<_>>()
        .join(",");
    // A copy where the unprivileged user can reach it: the clone may sit
    // under a directory only root may enter.
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let agent = dir.path().join("brokerwatch-agent");
    std::fs::copy(workspace_binary("brokerwatch-agent"), &agent).unwrap();
    let (mut daemon, url) = brokerwatch_tests::start_serving(
        &system_binary("setpriv"),
        &[
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            &format!("--inh-caps={caps}"),
            &format!("--ambient-caps={caps}"),
            &format!("--bounding-set=-all,{caps}"),
            "--",
            agent.to_str().unwrap(),
            "--broker-id",
            "1",
            "--listen",
            "127.0.0.1:0",
            "--interval",
            "200ms",
        ],
    );
    daemon.keep(dir);
    (daemon, url)
}

/// What the agent run with `caps` logged about the page-cache probe.
fn page_cache_probe_as_nobody_with(caps: &[String]) -> String {
    let (mut daemon, _) = agent_as_nobody_with(caps);
    daemon.wait_for_log(
        "page-cache hit ratio: ebpf method",
        std::time::Duration::from_secs(10),
    )
}

/// Whether the agent run with `caps` reads the kernel log.
fn reads_the_kernel_log_with(caps: &[String]) -> bool {
    let (_daemon, url) = agent_as_nobody_with(caps);
    brokerwatch_tests::eventually(
        "the kernel-log source's state",
        std::time::Duration::from_secs(10),
        || {
            brokerwatch_tests::Scrape::fetch(&url)
                .sum("brokerwatch_agent_source_up", &[("source", "kernel_log")])
                .map(|up| up == 1.0)
        },
    )
}

#[test]
fn the_agents_unit_capabilities_are_enough_for_the_page_cache_probe_and_each_is_needed() {
    let caps = unit_capabilities();
    let line = page_cache_probe_as_nobody_with(&caps);
    assert!(
        line.contains("ebpf method running"),
        "with {caps:?}: {line}"
    );
    for needed in ["bpf", "perfmon"] {
        let fewer: Vec<String> = caps.iter().filter(|c| *c != needed).cloned().collect();
        let line = page_cache_probe_as_nobody_with(&fewer);
        assert!(
            line.contains("ebpf method off"),
            "without {needed} the probe still loaded: {line}"
        );
    }
}

#[test]
fn the_agents_unit_lets_it_read_the_kernel_log_and_cap_syslog_is_needed_for_it() {
    let dmesg_restrict =
        std::fs::read_to_string("/proc/sys/kernel/dmesg_restrict").unwrap_or_default();
    let caps = unit_capabilities();
    assert!(reads_the_kernel_log_with(&caps), "with {caps:?}");
    if dmesg_restrict.trim() == "1" {
        let fewer: Vec<String> = caps.iter().filter(|c| *c != "syslog").cloned().collect();
        assert!(
            !reads_the_kernel_log_with(&fewer),
            "without syslog the kernel log was read under dmesg_restrict"
        );
    }
}
