//! The `coper-server` binary: configuration and logging, then the library does the rest.

use std::io::IsTerminal;

use clap::Parser;
use tracing_subscriber::EnvFilter;

fn main() -> anyhow::Result<()> {
    let filter = EnvFilter::try_from_env("COPER_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // JSON lines for a log collector (`COPER_LOG_FORMAT=json`), else lines for a person.
    if std::env::var("COPER_LOG_FORMAT").is_ok_and(|f| f == "json") {
        logs.json().flatten_event(true).init();
    } else {
        logs.with_ansi(std::io::stderr().is_terminal()).init();
    }
    coper_server::run(coper_server::config::Cli::parse())
}
