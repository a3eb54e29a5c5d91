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
    // The agent keeps only the capabilities reading another user's /proc/PID needs.
    let agent = std::fs::read_to_string(units.join("brokerwatch-agent.service")).unwrap();
    assert!(agent
        .lines()
        .any(|l| l == "CapabilityBoundingSet=CAP_DAC_READ_SEARCH CAP_SYS_PTRACE"));
    let collector = std::fs::read_to_string(units.join("brokerwatch-collector.service")).unwrap();
    assert!(
        collector.lines().any(|l| l == "CapabilityBoundingSet="),
        "the collector needs no capability"
    );
}
