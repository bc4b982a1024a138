//! Wiring: storage, the application, the HTTP service, and the listener.

use crate::config::{DriverKind, QemuAccel, QemuNetwork, ServerConfig, TokenAlgorithm};
use crate::connections::ConnectionLimit;
use anyhow::Context;
use axum_server::tls_rustls::RustlsConfig;
use axum_server::Handle;
use nephele_app::keys::KeyConfig;
use nephele_app::lockout::LockoutPolicy;
use nephele_app::machines::DriverConfig;
use nephele_app::notary::NotaryConfig;
use nephele_app::setup::random_token;
use nephele_app::tokens::TokenConfig;
use nephele_app::{App, AppConfig, SecretKey};
use nephele_auth::jws::Algorithm;
use nephele_common::{Secret, SystemClock};
use nephele_drivers::qemu::{Accel, Network, QemuConfig};
use nephele_drivers::sim::SimConfig;
use nephele_http::HttpOptions;
use nephele_store::{Store, StoreOptions};
use nephele_tasks::EngineConfig;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::task::JoinHandle;

/// A server that is up and accepting connections.
#[derive(Debug)]
pub struct Running {
    pub addr: SocketAddr,
    /// `http://ADDR` or `https://ADDR`.
    pub url: String,
    pub app: App,
    /// The demo account's password, when `--demo` set the platform up now.
    pub demo_password: Option<Secret>,
    handle: Handle,
    task: JoinHandle<std::io::Result<()>>,
    grace: std::time::Duration,
}

impl Running {
    /// Stops accepting, lets in-flight requests finish, closes the database.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.handle.graceful_shutdown(Some(self.grace));
        self.task.await.context("server task")??;
        if let Err(e) = self.app.shutdown(self.grace).await {
            tracing::warn!(error = %e, "flushing on shutdown");
        }
        self.app.close().await;
        Ok(())
    }

    /// Waits until the server stops by itself (it does not, unless it fails).
    pub async fn wait(&mut self) -> anyhow::Result<()> {
        (&mut self.task).await.context("server task")??;
        Ok(())
    }
}

const SETUP_TOKEN_FILE: &str = "setup-token";
const SECRET_KEY_FILE: &str = "secret-key";

/// Parses a 32-byte key given as base64 (standard or URL-safe) or hex.
pub fn parse_secret_key(text: &str) -> anyhow::Result<SecretKey> {
    use base64::Engine;
    let text = text.trim();
    let bytes = hex::decode(text)
        .ok()
        .or_else(|| base64::engine::general_purpose::STANDARD.decode(text).ok())
        .or_else(|| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(text)
                .ok()
        })
        .context("the secret key must be 32 bytes in base64 or hex")?;
    let key: [u8; 32] = bytes
        .try_into()
        .map_err(|_| anyhow::anyhow!("the secret key must be exactly 32 bytes"))?;
    Ok(SecretKey(key))
}

/// The configured secret key, or the one in `DATA_DIR/secret-key`, made
/// (mode 0600) on first start. `sealed`: the database already holds keys
/// sealed under a secret key — then a missing file is a lost key (a
/// restore without it, a wrong data dir), and a new one would open
/// nothing: the server refuses to start rather than write one.
fn secret_key(config: &ServerConfig, sealed: bool) -> anyhow::Result<SecretKey> {
    if let Some(text) = &config.secret_key {
        return parse_secret_key(text).context("--secret-key");
    }
    let path = config.data_dir.join(SECRET_KEY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(existing) => {
            return parse_secret_key(&existing)
                .with_context(|| format!("reading {}", path.display()))
        }
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("reading {}", path.display()));
        }
        Err(_) if sealed => anyhow::bail!(
            "the secret key is missing: {} does not exist, and the database holds signing keys \
             sealed under a secret key. Restore the file from the backup this database came \
             from (or give it with --secret-key / NEPHELE_SECRET_KEY); a new key could not \
             open them, so none is made",
            path.display()
        ),
        Err(_) => {}
    }
    let mut key = [0u8; 32];
    rand::Rng::fill(&mut rand::thread_rng(), &mut key);
    write_private(&path, &hex::encode(key))?;
    tracing::info!(path = %path.display(), "made a new secret key for signing keys at rest");
    Ok(SecretKey(key))
}

/// Reads the setup token file, or creates it (mode 0600) with a new token.
fn setup_token_file(data_dir: &Path) -> anyhow::Result<(Secret, PathBuf)> {
    let path = data_dir.join(SETUP_TOKEN_FILE);
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let token = existing.trim().to_owned();
        if !token.is_empty() {
            return Ok((Secret::new(token), path));
        }
    }
    let token = random_token(43); // ≈256 bits
    write_private(&path, token.expose())?;
    Ok((token, path))
}

fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    crate::private_file::write(path, format!("{contents}\n").as_bytes())
        .with_context(|| format!("creating {}", path.display()))
}

async fn driver_config(config: &ServerConfig, store: &Store) -> anyhow::Result<DriverConfig> {
    Ok(match config.driver {
        DriverKind::Sim => DriverConfig::Sim(SimConfig {
            latency: config.sim_latency,
            failure_rate: config.sim_failure_rate,
            state: Arc::new(
                crate::sim_state::SimTables::open(store.clone())
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))
                    .context("opening the simulated hypervisor's tables")?,
            ),
        }),
        DriverKind::Qemu => DriverConfig::Qemu(QemuConfig {
            data_dir: config.data_dir.clone(),
            qemu: config.qemu_binary.clone(),
            qemu_img: config.qemu_img.clone(),
            accel: match config.qemu_accel {
                QemuAccel::Auto => Accel::Auto,
                QemuAccel::Kvm => Accel::Kvm,
                QemuAccel::Tcg => Accel::Tcg,
            },
            stop_grace: config.qemu_stop_grace,
            network: match config.qemu_network {
                QemuNetwork::None => Network::None,
                QemuNetwork::User => Network::User,
            },
        }),
    })
}

/// Makes the data directory private: the server creates files for its
/// owner only (umask 077: SQLite's database, WAL and shared-memory files,
/// notary contents, keys, disk images), and what an earlier start or
/// another tool left readable to others is narrowed to 0700 (folders) and
/// 0600 (files).
fn private_data_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    std::fs::create_dir_all(dir).with_context(|| format!("creating data dir {}", dir.display()))?;
    let mut pending = vec![dir.to_owned()];
    while let Some(folder) = pending.pop() {
        let narrow = |path: &Path, meta: &std::fs::Metadata, private: u32| {
            let mode = meta.permissions().mode();
            if mode & 0o077 != 0 {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & private))
                    .with_context(|| format!("making {} private", path.display()))?;
            }
            anyhow::Ok(())
        };
        narrow(&folder, &std::fs::symlink_metadata(&folder)?, 0o700)?;
        let entries =
            std::fs::read_dir(&folder).with_context(|| format!("reading {}", folder.display()))?;
        for entry in entries {
            let entry = entry?;
            let meta = entry.metadata()?;
            if meta.is_dir() {
                pending.push(entry.path());
            } else if meta.is_file() {
                narrow(&entry.path(), &meta, 0o600)?;
            }
        }
    }
    Ok(())
}

/// The HTTP/1 parser's limits: a client gets `header_read_timeout` to
/// send a request's headers, which also bounds how long a kept-alive
/// connection waits for its next request. The parser keeps its own cap of
/// 100 header fields: a larger one makes it allocate room for that many
/// on the heap for every request (about 8 % of a small read, measured).
fn http_limits(
    builder: &mut hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
    config: &ServerConfig,
) {
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(config.limits.header_read_timeout);
}

/// Starts a server as configured and returns once it is listening.
pub async fn start(config: ServerConfig) -> anyhow::Result<Running> {
    private_data_dir(&config.data_dir)?;
    let store = Store::connect(
        &config.database_url,
        &StoreOptions {
            max_connections: config.db_max_connections,
            ..StoreOptions::default()
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))
    .context("opening the database")?;

    let listener = std::net::TcpListener::bind(config.listen)
        .with_context(|| format!("binding {}", config.listen))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let url = format!("{scheme}://{addr}");
    let public_url = config.public_url.clone().unwrap_or_else(|| url.clone());

    let initialized = store
        .is_initialized()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let (setup_token, setup_token_file) = match (&config.setup_token, initialized || config.demo) {
        (Some(t), _) => (Secret::new(t.clone()), None),
        // Set up already, or about to be by --demo: no token to hand out.
        (None, true) => (random_token(43), None),
        (None, false) => {
            let (token, path) = setup_token_file(&config.data_dir)?;
            tracing::info!(path = %path.display(), "Nephele is not set up: the setup token is in this file");
            (token, Some(path))
        }
    };
    let sealed = !store
        .live_signing_keys(nephele_common::clock::Clock::now(&SystemClock))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .is_empty();
    let secret_key = secret_key(&config, sealed)?;
    let driver = driver_config(&config, &store).await?;
    let mailer: Option<std::sync::Arc<dyn nephele_app::mail::Mailer>> = match &config.smtp_url {
        Some(url) => {
            let mailer =
                crate::mailer::SmtpMailer::new(url, config.smtp_from.as_deref(), &public_url)?;
            tracing::info!(?mailer, "invitations and password reset links go by mail");
            Some(std::sync::Arc::new(mailer))
        }
        None => None,
    };
    let app = App::new(
        store,
        Arc::new(SystemClock),
        AppConfig {
            setup_token,
            setup_token_file,
            public_url,
            secret_key,
            tokens: TokenConfig {
                access_token_ttl: config.access_token_ttl,
                refresh_token_ttl: config.refresh_token_ttl,
            },
            keys: KeyConfig {
                access_algorithm: match config.token_algorithm {
                    TokenAlgorithm::Es256 => Algorithm::ES256,
                    TokenAlgorithm::Eddsa => Algorithm::EdDSA,
                },
                id_algorithm: Algorithm::RS256,
                rotation: config.key_rotation,
                token_lifetime: config.access_token_ttl,
            },
            lockout: LockoutPolicy::default(),
            engine: EngineConfig {
                workers: config.task_workers,
                lease: config.task_lease,
                retention: config.task_retention,
                ..EngineConfig::default()
            },
            driver,
            notary: NotaryConfig {
                dir: config.data_dir.join("notary"),
                max_file_bytes: config.notary_max_file_bytes,
                batch_interval: config.notary_batch_interval,
                batch_size: config.notary_batch_size,
            },
            mailer,
        },
    )?;
    app.start()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("loading the signing keys")?;
    let demo_password = if config.demo {
        app.set_up_demo()
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .map(|d| d.password)
    } else {
        None
    };

    let service = nephele_http::service(
        app.clone(),
        HttpOptions {
            max_body_bytes: config.max_body_bytes,
            trusted_proxies: config.trusted_proxies.clone(),
            body_read_timeout: config.limits.body_read_timeout,
            cors_origins: config.cors_origins.clone(),
        },
    )
    .into_make_service_with_connect_info::<SocketAddr>();
    let handle = Handle::new();
    let connections = ConnectionLimit::new(
        config.limits.max_connections,
        config.limits.max_connections_per_address,
        config.trusted_proxies.clone(),
    );
    let task = match &config.tls {
        Some((cert, key)) => {
            // One process-wide crypto provider; a second install is harmless.
            let _ = rustls::crypto::ring::default_provider().install_default();
            let tls = RustlsConfig::from_pem_file(cert, key)
                .await
                .with_context(|| format!("loading TLS certificate {}", cert.display()))?;
            let mut server = axum_server::from_tcp_rustls(listener, tls)
                .map(|tls| tls.acceptor(connections))
                .handle(handle.clone());
            http_limits(server.http_builder(), &config);
            tokio::spawn(server.serve(service))
        }
        None => {
            let mut server = axum_server::from_tcp(listener)
                .acceptor(connections)
                .handle(handle.clone());
            http_limits(server.http_builder(), &config);
            tokio::spawn(server.serve(service))
        }
    };
    tracing::info!("listening on {url}");
    Ok(Running {
        addr,
        url,
        app,
        demo_password,
        handle,
        task,
        grace: config.shutdown_grace,
    })
}
