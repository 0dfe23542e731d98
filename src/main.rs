use clap::Parser;
use hyper::Method;
use serde_json::json;
use signpost::admin::client::{explain_text, status_table};
use signpost::cli::{Cli, CliError, Command, LogFormat};

fn main() {
    // Until `serve` has installed its handlers, a SIGHUP (or SIGTERM, SIGINT) waits
    // instead of killing the process; the other commands let them through at once.
    signpost::app::block_signals();
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Serve { .. }) {
        signpost::app::unblock_signals();
    }
    init_logging(cli.log_format, &cli.log_level);
    let code = match cli.command {
        Command::Serve { config } => signpost::app::serve(&config),
        Command::Check { config } => signpost::app::check(&config),
        Command::Completions { shell } => {
            shell.write_completions(&mut std::io::stdout().lock());
            0
        }
        Command::Manpage { dir } => match signpost::cli::write_manpages(&dir) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("Error: {}: {e}", dir.display());
                1
            }
        },
        other => match client(other) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("Error: {e}");
                1
            }
        },
    };
    std::process::exit(code);
}

/// The CLI commands that call the admin API of a running server.
fn client(cmd: Command) -> Result<(), CliError> {
    // Like other command-line tools, end quietly when the reader goes away
    // (`signpost status | head`) instead of panicking on a broken pipe.
    // SAFETY: restoring the default disposition of SIGPIPE before any thread is started.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    match cmd {
        Command::Status { api, json } => {
            let api = api.api()?;
            let v = api.status()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            } else {
                let doc = serde_json::from_value(v).map_err(CliError::Document)?;
                print!("{}", status_table(&doc));
                // An older server has no cluster view: say nothing of it.
                if let Ok(c) = api.call(Method::GET, "/api/v1/cluster", None)
                    && let Ok(doc) = serde_json::from_value(c)
                {
                    print!("{}", signpost::admin::cluster::text(&doc));
                }
            }
        }
        Command::Drain {
            api,
            target,
            ramp,
            reason,
        } => {
            let path = target.path("drain")?;
            let v = api.api()?.call(
                Method::POST,
                &path,
                Some(json!({ "reason": reason, "ramp": ramp })),
            )?;
            println!("{}", v["message"].as_str().unwrap_or("drained"));
        }
        Command::Undrain { api, target } => {
            let path = target.path("undrain")?;
            let v = api.api()?.call(Method::POST, &path, None)?;
            println!("{}", v["message"].as_str().unwrap_or("undrained"));
        }
        Command::Explain {
            api,
            name,
            qtype,
            client,
            json,
        } => {
            let path = format!(
                "/api/v1/explain?name={}&type={}&client={}",
                signpost::admin::page::urlenc(&name),
                signpost::admin::page::urlenc(&qtype),
                signpost::admin::page::urlenc(&client)
            );
            let v = api.api()?.call(Method::GET, &path, None)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            } else {
                print!("{}", explain_text(&v));
            }
        }
        Command::Reload { api } => {
            let v = api.api()?.call(Method::POST, "/api/v1/reload", None)?;
            println!("{}", v["message"].as_str().unwrap_or("reloaded"));
        }
        Command::Healthcheck { api, ready } => {
            let path = if ready { "/readyz" } else { "/healthz" };
            let v = api.api()?.call(Method::GET, path, None)?;
            print!("{}", v.as_str().unwrap_or("ok\n"));
        }
        Command::Serve { .. }
        | Command::Check { .. }
        | Command::Completions { .. }
        | Command::Manpage { .. } => unreachable!("handled in main"),
    }
    Ok(())
}

fn init_logging(format: LogFormat, filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour only for a person at a terminal, and never with NO_COLOR set
    // (https://no-color.org): a log file or journal gets plain text.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
