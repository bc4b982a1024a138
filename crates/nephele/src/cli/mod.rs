//! The command-line client: `nephele login`, `nephele instance create`, …
//! It talks to a server only through its public API (`nephele-client`).
//!
//! Exit codes (documented in the README, relied on by scripts):
//! 0 success · 1 a refused request (invalid input, quota, rate limit) ·
//! 2 usage · 3 authentication or permission · 4 not found ·
//! 5 conflict (wrong state, busy, name taken, precondition) ·
//! 6 server error · 7 no Nephele server at the URL · 8 the task failed.

mod account;
pub(crate) mod instances;
mod mfa;
mod notary;
mod output;
mod profile;
mod resources;
pub(crate) mod session;
mod web_login;

use clap::{Args, Subcommand};
use std::process::ExitCode;

pub use output::Format;

/// Why a command stopped, and the exit code that tells scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Error = 1,
    Usage = 2,
    Auth = 3,
    NotFound = 4,
    Conflict = 5,
    Server = 6,
    Unreachable = 7,
    TaskFailed = 8,
    /// The server's TLS certificate is not trusted.
    Certificate = 9,
}

/// A command's failure: one line for the user and an exit code.
#[derive(Debug)]
pub struct Failure {
    pub exit: Exit,
    pub message: String,
}

impl Failure {
    pub fn new(exit: Exit, message: impl Into<String>) -> Failure {
        Failure {
            exit,
            message: message.into(),
        }
    }
}

impl From<nephele_client::Error> for Failure {
    fn from(e: nephele_client::Error) -> Failure {
        use nephele_client::Error;
        let exit = match &e {
            Error::Unreachable { .. } => Exit::Unreachable,
            Error::Certificate { .. } => Exit::Certificate,
            Error::Unexpected { status, .. } if *status >= 500 => Exit::Server,
            Error::Unexpected { .. } => Exit::Unreachable,
            Error::OAuth { status: 429, .. } => Exit::Error,
            Error::OAuth { error, .. } if error == "invalid_request" => Exit::Error,
            Error::OAuth { .. } => Exit::Auth,
            Error::Api { status, .. } => match status {
                401 | 403 => Exit::Auth,
                404 => Exit::NotFound,
                409 | 412 => Exit::Conflict,
                s if *s >= 500 => Exit::Server,
                _ => Exit::Error,
            },
        };
        let hint = match e.code() {
            Some(1100) => " (run `nephele setup`)",
            _ => "",
        };
        Failure::new(exit, format!("{e}{hint}"))
    }
}

/// Options of every client command.
#[derive(Debug, Clone, Args)]
pub struct Global {
    /// Profile of stored credentials
    #[arg(
        long,
        global = true,
        env = "NEPHELE_PROFILE",
        default_value = "default"
    )]
    pub profile: String,
    /// Output format [default: table on a terminal, json otherwise]
    #[arg(short = 'o', long = "output", global = true, value_enum)]
    pub output: Option<Format>,
    /// Act in this organization (the API's `org_id`) instead of your own
    #[arg(long, global = true, env = "NEPHELE_ORG")]
    pub org: Option<uuid::Uuid>,
    /// Print only ids, one per line, for scripts
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Show every HTTP exchange on stderr, secrets redacted
    #[arg(long, global = true)]
    pub debug: bool,
}

/// Paging of list commands.
#[derive(Debug, Clone, Args)]
pub struct Paging {
    /// Items per page (1–1000) [default: 100]
    #[arg(long)]
    pub limit: Option<u32>,
    /// Continue from a page token a previous list printed
    #[arg(long)]
    pub page_token: Option<String>,
    /// Follow every page
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Sign in to a server and store the credentials in a profile
    #[command(after_help = account::LOGIN_EXAMPLES)]
    Login(account::LoginArgs),
    /// Forget a profile's credentials (and revoke its refresh token)
    #[command(after_help = "Examples:\n  nephele logout\n  nephele logout --profile staging")]
    Logout,
    /// Show who the profile is signed in as
    #[command(after_help = "Examples:\n  nephele whoami\n  nephele whoami -o json")]
    Whoami,
    /// Set up a new server: its root organization and first admin
    #[command(after_help = account::SETUP_EXAMPLES)]
    Setup(account::SetupArgs),
    /// Your second factor (TOTP): enrol, confirm, disable
    #[command(
        subcommand,
        after_help = "Examples:\n  nephele mfa enrol\n  nephele mfa confirm 123456\n  nephele mfa disable --code 123456"
    )]
    Mfa(mfa::MfaCommand),
    /// Organizations and their quotas
    #[command(
        subcommand,
        visible_alias = "organization",
        after_help = "Examples:\n  nephele org list\n  nephele org create customer-a\n  nephele org set-quota ID --instances 10"
    )]
    Org(resources::OrgCommand),
    /// Users of an organization
    #[command(
        subcommand,
        after_help = "Examples:\n  nephele user list\n  nephele user create bob --email bob@acme.test --role operator"
    )]
    User(resources::UserCommand),
    /// Roles: built-in and an organization's own
    #[command(
        subcommand,
        after_help = "Examples:\n  nephele role list\n  nephele role create auditor --permission audit:read"
    )]
    Role(resources::RoleCommand),
    /// Your API keys
    #[command(
        subcommand,
        after_help = "Examples:\n  nephele api-key create ci\n  nephele api-key list"
    )]
    ApiKey(resources::ApiKeyCommand),
    /// OAuth2 API clients of a tenant
    #[command(
        subcommand,
        after_help = "Examples:\n  nephele client create deployer --role operator\n  nephele client rotate-secret ID"
    )]
    Client(resources::ClientCommand),
    /// Compute instances
    #[command(
        subcommand,
        after_help = "Examples:\n  nephele instance create web-1 --image ubuntu-24.04 --wait\n  nephele instance list --state Running\n  nephele instance stop ID --wait"
    )]
    Instance(instances::InstanceCommand),
    /// Asynchronous tasks
    #[command(
        subcommand,
        after_help = "Examples:\n  nephele task list --status FAILED\n  nephele task wait ID"
    )]
    Task(instances::TaskCommand),
    /// The audit log
    #[command(
        subcommand,
        after_help = "Examples:\n  nephele audit list --action instances.create"
    )]
    Audit(resources::AuditCommand),
    /// Load a server and report throughput and latency (see docs/performance.md)
    #[command(
        after_help = "Examples:\n  nephele bench token-client-credentials --duration 10s --connections 32\n  nephele bench get-instance --auth api-key --seed-data 1000 --server-pid $(pgrep -f 'nephele serve')\n  nephele bench create-instance --rate 1000 -o json"
    )]
    Bench(Box<crate::bench::BenchArgs>),
    /// Notary certificates, checked offline
    #[command(
        subcommand,
        after_help = "Examples:\n  nephele notary verify report.pdf --certificate report.cert.json --keys notary-keys.json"
    )]
    Notary(notary::NotaryCommand),
    /// Images instances are made of
    #[command(subcommand, after_help = "Examples:\n  nephele image list")]
    Image(resources::ImageCommand),
    /// Data centers
    #[command(subcommand, after_help = "Examples:\n  nephele datacenter list")]
    Datacenter(resources::DatacenterCommand),
}

/// Runs a client command and turns its outcome into an exit code.
pub async fn run(global: Global, command: Command) -> ExitCode {
    let out = output::Output::new(global.output, global.quiet);
    let result = match command {
        Command::Login(args) => account::login(&global, args).await,
        Command::Logout => account::logout(&global).await,
        Command::Whoami => account::whoami(&global, out).await,
        Command::Setup(args) => account::setup(&global, args, out).await,
        Command::Mfa(c) => mfa::mfa(&global, c, out).await,
        Command::Org(c) => resources::org(&global, c, out).await,
        Command::User(c) => resources::user(&global, c, out).await,
        Command::Role(c) => resources::role(&global, c, out).await,
        Command::ApiKey(c) => resources::api_key(&global, c, out).await,
        Command::Client(c) => resources::client(&global, c, out).await,
        Command::Instance(c) => instances::instance(&global, c, out).await,
        Command::Task(c) => instances::task(&global, c, out).await,
        Command::Audit(c) => resources::audit(&global, c, out).await,
        Command::Notary(c) => notary::notary(c),
        Command::Image(c) => resources::image(&global, c, out).await,
        Command::Datacenter(c) => resources::datacenter(&global, c, out).await,
        Command::Bench(args) => crate::bench::run(&global, *args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            let line = failure.message.replace('\n', " ");
            if line.starts_with("warning: ") {
                eprintln!("{line}");
            } else {
                eprintln!("error: {line}");
            }
            ExitCode::from(failure.exit as u8)
        }
    }
}

/// A password from `--password-stdin`, `NEPHELE_PASSWORD`, or a prompt on
/// a terminal: never from a flag, where it would land in shell history.
pub(crate) fn read_password(from_stdin: bool, prompt: &str) -> Result<String, Failure> {
    use std::io::{BufRead, IsTerminal};
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| Failure::new(Exit::Usage, format!("cannot read stdin: {e}")))?;
        let password = line.trim_end_matches(['\r', '\n']).to_owned();
        if password.is_empty() {
            return Err(Failure::new(Exit::Usage, "no password on stdin"));
        }
        return Ok(password);
    }
    if let Ok(password) = std::env::var("NEPHELE_PASSWORD") {
        if !password.is_empty() {
            return Ok(password);
        }
    }
    if std::io::stdin().is_terminal() {
        return rpassword::prompt_password(prompt)
            .map_err(|e| Failure::new(Exit::Usage, format!("cannot read the password: {e}")));
    }
    Err(Failure::new(
        Exit::Usage,
        "no password: use --password-stdin or NEPHELE_PASSWORD, or run on a terminal",
    ))
}
