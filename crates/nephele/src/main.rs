use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use nephele::cli;
use nephele::config::{ServeArgs, ServerConfig};
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

/// Nephele: self-hosted, multi-tenant cloud management — server and client.
#[derive(Debug, Parser)]
#[command(
    name = "nephele",
    version,
    about,
    propagate_version = true,
    after_help = "Examples:\n  nephele serve --demo\n  nephele login --url http://127.0.0.1:8080 --username admin\n  nephele instance create web-1 --image ubuntu-24.04 --wait\n  nephele completion bash > ~/.local/share/bash-completion/completions/nephele"
)]
struct Cli {
    #[command(flatten)]
    global: cli::Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server
    #[command(
        after_help = "Examples:\n  nephele serve --demo\n  nephele serve --listen 0.0.0.0:8443 --tls-cert cert.pem --tls-key key.pem\n  NEPHELE_DATABASE_URL=postgres://postgres@127.0.0.1/nephele nephele serve"
    )]
    Serve(Box<ServeArgs>),
    /// Print a shell completion script
    #[command(
        after_help = "Examples:\n  nephele completion bash > /etc/bash_completion.d/nephele\n  nephele completion zsh > \"${fpath[1]}/_nephele\"\n  nephele completion fish > ~/.config/fish/completions/nephele.fish"
    )]
    Completion {
        /// The shell whose script to print
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Copy the SQLite database consistently while the server runs
    #[command(
        after_help = "Examples:\n  nephele backup /backups/nephele-$(date +%F).db --data-dir /var/lib/nephele\n  (PostgreSQL: pg_dump; keep the secret key with either)"
    )]
    Backup(nephele::backup::BackupArgs),
    #[command(flatten)]
    Client(cli::Command),
}

fn init_tracing() {
    let filter = EnvFilter::try_from_env("NEPHELE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("NEPHELE_LOG_FORMAT").is_ok_and(|f| f == "json");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()));
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Waits for SIGTERM or SIGINT. The handlers are installed when this is
/// called, not when it is first polled: a signal that arrives as soon as
/// the server says it is listening must not find the default action (death
/// with a non-zero status) still in place.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let signals = {
        use tokio::signal::unix::{signal, SignalKind};
        signal(SignalKind::terminate()).and_then(|t| Ok((t, signal(SignalKind::interrupt())?)))
    };
    async move {
        #[cfg(unix)]
        if let Ok((mut term, mut int)) = signals {
            tokio::select! {
                _ = term.recv() => {},
                _ = int.recv() => {},
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = ServerConfig::resolve(args)?;
    let signal = shutdown_signal();
    let mut running = nephele::server::start(config).await?;
    if let Some(password) = &running.demo_password {
        // Printed once, to the terminal only: never to the log.
        println!(
            "Demo platform ready at {}: organization 'demo', login 'admin', password '{}'",
            running.url,
            password.expose()
        );
    }
    tokio::select! {
        _ = signal => {
            tracing::info!("shutting down: draining in-flight requests");
            running.shutdown().await?;
            tracing::info!("stopped");
        }
        r = running.wait() => r?,
    }
    Ok(())
}

/// A client command: no server logging; errors are the command's own
/// one-line messages. Every core, for `bench`.
fn run_client(global: cli::Global, command: cli::Command) -> ExitCode {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(cli::run(global, command)),
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The subcommands that are not clients of a server.
const NOT_CLIENTS: [&str; 3] = ["serve", "completion", "backup"];

/// The client's options (`cli::Global`) are global, so that they may follow
/// any client subcommand. The others get hidden copies of their own, which
/// clap does not propagate over: their help does not show them, and
/// [`misplaced_option`] refuses them.
fn command() -> clap::Command {
    let options = client_options();
    NOT_CLIENTS.iter().fold(Cli::command(), |command, name| {
        command.mut_subcommand(name, |sub| {
            options.iter().fold(sub, |sub, option| {
                sub.arg(option.clone().global(false).hide(true))
            })
        })
    })
}

fn client_options() -> Vec<clap::Arg> {
    <cli::Global as clap::Args>::augment_args(clap::Command::new("client"))
        .get_arguments()
        .cloned()
        .collect()
}

/// A client option given on the command line of a subcommand that is not
/// a client (its environment variable is no error: it is the client's).
fn misplaced_option(matches: &clap::ArgMatches) -> Option<String> {
    let (name, sub) = matches.subcommand()?;
    if !NOT_CLIENTS.contains(&name) {
        return None;
    }
    client_options().into_iter().find_map(|option| {
        let id = option.get_id().as_str();
        (sub.value_source(id) == Some(clap::parser::ValueSource::CommandLine)).then(|| {
            let flag = option.get_long().unwrap_or(id);
            format!("error: --{flag} is an option of the client commands, not of `nephele {name}`")
        })
    })
}

/// clap's refusal: a usage error in one line (exit 2), or --help and
/// --version (exit 0).
fn refused(e: clap::Error) -> ExitCode {
    if e.use_stderr() {
        // One line, not clap's page of usage: the first line names the
        // problem, and --help is there for the rest.
        let rendered = e.render().to_string();
        let mut lines = rendered.lines().map(str::trim).filter(|l| !l.is_empty());
        let mut line = lines.next().unwrap_or("error: invalid usage").to_owned();
        // "…were not provided:" names them on the next line.
        if line.ends_with(':') {
            if let Some(next) = lines.next() {
                line = format!("{line} {next}");
            }
        }
        eprintln!("{line} (see --help)");
        return ExitCode::from(2);
    }
    let _ = e.print();
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let matches = match command().try_get_matches() {
        Ok(m) => m,
        Err(e) => return refused(e),
    };
    if let Some(line) = misplaced_option(&matches) {
        eprintln!("{line} (see --help)");
        return ExitCode::from(2);
    }
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => return refused(e),
    };
    let serve_args = match cli.command {
        Command::Serve(args) => *args,
        Command::Completion { shell } => {
            // Written whole from memory: a reader that stops early (`| head`)
            // closes the pipe, and that is not an error of ours.
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut command(), "nephele", &mut script);
            return match std::io::Write::write_all(&mut std::io::stdout().lock(), &script) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: cannot write the completion script: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        Command::Client(command) => return run_client(cli.global, command),
        Command::Backup(args) => {
            return match nephele::backup::run(&args) {
                Ok(()) => ExitCode::SUCCESS,
                Err(failure) => {
                    eprintln!("error: {}", failure.message);
                    ExitCode::from(failure.exit as u8)
                }
            }
        }
    };
    init_tracing();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(serve(serve_args));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every command a person can run explains itself with examples.
    #[test]
    fn every_command_has_examples() {
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            let path = format!("{path} {}", command.get_name());
            let examples = command
                .get_after_help()
                .is_some_and(|h| h.to_string().contains("Examples:"));
            if !examples && command.get_name() != "help" {
                missing.push(path.clone());
            }
            for sub in command.get_subcommands() {
                walk(sub, &path, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "", &mut missing);
        assert!(missing.is_empty(), "no examples: {missing:?}");
    }

    /// Every subcommand and every argument says what it is in `--help`.
    #[test]
    fn every_command_and_argument_has_help() {
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in command.get_arguments() {
                let builtin = matches!(arg.get_id().as_str(), "help" | "version");
                if !builtin && !arg.is_hide_set() && arg.get_help().is_none() {
                    missing.push(format!("{path} {}", arg.get_id()));
                }
            }
            for sub in command.get_subcommands() {
                let path = format!("{path} {}", sub.get_name());
                if sub.get_about().is_none() && sub.get_name() != "help" {
                    missing.push(path.clone());
                }
                walk(sub, &path, missing);
            }
        }
        let mut missing = Vec::new();
        let mut command = command();
        command.build();
        walk(&command, "nephele", &mut missing);
        assert!(missing.is_empty(), "no help: {missing:#?}");
    }
}
