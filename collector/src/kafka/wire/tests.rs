use super::*;

fn properties(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn bootstrap_servers_are_read_as_librdkafka_reads_them() {
    let wire = Wire::new(
        &properties(&[(
            "bootstrap.servers",
            "kafka-1:9092, SSL://kafka-2:9093,[::1]:9094",
        )]),
        Duration::from_secs(1),
    )
    .unwrap();
    assert_eq!(
        wire.bootstrap,
        vec![
            ("kafka-1".to_owned(), 9092),
            ("kafka-2".to_owned(), 9093),
            ("::1".to_owned(), 9094)
        ]
    );
    let no_port = Wire::new(
        &properties(&[("bootstrap.servers", "kafka-1")]),
        Duration::from_secs(1),
    );
    assert!(no_port.err().unwrap().contains("has no port"));
}

#[test]
fn what_the_client_cannot_honour_is_one_line_naming_the_setting() {
    let refused = |pairs: &[(&str, &str)]| {
        let mut all = vec![("bootstrap.servers", "k:9092")];
        all.extend_from_slice(pairs);
        Security::from_properties(&properties(&all)).err().unwrap()
    };
    let gssapi = refused(&[("security.protocol", "SASL_PLAINTEXT")]);
    assert!(
        gssapi.contains("sasl.mechanism = \"GSSAPI\" is not supported"),
        "{gssapi}"
    );
    let oauth = refused(&[
        ("security.protocol", "sasl_ssl"),
        ("sasl.mechanism", "OAUTHBEARER"),
    ]);
    assert!(oauth.contains("OAUTHBEARER"), "{oauth}");
    let no_user = refused(&[
        ("security.protocol", "SASL_PLAINTEXT"),
        ("sasl.mechanism", "PLAIN"),
    ]);
    assert!(no_user.contains("sasl.username is not set"), "{no_user}");
    let key_password = refused(&[
        ("security.protocol", "SSL"),
        ("ssl.key.password", "hunter2"),
    ]);
    assert!(
        key_password.contains("ssl.key.password = \"***\""),
        "{key_password}"
    );
    assert!(!key_password.contains("hunter2"));
    let half = refused(&[
        ("security.protocol", "SSL"),
        ("ssl.certificate.location", "/x.pem"),
    ]);
    assert!(half.contains("go together"), "{half}");
    let missing_ca = refused(&[
        ("security.protocol", "SSL"),
        ("ssl.ca.location", "/nonexistent/ca.pem"),
    ]);
    assert!(
        missing_ca.contains("cannot read /nonexistent/ca.pem"),
        "{missing_ca}"
    );
    for error in [gssapi, oauth, no_user, key_password, half, missing_ca] {
        assert!(!error.contains('\n'));
    }
}

#[test]
fn plaintext_and_sasl_settings_are_taken() {
    let security = Security::from_properties(&properties(&[
        ("security.protocol", "SASL_PLAINTEXT"),
        ("sasl.mechanisms", "SCRAM-SHA-512"),
        ("sasl.username", "monitor"),
        ("sasl.password", "secret"),
    ]))
    .unwrap();
    assert!(security.tls.is_none());
    let sasl = security.sasl.unwrap();
    assert_eq!(sasl.mechanism, security::Mechanism::ScramSha512);
    assert_eq!(sasl.username, "monitor");
    let plain = Security::from_properties(&properties(&[])).unwrap();
    assert!(plain.tls.is_none() && plain.sasl.is_none());
}

#[test]
fn a_broker_that_does_not_answer_is_a_failure_naming_it() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let error = Connection::open(
        "127.0.0.1",
        port,
        &Security::default(),
        Duration::from_secs(1),
    )
    .err()
    .unwrap();
    assert!(
        error
            .to_string()
            .contains(&format!("127.0.0.1:{port}: cannot connect")),
        "{error}"
    );
}
