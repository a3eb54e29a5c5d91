//! The agent config's defaults, its example file, and its one-line errors.

use super::*;

fn flags_with_id() -> Flags {
    Flags {
        broker_id: Some(1),
        ..Flags::default()
    }
}

fn error(text: &str) -> String {
    from_toml(text, "config agent.toml", &Flags::default()).unwrap_err()
}

#[test]
fn defaults_need_only_a_broker_id() {
    let config = from_toml("", "command line", &flags_with_id()).unwrap();
    assert_eq!(config.broker_id, 1);
    assert_eq!(config.listen, "0.0.0.0:9797".parse().unwrap());
    assert_eq!(config.interval, Duration::from_secs(10));
    assert!(config.collectors.is_empty());
    assert_eq!(config.paths.proc, PathBuf::from("/proc"));
    assert!(!config.disk_filter.accepts("sda1") && config.disk_filter.accepts("sda"));
    assert!(config.network_filter.accepts("lo"));
    assert_eq!(config.page_cache_ebpf, Some(PageCacheScope::Broker));
    let off = from_toml("[page_cache]\nebpf = false", "f", &flags_with_id()).unwrap();
    assert_eq!(off.page_cache_ebpf, None);
    let no_broker = from_toml("[broker]\nenabled = false", "f", &flags_with_id()).unwrap();
    assert_eq!(no_broker.page_cache_ebpf, Some(PageCacheScope::Host));
}

#[test]
fn the_example_file_documents_every_key_and_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("brokerwatch-agent.example.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let config = from_toml(&text, "example", &Flags::default()).unwrap();
    assert_eq!(config.broker_id, 1);
    assert_eq!(config.interval, Duration::from_secs(10));
    for key in [
        "broker_id",
        "listen",
        "interval",
        "collector",
        "proc_path",
        "sys_path",
        "log_level",
        "[disk]",
        "[network]",
        "include",
        "exclude",
        "[page_cache]",
        "ebpf",
        "count",
        "collector_token_file",
        "collector_ca_file",
        "collector_cert_file",
        "collector_key_file",
        "web_config_file",
    ] {
        assert!(
            text.contains(&format!("\n{key}")) || text.contains(&format!("\n# {key}")),
            "{key} undocumented"
        );
    }
}

#[test]
fn collector_tls_files_are_checked_at_load_and_the_token_never_shown() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("ca.pem");
    std::fs::write(
        &garbage,
        "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret-token\n").unwrap();
    let at = |key: &str| format!("{key} = {:?}\n", garbage.display().to_string());
    let cases = [
        (
            format!(
                "broker_id = 1\ncollector = \"https://c:9798\"\n{}",
                at("collector_cert_file")
            ),
            "config f: collector_key_file: not set; a client certificate needs its key",
        ),
        (
            format!(
                "broker_id = 1\ncollector = \"http://c:9798\"\n{}",
                at("collector_ca_file")
            ),
            "config f: collector: is http:// but TLS files are set; write https://",
        ),
        (
            format!(
                "broker_id = 1\ncollector = \"https://c:9798\"\n{}",
                at("collector_ca_file")
            ),
            "config f: collector_ca_file: the CA, certificate or key is not usable PEM",
        ),
        (
            "broker_id = 1\ncollector_ca_file = \"/nonexistent/ca.pem\"\n".to_owned(),
            "config f: collector_ca_file: cannot read /nonexistent/ca.pem",
        ),
    ];
    for (text, expected) in cases {
        let error = from_toml(&text, "config f", &Flags::default()).unwrap_err();
        assert!(error.starts_with(expected), "{text}: {error}");
    }
    let config = from_toml(
        &format!(
            "broker_id = 1\ncollector = \"https://c:9798\"\ncollector_token_file = {:?}\n",
            token.display().to_string()
        ),
        "config f",
        &Flags::default(),
    )
    .unwrap();
    assert_eq!(
        config.collector_token.as_ref().map(Secret::expose),
        Some("s3cret-token")
    );
    assert!(!format!("{config:?}").contains("s3cret"));
}

#[test]
fn flags_win_over_the_file() {
    let flags = Flags {
        broker_id: Some(4),
        listen: Some("127.0.0.1:0".into()),
        interval: Some("250ms".into()),
        collector: vec!["https://collector:9798".into()],
    };
    let config = from_toml(
        "broker_id = 2\nlisten = \"0.0.0.0:1\"\ninterval = \"1m\"\ncollector = [\"http://a:1\", \"http://b:1\"]\n",
        "f",
        &flags,
    )
    .unwrap();
    assert_eq!(config.broker_id, 4);
    assert_eq!(config.listen.to_string(), "127.0.0.1:0");
    assert_eq!(config.interval, Duration::from_millis(250));
    assert_eq!(config.collectors, ["https://collector:9798"]);
}

#[test]
fn an_active_active_pair_is_a_list_of_collectors_each_once() {
    let load = |text: &str| from_toml(text, "f", &Flags::default());
    let pair =
        load("broker_id = 1\ncollector = [\"http://a:9798\", \"http://b:9798/\"]\n").unwrap();
    assert_eq!(pair.collectors, ["http://a:9798", "http://b:9798"]);
    let one = load("broker_id = 1\ncollector = \"http://a:9798\"\n").unwrap();
    assert_eq!(one.collectors, ["http://a:9798"]);
    let twice =
        load("broker_id = 1\ncollector = [\"http://u:pw@a:9798\", \"http://u:pw@a:9798/\"]\n")
            .unwrap_err();
    assert_eq!(
        twice,
        "f: collector: http://***@a:9798 is listed twice; list each collector of a pair once"
    );
    let bad = load("broker_id = 1\ncollector = [\"http://a:9798\", \"b:9798\"]\n").unwrap_err();
    assert!(
        bad.starts_with("f: collector: \"b:9798\" is not a collector URL"),
        "{bad}"
    );
}

#[test]
fn every_bad_value_gets_one_line_naming_the_key() {
    let cases = [
        (
            "proc_path = \"/nonexistent\"",
            "config agent.toml: broker_id: not set, and no running broker (a process with kafka.Kafka in its command line) to read it from; pass --broker-id N",
        ),
        (
            "[broker]\nenabled = false",
            "config agent.toml: broker_id: not set, and with [broker] enabled = false there is no broker process",
        ),
        (
            "broker_id = -3",
            "config agent.toml: broker_id: -3 is not a Kafka broker id",
        ),
        (
            "broker_id = 1\n[page_cache]\ncount = \"cluster\"",
            "config agent.toml: page_cache.count: \"cluster\" is neither \"broker\" nor \"host\"",
        ),
        (
            "broker_id = 1\n[broker]\nenabled = false\n[page_cache]\ncount = \"broker\"",
            "config agent.toml: page_cache.count: \"broker\" needs the broker process",
        ),
        (
            "broker_id = 1\nlisten = \"localhost\"",
            "config agent.toml: listen: \"localhost\" is not an address",
        ),
        (
            "broker_id = 1\ninterval = \"soon\"",
            "config agent.toml: interval: invalid duration \"soon\"",
        ),
        (
            "broker_id = 1\ninterval = \"5ms\"",
            "config agent.toml: interval: 5ms is out of range",
        ),
        (
            "broker_id = 1\ncollector = \"collector:9798\"",
            "config agent.toml: collector: \"collector:9798\" is not a collector URL",
        ),
        (
            "broker_id = 1\nlog_level = \"loud\"",
            "config agent.toml: log_level: \"loud\" is not one of",
        ),
        (
            "broker_id = 1\n[disk]\nexclude = \"(\"",
            "config agent.toml: disk.exclude: invalid regular expression \"(\"",
        ),
        (
            "broker_id = 1\n[network]\ninclude = \"[\"",
            "config agent.toml: network.include: invalid regular expression",
        ),
        (
            "broker_id = 1\nlisten_addr = \"x\"",
            "config agent.toml line 2: unknown field `listen_addr`",
        ),
        (
            "broker_id = \"one\"",
            "config agent.toml line 1: invalid type: string \"one\"",
        ),
        ("broker_id = 1\n[disk\n", "config agent.toml line 2: "),
    ];
    for (text, expected) in cases {
        let err = error(text);
        assert!(
            err.starts_with(expected),
            "for {text:?}:\n got {err:?}\nwant {expected:?}..."
        );
        assert!(
            !err.contains('\n'),
            "multi-line error for {text:?}: {err:?}"
        );
    }
}

#[test]
fn an_unreadable_file_says_which_and_what_to_check() {
    let err = load(
        Some(Path::new("/nonexistent/agent.toml")),
        &Flags::default(),
    )
    .unwrap_err();
    assert!(
        err.starts_with("config /nonexistent/agent.toml: cannot read it ("),
        "{err}"
    );
    assert!(err.ends_with("check the --config path"), "{err}");
}
