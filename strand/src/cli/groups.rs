//! `strand groups`: list, describe (members, assignments, committed offsets and lag) and
//! delete consumer groups through the client's `AdminClient`.

use clap::Subcommand;

use super::KafkaArgs;
use super::table::Table;

/// What to do with consumer groups.
#[derive(Debug, Subcommand)]
pub enum GroupsCommand {
    /// List consumer group ids.
    List {
        #[command(flatten)]
        kafka: KafkaArgs,
    },
    /// Show a group's state, members with their partitions, and committed offsets with lag.
    Describe {
        #[command(flatten)]
        kafka: KafkaArgs,
        /// Group id.
        group: String,
    },
    /// Delete a group that has no members, with its committed offsets.
    Delete {
        #[command(flatten)]
        kafka: KafkaArgs,
        /// Group id.
        group: String,
    },
}

pub(crate) async fn run(command: GroupsCommand) -> anyhow::Result<()> {
    match command {
        GroupsCommand::List { kafka } => {
            let admin = kafka.admin().await?;
            let mut table = Table::new(&["GROUP"]);
            for group in admin.list_groups().await? {
                table.row(vec![group]);
            }
            table.print()?;
        }
        GroupsCommand::Describe { kafka, group } => {
            let admin = kafka.admin().await?;
            let description = admin.describe_group(&group).await?;
            let offsets = admin.group_offsets(&group).await?;
            if description.state == "Dead" && offsets.is_empty() {
                anyhow::bail!("group {group} does not exist");
            }
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
            let mut table = Table::new(&["MEMBER", "CLIENT-ID", "HOST", "PARTITIONS"]);
            for m in &description.members {
                let partitions: Vec<String> =
                    m.assignment.iter().map(|tp| tp.to_string()).collect();
                table.row(vec![
                    m.member_id.clone(),
                    m.client_id.clone(),
                    m.client_host.clone(),
                    partitions.join(","),
                ]);
            }
            table.print()?;
            println!();
            let mut table = Table::new(&["TOPIC", "PARTITION", "COMMITTED", "END", "LAG"]);
            for o in &offsets {
                table.row(vec![
                    o.partition.topic.clone(),
                    o.partition.partition.to_string(),
                    o.committed.to_string(),
                    o.end_offset.to_string(),
                    o.lag.to_string(),
                ]);
            }
            table.print()?;
        }
        GroupsCommand::Delete { kafka, group } => {
            let admin = kafka.admin().await?;
            admin.delete_groups(&[&group]).await?;
            eprintln!("deleted group {group}");
        }
    }
    Ok(())
}
