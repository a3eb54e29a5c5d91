//! `brokerwatch-collector load-report` as an operator runs it, on the
//! DESIGN.md worked example.

use std::process::Command;

fn load_report(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_brokerwatch-collector"))
        .arg("load-report")
        .args(args)
        .output()
        .expect("run brokerwatch-collector")
}

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_worked_example_csv_reproduces_the_design_figures_to_1e_6() {
    let output = load_report(&[
        "--input",
        &fixture("worked_example.csv"),
        "--format",
        "json",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON output");
    let group = &json["groups"][0];
    assert_eq!(group["group"], "default");
    let expected = [
        (1, 0.248780, -0.004878),
        (2, 0.258659, 0.034634),
        (3, 0.251341, 0.005366),
        (4, 0.241220, -0.035122),
    ];
    for (i, (broker, share, deviation)) in expected.into_iter().enumerate() {
        let b = &group["brokers"][i];
        assert_eq!(b["broker"], broker);
        assert!((b["share"].as_f64().unwrap() - share).abs() < 1e-6, "{b}");
        assert!(
            (b["deviation"].as_f64().unwrap() - deviation).abs() < 1e-6,
            "{b}"
        );
    }
    assert!((group["stddev"].as_f64().unwrap() - 0.006232).abs() < 1e-6);
    assert!((group["stddev_limit"].as_f64().unwrap() - 0.025).abs() < 1e-12);
    assert_eq!(group["balanced"], true);
}

#[test]
fn the_table_says_the_verdict_and_a_tighter_r_flips_it() {
    let output = load_report(&[
        "--input",
        &fixture("worked_example.csv"),
        "--deviation",
        "3%",
    ]);
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.contains("         2   0.258659    +3.4634%  overloaded"),
        "{text}"
    );
    assert!(
        text.contains("         4   0.241220    -3.5122%  underloaded"),
        "{text}"
    );
    // σ_max = 0.03 / 4 = 0.0075 > σ: still balanced as a group.
    assert!(
        text.contains("stddev 0.006232 <= limit 0.007500 (r = 3%, N = 4): balanced"),
        "{text}"
    );
}

#[test]
fn a_bad_input_is_one_line_and_exit_2() {
    let output = load_report(&["--input", "/nonexistent.csv"]);
    assert_eq!(output.status.code(), Some(2));
    let err = String::from_utf8(output.stderr).unwrap();
    assert!(
        err.starts_with(
            "brokerwatch-collector: load-report --input /nonexistent.csv: cannot read it ("
        ),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1);
    let output = load_report(&[
        "--input",
        &fixture("worked_example.csv"),
        "--weights",
        "disk=1",
    ]);
    assert_eq!(output.status.code(), Some(2));
}
