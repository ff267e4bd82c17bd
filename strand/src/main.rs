//! The `strand` command: `strand serve` runs the broker and the schema registry in one
//! process; the other subcommands administer and use a running one.

mod cli;
mod config;
mod schema_lookup;
mod schemas_log;
mod serve;

use std::io::IsTerminal;

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
    #[command(flatten)]
    Client(cli::ClientCommand),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // The client subcommands print data on stdout and results on stderr; the client's own
    // info logs (connections, group joins) would drown those, so they start at warn.
    let default_filter = match cli.command {
        // openraft narrates every election and vote at info; its warnings are what an
        // operator needs.
        Command::Serve(_) => "info,openraft=warn",
        Command::Client(_) => "warn,strand=info",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("STRAND_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter)),
        )
        .with_writer(std::io::stderr)
        // Colour codes only help a terminal; in a file or a pipe they are noise.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let result = match cli.command {
        Command::Serve(args) => config::ServeConfig::resolve(*args).and_then(serve::run),
        Command::Client(command) => cli::run(command),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
