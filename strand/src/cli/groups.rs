//! `strand groups`: list, describe (members, assignments, committed offsets and lag) and
//! delete consumer groups through the client's `AdminClient`.

use std::collections::{BTreeMap, BTreeSet};

use clap::Subcommand;
use strand_client::{AdminClient, GroupDescription, PartitionLag, TopicPartition};

use super::KafkaArgs;
use super::table::Table;

/// What to do with consumer groups.
#[derive(Debug, Subcommand)]
pub enum GroupsCommand {
    /// List consumer group ids.
    List {
        #[command(flatten)]
        kafka: KafkaArgs,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show a group's state, members with their partitions, and committed offsets with lag.
    Describe {
        #[command(flatten)]
        kafka: KafkaArgs,
        /// Group id.
        group: String,
        /// Print JSON instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// Delete a group that has no members, with its committed offsets.
    Delete {
        #[command(flatten)]
        kafka: KafkaArgs,
        /// Group id.
        group: String,
    },
}

/// Runs one `strand groups` subcommand.
pub(crate) async fn run(command: GroupsCommand) -> anyhow::Result<()> {
    match command {
        GroupsCommand::List { kafka, json } => {
            let admin = kafka.admin().await?;
            let groups = admin.list_groups().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&groups)?);
                return Ok(());
            }
            let mut table = Table::new(&["GROUP"]);
            for group in groups {
                table.row(vec![group]);
            }
            table.print()?;
        }
        GroupsCommand::Describe { kafka, group, json } => {
            let admin = kafka.admin().await?;
            let description = admin.describe_group(&group).await?;
            let offsets = admin.group_offsets(&group).await?;
            if description.state == "Dead" && offsets.is_empty() {
                anyhow::bail!("group {group} does not exist");
            }
            let rows = offset_rows(&admin, &description, offsets).await;
            if json {
                print_json(&description, &rows)?;
            } else {
                print_tables(&description, &rows)?;
            }
        }
        GroupsCommand::Delete { kafka, group } => {
            let admin = kafka.admin().await?;
            admin.delete_groups(&[&group]).await?;
            eprintln!("deleted group {group}");
        }
    }
    Ok(())
}

/// One line of the offsets table: `committed` and `lag` are `None` for a partition assigned
/// to a member that has committed nothing there yet.
struct OffsetRow {
    partition: TopicPartition,
    committed: Option<i64>,
    end: Option<i64>,
    lag: Option<i64>,
}

/// The committed offsets, plus the members' assigned partitions without a commit, as
/// Kafka's `kafka-consumer-groups --describe` shows them.
async fn offset_rows(
    admin: &AdminClient,
    description: &GroupDescription,
    offsets: Vec<PartitionLag>,
) -> Vec<OffsetRow> {
    let committed: BTreeSet<TopicPartition> = offsets.iter().map(|o| o.partition.clone()).collect();
    let mut rows: Vec<OffsetRow> = offsets
        .into_iter()
        .map(|o| OffsetRow {
            partition: o.partition,
            committed: Some(o.committed),
            end: Some(o.end_offset),
            lag: Some(o.lag),
        })
        .collect();
    let mut ends: BTreeMap<String, BTreeMap<i32, i64>> = BTreeMap::new();
    for tp in description.members.iter().flat_map(|m| &m.assignment) {
        if committed.contains(tp) {
            continue;
        }
        if !ends.contains_key(&tp.topic) {
            // Only decoration: a topic deleted meanwhile shows no end offset.
            let topic_ends = match admin.partition_offsets(&tp.topic).await {
                Ok(offsets) => offsets
                    .iter()
                    .map(|o| (o.partition, o.high_watermark))
                    .collect(),
                Err(e) => {
                    tracing::debug!(topic = %tp.topic, error = %e, "no end offsets");
                    BTreeMap::new()
                }
            };
            ends.insert(tp.topic.clone(), topic_ends);
        }
        rows.push(OffsetRow {
            partition: tp.clone(),
            committed: None,
            end: ends
                .get(&tp.topic)
                .and_then(|e| e.get(&tp.partition))
                .copied(),
            lag: None,
        });
    }
    rows.sort_by(|a, b| a.partition.cmp(&b.partition));
    rows
}

fn print_tables(description: &GroupDescription, rows: &[OffsetRow]) -> anyhow::Result<()> {
    println!(
        "Group: {}  State: {}  Assignor: {}  Members: {}",
        description.group_id,
        description.state,
        if description.protocol.is_empty() {
            "-"
        } else {
            &description.protocol
        },
        description.members.len()
    );
    println!();
    if description.members.is_empty() {
        // Kafka's kafka-consumer-groups says the same of a group without members.
        println!(
            "Consumer group '{}' has no active members.",
            description.group_id
        );
    } else {
        print_members(description)?;
    }
    println!();
    if rows.is_empty() {
        println!(
            "Consumer group '{}' has no committed offsets.",
            description.group_id
        );
        return Ok(());
    }
    let dash = |v: Option<i64>| v.map_or_else(|| "-".to_string(), |v| v.to_string());
    let mut table = Table::new(&["TOPIC", "PARTITION", "COMMITTED", "END", "LAG"]);
    for r in rows {
        table.row(vec![
            r.partition.topic.clone(),
            r.partition.partition.to_string(),
            dash(r.committed),
            dash(r.end),
            dash(r.lag),
        ]);
    }
    table.print()?;
    Ok(())
}

fn print_members(description: &GroupDescription) -> anyhow::Result<()> {
    let mut table = Table::new(&["MEMBER", "CLIENT-ID", "HOST", "PARTITIONS"]);
    for m in &description.members {
        let partitions: Vec<String> = m.assignment.iter().map(|tp| tp.to_string()).collect();
        table.row(vec![
            m.member_id.clone(),
            m.client_id.clone(),
            m.client_host.clone(),
            partitions.join(","),
        ]);
    }
    Ok(table.print()?)
}

fn print_json(description: &GroupDescription, rows: &[OffsetRow]) -> anyhow::Result<()> {
    let members: Vec<_> = description
        .members
        .iter()
        .map(|m| {
            serde_json::json!({
                "member_id": m.member_id,
                "client_id": m.client_id,
                "host": m.client_host,
                "partitions": m.assignment.iter().map(|tp| serde_json::json!({
                    "topic": tp.topic,
                    "partition": tp.partition,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let offsets: Vec<_> = rows
        .iter()
        .map(|r| {
            serde_json::json!({
                "topic": r.partition.topic,
                "partition": r.partition.partition,
                "committed": r.committed,
                "end": r.end,
                "lag": r.lag,
            })
        })
        .collect();
    let out = serde_json::json!({
        "group": description.group_id,
        "state": description.state,
        "assignor": description.protocol,
        "members": members,
        "offsets": offsets,
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
