//! Configuration: flag > environment variable > config file > default.
//! clap resolves flags and variables; the file fills in what neither gave.

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DriverKind {
    Sim,
    Qemu,
}

/// QEMU's accelerator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QemuAccel {
    /// KVM when /dev/kvm is usable, TCG otherwise
    Auto,
    Kvm,
    Tcg,
}

/// The guests' network under QEMU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QemuNetwork {
    /// No network device
    None,
    /// QEMU's user-mode network (outbound NAT)
    User,
}

/// The algorithm that signs access tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenAlgorithm {
    Es256,
    Eddsa,
}

/// `nephele serve` flags; each has an environment variable.
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port [default: 127.0.0.1:8080]
    #[arg(long, env = "NEPHELE_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Directory for the embedded database and the setup token [default: ./nephele-data]
    #[arg(long, env = "NEPHELE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// sqlite://… or postgres://… [default: sqlite in the data dir]
    #[arg(long, env = "NEPHELE_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Externally visible base URL [default: http(s):// + the bound address]
    #[arg(long, env = "NEPHELE_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Hypervisor driver [default: sim]
    #[arg(long, env = "NEPHELE_DRIVER")]
    pub driver: Option<DriverKind>,
    /// Latency of each simulated operation, e.g. 1s, 250ms, 0 [default: 1s]
    #[arg(long, env = "NEPHELE_SIM_LATENCY")]
    pub sim_latency: Option<humantime::Duration>,
    /// The one-time setup token [default: generated into DATA_DIR/setup-token]
    #[arg(long, env = "NEPHELE_SETUP_TOKEN", hide_env_values = true)]
    pub setup_token: Option<String>,
    /// On first start, set up an organization `demo` with a user `admin`
    #[arg(long, env = "NEPHELE_DEMO")]
    pub demo: bool,
    /// PEM certificate chain: serve HTTPS (with --tls-key)
    #[arg(long, env = "NEPHELE_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert
    #[arg(long, env = "NEPHELE_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Largest accepted request body in bytes [default: 1048576]
    #[arg(long, env = "NEPHELE_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Time a client gets to send a request's headers, and the longest a
    /// kept-alive connection waits for its next request [default: 10s]
    #[arg(long, env = "NEPHELE_HEADER_READ_TIMEOUT")]
    pub header_read_timeout: Option<humantime::Duration>,
    /// Longest wait for the next part of a request body [default: 30s]
    #[arg(long, env = "NEPHELE_BODY_READ_TIMEOUT")]
    pub body_read_timeout: Option<humantime::Duration>,
    /// Open client connections at most [default: 8192]
    #[arg(long, env = "NEPHELE_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Open connections from one address at most; trusted proxies are
    /// exempt [default: 1024]
    #[arg(long, env = "NEPHELE_MAX_CONNECTIONS_PER_ADDRESS")]
    pub max_connections_per_address: Option<usize>,
    /// Database connections [default: 16]
    #[arg(long, env = "NEPHELE_DB_MAX_CONNECTIONS")]
    pub db_max_connections: Option<u32>,
    /// Time in-flight requests get to finish on shutdown [default: 30s]
    #[arg(long, env = "NEPHELE_SHUTDOWN_GRACE")]
    pub shutdown_grace: Option<humantime::Duration>,
    /// 32 bytes, base64 or hex, sealing signing keys at rest; every node on
    /// one database needs the same [default: generated into DATA_DIR/secret-key]
    #[arg(long, env = "NEPHELE_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,
    /// Lifetime of access and id tokens [default: 1h]
    #[arg(long, env = "NEPHELE_ACCESS_TOKEN_TTL")]
    pub access_token_ttl: Option<humantime::Duration>,
    /// Lifetime of refresh tokens [default: 30days]
    #[arg(long, env = "NEPHELE_REFRESH_TOKEN_TTL")]
    pub refresh_token_ttl: Option<humantime::Duration>,
    /// Algorithm of access tokens (id tokens are RS256) [default: es256]
    #[arg(long, env = "NEPHELE_TOKEN_ALGORITHM")]
    pub token_algorithm: Option<TokenAlgorithm>,
    /// How long a signing key signs before it is replaced [default: 30days]
    #[arg(long, env = "NEPHELE_KEY_ROTATION")]
    pub key_rotation: Option<humantime::Duration>,
    /// Reverse proxies (IPs or CIDRs, comma-separated) whose `Forwarded`
    /// (RFC 7239, read first) or `X-Forwarded-For` names the client, for the
    /// lockout and the audit log [default: none]
    #[arg(long, env = "NEPHELE_TRUSTED_PROXIES", value_delimiter = ',', value_parser = parse_net)]
    pub trusted_proxies: Option<Vec<ipnet::IpNet>>,
    /// Origins (scheme://host[:port], comma-separated) of front ends served
    /// from elsewhere that browsers may let call the API [default: none]
    #[arg(long, env = "NEPHELE_CORS_ORIGINS", value_delimiter = ',', value_parser = parse_origin)]
    pub cors_origins: Option<Vec<String>>,
    /// Tasks run at once on this node [default: 256]
    #[arg(long, env = "NEPHELE_TASK_WORKERS")]
    pub task_workers: Option<usize>,
    /// How long finished tasks are kept, at least 30min [default: 24h]
    #[arg(long, env = "NEPHELE_TASK_RETENTION")]
    pub task_retention: Option<humantime::Duration>,
    /// How long a node's claim on its tasks lasts unrenewed; a dead node's
    /// tasks are taken over after this [default: 10s]
    #[arg(long, env = "NEPHELE_TASK_LEASE")]
    pub task_lease: Option<humantime::Duration>,
    /// Chance (0 to 1) that any simulated operation fails [default: 0]
    #[arg(long, env = "NEPHELE_SIM_FAILURE_RATE")]
    pub sim_failure_rate: Option<f64>,
    /// The QEMU system emulator (--driver qemu) [default: qemu-system-x86_64]
    #[arg(long, env = "NEPHELE_QEMU_BINARY")]
    pub qemu_binary: Option<PathBuf>,
    /// qemu-img, which makes the disks [default: qemu-img]
    #[arg(long, env = "NEPHELE_QEMU_IMG")]
    pub qemu_img: Option<PathBuf>,
    /// QEMU accelerator [default: auto]
    #[arg(long, env = "NEPHELE_QEMU_ACCEL")]
    pub qemu_accel: Option<QemuAccel>,
    /// Time a guest gets to power off after an ACPI power-down before QEMU
    /// is told to quit [default: 30s]
    #[arg(long, env = "NEPHELE_QEMU_STOP_GRACE")]
    pub qemu_stop_grace: Option<humantime::Duration>,
    /// Guest network [default: none]
    #[arg(long, env = "NEPHELE_QEMU_NETWORK")]
    pub qemu_network: Option<QemuNetwork>,
    /// Largest file the notary accepts, in bytes [default: 8589934592 (8 GiB)]
    #[arg(long, env = "NEPHELE_NOTARY_MAX_FILE_BYTES")]
    pub notary_max_file_bytes: Option<u64>,
    /// How often pending hashes are notarized [default: 10s]
    #[arg(long, env = "NEPHELE_NOTARY_BATCH_INTERVAL")]
    pub notary_batch_interval: Option<humantime::Duration>,
    /// Notarize as soon as this many hashes are pending [default: 1000]
    #[arg(long, env = "NEPHELE_NOTARY_BATCH_SIZE")]
    pub notary_batch_size: Option<usize>,
    /// Mail server for invitations and password reset links:
    /// smtp://HOST[:PORT] (plain), smtp://HOST[:PORT]?tls=required
    /// (STARTTLS), smtps://HOST[:PORT] (implicit TLS); user:password@ for
    /// SMTP AUTH [default: none, no mail is sent]
    #[arg(long, env = "NEPHELE_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// The From address of that mail [default: nephele@ + the public URL's
    /// host, or nephele@localhost when that is an IP address]
    #[arg(long, env = "NEPHELE_SMTP_FROM")]
    pub smtp_from: Option<String>,
    /// TOML configuration file (keys as the flags, with underscores)
    #[arg(long, env = "NEPHELE_CONFIG")]
    pub config: Option<PathBuf>,
}

/// The configuration file: the same settings, all optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub public_url: Option<String>,
    pub driver: Option<DriverKind>,
    pub sim_latency: Option<String>,
    pub setup_token: Option<String>,
    pub demo: Option<bool>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub max_body_bytes: Option<usize>,
    pub header_read_timeout: Option<String>,
    pub body_read_timeout: Option<String>,
    pub max_connections: Option<usize>,
    pub max_connections_per_address: Option<usize>,
    pub db_max_connections: Option<u32>,
    pub shutdown_grace: Option<String>,
    pub secret_key: Option<String>,
    pub access_token_ttl: Option<String>,
    pub refresh_token_ttl: Option<String>,
    pub token_algorithm: Option<TokenAlgorithm>,
    pub key_rotation: Option<String>,
    pub trusted_proxies: Option<Vec<String>>,
    pub cors_origins: Option<Vec<String>>,
    pub task_workers: Option<usize>,
    pub task_retention: Option<String>,
    pub task_lease: Option<String>,
    pub sim_failure_rate: Option<f64>,
    pub qemu_binary: Option<PathBuf>,
    pub qemu_img: Option<PathBuf>,
    pub qemu_accel: Option<QemuAccel>,
    pub qemu_stop_grace: Option<String>,
    pub qemu_network: Option<QemuNetwork>,
    pub notary_max_file_bytes: Option<u64>,
    pub notary_batch_interval: Option<String>,
    pub notary_batch_size: Option<usize>,
    pub smtp_url: Option<String>,
    pub smtp_from: Option<String>,
}

/// An IP address or a CIDR block.
pub fn parse_net(s: &str) -> Result<ipnet::IpNet, String> {
    let s = s.trim();
    s.parse::<ipnet::IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("not an IP address or CIDR block: {s:?}"))
}

/// An origin as browsers send it: `http(s)://host[:port]`, nothing after.
/// A wildcard is refused: the API takes credentials in headers, and a
/// page of any site must not be let to send them.
pub fn parse_origin(s: &str) -> Result<String, String> {
    let s = s.trim();
    let bad = || format!("not an origin (scheme://host[:port], no path): {s:?}");
    let url = url::Url::parse(s).map_err(|_| bad())?;
    if !matches!(url.scheme(), "http" | "https")
        || url.host_str().is_none_or(str::is_empty)
        || s.ends_with('/')
        || url.path() != "/"
        || url.query().is_some()
    {
        return Err(bad());
    }
    Ok(url.origin().ascii_serialization())
}

/// What one client can hold of the server: time to send its headers and
/// each part of its body, and how many connections it and everyone may
/// keep open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    pub header_read_timeout: Duration,
    pub body_read_timeout: Duration,
    pub max_connections: usize,
    pub max_connections_per_address: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            max_connections: 8192,
            max_connections_per_address: 1024,
        }
    }
}

/// The resolved configuration of a server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: String,
    pub public_url: Option<String>,
    pub driver: DriverKind,
    pub sim_latency: Duration,
    pub setup_token: Option<String>,
    pub demo: bool,
    pub tls: Option<(PathBuf, PathBuf)>,
    pub max_body_bytes: usize,
    pub limits: ConnectionLimits,
    pub db_max_connections: u32,
    pub shutdown_grace: Duration,
    /// `None`: read or generate `DATA_DIR/secret-key`.
    pub secret_key: Option<String>,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub token_algorithm: TokenAlgorithm,
    pub key_rotation: Duration,
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Origins allowed by CORS; none by default.
    pub cors_origins: Vec<String>,
    pub task_workers: usize,
    pub task_retention: Duration,
    pub task_lease: Duration,
    pub sim_failure_rate: f64,
    pub qemu_binary: PathBuf,
    pub qemu_img: PathBuf,
    pub qemu_accel: QemuAccel,
    pub qemu_stop_grace: Duration,
    pub qemu_network: QemuNetwork,
    pub notary_max_file_bytes: u64,
    pub notary_batch_interval: Duration,
    pub notary_batch_size: usize,
    /// `None`: no mail is sent.
    pub smtp_url: Option<String>,
    pub smtp_from: Option<String>,
}

const DEFAULT_NOTARY_MAX_FILE_BYTES: u64 = 8 * 1024 * 1024 * 1024;

fn duration(field: &str, s: &str) -> anyhow::Result<Duration> {
    if s.trim() == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(s).with_context(|| format!("{field}: not a duration: {s:?}"))
}

/// The SQLite URL of the embedded database in `data_dir`.
pub fn sqlite_url(data_dir: &Path) -> String {
    format!(
        "sqlite://{}?mode=rwc",
        data_dir.join("nephele.db").display()
    )
}

impl ServerConfig {
    /// Merges flags/env with the config file and the defaults.
    pub fn resolve(args: ServeArgs) -> anyhow::Result<ServerConfig> {
        let file = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading config file {}", path.display()))?;
                toml::from_str::<FileConfig>(&text)
                    .with_context(|| format!("parsing config file {}", path.display()))?
            }
            None => FileConfig::default(),
        };
        let data_dir = args
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("./nephele-data"));
        let database_url = args
            .database_url
            .or(file.database_url)
            .unwrap_or_else(|| sqlite_url(&data_dir));
        let sim_latency = match (args.sim_latency, file.sim_latency) {
            (Some(d), _) => d.into(),
            (None, Some(s)) => duration("sim_latency", &s)?,
            (None, None) => Duration::from_secs(1),
        };
        let pick = |field: &str,
                    flag: Option<humantime::Duration>,
                    file: Option<String>,
                    default: Duration|
         -> anyhow::Result<Duration> {
            match (flag, file) {
                (Some(d), _) => Ok(d.into()),
                (None, Some(s)) => duration(field, &s),
                (None, None) => Ok(default),
            }
        };
        const DAY: u64 = 24 * 3600;
        let default_limits = ConnectionLimits::default();
        let limits = ConnectionLimits {
            header_read_timeout: pick(
                "header_read_timeout",
                args.header_read_timeout,
                file.header_read_timeout,
                default_limits.header_read_timeout,
            )?,
            body_read_timeout: pick(
                "body_read_timeout",
                args.body_read_timeout,
                file.body_read_timeout,
                default_limits.body_read_timeout,
            )?,
            max_connections: args
                .max_connections
                .or(file.max_connections)
                .unwrap_or(default_limits.max_connections),
            max_connections_per_address: args
                .max_connections_per_address
                .or(file.max_connections_per_address)
                .unwrap_or(default_limits.max_connections_per_address),
        };
        if limits.header_read_timeout.is_zero() || limits.body_read_timeout.is_zero() {
            bail!("header_read_timeout and body_read_timeout must be longer than zero");
        }
        if limits.max_connections == 0 || limits.max_connections_per_address == 0 {
            bail!("max_connections and max_connections_per_address must be at least 1");
        }
        let shutdown_grace = pick(
            "shutdown_grace",
            args.shutdown_grace,
            file.shutdown_grace,
            Duration::from_secs(30),
        )?;
        let access_token_ttl = pick(
            "access_token_ttl",
            args.access_token_ttl,
            file.access_token_ttl,
            Duration::from_secs(3600),
        )?;
        if !(Duration::from_secs(60)..=Duration::from_secs(DAY)).contains(&access_token_ttl) {
            bail!("access_token_ttl must be between 1 minute and 24 hours");
        }
        let refresh_token_ttl = pick(
            "refresh_token_ttl",
            args.refresh_token_ttl,
            file.refresh_token_ttl,
            Duration::from_secs(30 * DAY),
        )?;
        if refresh_token_ttl < access_token_ttl {
            bail!("refresh_token_ttl must be at least access_token_ttl");
        }
        let key_rotation = pick(
            "key_rotation",
            args.key_rotation,
            file.key_rotation,
            Duration::from_secs(30 * DAY),
        )?;
        if key_rotation < Duration::from_secs(3600) {
            bail!("key_rotation must be at least 1 hour");
        }
        let task_retention = pick(
            "task_retention",
            args.task_retention,
            file.task_retention,
            Duration::from_secs(DAY),
        )?;
        if task_retention < Duration::from_secs(30 * 60) {
            bail!("task_retention must be at least 30 minutes");
        }
        let task_lease = pick(
            "task_lease",
            args.task_lease,
            file.task_lease,
            Duration::from_secs(10),
        )?;
        if !(Duration::from_secs(1)..=Duration::from_secs(600)).contains(&task_lease) {
            bail!("task_lease must be between 1 second and 10 minutes");
        }
        let qemu_stop_grace = pick(
            "qemu_stop_grace",
            args.qemu_stop_grace,
            file.qemu_stop_grace,
            Duration::from_secs(30),
        )?;
        let notary_batch_interval = pick(
            "notary_batch_interval",
            args.notary_batch_interval,
            file.notary_batch_interval,
            Duration::from_secs(10),
        )?;
        if !(Duration::from_millis(10)..=Duration::from_secs(3600)).contains(&notary_batch_interval)
        {
            bail!("notary_batch_interval must be between 10 milliseconds and 1 hour");
        }
        let notary_batch_size = args
            .notary_batch_size
            .or(file.notary_batch_size)
            .unwrap_or(1000);
        if !(1..=1_000_000).contains(&notary_batch_size) {
            bail!("notary_batch_size must be between 1 and 1000000");
        }
        let task_workers = args.task_workers.or(file.task_workers).unwrap_or(256);
        if !(1..=10_000).contains(&task_workers) {
            bail!("task_workers must be between 1 and 10000");
        }
        let sim_failure_rate = args
            .sim_failure_rate
            .or(file.sim_failure_rate)
            .unwrap_or(0.0);
        if !(0.0..=1.0).contains(&sim_failure_rate) {
            bail!("sim_failure_rate must be between 0 and 1");
        }
        let tls = match (
            args.tls_cert.or(file.tls_cert),
            args.tls_key.or(file.tls_key),
        ) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            _ => bail!("--tls-cert and --tls-key go together"),
        };
        let listen = args
            .listen
            .or(file.listen)
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
        Ok(ServerConfig {
            listen,
            data_dir,
            database_url,
            public_url: args.public_url.or(file.public_url),
            driver: args.driver.or(file.driver).unwrap_or(DriverKind::Sim),
            sim_latency,
            setup_token: args.setup_token.or(file.setup_token),
            demo: args.demo || file.demo.unwrap_or(false),
            tls,
            max_body_bytes: args
                .max_body_bytes
                .or(file.max_body_bytes)
                .unwrap_or(1024 * 1024),
            limits,
            db_max_connections: args
                .db_max_connections
                .or(file.db_max_connections)
                .unwrap_or(16),
            shutdown_grace,
            secret_key: args.secret_key.or(file.secret_key),
            access_token_ttl,
            refresh_token_ttl,
            token_algorithm: args
                .token_algorithm
                .or(file.token_algorithm)
                .unwrap_or(TokenAlgorithm::Es256),
            key_rotation,
            trusted_proxies: match (args.trusted_proxies, file.trusted_proxies) {
                (Some(nets), _) => nets,
                (None, Some(list)) => list
                    .iter()
                    .map(|s| parse_net(s))
                    .collect::<Result<_, _>>()
                    .map_err(|e| anyhow::anyhow!("trusted_proxies: {e}"))?,
                (None, None) => Vec::new(),
            },
            cors_origins: match (args.cors_origins, file.cors_origins) {
                (Some(origins), _) => origins,
                (None, Some(list)) => list
                    .iter()
                    .map(|s| parse_origin(s))
                    .collect::<Result<_, _>>()
                    .map_err(|e| anyhow::anyhow!("cors_origins: {e}"))?,
                (None, None) => Vec::new(),
            },
            task_workers,
            task_retention,
            task_lease,
            sim_failure_rate,
            qemu_binary: args
                .qemu_binary
                .or(file.qemu_binary)
                .unwrap_or_else(|| PathBuf::from("qemu-system-x86_64")),
            qemu_img: args
                .qemu_img
                .or(file.qemu_img)
                .unwrap_or_else(|| PathBuf::from("qemu-img")),
            qemu_accel: args
                .qemu_accel
                .or(file.qemu_accel)
                .unwrap_or(QemuAccel::Auto),
            qemu_stop_grace,
            qemu_network: args
                .qemu_network
                .or(file.qemu_network)
                .unwrap_or(QemuNetwork::None),
            notary_max_file_bytes: args
                .notary_max_file_bytes
                .or(file.notary_max_file_bytes)
                .unwrap_or(DEFAULT_NOTARY_MAX_FILE_BYTES),
            notary_batch_interval,
            notary_batch_size,
            smtp_url: args.smtp_url.or(file.smtp_url),
            smtp_from: args.smtp_from.or(file.smtp_from),
        })
    }

    /// A configuration for tests and embedding: a data dir, a database URL,
    /// a free port on loopback.
    pub fn for_data_dir(data_dir: PathBuf, database_url: Option<String>) -> ServerConfig {
        let database_url = database_url.unwrap_or_else(|| sqlite_url(&data_dir));
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir,
            database_url,
            public_url: None,
            driver: DriverKind::Sim,
            sim_latency: Duration::from_secs(1),
            setup_token: None,
            demo: false,
            tls: None,
            max_body_bytes: 1024 * 1024,
            limits: ConnectionLimits::default(),
            db_max_connections: 16,
            shutdown_grace: Duration::from_secs(30),
            secret_key: None,
            access_token_ttl: Duration::from_secs(3600),
            refresh_token_ttl: Duration::from_secs(30 * 24 * 3600),
            token_algorithm: TokenAlgorithm::Es256,
            key_rotation: Duration::from_secs(30 * 24 * 3600),
            trusted_proxies: Vec::new(),
            cors_origins: Vec::new(),
            task_workers: 256,
            task_retention: Duration::from_secs(24 * 3600),
            task_lease: Duration::from_secs(10),
            sim_failure_rate: 0.0,
            qemu_binary: PathBuf::from("qemu-system-x86_64"),
            qemu_img: PathBuf::from("qemu-img"),
            qemu_accel: QemuAccel::Auto,
            qemu_stop_grace: Duration::from_secs(30),
            qemu_network: QemuNetwork::None,
            notary_max_file_bytes: DEFAULT_NOTARY_MAX_FILE_BYTES,
            notary_batch_interval: Duration::from_secs(10),
            notary_batch_size: 1000,
            smtp_url: None,
            smtp_from: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn flags_beat_file_beat_defaults() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(
            f,
            "listen = \"127.0.0.1:9000\"\ndata_dir = \"/tmp/from-file\"\nsim_latency = \"250ms\"\ndemo = true"
        )
        .unwrap();
        let args = ServeArgs {
            listen: Some("127.0.0.1:7000".parse().unwrap()),
            config: Some(f.path().to_owned()),
            ..Default::default()
        };
        let c = ServerConfig::resolve(args).unwrap();
        assert_eq!(c.listen.port(), 7000);
        assert_eq!(c.data_dir, PathBuf::from("/tmp/from-file"));
        assert_eq!(c.sim_latency, Duration::from_millis(250));
        assert!(c.demo);
        assert!(c
            .database_url
            .starts_with("sqlite:///tmp/from-file/nephele.db"));
        assert_eq!(c.driver, DriverKind::Sim);
    }

    #[test]
    fn cors_origins_are_exact_origins() {
        assert_eq!(
            parse_origin(" https://console.example.com").unwrap(),
            "https://console.example.com"
        );
        assert_eq!(
            parse_origin("http://127.0.0.1:5173").unwrap(),
            "http://127.0.0.1:5173"
        );
        for bad in [
            "*",
            "https://a.example.com/",
            "https://a.example.com/app",
            "ftp://a",
            "a.example.com",
            "https://",
        ] {
            assert!(parse_origin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn trusted_proxies_are_addresses_or_blocks() {
        assert_eq!(parse_net("10.0.0.1").unwrap().to_string(), "10.0.0.1/32");
        assert_eq!(parse_net(" 10.0.0.0/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(parse_net("::1").unwrap().to_string(), "::1/128");
        assert!(parse_net("proxy.internal").is_err());
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(f, "trusted_proxies = [\"10.0.0.0/8\", \"192.0.2.1\"]").unwrap();
        let args = ServeArgs {
            config: Some(f.path().to_owned()),
            ..Default::default()
        };
        assert_eq!(
            ServerConfig::resolve(args).unwrap().trusted_proxies.len(),
            2
        );
    }

    #[test]
    fn unknown_file_keys_are_refused() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(f, "lisen = \"x\"").unwrap();
        let args = ServeArgs {
            config: Some(f.path().to_owned()),
            ..Default::default()
        };
        assert!(ServerConfig::resolve(args).is_err());
    }
}
