//! Talking to the cluster over the Kafka protocol (librdkafka through
//! rdkafka): metadata, topic configs, consumer groups, committed and end
//! offsets. Fetching only: what the answers mean is decided in `model/` on
//! the snapshots this returns. Every call is blocking with a timeout; the
//! daemon runs them on a thread of their own, through its checks.

pub mod checks;
pub mod probe;
pub mod wire;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use crate::model::replication::{PartitionMeta, Snapshot, TopicMeta};

pub use crate::model::PartitionKey;

const COLLECTOR_CLIENT_ID: &str = "brokerwatch-collector";

/// A consumer group as the cluster describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedGroup {
    pub name: String,
    /// `Stable`, `Empty`, `PreparingRebalance`, `CompletingRebalance`, `Dead`.
    pub state: String,
    pub members: usize,
}

/// A client for one cluster, configured with librdkafka properties as they
/// are (`bootstrap.servers`, `security.protocol`, `sasl.*`, `ssl.*`, `client.id`, ...).
pub struct Kafka {
    properties: BTreeMap<String, String>,
    timeout: Duration,
    metadata: BaseConsumer,
    admin: AdminClient<DefaultClientContext>,
    /// One consumer per group whose committed offsets are read (never subscribed).
    group_clients: HashMap<String, BaseConsumer>,
}

/// librdkafka settings from `[kafka.properties]`, named `client_id` unless
/// they name the client themselves.
pub(crate) fn client_config(
    properties: &BTreeMap<String, String>,
    client_id: &str,
) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("client.id", client_id);
    for (key, value) in properties {
        config.set(key, value);
    }
    config
}

impl Kafka {
    pub fn new(properties: BTreeMap<String, String>, timeout: Duration) -> Result<Kafka, String> {
        if !properties.contains_key("bootstrap.servers") {
            return Err("kafka.properties: bootstrap.servers is not set; list the cluster's brokers, e.g. \"kafka-1:9092,kafka-2:9092\"".into());
        }
        // No group.id: this client only asks for metadata and offsets, and
        // must not join or look up any group coordinator.
        let metadata: BaseConsumer = client_config(&properties, COLLECTOR_CLIENT_ID)
            .create()
            .map_err(|e| format!("kafka: cannot create a client from kafka.properties: {e}"))?;
        let admin = client_config(&properties, COLLECTOR_CLIENT_ID)
            .create()
            .map_err(|e| {
                format!("kafka: cannot create an admin client from kafka.properties: {e}")
            })?;
        Ok(Kafka {
            properties,
            timeout,
            metadata,
            admin,
            group_clients: HashMap::new(),
        })
    }

    /// The cluster's brokers, topics, partitions, leaders, replicas and ISRs,
    /// internal topics (`__consumer_offsets`, `__transaction_state`) included:
    /// every group and every transaction depends on them. `min.insync.replicas` is filled in later from
    /// [`Kafka::min_insync_replicas`], which changes rarely.
    pub fn snapshot(&self) -> Result<Snapshot, String> {
        let metadata = self
            .metadata
            .fetch_metadata(None, self.timeout)
            .map_err(|e| format!("kafka: metadata request failed: {e}"))?;
        let mut brokers: Vec<i32> = metadata.brokers().iter().map(|b| b.id()).collect();
        brokers.sort_unstable();
        let topics = metadata
            .topics()
            .iter()
            .filter(|t| t.error().is_none())
            .map(|t| TopicMeta {
                name: t.name().to_owned(),
                partitions: t
                    .partitions()
                    .iter()
                    .map(|p| PartitionMeta {
                        id: p.id(),
                        leader: p.leader(),
                        replicas: p.replicas().to_vec(),
                        isr: p.isr().to_vec(),
                    })
                    .collect(),
                min_insync_replicas: None,
            })
            .collect();
        Ok(Snapshot { brokers, topics })
    }

    /// `min.insync.replicas` per topic, through DescribeConfigs. Topics the
    /// cluster would not describe are left out (and stay unknown).
    pub async fn min_insync_replicas(
        &self,
        topics: &[String],
    ) -> Result<HashMap<String, u32>, String> {
        if topics.is_empty() {
            return Ok(HashMap::new());
        }
        let specifiers: Vec<ResourceSpecifier> =
            topics.iter().map(|t| ResourceSpecifier::Topic(t)).collect();
        let options = AdminOptions::new().request_timeout(Some(self.timeout));
        let results = self
            .admin
            .describe_configs(&specifiers, &options)
            .await
            .map_err(|e| format!("kafka: DescribeConfigs failed: {e}"))?;
        let mut found = HashMap::new();
        for (topic, result) in topics.iter().zip(results) {
            if let Ok(resource) = result {
                let value = resource
                    .get("min.insync.replicas")
                    .and_then(|e| e.value.as_deref())
                    .and_then(|v| v.parse().ok());
                if let Some(value) = value {
                    found.insert(topic.clone(), value);
                }
            }
        }
        Ok(found)
    }

    /// The consumer groups the cluster knows, with their state and members
    /// (librdkafka asks every broker: ListGroups, then DescribeGroups).
    /// Clusters or proxies that do not answer it give an error; configured
    /// groups still work.
    pub fn list_groups(&self) -> Result<Vec<ListedGroup>, String> {
        let list = self
            .metadata
            .fetch_group_list(None, self.timeout)
            .map_err(|e| format!("kafka: ListGroups failed: {e}"))?;
        let mut groups: Vec<ListedGroup> = list
            .groups()
            .iter()
            .map(|g| ListedGroup {
                name: g.name().to_owned(),
                state: g.state().to_owned(),
                members: g.members().len(),
            })
            .collect();
        groups.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(groups)
    }

    /// The group's committed offsets for these partitions, in one OffsetFetch;
    /// partitions it never committed are left out.
    pub fn committed(
        &mut self,
        group: &str,
        partitions: &[PartitionKey],
    ) -> Result<Vec<(PartitionKey, i64)>, String> {
        if !self.group_clients.contains_key(group) {
            let client: BaseConsumer = client_config(&self.properties, COLLECTOR_CLIENT_ID)
                .set("group.id", group)
                .set("enable.auto.commit", "false")
                .create()
                .map_err(|e| format!("kafka: cannot create a client for group {group}: {e}"))?;
            self.group_clients.insert(group.to_owned(), client);
        }
        let client = &self.group_clients[group];
        let mut list = TopicPartitionList::new();
        for (topic, partition) in partitions {
            list.add_partition(topic, *partition);
        }
        let committed = client
            .committed_offsets(list, self.timeout)
            .map_err(|e| format!("kafka: OffsetFetch for group {group} failed: {e}"))?;
        Ok(known_offsets(&committed))
    }

    /// The end (latest) offset of each partition, in one batched ListOffsets.
    pub fn end_offsets(
        &self,
        partitions: &[PartitionKey],
    ) -> Result<Vec<(PartitionKey, i64)>, String> {
        if partitions.is_empty() {
            return Ok(Vec::new());
        }
        let mut list = TopicPartitionList::new();
        for (topic, partition) in partitions {
            list.add_partition_offset(topic, *partition, Offset::End)
                .map_err(|e| format!("kafka: {topic}/{partition}: {e}"))?;
        }
        let latest = self
            .metadata
            .offsets_for_times(list, self.timeout)
            .map_err(|e| format!("kafka: ListOffsets failed: {e}"))?;
        Ok(known_offsets(&latest))
    }
}

/// The partitions of an answer that came with an offset (not "none
/// committed", not an error for a leaderless partition).
fn known_offsets(list: &TopicPartitionList) -> Vec<(PartitionKey, i64)> {
    list.elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(offset) => Some(((e.topic().to_owned(), e.partition()), offset)),
            _ => None,
        })
        .collect()
}
