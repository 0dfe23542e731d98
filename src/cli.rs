//! Command-line interface.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// signpost: an authoritative DNS server that answers with the healthy sites.
#[derive(Debug, Parser)]
#[command(name = "signpost", version, about, long_about = None)]
pub struct Cli {
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Human, global = true)]
    pub log_format: LogFormat,
    /// Log filter (tracing EnvFilter syntax), e.g. "info" or "signpost=debug".
    #[arg(long, env = "SIGNPOST_LOG", default_value = "info", global = true)]
    pub log_level: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load the config and zones, then serve DNS until SIGTERM or SIGINT.
    Serve {
        /// Config file.
        #[arg(long, short, default_value = "config/signpost.toml")]
        config: PathBuf,
    },
    /// Validate the config and every zone file without serving; exit 64 on errors.
    Check {
        /// Config file.
        #[arg(long, short, default_value = "config/signpost.toml")]
        config: PathBuf,
    },
}
