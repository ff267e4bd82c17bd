//! The `strand` command: `strand serve` runs the broker and the schema registry in one
//! process; the other subcommands administer and use a running one.

mod config;
mod schemas_log;
mod serve;

use clap::{Parser, Subcommand};

// A Kafka request announcing billions of elements must fail its decoding, not abort us.
#[global_allocator]
static ALLOCATOR: strand_broker::GuardedAllocator = strand_broker::GuardedAllocator;

/// strand: a schema-first streaming platform speaking the Kafka and Confluent Schema
/// Registry protocols.
#[derive(Debug, Parser)]
#[command(name = "strand", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the broker, the schema registry and the admin endpoints in one process.
    Serve(Box<config::ServeArgs>),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("STRAND_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Serve(args) => config::ServeConfig::resolve(*args).and_then(serve::run),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
