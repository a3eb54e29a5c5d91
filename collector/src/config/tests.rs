//! The config's defaults, its example file, and its one-line errors.

use super::*;
use crate::catalogue::{Severity, CATALOGUE};
use crate::model::lag::Status;

const MINIMAL: &str = "cluster = \"prod\"\n[ingest]\ntokens = [\"s3cret\"]\n";

fn error(text: &str) -> String {
    from_toml_text(text, "config c.toml", &Flags::default()).unwrap_err()
}

#[test]
fn minimal_config_gets_the_documented_defaults() {
    let config = from_toml_text(MINIMAL, "c", &Flags::default()).unwrap();
    assert_eq!(config.cluster, "prod");
    assert_eq!(config.listen.to_string(), "0.0.0.0:9798");
    assert_eq!(config.window, Duration::from_secs(300));
    assert_eq!(config.deviation, 0.10);
    assert_eq!(config.weights.len(), 11);
    assert_eq!(config.rules.len(), CATALOGUE.len());
    assert!(config.kafka.is_none());
    assert_eq!(
        config.rule(Alert::KafkaPreferredLeaderImbalance).threshold,
        Some(0.10)
    );
    assert!(config.consumer_groups.watches("anything"));
    assert!(config
        .consumer_groups
        .alert_statuses
        .contains(&Status::Stop));
    assert!(!config
        .consumer_groups
        .alert_statuses
        .contains(&Status::Warn));
    let saturated = config.rule(Alert::KafkaHostDiskSaturated);
    assert_eq!(saturated.threshold, Some(0.9));
    assert_eq!(saturated.for_duration, Duration::from_secs(600));
    assert_eq!(
        config.rule(Alert::KafkaAgentDown).severity,
        Severity::Critical
    );
    assert_eq!(config.group_of(4), "default");
}

#[test]
fn the_example_file_is_valid_and_documents_every_section() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("brokerwatch-collector.example.toml");
    let text = std::fs::read_to_string(path).unwrap();
    let config = from_toml_text(&text, "example", &Flags::default()).unwrap();
    assert_eq!(config.groups["payments"], [1, 2, 3].into());
    assert_eq!(config.group_of(2), "payments");
    let kafka = config.kafka.as_ref().unwrap();
    assert_eq!(
        kafka.properties["bootstrap.servers"],
        "kafka-1:9092,kafka-2:9092"
    );
    assert_eq!(kafka.expected_brokers.len(), 4);
    let groups = &config.consumer_groups;
    assert!(
        groups.watches("billing")
            && groups.watches("orders-app")
            && !groups.watches("console-consumer-42")
    );
    assert_eq!(groups.max_lag_messages("billing"), Some(10_000));
    assert_eq!(groups.max_lag_seconds("billing"), Some(60.0));
    assert_eq!(groups.max_lag_seconds("other"), Some(900.0));
    assert_eq!(groups.rules.stop_after_seconds, 120.0);
    for key in [
        "cluster",
        "listen",
        "state_dir",
        "evaluation_interval",
        "[ingest]",
        "tokens",
        "token_file",
        "allow_unauthenticated",
        "max_body_bytes",
        "max_decoded_bytes",
        "[store]",
        "window",
        "broker_missing_after",
        "[load]",
        "deviation",
        "disk_deviation",
        "[load.weights]",
        "[[groups]]",
        "[rules.",
        "for",
        "severity",
        "threshold",
        "enabled",
        "[alertmanager]",
        "urls",
        "resend_interval",
        "timeout",
        "resolved_retention",
        "[kafka]",
        "metadata_interval",
        "topic_config_interval",
        "expected_brokers",
        "[kafka.properties]",
        "[consumer_groups]",
        "groups",
        "include",
        "exclude",
        "fetch_interval",
        "stop_after",
        "err_lag",
        "alert_statuses",
        "max_lag_messages",
        "max_lag",
        "[consumer_groups.limits.",
        "[topics]",
        "top_n",
        "no_traffic_after",
        "surge_factor",
        "drop_ratio",
        "min_records_per_second",
        "min_user_bytes_per_second",
        "min_replication_factor",
        "max_histories",
        "max_partition_bytes",
    ] {
        assert!(
            text.contains(&format!("\n{key}")) || text.contains(&format!("\n# {key}")),
            "{key} undocumented"
        );
    }
    for rule in CATALOGUE.map(|s| s.name) {
        assert!(text.contains(rule), "{rule} undocumented");
    }
}

#[test]
fn every_bad_value_gets_one_line_naming_the_key() {
    let cases = [
        ("[ingest]\ntokens = [\"t\"]", "config c.toml: cluster: not set"),
        ("cluster = \"p\"", "config c.toml: ingest.tokens: no token"),
        ("cluster = \"p\"\nlisten = \"nine\"\n[ingest]\ntokens = [\"t\"]", "config c.toml: listen: \"nine\" is not an address"),
        (&format!("{MINIMAL}[store]\nwindow = \"0s\""), "config c.toml: store.window: must be more than 0"),
        (&format!("{MINIMAL}[load]\ndeviation = 2.0"), "config c.toml: load.deviation: 2 is not a ratio"),
        (&format!("{MINIMAL}[load.weights]\ndisk = 1.0"), "config c.toml: load.weights: \"disk\" is not a load metric"),
        (&format!("{MINIMAL}[[groups]]\nname = \"a\"\nbrokers = [1]\n[[groups]]\nname = \"b\"\nbrokers = [1]"), "config c.toml: groups: broker 1 is in both \"a\" and \"b\""),
        (&format!("{MINIMAL}[rules.KafkaHostDiskSaturated]\nthreshold = 90"), "config c.toml: rules.KafkaHostDiskSaturated.threshold: 90 is not a ratio"),
        (&format!("{MINIMAL}[rules.KafkaBrokerLoadDeviation]\nthreshold = 0.2"), "config c.toml: rules.KafkaBrokerLoadDeviation.threshold: this rule has no threshold"),
        (&format!("{MINIMAL}[rules.KafkaDiskFull]\nfor = \"1m\""), "config c.toml: rules: \"KafkaDiskFull\" is not a rule"),
        (&format!("{MINIMAL}[rules.KafkaAgentDown]\nseverity = \"page\""), "config c.toml line 5: unknown variant `page`"),
        (&format!("{MINIMAL}[alertmanager]\nurls = [\"am:9093\"]"), "config c.toml: alertmanager.urls: \"am:9093\" is not a URL"),
        (&format!("{MINIMAL}[ingest]\ntoken_file = \"/nonexistent\""), "config c.toml line 4: "),
    ];
    for (text, expected) in cases {
        let err = error(text);
        assert!(
            err.starts_with(expected),
            "for {text:?}:\n got {err:?}\nwant {expected:?}..."
        );
        assert!(!err.contains('\n'));
    }
}

#[test]
fn tokens_come_from_the_file_too() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens");
    std::fs::write(&path, "# agents of rack 1\nabc\n\n  def  \n").unwrap();
    let text = format!(
        "cluster = \"p\"\n[ingest]\ntoken_file = {:?}\n",
        path.display().to_string()
    );
    let config = from_toml_text(&text, "c", &Flags::default()).unwrap();
    let exposed: Vec<&str> = config.tokens.iter().map(Secret::expose).collect();
    assert_eq!(exposed, ["abc", "def"]);
    assert!(
        !format!("{config:?}").contains("abc"),
        "a token shows in the config's Debug"
    );
    let text = "cluster = \"p\"\n[ingest]\ntoken_file = \"/nonexistent/tokens\"\n";
    assert!(error(text)
        .starts_with("config c.toml: ingest.token_file: cannot read /nonexistent/tokens ("));
}

#[test]
fn tokens_from_the_environment_variable_the_config_names() {
    std::env::set_var("BROKERWATCH_TEST_TOKENS_A", " ghi, jkl ,");
    let text = "cluster = \"p\"\n[ingest]\ntokens = [\"abc\"]\ntoken_env = \"BROKERWATCH_TEST_TOKENS_A\"\n";
    let config = from_toml_text(text, "c", &Flags::default()).unwrap();
    let exposed: Vec<&str> = config.tokens.iter().map(Secret::expose).collect();
    assert_eq!(exposed, ["abc", "ghi", "jkl"]);
    let text = "cluster = \"p\"\n[ingest]\ntoken_env = \"BROKERWATCH_TEST_TOKENS_UNSET\"\n";
    assert_eq!(
        error(text),
        "config c.toml: ingest.token_env: the environment variable BROKERWATCH_TEST_TOKENS_UNSET is not set"
    );
}

#[test]
fn absurd_durations_and_sizes_are_refused() {
    let cases = [
        (
            "evaluation_interval = \"1ns\"",
            "config c.toml: evaluation_interval: 1ns is out of range; use 100ms to 1h",
        ),
        (
            "evaluation_interval = \"500000000years\"",
            "config c.toml: evaluation_interval: ",
        ),
        (
            "[store]\nwindow = \"500000000years\"",
            "config c.toml: store.window: ",
        ),
        (
            "[ingest]\ntokens = [\"t\"]\nmax_body_bytes = 0",
            "config c.toml: ingest.max_body_bytes: 0 is out of range; use 1024 to 1073741824",
        ),
        (
            "[ingest]\ntokens = [\"t\"]\nmax_decoded_bytes = 10",
            "config c.toml: ingest.max_decoded_bytes: 10 is out of range",
        ),
    ];
    for (extra, expected) in cases {
        let text = if extra.starts_with("[ingest]") {
            format!("cluster = \"prod\"\n{extra}\n")
        } else if extra.starts_with('[') {
            format!("{MINIMAL}{extra}\n")
        } else {
            format!("cluster = \"prod\"\n{extra}\n[ingest]\ntokens = [\"t\"]\n")
        };
        let err = error(&text);
        assert!(err.starts_with(expected), "{extra}: {err}");
        assert!(!err.contains('\n'));
    }
    assert!(error("cluster = \"prod\"\nevaluation_interval = \"500000000years\"\n[ingest]\ntokens = [\"t\"]\n").contains("out of range"));
}

#[test]
fn tokens_are_trimmed_and_an_empty_one_is_no_token() {
    let text = "cluster = \"p\"\n[ingest]\ntokens = [\"abc \", \"  \"]\n";
    let config = from_toml_text(text, "c", &Flags::default()).unwrap();
    let exposed: Vec<&str> = config.tokens.iter().map(Secret::expose).collect();
    assert_eq!(exposed, ["abc"]);
}
