use clap::{Parser, Subcommand};
use nephele::config::{ServeArgs, ServerConfig};
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

/// Nephele: self-hosted, multi-tenant cloud management — server and client.
#[derive(Debug, Parser)]
#[command(name = "nephele", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server
    #[command(
        after_help = "Examples:\n  nephele serve --demo\n  nephele serve --listen 0.0.0.0:8443 --tls-cert cert.pem --tls-key key.pem\n  NEPHELE_DATABASE_URL=postgres://postgres@127.0.0.1/nephele nephele serve"
    )]
    Serve(ServeArgs),
}

fn init_tracing() {
    let filter =
        EnvFilter::try_from_env("NEPHELE_LOG").unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
