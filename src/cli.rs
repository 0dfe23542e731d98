//! Command-line interface.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::admin::client::{Api, CallError, TargetError};

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
    /// Show profiles, endpoints, health and drains of a running server.
    Status {
        #[command(flatten)]
        api: ApiArgs,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Drain a site (every endpoint of it, in every profile) or one endpoint.
    Drain {
        #[command(flatten)]
        api: ApiArgs,
        #[command(flatten)]
        target: TargetArgs,
        /// Lower the weight linearly to 0 over this long (e.g. 5m), then disable.
        #[arg(long)]
        ramp: Option<String>,
        /// Why (kept in the status and the audit log).
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Undo a drain.
    Undrain {
        #[command(flatten)]
        api: ApiArgs,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Explain which answer a client gets for a name, and why.
    Explain {
        #[command(flatten)]
        api: ApiArgs,
        /// Profile name, e.g. app.gslb.example.
        name: String,
        /// Query type.
        #[arg(long = "type", default_value = "A")]
        qtype: String,
        /// Client address (or ECS subnet, e.g. 10.20.1.0/24).
        #[arg(long)]
        client: String,
        /// Print the API's JSON document instead of the readable trace.
        #[arg(long)]
        json: bool,
    },
    /// Reload the config and zones of a running server (a bad config keeps the old one serving).
    Reload {
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Exit 0 when a running server's admin listener answers GET /healthz (or /readyz) with
    /// 200, else 1: for container HEALTHCHECKs and scripts.
    Healthcheck {
        #[command(flatten)]
        api: ApiArgs,
        /// Ask /readyz (zones loaded, first probe round done) instead of /healthz.
        #[arg(long)]
        ready: bool,
    },
    /// Print a shell completion script for bash, zsh or fish to stdout.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: Shell,
    },
    /// Write the man pages (signpost.1 and one per subcommand) into a directory; used when
    /// packaging.
    #[command(hide = true)]
    Manpage {
        /// Directory to write the pages to (it must exist).
        dir: PathBuf,
    },
}

/// Shells `signpost completions` writes scripts for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

impl Shell {
    /// Writes the completion script for `signpost` to `out`.
    pub fn write_completions(self, out: &mut dyn std::io::Write) {
        use clap::CommandFactory;
        let mut cmd = Cli::command();
        let shell = match self {
            Shell::Bash => clap_complete::Shell::Bash,
            Shell::Zsh => clap_complete::Shell::Zsh,
            Shell::Fish => clap_complete::Shell::Fish,
        };
        clap_complete::generate(shell, &mut cmd, "signpost", out);
    }
}

/// Writes the man pages of `signpost` (roff) into `dir`: `signpost.1`, which lists the
/// subcommands, and `signpost-SUBCOMMAND.1` for each one it lists.
pub fn write_manpages(dir: &std::path::Path) -> std::io::Result<()> {
    use clap::CommandFactory;
    clap_mangen::generate_to(Cli::command(), dir)
}

/// How the CLI reaches the admin API.
#[derive(Debug, Clone, clap::Args)]
pub struct ApiArgs {
    /// Admin API base URL.
    #[arg(long, env = "SIGNPOST_ADMIN", default_value = "http://127.0.0.1:8053")]
    pub admin: String,
    /// File holding the bearer token (default: the SIGNPOST_TOKEN environment variable).
    #[arg(long)]
    pub token_file: Option<PathBuf>,
}

/// What `drain` and `undrain` apply to.
#[derive(Debug, Clone, clap::Args)]
pub struct TargetArgs {
    /// The site (undrain also takes one the config no longer has, while a drain for it is
    /// stored).
    #[arg(long, required_unless_present = "endpoint")]
    pub site: Option<String>,
    /// One endpoint instead: PROFILE/ENDPOINT, e.g. app.gslb.example/seattle.
    #[arg(long, conflicts_with = "site")]
    pub endpoint: Option<String>,
}

impl TargetArgs {
    /// The API path of `action` (`drain` or `undrain`) on this target.
    pub fn path(&self, action: &str) -> Result<String, TargetError> {
        crate::admin::client::drain_path(self.site.as_deref(), self.endpoint.as_deref(), action)
    }
}

/// Why a command that talks to a running server failed (printed as `Error: …`).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// `--token-file` cannot be read or is empty; the text names the file and the fix.
    #[error("{0}")]
    Token(#[from] crate::admin::TokenError),
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error(transparent)]
    Call(#[from] CallError),
    /// The server's status document does not read as one (a different program?).
    #[error("the admin API's status document does not parse: {0}")]
    Document(serde_json::Error),
}

impl ApiArgs {
    /// The API client, with the token from --token-file or SIGNPOST_TOKEN.
    pub fn api(&self) -> Result<Api, CliError> {
        let token = match &self.token_file {
            Some(p) => Some(crate::admin::read_token(p)?),
            None => std::env::var("SIGNPOST_TOKEN")
                .ok()
                .filter(|t| !t.trim().is_empty()),
        };
        Ok(Api {
            base: self.admin.clone(),
            token: token.map(|t| t.trim().to_owned()),
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    /// Every flag and argument of every command says what it is for in `--help`.
    #[test]
    fn every_flag_has_help_text() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} --{id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                if sub.get_about().is_none() && sub.get_name() != "help" {
                    missing.push(format!("{path} {} (no about)", sub.get_name()));
                }
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "signpost", &mut missing);
        assert!(missing.is_empty(), "no help text: {missing:?}");
    }
}
