//! `strand topics`: list, describe, create, delete topics and change their configs through
//! the client's `AdminClient`.

use std::collections::BTreeMap;

use anyhow::bail;
use clap::Subcommand;
use strand_client::NewTopic;

use super::table::Table;
use super::{KafkaArgs, count, key_value};

/// Topics Kafka, the schema registry and transactions keep for themselves. The broker flags
/// only some as internal in Metadata (Kafka flags `_schemas` nowhere), so the names count too.
const INTERNAL_TOPICS: [&str; 3] = ["__consumer_offsets", "_schemas", "__transaction_state"];

/// Whether `topics list` hides a topic without `--internal`.
fn is_internal(name: &str, flagged: bool) -> bool {
    flagged || INTERNAL_TOPICS.contains(&name)
}

/// What to do with topics.
#[derive(Debug, Subcommand)]
pub enum TopicsCommand {
    /// List topics with their partition counts.
    List {
        #[command(flatten)]
        kafka: KafkaArgs,
        /// Include internal topics (`__consumer_offsets`, `_schemas`, `__transaction_state`).
        #[arg(long)]
        internal: bool,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show a topic's partitions (leader, log start offset, high watermark) and configs.
    Describe {
        #[command(flatten)]
        kafka: KafkaArgs,
        /// Topic name.
        topic: String,
        /// Print JSON instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// Create a topic.
    Create {
        #[command(flatten)]
        kafka: KafkaArgs,
        /// Topic name.
        topic: String,
        /// Number of partitions.
        #[arg(long, default_value_t = 1)]
        partitions: i32,
        /// Replication factor (-1: the broker's default).
        #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
        replication_factor: i16,
        /// A topic config, e.g. `--config cleanup.policy=compact` (repeatable).
        #[arg(long = "config", value_parser = key_value, value_name = "KEY=VALUE")]
        configs: Vec<(String, String)>,
    },
    /// Delete a topic and its data.
    Delete {
        #[command(flatten)]
        kafka: KafkaArgs,
        /// Topic name.
        topic: String,
    },
    /// Set or remove topic config overrides.
    AlterConfig {
        #[command(flatten)]
        kafka: KafkaArgs,
        /// Topic name.
        topic: String,
        /// Set a config, e.g. `--set retention.ms=3600000` (repeatable).
        #[arg(long = "set", value_parser = key_value, value_name = "KEY=VALUE")]
        set: Vec<(String, String)>,
        /// Remove an override so the broker's default applies again (repeatable).
        #[arg(long = "delete", value_name = "KEY")]
        delete: Vec<String>,
    },
}

/// Runs one `strand topics` subcommand.
pub(crate) async fn run(command: TopicsCommand) -> anyhow::Result<()> {
    match command {
        TopicsCommand::List {
            kafka,
            internal,
            json,
        } => {
            let admin = kafka.admin().await?;
            let topics: Vec<_> = admin
                .list_topics()
                .await?
                .into_iter()
                .filter(|t| internal || !is_internal(&t.name, t.internal))
                .collect();
            if json {
                let topics: Vec<_> = topics
                    .iter()
                    .map(|t| {
                        serde_json::json!({
                            "topic": t.name,
                            "partitions": t.partitions.len(),
                            "internal": is_internal(&t.name, t.internal),
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&topics)?);
                return Ok(());
            }
            let mut table = Table::new(&["TOPIC", "PARTITIONS"]);
            for topic in topics {
                table.row(vec![topic.name, topic.partitions.len().to_string()]);
            }
            table.print()?;
        }
        TopicsCommand::Describe { kafka, topic, json } => {
            let admin = kafka.admin().await?;
            let description = admin.describe_topic(&topic).await?;
            let offsets = admin.partition_offsets(&topic).await?;
            let configs = admin.describe_topic_configs(&topic).await?;
            if json {
                let partitions: Vec<_> = description
                    .partitions
                    .iter()
                    .map(|(partition, leader)| {
                        let o = offsets.iter().find(|o| o.partition == *partition);
                        serde_json::json!({
                            "partition": partition,
                            "leader": leader,
                            "log_start_offset": o.map(|o| o.log_start_offset),
                            "high_watermark": o.map(|o| o.high_watermark),
                        })
                    })
                    .collect();
                let out = serde_json::json!({
                    "topic": description.name,
                    "internal": is_internal(&description.name, description.internal),
                    "partitions": partitions,
                    "configs": configs,
                });
                println!("{}", serde_json::to_string_pretty(&out)?);
                return Ok(());
            }
            println!(
                "Topic: {}  Partitions: {}{}",
                description.name,
                description.partitions.len(),
                if is_internal(&description.name, description.internal) {
                    "  Internal: yes"
                } else {
                    ""
                }
            );
            println!();
            let mut table = Table::new(&["PARTITION", "LEADER", "LOG-START", "HIGH-WATERMARK"]);
            for (partition, leader) in &description.partitions {
                let o = offsets.iter().find(|o| o.partition == *partition);
                table.row(vec![
                    partition.to_string(),
                    leader.to_string(),
                    o.map(|o| o.log_start_offset.to_string())
                        .unwrap_or_default(),
                    o.map(|o| o.high_watermark.to_string()).unwrap_or_default(),
                ]);
            }
            table.print()?;
            println!();
            let mut table = Table::new(&["CONFIG", "VALUE"]);
            for (k, v) in configs {
                table.row(vec![k, v]);
            }
            table.print()?;
        }
        TopicsCommand::Create {
            kafka,
            topic,
            partitions,
            replication_factor,
            configs,
        } => {
            if partitions < 1 {
                bail!("--partitions must be at least 1");
            }
            let admin = kafka.admin().await?;
            let mut new = NewTopic::new(&topic, partitions);
            new.replication_factor = replication_factor;
            new.configs.extend(configs);
            admin.create_topics(&[new]).await?;
            eprintln!(
                "created topic {topic} with {}",
                count(u64::try_from(partitions).unwrap_or(0), "partition")
            );
        }
        TopicsCommand::Delete { kafka, topic } => {
            let admin = kafka.admin().await?;
            admin.delete_topics(&[&topic]).await?;
            eprintln!("deleted topic {topic}");
        }
        TopicsCommand::AlterConfig {
            kafka,
            topic,
            set,
            delete,
        } => {
            if set.is_empty() && delete.is_empty() {
                bail!("nothing to change: give --set KEY=VALUE or --delete KEY");
            }
            let mut changes: BTreeMap<String, Option<String>> =
                set.into_iter().map(|(k, v)| (k, Some(v))).collect();
            for key in delete {
                changes.insert(key, None);
            }
            let admin = kafka.admin().await?;
            // Fail on an unknown topic with the same message as the other subcommands.
            admin.describe_topic(&topic).await?;
            admin.alter_topic_configs(&topic, &changes).await?;
            eprintln!(
                "altered {} of topic {topic}",
                count(changes.len() as u64, "config")
            );
        }
    }
    Ok(())
}
