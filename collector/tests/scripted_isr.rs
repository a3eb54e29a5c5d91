//! librdkafka's mock cluster always reports the ISR equal to the replicas.
//! This test answers the Kafka protocol itself (ApiVersions and Metadata,
//! encoded with the kafka-protocol crate) with an ISR that lacks broker 3,
//! and shows that the collector's real rdkafka path reads it and that the
//! diagnosis names broker 3.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use brokerwatch_collector::kafka::Kafka;
use brokerwatch_collector::model::replication::analyze;
use brokerwatch_tests::scripted_kafka;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{ApiKey, BrokerId, MetadataResponse, TopicName};
use kafka_protocol::protocol::{Encodable, StrBytes};

/// orders: 6 partitions on brokers 1-3, replication 3. Broker 3 has fallen
/// out of the ISR of every partition it hosts; partition 5 has also lost 2.
fn metadata(port: u16) -> MetadataResponse {
    let brokers = (1..=3)
        .map(|id| {
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(id))
                .with_host(StrBytes::from_static_str("127.0.0.1"))
                .with_port(i32::from(port))
        })
        .collect();
    let partitions = (0..6)
        .map(|p| {
            let replicas: Vec<i32> = (0..3).map(|i| (p + i) % 3 + 1).collect();
            let isr: Vec<i32> = replicas
                .iter()
                .copied()
                .filter(|r| *r != 3 && !(p == 5 && *r == 2))
                .collect();
            MetadataResponsePartition::default()
                .with_partition_index(p)
                .with_leader_id(BrokerId(isr[0]))
                .with_replica_nodes(replicas.into_iter().map(BrokerId).collect())
                .with_isr_nodes(isr.into_iter().map(BrokerId).collect())
        })
        .collect();
    let topic = MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_static_str("orders"))))
        .with_partitions(partitions);
    MetadataResponse::default()
        .with_brokers(brokers)
        .with_controller_id(BrokerId(1))
        .with_cluster_id(Some(StrBytes::from_static_str("scripted")))
        .with_topics(vec![topic])
}

fn serve(stream: TcpStream, port: u16) {
    scripted_kafka::serve(stream, |api, version, _, body| match api {
        ApiKey::ApiVersions => scripted_kafka::api_versions(
            &[(ApiKey::ApiVersions, 0, 3), (ApiKey::Metadata, 0, 12)],
            version,
            body,
        ),
        ApiKey::Metadata => metadata(port).encode(body, version).ok(),
        _ => None, // not scripted: hang up, as a broker would on a request it cannot read
    });
}

#[test]
fn the_rdkafka_path_reads_an_isr_that_lacks_a_broker_and_the_diagnosis_names_it() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || serve(stream, port));
        }
    });
    let properties =
        BTreeMap::from([("bootstrap.servers".to_owned(), format!("127.0.0.1:{port}"))]);
    let kafka = Kafka::new(properties, Duration::from_secs(10)).expect("client");
    let snapshot = kafka
        .snapshot()
        .expect("metadata from the scripted endpoint");
    assert_eq!(snapshot.brokers, [1, 2, 3]);
    let orders = &snapshot.topics[0];
    assert_eq!(orders.name, "orders");
    assert_eq!(orders.partitions[0].replicas, [1, 2, 3]);
    assert_eq!(
        orders.partitions[0].isr,
        [1, 2],
        "the ISR as scripted, not the replicas"
    );

    let facts = analyze(&snapshot, &BTreeSet::from([1, 2, 3]));
    assert_eq!(facts.under_replicated, 6);
    assert_eq!(facts.brokers[&3].missing_from_isr, 6);
    assert_eq!(facts.brokers[&2].missing_from_isr, 1);
    assert_eq!(
        facts.diagnosis.suspects,
        [(3, 6)],
        "broker 3 alone explains every under-replicated partition"
    );
    assert_eq!(facts.diagnosis.explained_ratio, 1.0);
    assert_eq!(facts.offline, 0);
}
