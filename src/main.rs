use clap::Parser;
use signpost::cli::{Cli, Command, LogFormat};

fn main() {
    let cli = Cli::parse();
    init_logging(cli.log_format, &cli.log_level);
    let code = match cli.command {
        Command::Serve { config } => signpost::app::serve(&config),
        Command::Check { config } => signpost::app::check(&config),
    };
    std::process::exit(code);
}

fn init_logging(format: LogFormat, filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
