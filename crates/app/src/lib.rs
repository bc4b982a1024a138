//! Nephele's domain services. Handlers call exactly one method here; every
//! method that touches a tenant's data takes the caller's context and checks
//! the action before it reads or writes.

pub mod access;
pub mod api_keys;
pub mod audit;
pub mod credentials;
pub mod datacenters;
pub mod me;
pub mod organizations;
pub mod passwords;
pub mod roles;
pub mod setup;
pub mod users;

use audit::AuditLog;
use credentials::VerifiedPasswords;
use nephele_common::clock::SharedClock;
use nephele_common::{Result, Secret};
use nephele_store::Store;
use passwords::Passwords;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// How many verified HTTP Basic passwords are remembered, and for how long.
const VERIFIED_PASSWORDS_CAPACITY: usize = 10_000;
const VERIFIED_PASSWORDS_TTL: std::time::Duration = std::time::Duration::from_secs(60);

/// Settings the domain needs (the binary maps its configuration onto these).
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// The one-time token that authorizes first-run setup.
    pub setup_token: Secret,
    /// Where the setup token was written, so it can be removed once used.
    pub setup_token_file: Option<std::path::PathBuf>,
    /// This server's externally visible base URL.
    pub public_url: String,
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
    /// Once true it stays true: setup cannot be undone.
    initialized: AtomicBool,
}

impl App {
    /// Must run inside a Tokio runtime: it starts the audit log's writer.
    pub fn new(store: Store, clock: SharedClock, config: AppConfig) -> Result<App> {
        Ok(App {
            inner: Arc::new(Inner {
                audit_log: AuditLog::start(store.clone()),
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

    pub fn store(&self) -> &Store {
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

    pub(crate) fn mark_initialized(&self) {
        self.inner.initialized.store(true, Ordering::Release);
    }

    pub(crate) fn known_initialized(&self) -> bool {
        self.inner.initialized.load(Ordering::Acquire)
    }
}
