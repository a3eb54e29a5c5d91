//! A cluster whose ACLs refuse the probe its topic: a scripted
//! Kafka-protocol broker answers CreateTopics with
//! TOPIC_AUTHORIZATION_FAILED. The collector says so once, in one line
//! naming the topic and the permission, and the rest of it runs.

use std::net::TcpListener;
use std::time::Duration;

use brokerwatch_tests::{
    eventually, get_json, open_collector_config, scripted_kafka, start_collector,
};
use kafka_protocol::messages::create_topics_request::CreateTopicsRequest;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::metadata_response::{MetadataResponseBroker, MetadataResponseTopic};
use kafka_protocol::messages::{
    ApiKey, BrokerId, CreateTopicsResponse, MetadataRequest, MetadataResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

fn answer(
    port: u16,
    api: ApiKey,
    version: i16,
    request: &mut bytes::Bytes,
    body: &mut bytes::BytesMut,
) -> Option<()> {
    match api {
        ApiKey::ApiVersions => scripted_kafka::api_versions(
            &[
                (ApiKey::ApiVersions, 0, 3),
                (ApiKey::Metadata, 0, 12),
                (ApiKey::CreateTopics, 0, 4),
            ],
            version,
            body,
        ),
        ApiKey::Metadata => {
            let asked = MetadataRequest::decode(request, version).ok()?;
            // Every topic named is unknown; "all topics" is none.
            let topics = asked
                .topics
                .unwrap_or_default()
                .into_iter()
                .map(|t| {
                    MetadataResponseTopic::default()
                        .with_name(t.name)
                        .with_error_code(3)
                })
                .collect();
            MetadataResponse::default()
                .with_brokers(vec![MetadataResponseBroker::default()
                    .with_node_id(BrokerId(1))
                    .with_host(StrBytes::from_static_str("127.0.0.1"))
                    .with_port(i32::from(port))])
                .with_controller_id(BrokerId(1))
                .with_topics(topics)
                .encode(body, version)
                .ok()
        }
        ApiKey::CreateTopics => {
            let asked = CreateTopicsRequest::decode(request, version).ok()?;
            CreateTopicsResponse::default()
                .with_topics(
                    asked
                        .topics
                        .into_iter()
                        .map(|t| {
                            CreatableTopicResult::default()
                                .with_name(t.name)
                                .with_error_code(29) // TOPIC_AUTHORIZATION_FAILED
                                .with_error_message(Some(StrBytes::from_static_str(
                                    "Authorization failed.",
                                )))
                        })
                        .collect(),
                )
                .encode(body, version)
                .ok()
        }
        _ => None,
    }
}

#[test]
fn a_refused_probe_topic_is_one_line_and_the_rest_runs() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                scripted_kafka::serve(stream, |api, version, request, body| {
                    answer(port, api, version, request, body)
                })
            });
        }
    });
    let state = tempfile::tempdir().unwrap();
    let (collector, url) = start_collector(&format!(
        r#"{header}[kafka]
metadata_interval = "500ms"
timeout = "2s"
[kafka.properties]
"bootstrap.servers" = "127.0.0.1:{port}"
[probe]
interval = "200ms"
"#,
        header = open_collector_config("acl", state.path())
    ));
    let said = "probe: the cluster refuses to create topic brokerwatch-probe (";
    eventually("the refusal said", Duration::from_secs(30), || {
        collector.log().contains(said).then_some(())
    });
    // The metadata still arrives: the rest runs.
    eventually("the metadata in the API", Duration::from_secs(30), || {
        (get_json(&format!("{url}/api/v1/replication"))["brokers"]
            .as_array()?
            .len()
            == 1)
            .then_some(())
    });
    std::thread::sleep(Duration::from_secs(3));
    let log = collector.log();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains(said)).collect();
    assert_eq!(lines.len(), 1, "said once: {lines:?}");
    assert!(
        lines[0].contains("grant this client Create on it, or create it with one partition led by each broker; the probe waits, everything else runs"),
        "{}",
        lines[0]
    );
}
