//! Letting no one in: the collector behind TLS with client certificates
//! (mTLS) and per-cluster bearer tokens, the agent pushing to it over https
//! with its own certificate, and both /metrics endpoints behind the same
//! web-config file conventions Prometheus exporters use. A report without
//! the token, with a wrong token, over plain HTTP, without a client
//! certificate or with one from another CA is refused and the store is
//! unchanged; tokens never appear in a log.

use std::time::Duration;

use brokerwatch_tests::{eventually, start_agent_with_config, start_collector, TestPki};
use serde_json::Value;

const TOKEN: &str = "cluster-prod-7c1f0e";
const OTHER_CLUSTER_TOKEN: &str = "cluster-staging-51aa";
/// Prometheus's basic-auth password; the web-config files hold its bcrypt hash.
const PASSWORD: &str = "scrape-me";

fn bcrypt_of(password: &str) -> String {
    bcrypt::hash(password, 4).unwrap()
}

fn web_config(pki: &TestPki, client_auth: &str, users: &[(&str, &str)]) -> String {
    let mut text = format!(
        "tls_server_config:\n  cert_file: {}\n  key_file: {}\n  client_ca_file: {}\n  client_auth_type: {client_auth}\n",
        pki.server_cert, pki.server_key, pki.ca
    );
    if !users.is_empty() {
        text.push_str("basic_auth_users:\n");
        for (user, hash) in users {
            text.push_str(&format!("  {user}: '{hash}'\n"));
        }
    }
    text
}

#[test]
fn mtls_and_tokens_let_the_agent_in_and_refuse_everyone_else() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::create(dir.path());
    let hash = bcrypt_of(PASSWORD);
    let web = dir.path().join("collector-web.yml");
    std::fs::write(
        &web,
        web_config(&pki, "RequireAndVerifyClientCert", &[("prometheus", &hash)]),
    )
    .unwrap();
    // This collector's tokens come from the environment variable its config names.
    std::env::set_var("E2E_PROD_TOKENS", TOKEN);
    let state = tempfile::tempdir().unwrap();
    let (mut collector, url) = start_collector(&format!(
        "cluster = \"prod\"\nlisten = \"127.0.0.1:0\"\nstate_dir = {:?}\nweb_config_file = {:?}\n[ingest]\ntoken_env = \"E2E_PROD_TOKENS\"\n",
        state.path().display().to_string(),
        web.display().to_string()
    ));
    assert!(url.starts_with("https://"), "{url}");

    // The agent pushes over https with its client certificate and the token from a file.
    let agent_dir = tempfile::tempdir().unwrap();
    let token_file = agent_dir.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let (mut agent, _) = start_agent_with_config(
        &format!(
            "broker_id = 7\ninterval = \"300ms\"\ncollector = \"{url}\"\ncollector_token_file = {:?}\ncollector_ca_file = {:?}\ncollector_cert_file = {:?}\ncollector_key_file = {:?}\n[broker]\nenabled = false\n[page_cache]\nebpf = false\n",
            token_file.display().to_string(),
            pki.ca,
            pki.client_cert,
            pki.client_key
        ),
        agent_dir,
    );
    let trusted = pki.client(Some((&pki.client_cert, &pki.client_key)));
    let get_json = |path: &str| -> Value {
        trusted
            .get(format!("{url}{path}"))
            .basic_auth("prometheus", Some(PASSWORD))
            .send()
            .and_then(|r| r.error_for_status())
            .and_then(|r| r.json())
            .unwrap_or(Value::Null)
    };
    eventually(
        "the agent's report over mTLS",
        Duration::from_secs(20),
        || {
            get_json("/api/v1/brokers")
                .as_array()
                .filter(|b| b.iter().any(|b| b["broker"] == 7))
                .map(|_| ())
        },
    );
    // Stop the agent so that the store holds still while the intruders try.
    agent.kill_hard();
    std::thread::sleep(Duration::from_millis(500));
    let before = get_json("/api/v1/brokers");

    let post = |client: &reqwest::blocking::Client, base: &str, token: Option<&str>| {
        let mut request = client
            .post(format!("{base}/api/v1/reports"))
            .header("Content-Type", "application/json")
            .json(&brokerwatch_tests::minimal_report(99));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().map(|r| r.status().as_u16())
    };
    // With the right certificate: the token decides.
    assert_eq!(post(&trusted, &url, None).unwrap(), 401, "no token");
    assert_eq!(
        post(&trusted, &url, Some("guess")).unwrap(),
        403,
        "a wrong token"
    );
    assert_eq!(
        post(&trusted, &url, Some(OTHER_CLUSTER_TOKEN)).unwrap(),
        403,
        "another cluster's token"
    );
    // Without TLS, without a certificate, or with a stranger's: not even the request.
    let plain = url.replacen("https://", "http://", 1);
    let plain_client = reqwest::blocking::Client::new();
    assert!(
        post(&plain_client, &plain, Some(TOKEN)).is_err(),
        "plain HTTP got an answer"
    );
    assert!(
        post(&pki.client(None), &url, Some(TOKEN)).is_err(),
        "no client certificate got an answer"
    );
    assert!(
        post(
            &pki.client(Some((&pki.rogue_cert, &pki.rogue_key))),
            &url,
            Some(TOKEN)
        )
        .is_err(),
        "another CA's certificate got an answer"
    );
    let after = get_json("/api/v1/brokers");
    assert_eq!(after, before, "a refused report changed the store");
    assert!(after.as_array().unwrap().iter().all(|b| b["broker"] != 99));

    // /metrics and the API need basic auth on top; the report path needs only the token.
    let status =
        |request: reqwest::blocking::RequestBuilder| request.send().unwrap().status().as_u16();
    assert_eq!(status(trusted.get(format!("{url}/metrics"))), 401);
    assert_eq!(
        status(
            trusted
                .get(format!("{url}/metrics"))
                .basic_auth("prometheus", Some("wrong"))
        ),
        401
    );
    assert_eq!(
        status(
            trusted
                .get(format!("{url}/metrics"))
                .basic_auth("prometheus", Some(PASSWORD))
        ),
        200
    );
    let metrics = trusted
        .get(format!("{url}/metrics"))
        .basic_auth("prometheus", Some(PASSWORD))
        .send()
        .unwrap()
        .text()
        .unwrap();
    for reason in ["unauthenticated", "forbidden"] {
        assert!(
            metrics.lines().any(|l| l.starts_with(&format!(
                "brokerwatch_collector_reports_rejected_total{{cluster=\"prod\",reason=\"{reason}\"}}"
            ))),
            "no {reason} count"
        );
    }

    // The tokens are in no log line of either daemon.
    for log in [collector.log(), agent.log()] {
        assert!(!log.contains(TOKEN), "a token was logged:\n{log}");
    }
    collector.kill_hard();
}

#[test]
fn the_agents_metrics_behind_tls_and_basic_auth() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::create(dir.path());
    let web = dir.path().join("agent-web.yml");
    std::fs::write(
        &web,
        web_config(
            &pki,
            "NoClientCert",
            &[("prometheus", &bcrypt_of(PASSWORD))],
        ),
    )
    .unwrap();
    let (_agent, url) = start_agent_with_config(
        &format!(
            "broker_id = 3\ninterval = \"500ms\"\nweb_config_file = {:?}\n[page_cache]\nebpf = false\n",
            web.display().to_string()
        ),
        tempfile::tempdir().unwrap(),
    );
    assert!(url.starts_with("https://"), "{url}");
    let client = pki.client(None);
    let status =
        |request: reqwest::blocking::RequestBuilder| request.send().unwrap().status().as_u16();
    assert_eq!(status(client.get(&url)), 401, "no credentials");
    assert_eq!(
        status(client.get(&url).basic_auth("prometheus", Some("nope"))),
        401
    );
    let body = client
        .get(&url)
        .basic_auth("prometheus", Some(PASSWORD))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(body.contains("brokerwatch_cpu_seconds_total"), "{body}");
    assert!(
        reqwest::blocking::get(url.replacen("https://", "http://", 1)).is_err(),
        "plain HTTP got an answer"
    );
}
