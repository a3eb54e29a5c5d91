//! What the Kafka tests do to a cluster as its users would: create topics,
//! commit a group's offsets.

/// Creates topics `(name, partitions)` with replication factor 1 through
/// the admin API (CreateTopics), as an operator's tooling would.
pub fn create_topics(bootstrap: &str, topics: &[(&str, i32)]) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> = rdkafka::config::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let new: Vec<NewTopic> = topics
        .iter()
        .map(|(name, partitions)| NewTopic::new(name, *partitions, TopicReplication::Fixed(1)))
        .collect();
    let created = runtime
        .block_on(admin.create_topics(&new, &AdminOptions::new()))
        .expect("CreateTopics");
    assert!(created.iter().all(Result::is_ok), "{created:?}");
}

/// Commits `offsets[p]` for each partition p of `topic` as consumer group
/// `group`, the way a consumer that read that far would, and leaves (the
/// group has no member afterwards).
pub fn commit_as_group(bootstrap: &str, group: &str, topic: &str, offsets: &[i64]) {
    use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
    let consumer: BaseConsumer = rdkafka::config::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut list = rdkafka::TopicPartitionList::new();
    for (partition, offset) in offsets.iter().enumerate() {
        list.add_partition_offset(topic, partition as i32, rdkafka::Offset::Offset(*offset))
            .expect("offset");
    }
    consumer.commit(&list, CommitMode::Sync).expect("commit");
}
