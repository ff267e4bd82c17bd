//! The client subcommands of `strand`: `topics`, `groups` and `schemas` administer a running
//! cluster and registry, `produce` and `consume` move records between it and stdin/stdout.
//! They are thin: every request goes through `strand-client` (`AdminClient`, `RawProducer`,
//! `RawConsumer`, `RegistryClient`), so the CLI exercises the same code as a Rust user would.
//! Data goes to stdout, one record or row per line; diagnostics go to stderr.

mod consume;
mod groups;
mod json_avro;
mod produce;
mod schemas;
mod table;
mod topics;

use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use strand_client::{AdminClient, ClientConfig, RegistryClient, RegistryConfig};

pub use consume::ConsumeArgs;
pub use groups::GroupsCommand;
pub use produce::ProduceArgs;
pub use schemas::SchemasCommand;
pub use topics::TopicsCommand;

/// Where the Kafka listener is and how long to keep trying it.
#[derive(Debug, Clone, Args)]
pub struct KafkaArgs {
    /// Kafka bootstrap servers (host:port, comma-separated).
    #[arg(long, env = "STRAND_BOOTSTRAP", default_value = "127.0.0.1:9092")]
    pub bootstrap: String,
    /// How long an unreachable broker or a retriable error is retried before giving up.
    #[arg(long, default_value_t = 5000, value_name = "MS")]
    pub retry_timeout_ms: u64,
}

impl KafkaArgs {
    /// Client settings for these arguments.
    pub(crate) fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new(&self.bootstrap);
        config.client_id = "strand-cli".to_string();
        let retry = Duration::from_millis(self.retry_timeout_ms);
        config.retry_timeout = retry;
        config.connect_timeout = config
            .connect_timeout
            .min(retry.max(Duration::from_millis(1)));
        config
    }

    /// An admin client connected to the cluster.
    pub(crate) async fn admin(&self) -> anyhow::Result<AdminClient> {
        AdminClient::new(self.client_config())
            .await
            .with_context(|| format!("connecting to {}", self.bootstrap))
    }
}

/// Where the schema registry is.
#[derive(Debug, Clone, Args)]
pub struct RegistryArgs {
    /// Schema registry URL.
    #[arg(long, env = "STRAND_REGISTRY", default_value = "http://127.0.0.1:8081")]
    pub registry: String,
}

impl RegistryArgs {
    /// A registry client for this URL.
    pub(crate) fn client(&self) -> anyhow::Result<RegistryClient> {
        Ok(RegistryClient::new(RegistryConfig::new(&self.registry))?)
    }
}

/// A client subcommand of `strand`.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// List, describe, create, delete topics and change their configs.
    #[command(subcommand)]
    Topics(TopicsCommand),
    /// List, describe and delete consumer groups.
    #[command(subcommand)]
    Groups(GroupsCommand),
    /// List, get, register, check and delete schemas in the schema registry.
    #[command(subcommand)]
    Schemas(SchemasCommand),
    /// Write one record per stdin line to a topic.
    Produce(Box<ProduceArgs>),
    /// Print a topic's records to stdout, one per line.
    Consume(ConsumeArgs),
}

/// Runs a client subcommand to completion on its own runtime.
pub fn run(command: ClientCommand) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        match command {
            ClientCommand::Topics(c) => topics::run(c).await,
            ClientCommand::Groups(c) => groups::run(c).await,
            ClientCommand::Schemas(c) => schemas::run(c).await,
            ClientCommand::Produce(a) => produce::run(*a).await,
            ClientCommand::Consume(a) => consume::run(a).await,
        }
    })
}

/// A count with its noun in the right number: `1 record`, `2 records`.
pub(crate) fn count(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// Parses `key=value`.
pub(crate) fn key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected key=value, got {s:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_singular_only_for_one() {
        assert_eq!(count(0, "record"), "0 records");
        assert_eq!(count(1, "record"), "1 record");
        assert_eq!(count(2, "partition"), "2 partitions");
    }

    #[test]
    fn config_pairs_split_at_the_first_equals_sign() {
        assert_eq!(
            key_value("message.format=a=b"),
            Ok(("message.format".to_string(), "a=b".to_string()))
        );
        assert_eq!(key_value("k="), Ok(("k".to_string(), String::new())));
        assert!(key_value("=v").is_err());
        assert!(key_value("novalue").is_err());
    }
}
