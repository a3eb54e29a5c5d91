//! The controllers' requests (DescribeQuorum, ListPartitionReassignments,
//! DescribeLogDirs, DescribeConfigs) against a scripted Kafka-protocol
//! endpoint, one listener per broker: the figures it scripts are the ones
//! the collector reads back, exactly, over PLAINTEXT and over TLS with SASL
//! PLAIN.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use brokerwatch_collector::config::KafkaConfig;
use brokerwatch_collector::kafka::checks::{Controllers, ControllersCheck};
use brokerwatch_tests::scripted_kafka;
use bytes::BytesMut;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::describe_quorum_response::{PartitionData, ReplicaState, TopicData};
use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::metadata_response::MetadataResponseBroker;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

const NOW_MS: i64 = 1_800_000_000_000;

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

/// What broker `id` answers to one request (`None`: hang up).
fn answer(id: i32, ports: &[u16], api: ApiKey, version: i16, body: &mut BytesMut) -> Option<()> {
    let replica = |id: i32, end: i64, caught_up: i64| {
        ReplicaState::default()
            .with_replica_id(BrokerId(id))
            .with_log_end_offset(end)
            .with_last_caught_up_timestamp(caught_up)
            .with_last_fetch_timestamp(caught_up)
    };
    match api {
        ApiKey::ApiVersions => scripted_kafka::api_versions(
            &[
                (ApiKey::ApiVersions, 0, 3),
                (ApiKey::Metadata, 0, 12),
                (ApiKey::DescribeQuorum, 0, 2),
                (ApiKey::ListPartitionReassignments, 0, 0),
                (ApiKey::DescribeLogDirs, 0, 4),
                (ApiKey::DescribeConfigs, 0, 4),
                (ApiKey::SaslHandshake, 0, 1),
                (ApiKey::SaslAuthenticate, 0, 2),
            ],
            version,
            body,
        ),
        ApiKey::Metadata => MetadataResponse::default()
            .with_brokers(
                ports
                    .iter()
                    .enumerate()
                    .map(|(i, port)| {
                        MetadataResponseBroker::default()
                            .with_node_id(BrokerId(i as i32 + 1))
                            .with_host(text("localhost"))
                            .with_port(i32::from(*port))
                    })
                    .collect(),
            )
            .with_controller_id(BrokerId(2))
            .encode(body, version)
            .ok(),
        ApiKey::DescribeQuorum => DescribeQuorumResponse::default()
            .with_topics(vec![TopicData::default()
                .with_topic_name(TopicName(text("__cluster_metadata")))
                .with_partitions(vec![PartitionData::default()
                    .with_leader_id(BrokerId(1))
                    .with_leader_epoch(7)
                    .with_high_watermark(5000)
                    .with_current_voters(vec![
                        replica(1, 5000, NOW_MS),
                        replica(2, 4990, NOW_MS - 200),
                        replica(3, 3000, NOW_MS - 45_000),
                    ])
                    .with_observers(vec![replica(4, 4800, NOW_MS - 1_000)])])])
            .encode(body, version)
            .ok(),
        ApiKey::ListPartitionReassignments if id == 2 => {
            ListPartitionReassignmentsResponse::default()
                .with_topics(vec![OngoingTopicReassignment::default()
                    .with_name(TopicName(text("orders")))
                    .with_partitions(vec![OngoingPartitionReassignment::default()
                        .with_partition_index(3)
                        .with_replicas(vec![BrokerId(1), BrokerId(2), BrokerId(3), BrokerId(4)])
                        .with_adding_replicas(vec![BrokerId(4)])
                        .with_removing_replicas(vec![BrokerId(1)])])])
                .encode(body, version)
                .ok()
        }
        ApiKey::DescribeLogDirs => {
            let partition = |p: i32, size: i64| {
                DescribeLogDirsPartition::default()
                    .with_partition_index(p)
                    .with_partition_size(size)
            };
            let dir = |path: &str, error: i16, partitions: Vec<DescribeLogDirsPartition>| {
                DescribeLogDirsResult::default()
                    .with_log_dir(text(path))
                    .with_error_code(error)
                    .with_total_bytes(1_000_000_000_000)
                    .with_usable_bytes(400_000_000_000)
                    .with_topics(vec![DescribeLogDirsTopic::default()
                        .with_name(TopicName(text("orders")))
                        .with_partitions(partitions)])
            };
            let results = match id {
                4 => vec![dir("/data/kafka", 0, vec![partition(3, 123_456)])],
                2 => vec![
                    dir("/data/a", 0, vec![partition(0, 1000), partition(3, 2000)]),
                    dir("/data/b", 56, vec![]), // KAFKA_STORAGE_ERROR: offline
                ],
                _ => vec![dir("/data/kafka", 0, vec![partition(1, 500)])],
            };
            DescribeLogDirsResponse::default()
                .with_results(results)
                .encode(body, version)
                .ok()
        }
        ApiKey::DescribeConfigs => {
            let configs = if id == 4 {
                vec![DescribeConfigsResourceResult::default()
                    .with_name(text("follower.replication.throttled.rate"))
                    .with_value(Some(text("10485760")))]
            } else {
                Vec::new()
            };
            DescribeConfigsResponse::default()
                .with_results(vec![DescribeConfigsResult::default()
                    .with_resource_type(4)
                    .with_resource_name(text(&id.to_string()))
                    .with_configs(configs)])
                .encode(body, version)
                .ok()
        }
        ApiKey::SaslHandshake => SaslHandshakeResponse::default()
            .with_mechanisms(vec![text("PLAIN")])
            .encode(body, version)
            .ok(),
        _ => None,
    }
}

fn serve(stream: impl Read + Write, id: i32, ports: &[u16], password: Option<&str>) {
    scripted_kafka::serve(stream, |api, version, request, body| {
        if api != ApiKey::SaslAuthenticate {
            return answer(id, ports, api, version, body);
        }
        let auth = SaslAuthenticateRequest::decode(request, version).expect("auth");
        let expected = format!("\0monitor\0{}", password.unwrap_or_default());
        let error = if auth.auth_bytes.as_ref() == expected.as_bytes() {
            0
        } else {
            58 // SASL_AUTHENTICATION_FAILED
        };
        SaslAuthenticateResponse::default()
            .with_error_code(error)
            .with_error_message(
                (error != 0).then(|| text("Authentication failed: Invalid username or password")),
            )
            .encode(body, version)
            .ok()
    });
}

/// Four brokers, each on a listener of its own; TLS with `tls`, SASL PLAIN
/// with `password`. The bootstrap address.
fn scripted_cluster(
    tls: Option<Arc<rustls::ServerConfig>>,
    password: Option<&'static str>,
) -> String {
    let listeners: Vec<TcpListener> = (0..4)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let ports: Arc<Vec<u16>> = Arc::new(
        listeners
            .iter()
            .map(|l| l.local_addr().unwrap().port())
            .collect(),
    );
    for (i, listener) in listeners.into_iter().enumerate() {
        let (ports, tls) = (ports.clone(), tls.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (ports, tls) = (ports.clone(), tls.clone());
                std::thread::spawn(move || {
                    let id = i as i32 + 1;
                    match tls {
                        None => serve(stream, id, &ports, password),
                        Some(config) => {
                            let connection = rustls::ServerConnection::new(config).unwrap();
                            serve(
                                rustls::StreamOwned::new(connection, stream),
                                id,
                                &ports,
                                password,
                            )
                        }
                    }
                });
            }
        });
    }
    format!("localhost:{}", ports[0])
}

fn read(properties: &[(&str, &str)]) -> Result<Controllers, String> {
    let config = KafkaConfig {
        properties: properties
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<BTreeMap<_, _>>(),
        metadata_interval: Duration::from_secs(1),
        topic_config_interval: Duration::from_secs(60),
        timeout: Duration::from_secs(5),
        expected_brokers: Default::default(),
    };
    let mut check = ControllersCheck::new(config);
    let mut found = Controllers::default();
    check.read(&mut found, NOW_MS as f64 / 1000.0)?;
    Ok(found)
}

fn assert_scripted_figures(found: &Controllers) {
    assert_eq!(found.controller, Some(2));
    let quorum = found.quorum.as_ref().expect("the quorum");
    assert_eq!(
        (quorum.leader, quorum.epoch, quorum.high_watermark),
        (1, 7, 5000)
    );
    let lags: Vec<(i32, bool, i64, Option<f64>)> = quorum
        .lags()
        .iter()
        .map(|l| (l.id, l.voter, l.records, l.seconds))
        .collect();
    assert_eq!(
        lags,
        [
            (1, true, 0, Some(0.0)),
            (2, true, 10, Some(0.2)),
            (3, true, 2000, Some(45.0)),
            (4, false, 200, Some(1.0)),
        ]
    );
    let ids: Vec<i32> = quorum.lagging_voters(30.0).iter().map(|l| l.id).collect();
    assert_eq!(ids, [3]);

    let moving = found.reassignments.as_ref().expect("the reassignments");
    assert_eq!(moving.len(), 1);
    let orders = &moving[0];
    assert_eq!(orders.moving.key, ("orders".to_owned(), 3));
    assert_eq!(orders.moving.replicas, [1, 2, 3, 4]);
    assert_eq!(
        (
            orders.moving.adding.as_slice(),
            orders.moving.removing.as_slice()
        ),
        (&[4][..], &[1][..])
    );
    assert_eq!(
        orders.copied_bytes,
        Some(123_456),
        "broker 4's copy, from its log dirs"
    );

    let dirs = found.log_dirs.as_ref().expect("the log dirs");
    assert_eq!(dirs.len(), 4);
    let two = &dirs[&2];
    assert_eq!(two.len(), 2);
    assert_eq!(
        (two[0].path.as_str(), two[0].partitions, two[0].size_bytes),
        ("/data/a", 2, 3000)
    );
    assert_eq!(
        (two[0].total_bytes, two[0].usable_bytes),
        (Some(1_000_000_000_000), Some(400_000_000_000))
    );
    assert!(!two[0].offline());
    assert_eq!((two[1].path.as_str(), two[1].offline()), ("/data/b", true));
    assert_eq!(found.throttles[&4], [("follower", 10_485_760)]);
    assert!(found.throttles[&1].is_empty());
}

#[test]
fn quorum_reassignments_log_dirs_and_throttles_read_back_exactly() {
    let bootstrap = scripted_cluster(None, None);
    let found = read(&[("bootstrap.servers", &bootstrap)]).expect("answers");
    assert_scripted_figures(&found);
}

#[test]
fn the_same_over_tls_with_sasl_plain_and_a_wrong_password_or_ca_is_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let pki = brokerwatch_tests::TestPki::create(dir.path());
    let certs: Vec<_> =
        rustls_pemfile::certs(&mut std::fs::read(&pki.server_cert).unwrap().as_slice())
            .collect::<Result<_, _>>()
            .unwrap();
    let key = rustls_pemfile::private_key(&mut std::fs::read(&pki.server_key).unwrap().as_slice())
        .unwrap()
        .unwrap();
    let server = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let bootstrap = scripted_cluster(Some(Arc::new(server)), Some("s3cret"));
    let settings = |password: &'static str, ca: &str| {
        vec![
            ("bootstrap.servers", bootstrap.clone()),
            ("security.protocol", "SASL_SSL".to_owned()),
            ("sasl.mechanism", "PLAIN".to_owned()),
            ("sasl.username", "monitor".to_owned()),
            ("sasl.password", password.to_owned()),
            ("ssl.ca.location", ca.to_owned()),
        ]
    };
    let run = |pairs: Vec<(&'static str, String)>| {
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        read(&pairs)
    };
    let found = run(settings("s3cret", &pki.ca)).expect("answers over TLS");
    assert_scripted_figures(&found);

    let wrong = run(settings("guess", &pki.ca)).unwrap_err();
    assert!(
        wrong.contains("SASL PLAIN authentication failed for \"monitor\""),
        "{wrong}"
    );
    assert!(!wrong.contains("guess") && !wrong.contains('\n'), "{wrong}");

    let rogue_ca = dir.path().join("rogue-ca.pem");
    std::fs::copy(&pki.rogue_cert, &rogue_ca).unwrap();
    let untrusted = run(settings("s3cret", rogue_ca.to_str().unwrap())).unwrap_err();
    assert!(untrusted.contains("TLS handshake failed"), "{untrusted}");
    assert!(!untrusted.contains('\n'));
}
