//! `strand schemas`: subjects, versions, get, register, compatibility checks and deletion
//! against the schema registry, through the client's `RegistryClient`.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Subcommand;
use strand_client::ClientError;

use super::RegistryArgs;

/// What to do with schemas.
#[derive(Debug, Subcommand)]
pub enum SchemasCommand {
    /// List subjects.
    Subjects {
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// List the versions of a subject.
    Versions {
        #[command(flatten)]
        registry: RegistryArgs,
        /// Subject, e.g. `orders-value`.
        subject: String,
    },
    /// Print a version's schema to stdout (its id and version go to stderr).
    Get {
        #[command(flatten)]
        registry: RegistryArgs,
        /// Subject, e.g. `orders-value`.
        subject: String,
        /// A version number or `latest`.
        #[arg(default_value = "latest")]
        version: String,
    },
    /// Register a schema file under a subject and print its schema id.
    Register {
        #[command(flatten)]
        registry: RegistryArgs,
        /// Subject, e.g. `orders-value`.
        subject: String,
        /// Avro schema file (`.avsc`).
        #[arg(long)]
        file: PathBuf,
    },
    /// Check whether a schema file could be registered under a subject (exit 1 if not).
    Compatibility {
        #[command(flatten)]
        registry: RegistryArgs,
        /// Subject, e.g. `orders-value`.
        subject: String,
        /// Avro schema file (`.avsc`).
        #[arg(long)]
        file: PathBuf,
    },
    /// Delete every version of a subject.
    Delete {
        #[command(flatten)]
        registry: RegistryArgs,
        /// Subject, e.g. `orders-value`.
        subject: String,
    },
}

/// Runs one `strand schemas` subcommand.
pub(crate) async fn run(command: SchemasCommand) -> anyhow::Result<()> {
    match command {
        SchemasCommand::Subjects { registry } => {
            for subject in registry.client()?.subjects().await? {
                println!("{subject}");
            }
        }
        SchemasCommand::Versions { registry, subject } => {
            for version in registry.client()?.versions(&subject).await? {
                println!("{version}");
            }
        }
        SchemasCommand::Get {
            registry,
            subject,
            version,
        } => {
            if version != "latest" && version.parse::<u32>().is_err() {
                bail!("version must be a positive number or `latest`, got {version:?}");
            }
            let found = registry.client()?.version(&subject, &version).await?;
            eprintln!(
                "subject {} version {} schema id {}",
                found.subject, found.version, found.id
            );
            println!("{}", pretty(&found.schema));
        }
        SchemasCommand::Register {
            registry,
            subject,
            file,
        } => {
            let schema = read_schema(&file)?;
            let client = registry.client()?;
            let id = match client.register(&subject, &schema).await {
                Ok(id) => id,
                // Confluent's 409 message ends with the whole old schema; the reasons are
                // what a reader needs, and the verbose check lists them one by one.
                Err(ClientError::Registry {
                    code: 409, message, ..
                }) => {
                    let reasons = match client.check_compatibility(&subject, &schema).await {
                        Ok(verdict) if !verdict.is_compatible => {
                            reasons(&verdict.messages).join("; ")
                        }
                        _ => message
                            .split_once(", {oldSchema")
                            .map_or(message.as_str(), |(reasons, _)| reasons)
                            .to_string(),
                    };
                    bail!(
                        "{} is incompatible with {subject}: {reasons}",
                        file.display()
                    );
                }
                Err(e) => return Err(e.into()),
            };
            let found = client.lookup(&subject, &schema).await?;
            eprintln!(
                "registered {} under {subject} as version {}",
                file.display(),
                found.version
            );
            println!("{id}");
        }
        SchemasCommand::Compatibility {
            registry,
            subject,
            file,
        } => {
            let schema = read_schema(&file)?;
            let verdict = registry
                .client()?
                .check_compatibility(&subject, &schema)
                .await?;
            if !verdict.is_compatible {
                bail!(
                    "{} is incompatible with {subject}: {}",
                    file.display(),
                    reasons(&verdict.messages).join("; ")
                );
            }
            println!("compatible");
        }
        SchemasCommand::Delete { registry, subject } => {
            let versions = registry.client()?.delete_subject(&subject).await?;
            let list: Vec<String> = versions.iter().map(i32::to_string).collect();
            let noun = if versions.len() == 1 {
                "version"
            } else {
                "versions"
            };
            eprintln!("deleted {subject} {noun} {}", list.join(", "));
        }
    }
    Ok(())
}

/// The reasons among Confluent's verbose compatibility messages: it appends the old
/// schema's version, the whole old schema and the settings, which a reader does not need.
fn reasons(messages: &[String]) -> Vec<&str> {
    messages
        .iter()
        .map(String::as_str)
        .filter(|m| !m.starts_with("{oldSchema") && !m.starts_with("{validateFields"))
        .collect()
}

/// The file's text, checked to be an Avro schema so a typo fails here with the file name.
fn read_schema(path: &Path) -> anyhow::Result<String> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    apache_avro::Schema::parse_str(&text)
        .with_context(|| format!("{} is not a valid Avro schema", path.display()))?;
    Ok(text)
}

/// Registries store schemas compacted; people read them indented.
fn pretty(schema: &str) -> String {
    serde_json::from_str::<serde_json::Value>(schema)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|_| schema.to_string())
}
