//! The typed API: [`Producer<K, V>`] and [`Consumer<K, V>`] over the raw-bytes producer
//! and consumer, serializing keys and values as Confluent-framed Avro through the schema
//! registry. Types derive `serde::Serialize`/`Deserialize` and `apache_avro::AvroSchema`.

use std::marker::PhantomData;
use std::time::Duration;

use apache_avro::AvroSchema;
use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::avro::{AvroDeserializer, AvroSerializer, AvroSerializerConfig};
use crate::config::{ConsumerConfig, ProducerConfig};
use crate::error::Result;
use crate::kafka::consumer::{ConsumerRecord, RawConsumer, RebalanceEvent, TopicPartition};
use crate::kafka::producer::{DeliveryFuture, ProducerRecord, RawProducer};
use crate::registry::RegistryClient;

/// Produces records with keys of type `K` and values of type `V`, as Avro.
pub struct Producer<K, V> {
    raw: RawProducer,
    key: AvroSerializer,
    value: AvroSerializer,
    _types: PhantomData<fn(&K, &V)>,
}

impl<K, V> std::fmt::Debug for Producer<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer").field("raw", &self.raw).finish()
    }
}

impl<K: Serialize + AvroSchema, V: Serialize + AvroSchema> Producer<K, V> {
    /// A producer registering `K`'s and `V`'s schemas under `<topic>-key`/`<topic>-value`.
    pub async fn new(config: ProducerConfig, registry: RegistryClient) -> Result<Self> {
        let key = AvroSerializer::for_type::<K>(
            registry.clone(),
            AvroSerializerConfig {
                is_key: true,
                ..Default::default()
            },
        );
        let value = AvroSerializer::for_type::<V>(registry, AvroSerializerConfig::default());
        Self::with_serializers(config, key, value).await
    }
}

impl<K: Serialize, V: Serialize> Producer<K, V> {
    /// A producer with serializers configured by the caller (schema, subject strategy, …).
    pub async fn with_serializers(
        config: ProducerConfig,
        key: AvroSerializer,
        value: AvroSerializer,
    ) -> Result<Self> {
        Ok(Producer {
            raw: RawProducer::new(config).await?,
            key,
            value,
            _types: PhantomData,
        })
    }

    /// Serializes and queues a record; await the returned future for its offset.
    pub async fn send(&self, topic: &str, key: Option<&K>, value: &V) -> Result<DeliveryFuture> {
        let mut record = ProducerRecord::new(topic, self.value.serialize(topic, value).await?);
        if let Some(key) = key {
            record.key = Some(Bytes::from(self.key.serialize(topic, key).await?));
        }
        self.raw.send(record).await
    }

    /// Waits until every queued record has its delivery result.
    pub async fn flush(&self) -> Result<()> {
        self.raw.flush().await
    }

    /// Flushes and stops the producer.
    pub async fn close(self) -> Result<()> {
        self.raw.close().await
    }

    /// The raw-bytes producer underneath.
    pub fn raw(&self) -> &RawProducer {
        &self.raw
    }
}

/// Consumes records with keys of type `K` and values of type `V`, decoded from Avro.
pub struct Consumer<K, V> {
    raw: RawConsumer,
    key: AvroDeserializer,
    value: AvroDeserializer,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<K, V> std::fmt::Debug for Consumer<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer").field("raw", &self.raw).finish()
    }
}

impl<K: DeserializeOwned + AvroSchema, V: DeserializeOwned + AvroSchema> Consumer<K, V> {
    /// A consumer reading records into `K` and `V` (their schemas are the reader schemas).
    pub async fn new(config: ConsumerConfig, registry: RegistryClient) -> Result<Self> {
        let key = AvroDeserializer::for_type::<K>(registry.clone());
        let value = AvroDeserializer::for_type::<V>(registry);
        Self::with_deserializers(config, key, value).await
    }
}

impl<K: DeserializeOwned, V: DeserializeOwned> Consumer<K, V> {
    /// A consumer with deserializers configured by the caller (e.g. another reader schema).
    pub async fn with_deserializers(
        config: ConsumerConfig,
        key: AvroDeserializer,
        value: AvroDeserializer,
    ) -> Result<Self> {
        Ok(Consumer {
            raw: RawConsumer::new(config).await?,
            key,
            value,
            _types: PhantomData,
        })
    }

    /// Joins the group to consume `topics`.
    pub fn subscribe(&mut self, topics: &[&str]) -> Result<()> {
        self.raw.subscribe(topics)
    }

    /// Consumes exactly these partitions.
    pub fn assign(&mut self, partitions: Vec<TopicPartition>) {
        self.raw.assign(partitions)
    }

    /// Waits up to `timeout` for records and decodes them. A record that fails to decode
    /// is an error; the records before it in the same poll are not lost, as the consumer's
    /// position only moves past what it returned.
    pub async fn poll(
        &mut self,
        timeout: Duration,
    ) -> Result<Vec<ConsumerRecord<Option<K>, Option<V>>>> {
        let records = self.raw.poll(timeout).await?;
        let mut out = Vec::with_capacity(records.len());
        for (i, r) in records.iter().enumerate() {
            let decoded = async {
                let key = match &r.key {
                    Some(k) => Some(self.key.deserialize::<K>(k).await?),
                    None => None,
                };
                let value = match &r.value {
                    Some(v) => Some(self.value.deserialize::<V>(v).await?),
                    None => None,
                };
                Ok::<_, crate::ClientError>((key, value))
            }
            .await;
            match decoded {
                Ok((key, value)) => out.push(ConsumerRecord {
                    topic: r.topic.clone(),
                    partition: r.partition,
                    offset: r.offset,
                    timestamp: r.timestamp,
                    key,
                    value,
                    headers: r.headers.clone(),
                }),
                Err(e) => {
                    // Rewind to the bad record so the caller can seek past it.
                    let bad = &records[i];
                    let _ = self
                        .raw
                        .seek(&TopicPartition::new(&bad.topic, bad.partition), bad.offset);
                    return Err(e);
                }
            }
        }
        Ok(out)
    }

    /// Commits the current positions.
    pub async fn commit(&mut self) -> Result<()> {
        self.raw.commit().await
    }

    /// Calls `listener` on every assignment change.
    pub fn set_rebalance_listener(
        &mut self,
        listener: impl FnMut(&RebalanceEvent) + Send + 'static,
    ) {
        self.raw.set_rebalance_listener(listener)
    }

    /// The raw-bytes consumer underneath, for seek, pause/resume, positions and commits.
    pub fn raw_mut(&mut self) -> &mut RawConsumer {
        &mut self.raw
    }

    /// Commits (with auto commit) and leaves the group.
    pub async fn close(self) -> Result<()> {
        self.raw.close().await
    }
}
