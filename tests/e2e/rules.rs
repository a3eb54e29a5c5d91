//! Every file in rules/ passes the real `promtool check rules`, and every unit
//! test file in rules/tests/ passes `promtool test rules` (each shows its
//! alerts firing and not firing).

use std::path::{Path, PathBuf};
use std::process::Command;

use brokerwatch_tests::system_binary;

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .collect();
    files.sort();
    files
}

fn promtool(args: &[&Path], subcommand: &[&str]) -> String {
    let output = Command::new(system_binary("promtool"))
        .args(subcommand)
        .args(args)
        .output()
        .expect("run promtool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "promtool {} failed:\n{text}",
        subcommand.join(" ")
    );
    text
}

fn rules_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules")
}

#[test]
fn every_rule_file_passes_promtool_check_rules() {
    let files = yaml_files(&rules_dir());
    assert!(files.len() >= 2, "{files:?}");
    let paths: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let text = promtool(&paths, &["check", "rules"]);
    assert_eq!(text.matches("SUCCESS").count(), files.len(), "{text}");
}

#[test]
fn every_rule_test_file_passes_promtool_test_rules() {
    let files = yaml_files(&rules_dir().join("tests"));
    assert!(files.len() >= 2, "{files:?}");
    for file in &files {
        let text = promtool(&[file.as_path()], &["test", "rules"]);
        assert!(text.contains("SUCCESS"), "{}: {text}", file.display());
    }
    // Every alert of the catalogue is tested firing somewhere.
    let alerts = std::fs::read_to_string(rules_dir().join("brokerwatch.alerts.yml")).unwrap();
    let tests: String = files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    for line in alerts
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
    {
        assert!(
            tests.contains(&format!("alertname: {line}")),
            "{line} has no promtool test"
        );
    }
}
