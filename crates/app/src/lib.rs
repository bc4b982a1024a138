//! Nephele's domain services. Handlers call exactly one method here; every
//! method that touches a tenant's data takes the caller's context and checks
//! the action before it reads or writes.

pub mod access;
pub mod accounts;
pub mod api_keys;
pub mod audit;
pub mod clients;
pub mod credentials;
pub mod datacenters;
pub mod idempotency;
pub mod instances;
pub mod keys;
pub mod links;
pub mod lockout;
pub mod machines;
pub mod mail;
pub mod me;
pub mod mfa;
pub mod notary;
pub mod organizations;
pub mod passwords;
pub mod quotas;
pub mod roles;
pub mod setup;
pub mod signin;
pub mod tasks;
pub mod tokens;
pub mod users;
pub mod wire;

use audit::AuditLog;
use clients::{ClientAccess, SecretHasher};
use credentials::VerifiedPasswords;
use keys::{KeyConfig, KeyRing, Sealer};
use lockout::LockoutPolicy;
use nephele_common::clock::SharedClock;
use nephele_common::{Result, Secret};
use nephele_drivers::Driver;
use nephele_store::Store;
use nephele_tasks::{Engine, EngineConfig};
use passwords::Passwords;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;
use tokens::{Revocations, TokenConfig};

/// How many verified HTTP Basic passwords are remembered, and for how long.
const VERIFIED_PASSWORDS_CAPACITY: usize = 10_000;
const VERIFIED_PASSWORDS_TTL: std::time::Duration = std::time::Duration::from_secs(60);
/// How many verified access tokens are remembered (each until it expires).
const VERIFIED_TOKENS_CAPACITY: usize = 100_000;
/// How often each node looks for access tokens revoked on other nodes:
/// a revocation takes effect everywhere within this (SPEC §9: a second).
/// Login locks set on other nodes are polled alike.
const REVOCATION_POLL: Duration = Duration::from_millis(500);
/// How many API clients the token endpoint keeps in memory.
/// How often `last_access_at` of clients is written.
const CLIENT_ACCESS_FLUSH: Duration = Duration::from_secs(1);
/// How often the signing keys are reloaded (and rotated when due).
const KEY_REFRESH: Duration = Duration::from_secs(60);
/// How often SQLite's write-ahead log is checkpointed.
const CHECKPOINT: Duration = Duration::from_secs(1);
/// How often expired refresh tokens, revocations, idempotency keys and
/// login counters are purged.
const TOKEN_PURGE: Duration = Duration::from_secs(600);

/// The 32-byte key that seals signing keys and keys client-secret hashes.
/// Every node sharing a database must have the same one.
#[derive(Clone)]
pub struct SecretKey(pub [u8; 32]);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(***)")
    }
}

/// Settings the domain needs (the binary maps its configuration onto these).
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// The one-time token that authorizes first-run setup.
    pub setup_token: Secret,
    /// Where the setup token was written, so it can be removed once used.
    pub setup_token_file: Option<std::path::PathBuf>,
    /// This server's externally visible base URL: the token issuer.
    pub public_url: String,
    pub secret_key: SecretKey,
    pub tokens: TokenConfig,
    pub keys: KeyConfig,
    pub lockout: LockoutPolicy,
    pub engine: EngineConfig,
    pub driver: machines::DriverConfig,
    pub notary: notary::NotaryConfig,
    /// Sends invitations and password reset links; `None`: no mail.
    pub mailer: Option<Arc<dyn mail::Mailer>>,
}

/// The application: every domain service hangs off this. Cheap to clone.
#[derive(Clone, Debug)]
pub struct App {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    clock: SharedClock,
    config: AppConfig,
    passwords: Passwords,
    verified_passwords: VerifiedPasswords,
    audit_log: AuditLog,
    key_ring: KeyRing,
    secret_hasher: SecretHasher,
    recovery_hasher: SecretHasher,
    link_hasher: SecretHasher,
    record_sealer: Sealer,
    verified_tokens: quick_cache::sync::Cache<[u8; 32], Arc<tokens::VerifiedToken>>,
    revocations: Revocations,
    login_locks: lockout::Locks,
    client_access: ClientAccess,
    access_cache: access::AccessCache,
    refresh_writer: tokens::RefreshWriter,
    acceptances: instances::AcceptanceWriter,
    driver: Arc<dyn Driver>,
    notary: notary::Notary,
    /// Started by [`App::start`].
    engine: OnceLock<Engine>,
    /// Once true it stays true: setup cannot be undone.
    initialized: AtomicBool,
}

impl App {
    /// Must run inside a Tokio runtime: it starts the audit log's writer.
    /// [`App::start`] then loads the signing keys.
    pub fn new(store: Store, clock: SharedClock, config: AppConfig) -> Result<App> {
        Ok(App {
            inner: Arc::new(Inner {
                audit_log: AuditLog::start(store.clone()),
                key_ring: KeyRing::new(
                    store.clone(),
                    clock.clone(),
                    Sealer::new(&config.secret_key.0)?,
                    config.keys.clone(),
                ),
                secret_hasher: SecretHasher::new(&config.secret_key.0)?,
                recovery_hasher: SecretHasher::for_purpose(
                    &config.secret_key.0,
                    b"nephele recovery codes v1",
                )?,
                link_hasher: SecretHasher::for_purpose(
                    &config.secret_key.0,
                    b"nephele one-time links v1",
                )?,
                record_sealer: Sealer::new(&config.secret_key.0)?,
                verified_tokens: quick_cache::sync::Cache::new(VERIFIED_TOKENS_CAPACITY),
                revocations: Revocations::default(),
                login_locks: lockout::Locks::default(),
                client_access: ClientAccess::default(),
                access_cache: access::AccessCache::default(),
                refresh_writer: tokens::refresh_writer(store.clone()),
                acceptances: instances::acceptance_writer(store.clone()),
                driver: machines::driver(&config.driver, &clock)?,
                notary: notary::Notary::default(),
                engine: OnceLock::new(),
                store,
                clock,
                config,
                passwords: Passwords::new(),
                verified_passwords: VerifiedPasswords::new(
                    VERIFIED_PASSWORDS_CAPACITY,
                    VERIFIED_PASSWORDS_TTL,
                )?,
                initialized: AtomicBool::new(false),
            }),
        })
    }

    pub(crate) fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn clock(&self) -> &SharedClock {
        &self.inner.clock
    }

    pub fn config(&self) -> &AppConfig {
        &self.inner.config
    }

    pub fn passwords(&self) -> &Passwords {
        &self.inner.passwords
    }

    pub(crate) fn verified_passwords(&self) -> &VerifiedPasswords {
        &self.inner.verified_passwords
    }

    pub(crate) fn audit_log(&self) -> &AuditLog {
        &self.inner.audit_log
    }

    pub fn key_ring(&self) -> &KeyRing {
        &self.inner.key_ring
    }

    pub(crate) fn secret_hasher(&self) -> &SecretHasher {
        &self.inner.secret_hasher
    }

    pub(crate) fn recovery_hasher(&self) -> &SecretHasher {
        &self.inner.recovery_hasher
    }

    pub(crate) fn link_hasher(&self) -> &SecretHasher {
        &self.inner.link_hasher
    }

    pub(crate) fn record_sealer(&self) -> &Sealer {
        &self.inner.record_sealer
    }

    pub(crate) fn verified_tokens(
        &self,
    ) -> &quick_cache::sync::Cache<[u8; 32], Arc<tokens::VerifiedToken>> {
        &self.inner.verified_tokens
    }

    pub(crate) fn revocations(&self) -> &Revocations {
        &self.inner.revocations
    }

    pub(crate) fn login_locks(&self) -> &lockout::Locks {
        &self.inner.login_locks
    }

    pub(crate) fn refresh_writer(&self) -> &tokens::RefreshWriter {
        &self.inner.refresh_writer
    }

    pub(crate) fn acceptances(&self) -> &instances::AcceptanceWriter {
        &self.inner.acceptances
    }

    pub(crate) fn access_cache(&self) -> &access::AccessCache {
        &self.inner.access_cache
    }

    pub(crate) fn client_access(&self) -> &ClientAccess {
        &self.inner.client_access
    }

    pub fn driver(&self) -> &Arc<dyn Driver> {
        &self.inner.driver
    }

    /// The task engine (503 before [`App::start`]).
    pub fn engine(&self) -> Result<&Engine> {
        self.inner
            .engine
            .get()
            .ok_or_else(|| nephele_common::Error::unavailable("the task engine is not running"))
    }

    /// Loads (or makes) the signing keys and the revocation list, then
    /// starts the background work of the token service: reloading and
    /// rotating keys, polling revocations, writing clients' last access.
    /// Each loop ends when the app is dropped.
    pub async fn start(&self) -> Result<()> {
        self.key_ring().refresh().await?;
        self.poll_revocations().await?;
        let engine = Engine::start(
            self.store().clone(),
            self.clock().clone(),
            nephele_tasks::Kinds::new().with(Arc::new(instances::InstanceTasks::new(
                self.store().clone(),
                self.clock().clone(),
                self.driver().clone(),
            ))),
            self.config().engine.clone(),
        )
        .await?;
        let _ = self.inner.engine.set(engine);
        self.start_reconciling().await?;
        self.start_notary().await?;
        let weak = Arc::downgrade(&self.inner);
        every(weak.clone(), KEY_REFRESH, |app| async move {
            app.key_ring().refresh().await.map(|_| ())
        });
        every(weak.clone(), REVOCATION_POLL, |app| async move {
            app.poll_revocations().await?;
            app.poll_login_locks().await
        });
        every(weak.clone(), CLIENT_ACCESS_FLUSH, |app| async move {
            app.flush_client_access().await
        });
        every(weak.clone(), CHECKPOINT, |app| async move {
            app.store().checkpoint().await
        });
        every(weak, TOKEN_PURGE, |app| async move {
            let now = app.clock().now();
            app.store().purge_expired_tokens(now).await?;
            app.store().purge_expired_links(now).await?;
            app.purge_idempotency_keys(now).await?;
            app.purge_login_counters().await
        });
        Ok(())
    }

    /// Closes the database, last thing at shutdown.
    pub async fn close(&self) {
        self.inner.store.close().await;
    }

    /// Whether the database answers (readiness).
    pub async fn ping(&self) -> Result<()> {
        self.inner.store.ping().await
    }

    /// Each database pool's connections in use and idle, for metrics.
    pub fn pool_connections(&self) -> Vec<(&'static str, u32, u32)> {
        self.inner.store.pool_connections()
    }

    /// For shutdown: hands unfinished tasks back (running steps get
    /// `grace` to end) and writes what is still buffered (clients' last
    /// access).
    pub async fn shutdown(&self, grace: Duration) -> Result<()> {
        if let Some(engine) = self.inner.engine.get() {
            engine.shutdown(grace).await?;
        }
        self.flush_client_access().await
    }

    pub(crate) fn mark_initialized(&self) {
        self.inner.initialized.store(true, Ordering::Release);
    }

    pub(crate) fn known_initialized(&self) -> bool {
        self.inner.initialized.load(Ordering::Acquire)
    }
}

/// Runs `work` every `period` for as long as the app lives; failures are
/// logged and retried at the next tick.
fn every<F, Fut>(app: Weak<Inner>, period: Duration, work: F)
where
    F: Fn(App) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<()>> + Send,
{
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            let Some(inner) = app.upgrade() else { break };
            if let Err(e) = work(App { inner }).await {
                tracing::warn!(error = %e, "background work failed; retrying");
            }
        }
    });
}
